import numpy as np
import pytest
import torch

from mmseg_keyprotect.attacks.metrics import (
    IoUAccumulator,
    chance_levels,
    quantile_confidence,
    samples_needed,
    summarize,
)


def test_miou_by_hand():
    label = torch.tensor([[0, 0, 0, 1]])
    accumulator = IoUAccumulator(num_classes=2)
    accumulator.add(torch.zeros_like(label), label)
    # class 0: 3 of 4 pixels; class 1: never predicted.
    assert accumulator.miou() == pytest.approx(37.5)


def test_ignored_pixels_do_not_count():
    label = torch.tensor([[0, 255, 1, 1]])
    accumulator = IoUAccumulator(num_classes=2)
    accumulator.add(torch.tensor([[0, 1, 1, 1]]), label)
    assert accumulator.miou() == pytest.approx(100.0)


def test_chance_levels_by_hand():
    labels = [torch.tensor([[0, 0, 0, 1]])]
    levels = chance_levels(labels, num_classes=2)
    assert levels['majority_class'] == pytest.approx(37.5) and levels['majority_class_index'] == 0
    single = chance_levels([torch.zeros(8, 8, dtype=torch.long)], num_classes=3)
    assert single['class_frequency'] == pytest.approx(100.0)  # one class: random labels are always right


def test_random_labels_score_near_their_expectation():
    rng = np.random.default_rng(0)
    labels = [torch.from_numpy(rng.integers(0, 2, (64, 64))) for _ in range(4)]
    # Two balanced classes, independent guesses: IoU = 0.25 / 0.75 per class.
    assert chance_levels(labels, 2)['class_frequency'] == pytest.approx(100 / 3, abs=1.0)


def test_summary_and_percentile_backing():
    summary = summarize(np.arange(1, 101))
    assert summary['count'] == 100 and summary['max'] == 100 and summary['mean'] == pytest.approx(50.5)
    assert summary['median'] == pytest.approx(50.5) and summary['p95'] == pytest.approx(95.05)
    assert summary['max_bounds_p95_confidence'] == pytest.approx(1 - 0.95 ** 100)
    assert samples_needed(0.95) == 59 and samples_needed(0.99) == 299
    assert quantile_confidence(0.99, 299) >= 0.95 > quantile_confidence(0.99, 298)
    with pytest.raises(ValueError):
        summarize([])
