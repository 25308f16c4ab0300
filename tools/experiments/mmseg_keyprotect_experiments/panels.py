"""Image panels for the demo's figures: coloured label maps and viewable encrypted images."""
from typing import Sequence

import numpy as np


def colorize(label: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 RGB; indices beyond the palette are white."""
    colours = np.full((256, 3), 255, np.uint8)
    colours[:len(palette)] = np.asarray(palette, np.uint8)
    return colours[np.clip(label, 0, 255).astype(np.uint8)]


def displayable(image: np.ndarray) -> np.ndarray:
    """An encrypted image scaled to uint8 for display (FFX values reach 999)."""
    if image.dtype == np.uint8:
        return image
    return (image.astype(np.float32) * (255.0 / max(1, int(image.max())))).round().astype(np.uint8)
