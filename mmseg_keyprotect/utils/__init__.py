from .atomic_file import atomic_file
from .machine import describe, machine

__all__ = ['atomic_file', 'describe', 'machine']
