"""Plain labelled images held in memory, and the mIoU of a model on them under any input condition.

The protection report scores one model under hundreds of conditions (keys,
wrong keys, estimated keys, adapters). Running the data pipeline once and
transforming the cached tensors keeps that affordable, and guarantees that
every condition sees exactly the same pixels.
"""
import copy
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import DATASETS

from ..config.pipelines import ENCRYPT, transform_type
from ..crypto.ciphers import BlockCipher
from ..crypto.conditions import encrypt_batch
from ..errors import ConfigError
from .metrics import IoUAccumulator

# mmseg's dataset wrappers keep the real dataset under 'dataset' (or 'datasets').
_WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset', 'MultiImageMixDataset', 'ConcatDataset')


@dataclass
class LabelledImages:
    """Plain images (uint8 3xHxW, BGR, padded to whole blocks) with their data samples."""
    images: List[torch.Tensor]
    samples: List

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> 'LabelledImages':
        return LabelledImages([self.images[i] for i in indices], [self.samples[i] for i in indices])

    @property
    def labels(self) -> List[torch.Tensor]:
        return [sample.gt_sem_seg.data for sample in self.samples]

    def rgb(self, index: int) -> np.ndarray:
        """Image ``index`` as an HxWx3 RGB numpy array (the key's channel order)."""
        return np.ascontiguousarray(self.images[index].permute(1, 2, 0).numpy()[..., ::-1])


def plain_dataset_config(cfg: Config, split: str) -> dict:
    """The ``split`` dataset of a protected config, plain, through its test pipeline.

    ``split`` is ``'train'`` or ``'test'``. The test pipeline is deterministic
    (no random crops or colour changes), so a training image is the same
    every time an attack sees it; its BlockwiseEncrypt only pads to whole
    blocks (``on_device=True``), so images come out plain on the exact
    geometry the protected model sees.
    """
    loader = cfg.get(f'{split}_dataloader')
    if loader is None:
        raise ConfigError(f'the config has no {split}_dataloader')
    dataset = copy.deepcopy(loader.dataset)
    while dataset.get('type') in _WRAPPERS:
        dataset = dataset.datasets[0] if 'datasets' in dataset else dataset.dataset
    dataset.pipeline = [dict(t, on_device=True) if transform_type(t) == ENCRYPT else t
                        for t in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)]
    if not any(transform_type(t) == ENCRYPT for t in dataset.pipeline):
        raise ConfigError(f'the test pipeline has no {ENCRYPT} step: not a protected config')
    return dataset


def load_labelled_images(dataset_cfg: dict, count: Optional[int] = None, seed: int = 0,
                         for_training: bool = False) -> LabelledImages:
    """Run a pipeline once and keep its images and labels in memory.

    Args:
        dataset_cfg (dict): a dataset config (see :func:`plain_dataset_config`).
        count (int, optional): keep this many images, drawn with ``seed``;
            all by default.
        for_training (bool): resize labels to their images. Test pipelines
            resize the image but score against the original label, as
            ``tools/test.py`` does; training needs the two aligned.
    """
    dataset = DATASETS.build(dataset_cfg)
    indices = np.arange(len(dataset))
    if count is not None and count < len(dataset):
        indices = np.sort(np.random.default_rng(seed).choice(len(dataset), count, replace=False))
    images, samples = [], []
    for index in indices:
        item = dataset[int(index)]
        image, sample = item['inputs'], item['data_samples']
        label = sample.gt_sem_seg.data
        if for_training and label.shape[-2:] != image.shape[-2:]:
            label = F.interpolate(label[None].float(), size=image.shape[-2:], mode='nearest')[0].to(label.dtype)
            sample.gt_sem_seg = PixelData(data=label)
            sample.set_metainfo(dict(ori_shape=image.shape[-2:]))
        images.append(image)
        samples.append(sample)
    return LabelledImages(images, samples)


@torch.no_grad()
def score(model, data: LabelledImages, cipher: Optional[BlockCipher] = None,
          adapter: Optional[torch.nn.Module] = None, batch_size: int = 8) -> float:
    """mIoU of ``model`` on ``data`` encrypted with ``cipher`` (``None``: plain).

    Args:
        model: an mmseg segmentor.
        data (LabelledImages): plain images and labels.
        cipher (BlockCipher, optional): the condition's cipher.
        adapter (torch.nn.Module, optional): applied to the normalised batch
            before the network (the block-wise adapter attack).
    """
    was_training = model.training
    model.eval()
    accumulator = IoUAccumulator(len(model.dataset_meta['classes']))
    for start in range(0, len(data), batch_size):
        batch = dict(inputs=encrypt_batch(data.images[start:start + batch_size], cipher),
                     data_samples=data.samples[start:start + batch_size])
        for prediction in predict(model, batch, adapter):
            accumulator.add(prediction.pred_sem_seg.data, prediction.gt_sem_seg.data)
    model.train(was_training)
    return accumulator.miou()


def predict(model, batch: dict, adapter: Optional[torch.nn.Module] = None) -> list:
    """``model.test_step`` with an optional adapter between preprocessing and network."""
    data = model.data_preprocessor(batch, False)
    inputs = data['inputs'] if adapter is None else adapter(data['inputs'])
    return model.predict(inputs, data['data_samples'])
