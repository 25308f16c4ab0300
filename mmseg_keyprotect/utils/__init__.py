from .atomic_file import atomic_file

__all__ = ['atomic_file']
