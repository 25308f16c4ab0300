"""The embedded demo data: procedurally generated textured objects, in mmseg's layout.

Each object class is a texture family (stripes, checkers, dots, grain) painted
on a random shape (ellipse, triangle or rotated box) in a random colour, often
close to the background's: colour says nothing about the class, and a texture
period of 4 to 9 pixels is what block-wise encryption has to hide. Backgrounds
are smooth and noisy, objects overlap, and a random illumination field, gamma
and sensor noise vary every image. Generation is deterministic from a seed and
writes the standard ``img_dir/{train,val}``, ``ann_dir/{train,val}`` layout, so
mmseg's stock loading code reads it.
"""
import json
from pathlib import Path
from typing import Callable, Optional, Tuple, Union

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

CLASSES = ('background', 'striped', 'checkered', 'dotted', 'grainy')
PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]]
GENERATOR_VERSION = 3


@DATASETS.register_module()
class ShapesDataset(BaseSegDataset):
    """The generated demo dataset (see :func:`generate_shapes`)."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png', **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)


def _smooth_noise(rng: np.random.Generator, size: int, scale: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: random values on a coarse grid, upsampled."""
    coarse = rng.random((max(2, size // scale), max(2, size // scale))).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(40, 215, 3)
    texture = _smooth_noise(rng, size, int(rng.integers(4, 24)))[..., None]
    tint = rng.uniform(-60, 60, 3)
    return base + (texture - 0.5) * tint * 2


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """An ellipse, a triangle or a rotated box, at a random place and size."""
    mask = np.zeros((size, size), np.uint8)
    center = rng.integers(12, size - 12, 2)
    radius = int(rng.integers(size // 8, size // 4))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        axes = (radius, int(radius * rng.uniform(0.7, 1.0)))
        cv2.ellipse(mask, tuple(int(c) for c in center), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        if kind == 1:
            angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        else:
            angles = rng.uniform(0, np.pi / 2) + np.array([0.6, np.pi - 0.6, np.pi + 0.6, 2 * np.pi - 0.6])
        corners = center + radius * np.stack([np.cos(angles), np.sin(angles)], -1)
        cv2.fillPoly(mask, [corners.astype(np.int32)], 1)
    return mask.astype(bool)


def _texture(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """Multiplicative texture in [0.4, 1.0] of one class's family, with random period and phase."""
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == 'striped':
        angle, period = rng.uniform(0, np.pi), rng.uniform(5, 9)
        phase = (rows * np.sin(angle) + columns * np.cos(angle)) / period
        return np.where(np.floor(phase) % 2 == 0, 1.0, 0.4)
    if kind == 'checkered':
        period = rng.uniform(4, 7)
        return np.where((np.floor(rows / period) + np.floor(columns / period)) % 2 == 0, 1.0, 0.4)
    if kind == 'dotted':
        period = rng.uniform(6, 9)
        radius = period * rng.uniform(0.25, 0.35)
        dy = (rows - rng.uniform(0, period)) % period - period / 2
        dx = (columns - rng.uniform(0, period)) % period - period / 2
        return np.where(dy ** 2 + dx ** 2 < radius ** 2, 0.4, 1.0)
    if kind == 'grainy':
        return rng.uniform(0.4, 1.0, (size, size))
    raise ValueError(f'unknown texture {kind!r}')


def render_sample(seed: int, size: int = 128, max_objects: int = 5) -> Tuple[np.ndarray, np.ndarray]:
    """One image (HxWx3 uint8, RGB) and its label map (HxW uint8)."""
    rng = np.random.default_rng(seed)
    image = _background(rng, size)
    label = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        class_index = int(rng.integers(1, len(CLASSES)))
        mask = _shape_mask(rng, size)
        # Colour is random and may sit near the background's: the class is the texture.
        colour = rng.uniform(30, 230, 3)
        shaded = colour * _texture(rng, CLASSES[class_index], size)[..., None]
        image[mask] = shaded[mask]
        label[mask] = class_index
    illumination = 0.6 + 0.8 * _smooth_noise(rng, size, int(rng.integers(32, 96)))
    image = image * illumination[..., None]
    image = 255 * (np.clip(image, 0, 255) / 255) ** rng.uniform(0.7, 1.4)
    image += rng.normal(0, rng.uniform(4, 14), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def generate_shapes(root: Union[str, Path], num_train: int = 400, num_val: int = 100, size: int = 128,
                    seed: int = 0, progress: Optional[Callable[[int, int], None]] = None) -> Path:
    """Write the dataset under ``root`` unless an identical one is already there.

    Returns:
        Path: ``root``.
    """
    root = Path(root)
    manifest = dict(generator=GENERATOR_VERSION, num_train=num_train, num_val=num_val, size=size, seed=seed,
                    classes=list(CLASSES))
    manifest_path = root / 'manifest.json'
    if manifest_path.is_file() and json.loads(manifest_path.read_text()) == manifest:
        return root
    total, done = num_train + num_val, 0
    for split, count, offset in (('train', num_train, 0), ('val', num_val, num_train)):
        image_dir, label_dir = root / 'img_dir' / split, root / 'ann_dir' / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            # Sample seeds are spread so that datasets with different seeds do not share images.
            image, label = render_sample(seed * 1_000_003 + offset + index, size)
            cv2.imwrite(str(image_dir / f'{index:05d}.png'), image[..., ::-1])
            cv2.imwrite(str(label_dir / f'{index:05d}.png'), label)
            done += 1
            if progress is not None:
                progress(done, total)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return root
