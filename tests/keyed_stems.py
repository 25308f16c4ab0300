"""First convolutions built from a known key: smooth plain filters, and the kernel a model would learn on
blocks encrypted with the key."""
import numpy as np

from mmseg_keyprotect.crypto.ciphers import BlockCipher


def smooth_filters(rng, filters=32, kernel=7):
    """Gabor-like filters, mostly on luminance, as first layers trained on natural images tend to be."""
    y, x = np.mgrid[0:kernel, 0:kernel] - kernel // 2
    weight = np.zeros((filters, 3, kernel, kernel))
    for index in range(filters):
        angle, frequency, width = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8), rng.uniform(1.5, 3.0)
        wave = np.cos(frequency * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        envelope = np.exp(-(x ** 2 + y ** 2) / (2 * width ** 2)) * wave
        weight[index] = (1 + 0.3 * rng.normal(size=3))[:, None, None] * envelope[None]
    return weight


def keyed_stem(plain: np.ndarray, truth: BlockCipher, padding: int, kernel: int = 7) -> np.ndarray:
    """The ``kernel``-tap kernel a model holds after learning the centre of the ``plain`` filters on blocks
    encrypted with ``truth`` (stride a multiple of M): each tap reads the encrypted position, i.e. the plain
    position the key put there (which may lie outside the kernel: ``plain`` is wider), negated where NP
    flipped it."""
    size = truth.block_size
    margin = (plain.shape[-1] - kernel) // 2
    stolen = np.zeros(plain.shape[:2] + (kernel, kernel))
    for row in range(kernel):
        for column in range(kernel):
            block_row, within_row = divmod(row - padding, size)
            block_column, within_column = divmod(column - padding, size)
            for channel in range(3):
                position = (within_row * size + within_column) * 3 + channel
                source = truth.source[position]
                plain_row = block_row * size + source // (3 * size) + padding + margin
                plain_column = block_column * size + source // 3 % size + padding + margin
                sign = -1.0 if truth.xor[position] else 1.0
                stolen[:, channel, row, column] = sign * plain[:, source % 3, plain_row, plain_column]
    return stolen
