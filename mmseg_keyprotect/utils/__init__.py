from .atomic_file import atomic_file
from .figures import save_figure
from .machine import describe, machine, provenance

__all__ = ['atomic_file', 'describe', 'machine', 'provenance', 'save_figure']
