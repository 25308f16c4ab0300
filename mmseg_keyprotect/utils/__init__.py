from .atomic_file import atomic_file
from .figures import save_figure
from .machine import describe, machine

__all__ = ['atomic_file', 'describe', 'machine', 'save_figure']
