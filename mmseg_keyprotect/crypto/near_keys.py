"""Keys that are partly right: the near-key curve of the protection report, and training negatives."""
from typing import List

import numpy as np

from ..errors import KeyProtectError
from .ciphers import BlockCipher


def near_key(truth: BlockCipher, part: str, fraction: float, rng: np.random.Generator) -> BlockCipher:
    """The key with ``fraction`` of one part right and the rest wrong.

    Args:
        truth (BlockCipher): the real key.
        part (str): ``'sources'`` (shuffle positions), ``'flips'`` (NP bits)
            or ``'table_entries'`` (FFX table entries).
        fraction (float): 0..1, the share of that part left right; the other
            parts stay right.
        rng (np.random.Generator): which entries go wrong.
    """
    if not 0.0 <= fraction <= 1.0:
        raise KeyProtectError(f'fraction must be in 0..1, got {fraction}')
    source, xor = truth.source.copy(), truth.xor.astype(np.int64)
    table = None if truth.ffx_table is None else truth.ffx_table.astype(np.int64)
    if part == 'sources':
        _derange(source, rng, round((1 - fraction) * len(source)))
    elif part == 'flips':
        wrong = rng.choice(len(xor), round((1 - fraction) * len(xor)), replace=False)
        xor[wrong] ^= 255
    elif part == 'table_entries':
        if table is None:
            raise KeyProtectError('this key has no FFX table')
        _derange(table, rng, round((1 - fraction) * len(table)))
    else:
        raise KeyProtectError(f"part must be 'sources', 'flips' or 'table_entries', got {part!r}")
    return BlockCipher.from_map(source, xor, truth.block_size, truth.ffx_mask, table)


def close_key(truth: BlockCipher, rng: np.random.Generator, max_swaps: int = 4, max_flips: int = 2) -> BlockCipher:
    """A key a few moves from ``truth``: where a search that climbs a label-free oracle walks.

    The colour channels of the source pixels are reordered (any of the six orders, the identity included),
    then 1 to ``max_swaps`` pairs of positions swap their sources and 0 to ``max_flips`` NP bits flip (for keys
    with NP). A model barely notices such keys unless trained to: a climb ends on one that works.
    """
    source, xor = truth.source.copy(), truth.xor.astype(np.int64)
    channels = rng.permutation(3)
    source = source // 3 * 3 + channels[source % 3]
    for _ in range(int(rng.integers(1, max_swaps + 1))):
        first, second = rng.choice(len(source), 2, replace=False)
        source[[first, second]] = source[[second, first]]
    if xor.any():
        wrong = rng.choice(len(xor), int(rng.integers(0, max_flips + 1)), replace=False)
        xor[wrong] ^= 255
    return BlockCipher.from_map(source, xor, truth.block_size, truth.ffx_mask, truth.ffx_table)


def _derange(values: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Make ``count`` entries wrong in place by rotating them among themselves."""
    if count == 1:
        count = 2  # one entry cannot move alone
    if count < 2:
        return
    chosen = rng.choice(len(values), count, replace=False)
    values[chosen] = values[np.roll(chosen, 1)]


def key_parts(cipher: BlockCipher) -> List[str]:
    """The parts of a key that :func:`near_key` can vary for this cipher's method."""
    parts = []
    if not np.array_equal(cipher.source, np.arange(cipher.length)):
        parts.append('sources')
    if cipher.xor.any():
        parts.append('flips')
    if cipher.ffx_table is not None:
        parts.append('table_entries')
    return parts
