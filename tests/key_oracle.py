"""A segmentor whose accuracy says exactly which key its input was encrypted with.

``KeyOracleSegmentor`` decrypts whatever reaches its network with the true key
(undoing the data preprocessor's normalisation) and predicts, for every pixel,
the class ``red // CLASS_WIDTH`` of the decrypted value. On data whose labels
are that same function of the plain image (:func:`write_oracle_dataset`), the
model scores 100 mIoU on images encrypted with the true key, and exactly what
:func:`expected_miou` computes for any other condition (plain images, another
key). Tests of the hook, the tools and the report assert those values, so a
condition computed with the wrong cipher cannot go unnoticed.

Configs load it with ``custom_imports=dict(imports=['key_oracle'])`` and
``tests/`` on ``PYTHONPATH``.
"""
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import ConfigDict
from mmseg.evaluation.metrics import IoUMetric
from mmseg.models import EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS

from mmseg_keyprotect.crypto import BlockCipher, load_key
from mmseg_keyprotect.crypto.ciphers import pad_to_multiple
from mmseg_keyprotect.datasets import CLASSES

NUM_CLASSES = len(CLASSES)  # the Shapes dataset's classes, so its configs and metainfo apply unchanged
CLASS_WIDTH = 256 // NUM_CLASSES + 1  # red 0..255 -> classes 0..NUM_CLASSES-1
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@MODELS.register_module(force=True)
class KeyOracleSegmentor(EncoderDecoder):
    """An EncoderDecoder whose 'network' decrypts its input with the true key and reads off the red value.

    It has one dummy parameter so that optimisers, DDP and checkpoints work.
    """

    def __init__(self, key_file: str, method: str = 'shuffle', block_size: int = 4, data_preprocessor=None,
                 test_cfg: Optional[dict] = None, **ignored):
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor)
        self.cipher = load_key(key_file).cipher(method, block_size)
        self.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
        self.align_corners = False
        self.out_channels = self.num_classes = NUM_CLASSES
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def encode_decode(self, inputs, batch_img_metas):
        mean = torch.tensor(MEAN, device=inputs.device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=inputs.device).view(1, 3, 1, 1)
        values = (inputs * std + mean).round()
        dtype = torch.uint8 if self.cipher.ffx_table is None else torch.int16
        plain = self.cipher.decrypt_tensor(values.clamp(0, 999).to(dtype), 'rgb')
        classes = (plain[:, 0].long() // CLASS_WIDTH).clamp(0, NUM_CLASSES - 1)
        return torch.nn.functional.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float()

    def loss(self, inputs, data_samples):
        return dict(loss=(self.dummy ** 2).sum() + 0 * inputs.mean())


def oracle_labels(rgb: np.ndarray) -> np.ndarray:
    """The label map the oracle predicts from a plain RGB image."""
    return np.minimum(rgb[..., 0].astype(np.int64) // CLASS_WIDTH, NUM_CLASSES - 1).astype(np.uint8)


def oracle_image(seed: int, size: int) -> np.ndarray:
    """A plain RGB image with every class present: random blocks of flat colour plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_NEAREST).astype(np.int16)
    image += rng.integers(-20, 21, image.shape).astype(np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_oracle_dataset(root, num_train: int = 4, num_val: int = 6, size: int = 64) -> Path:
    """Images and oracle labels in the Shapes layout (``img_dir/{train,val}``, ``ann_dir/{train,val}``)."""
    root = Path(root)
    for split, count, offset in (('train', num_train, 0), ('val', num_val, 1000)):
        (root / 'img_dir' / split).mkdir(parents=True, exist_ok=True)
        (root / 'ann_dir' / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rgb = oracle_image(offset + index, size)
            cv2.imwrite(str(root / 'img_dir' / split / f'{index:05d}.png'), rgb[..., ::-1])
            cv2.imwrite(str(root / 'ann_dir' / split / f'{index:05d}.png'), oracle_labels(rgb))
    return root


def expected_miou(root, truth: BlockCipher, condition: Optional[BlockCipher], split: str = 'val') -> float:
    """The oracle's mIoU when the network gets ``condition``-encrypted images (None: plain), computed
    directly with numpy and mmseg's IoU code, without any of the plugin's evaluation machinery."""
    root = Path(root)
    results = []
    for path in sorted((root / 'img_dir' / split).glob('*.png')):
        rgb = cv2.imread(str(path))[..., ::-1]
        label = cv2.imread(str(root / 'ann_dir' / split / path.name), cv2.IMREAD_UNCHANGED)
        height, width = label.shape
        padded = pad_to_multiple(np.ascontiguousarray(rgb), truth.block_size, 0)
        seen = padded if condition is None else condition.encrypt(padded)
        prediction = oracle_labels(truth.decrypt(seen).clip(0, 255).astype(np.uint8))[:height, :width]
        results.append(IoUMetric.intersect_and_union(torch.from_numpy(prediction.astype(np.int64)),
                                                     torch.from_numpy(label.astype(np.int64)), NUM_CLASSES, 255))
    totals = [sum(r[i] for r in results) for i in range(4)]
    metrics = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])
    return float(np.nanmean(metrics['IoU'].numpy() if hasattr(metrics['IoU'], 'numpy') else metrics['IoU'])) * 100


def summary(values: Sequence[float]) -> dict:
    return dict(mean=float(np.mean(values)), max=float(np.max(values)))
