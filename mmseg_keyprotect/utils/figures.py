"""Figures written to files: the one way this package saves a matplotlib figure."""
from pathlib import Path
from typing import Union


def save_figure(figure, path: Union[str, Path], dpi: int = 110) -> Path:
    """Lay out, write and close ``figure``; return its path."""
    import matplotlib.pyplot as plt
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return Path(path)
