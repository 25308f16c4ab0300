"""Segmentors that learn to fail without the key (key-contrastive training)."""
import math
from contextlib import contextmanager
from typing import Iterator, List

import torch.nn.functional as F
from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..data_preprocessor import NEGATIVE_META_KEY


def divergence_from_uniform(logits: Tensor) -> Tensor:
    """Mean over pixels of KL(uniform || softmax(logits)), in nats; zero when predictions are uniform.

    Args:
        logits (Tensor): N x C x H x W class scores.
    """
    return -F.log_softmax(logits.float(), dim=1).mean(dim=1).mean() - math.log(logits.shape[1])


@contextmanager
def running_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Batch norm layers normalise with batch statistics but leave their running ones alone.

    The negatives must not shift the statistics that the key holder's test
    inputs are normalised with.
    """
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    momenta = [layer.momentum for layer in layers]
    counts = [layer.num_batches_tracked.clone() for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum, count in zip(layers, momenta, counts):
            layer.momentum = momentum
            layer.num_batches_tracked.copy_(count)


@contextmanager
def running_statistics_used(module: nn.Module) -> Iterator[None]:
    """Batch norm layers normalise with their running statistics, as at deployment, and leave them alone."""
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats and m.training]
    for layer in layers:
        layer.eval()
    try:
        yield
    finally:
        for layer in layers:
            layer.train()


#: How batch norm normalises the negatives: with their own batch's statistics, or with the running ones.
NEGATIVE_STATISTICS = dict(batch=running_statistics_frozen, running=running_statistics_used)


class KeyContrastiveMixin:
    """The loss of a key-contrastive segmentor: the usual loss on the key holder's images, plus
    ``negative_weight`` times the divergence of the decode head's predictions on the negatives
    (:class:`~mmseg_keyprotect.models.KeyContrastiveDataPreProcessor`) from the uniform
    distribution, as ``loss_key_contrast``.

    ``negative_statistics`` says how batch norm normalises the negatives:
    ``'batch'`` with their own batch's statistics (the running ones untouched),
    ``'running'`` with the running statistics, as a deployed model does.

    Prediction, inference and the state dict are those of the parent class:
    a checkpoint loads into the stock segmentor.
    """

    def __init__(self, *args, negative_weight: float = 0.1, negative_statistics: str = 'batch', **kwargs):
        super().__init__(*args, **kwargs)
        if not negative_weight >= 0:
            raise ValueError(f'negative_weight must be >= 0, got {negative_weight!r}')
        if negative_statistics not in NEGATIVE_STATISTICS:
            raise ValueError(f'negative_statistics must be one of {sorted(NEGATIVE_STATISTICS)}, '
                             f'got {negative_statistics!r}')
        self.negative_weight = float(negative_weight)
        self.negative_statistics = negative_statistics

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        negative = [bool(sample.metainfo.get(NEGATIVE_META_KEY, False)) for sample in data_samples]
        if not any(negative):
            return super().loss(inputs, data_samples)
        positives = [i for i, flag in enumerate(negative) if not flag]
        negatives = [i for i, flag in enumerate(negative) if flag]
        losses = super().loss(inputs[positives], [data_samples[i] for i in positives])
        with NEGATIVE_STATISTICS[self.negative_statistics](self):
            logits = self.negative_logits(inputs[negatives])
        losses['loss_key_contrast'] = self.negative_weight * divergence_from_uniform(logits)
        return losses

    def negative_logits(self, inputs: Tensor) -> Tensor:
        """The decode head's class scores (at its own resolution) for a batch."""
        features = self.extract_feat(inputs)
        heads: List[nn.Module] = list(self.decode_head) if isinstance(self.decode_head, nn.ModuleList) \
            else [self.decode_head]
        logits = heads[0].forward(features)
        for head in heads[1:]:
            logits = head.forward(features, logits)
        return logits


@MODELS.register_module()
class KeyContrastiveEncoderDecoder(KeyContrastiveMixin, EncoderDecoder):
    """``EncoderDecoder`` trained key-contrastively (see :class:`KeyContrastiveMixin`).

    Args:
        negative_weight (float): weight of ``loss_key_contrast``. Defaults to 0.1.
        negative_statistics (str): ``'batch'`` or ``'running'`` (see the mixin). Defaults to ``'batch'``.
        **kwargs: ``EncoderDecoder`` arguments.
    """


@MODELS.register_module()
class KeyContrastiveCascadeEncoderDecoder(KeyContrastiveMixin, CascadeEncoderDecoder):
    """``CascadeEncoderDecoder`` trained key-contrastively (see :class:`KeyContrastiveMixin`).

    Args:
        negative_weight (float): weight of ``loss_key_contrast``. Defaults to 0.1.
        negative_statistics (str): ``'batch'`` or ``'running'`` (see the mixin). Defaults to ``'batch'``.
        **kwargs: ``CascadeEncoderDecoder`` arguments.
    """

