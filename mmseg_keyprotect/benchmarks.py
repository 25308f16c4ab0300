"""Timing helpers for the benchmark tools: medians of repeated calls, in one run."""
import time
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from . import reference
from .keys import SecretKey


def median_ms(function: Callable[[], object], repeats: int = 30, warmup: int = 3) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def benchmark_ciphers(size: int = 512, block_sizes: Sequence[int] = (2, 4, 8, 16),
                      methods: Sequence[str] = ('shuffle', 'np', 'ffx', 'shuffle+np+ffx'),
                      repeats: int = 30) -> List[Dict]:
    """Per-image time of each method (numpy front end, encrypt and decrypt) next to
    a plain copy (the floor) and the published-style float implementation.

    Returns:
        list[dict]: one row per (method, M) with times in ms and ratios.
    """
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    key = SecretKey.generate()
    copy_ms = median_ms(image.copy, repeats)
    rows = []
    for block_size in block_sizes:
        for method in methods:
            cipher = key.cipher(method, block_size)
            encrypted = cipher.encrypt(image)
            encrypt_ms = median_ms(lambda: cipher.encrypt(image), repeats)
            decrypt_ms = median_ms(lambda: cipher.decrypt(encrypted), repeats)
            published_ms = median_ms(_published_style(cipher, image), repeats)
            rows.append(dict(method=method, block_size=block_size, copy_ms=copy_ms, encrypt_ms=encrypt_ms,
                             decrypt_ms=decrypt_ms, published_ms=published_ms,
                             speedup=published_ms / encrypt_ms, over_copy=encrypt_ms / copy_ms))
    return rows


def _published_style(cipher, image: np.ndarray) -> Callable[[], object]:
    """The same chain as the published code runs it: uint8 -> float tensor, then per step
    reshape into blocks, index by the key, reshape back."""
    steps = []
    for step in cipher.steps:
        name = type(step).__name__
        if name == 'Shuffle':
            permutation = torch.from_numpy(step.permutation)
            steps.append(lambda x, p=permutation: reference.shuffle(x, p, cipher.block_size))
        elif name == 'NegativePositive':
            mask = torch.from_numpy(step.mask)
            steps.append(lambda x, m=mask: reference.negative_positive(x, m, cipher.block_size))
        else:
            mask, table = torch.from_numpy(step.mask), torch.from_numpy(step.table.astype(np.int64))
            steps.append(lambda x, m=mask, t=table: reference.ffx(x, m, t, cipher.block_size))

    def run():
        batch = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        for step in steps:
            batch = step(batch)
        return batch

    return run
