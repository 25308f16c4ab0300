"""Scores for the protection report: mIoU with mmseg's own metric code, chance levels, distributions.

Every mIoU in the report, chance levels included, goes through
:class:`IoUAccumulator`, which sums areas with
:meth:`mmseg.evaluation.IoUMetric.intersect_and_union` and reduces them with
:meth:`~mmseg.evaluation.IoUMetric.total_area_to_metrics`, as ``tools/test.py``
does; mIoU is the mean over classes that occur, in percent.
"""
import math
from typing import Dict, Iterable, Sequence

import numpy as np
import torch
from mmseg.evaluation import IoUMetric


class IoUAccumulator:
    """Sum intersection and union areas over label maps; report mIoU.

    Args:
        num_classes (int): classes of the dataset.
        ignore_index (int): label value that is not scored. Defaults to 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.areas = [torch.zeros(num_classes, dtype=torch.float64) for _ in range(4)]

    def add(self, prediction: torch.Tensor, label: torch.Tensor) -> None:
        """Add one HxW prediction and its HxW ground truth."""
        areas = IoUMetric.intersect_and_union(prediction.squeeze().cpu(), label.squeeze().cpu(),
                                              self.num_classes, self.ignore_index)
        for total, area in zip(self.areas, areas):
            total += area.double()

    def class_iou(self) -> np.ndarray:
        """IoU of each class, 0..1 (NaN for a class absent from labels and predictions)."""
        metrics = IoUMetric.total_area_to_metrics(*self.areas, metrics=['mIoU'])
        return np.asarray(metrics['IoU'], dtype=float)

    def miou(self) -> float:
        """mIoU in percent."""
        return float(np.nanmean(self.class_iou()) * 100)


def class_frequencies(labels: Iterable[torch.Tensor], num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """Share of labelled pixels of each class."""
    counts = np.zeros(num_classes)
    for label in labels:
        values = label.flatten().cpu().numpy()
        values = values[values != ignore_index]
        counts += np.bincount(values, minlength=num_classes)[:num_classes]
    if counts.sum() == 0:
        raise ValueError('no labelled pixels')
    return counts / counts.sum()


def chance_levels(labels: Sequence[torch.Tensor], num_classes: int, ignore_index: int = 255,
                  seed: int = 0) -> Dict[str, float]:
    """mIoU of two predictors that never look at the image.

    ``majority_class`` always predicts the most frequent class;
    ``class_frequency`` draws every pixel at random with the class
    frequencies. Both use the frequencies of ``labels`` themselves, which
    makes them upper bounds for an attacker who knows only the label
    statistics.
    """
    frequencies = class_frequencies(labels, num_classes, ignore_index)
    majority, by_frequency = IoUAccumulator(num_classes, ignore_index), IoUAccumulator(num_classes, ignore_index)
    rng = np.random.default_rng(seed)
    for label in labels:
        label = label.squeeze()
        majority.add(torch.full_like(label, int(frequencies.argmax())), label)
        drawn = rng.choice(num_classes, size=tuple(label.shape), p=frequencies)
        by_frequency.add(torch.from_numpy(drawn).to(label.dtype), label)
    return dict(majority_class=majority.miou(), class_frequency=by_frequency.miou(),
                majority_class_index=int(frequencies.argmax()))


def quantile_confidence(quantile: float, count: int) -> float:
    """Confidence that the largest of ``count`` samples is at least the ``quantile`` quantile.

    The largest of n independent samples falls below the q-quantile with
    probability q^n, so it bounds that quantile with confidence 1 - q^n
    (59 samples for the 95th percentile at 95%, 299 for the 99th).
    """
    return 1.0 - quantile ** count


def samples_needed(quantile: float, confidence: float = 0.95) -> int:
    """Samples whose maximum bounds the ``quantile`` quantile with ``confidence``."""
    return math.ceil(math.log(1.0 - confidence) / math.log(quantile))


def summarize(values: Sequence[float]) -> Dict[str, object]:
    """Mean, median, max, 95th and 99th percentile of a sample, and what backs the percentiles.

    ``max_bounds_p95_confidence`` (``..._p99_...``) is the confidence that no
    more than 5% (1%) of the population lies above the sample maximum.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError('no values to summarize')
    return dict(count=int(values.size), mean=float(values.mean()), median=float(np.median(values)),
                min=float(values.min()), max=float(values.max()),
                p95=float(np.percentile(values, 95)), p99=float(np.percentile(values, 99)),
                max_bounds_p95_confidence=quantile_confidence(0.95, values.size),
                max_bounds_p99_confidence=quantile_confidence(0.99, values.size),
                keys_for_p95_claim=samples_needed(0.95), keys_for_p99_claim=samples_needed(0.99))
