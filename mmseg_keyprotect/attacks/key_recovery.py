"""Attacks on the key itself: known plaintext, ciphertext-only estimation and near keys.

Every attack returns a :class:`~mmseg_keyprotect.crypto.BlockCipher` (the
key as the attacker knows it), so its success is measured twice: how much of
the key is right (:func:`key_agreement`) and what segmentation quality it
buys (the protection report evaluates the model with it).

All functions work on the key's own layout: an image is cut into M x M blocks
and each block flattened to ``L = 3 * M * M`` values, (row, column, channel)
with RGB channels fastest, as :mod:`mmseg_keyprotect.crypto.ciphers` defines.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..crypto.ciphers import FFX_DOMAIN, BlockCipher, block_length
from ..errors import ImageFormatError, KeyProtectError
from .assignment import best_swap_search

# Blocks beyond this many are subsampled: the statistics below are settled long before.
MAX_BLOCKS = 4096


def image_blocks(images: Sequence[np.ndarray], block_size: int, max_blocks: int = MAX_BLOCKS,
                 seed: int = 0) -> np.ndarray:
    """Stack the blocks of RGB images as rows of an ``N x L`` int16 array.

    Args:
        images (Sequence[np.ndarray]): HxWx3 RGB images (uint8, or int16 FFX
            output), H and W multiples of ``block_size``.
        block_size (int): M.
        max_blocks (int): keep at most this many blocks (a seeded random
            subset of the same rows for every call with the same images).
        seed (int): seed of that subset.
    """
    rows = []
    for index, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ImageFormatError(f'image {index} has shape {image.shape}; expected HxWx3')
        height, width = image.shape[:2]
        if height % block_size or width % block_size:
            raise ImageFormatError(f'image {index} is {height}x{width}, not a multiple of the block size {block_size}')
        grid = image.reshape(height // block_size, block_size, width // block_size, block_size, 3)
        rows.append(grid.transpose(0, 2, 1, 3, 4).reshape(-1, block_length(block_size)).astype(np.int16))
    if not rows:
        raise KeyProtectError('no images given')
    blocks = np.concatenate(rows)
    if len(blocks) > max_blocks:
        blocks = blocks[np.sort(np.random.default_rng(seed).choice(len(blocks), max_blocks, replace=False))]
    return blocks


def neighbour_pairs(images: Sequence[np.ndarray], block_size: int, axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """Every block with its neighbour: two ``N x L`` float arrays.

    Args:
        axis (int): 1 pairs each block with the one to its right, 0 with the
            one below.
    """
    firsts, seconds = [], []
    for image in images:
        image = np.asarray(image)
        rows, columns = image.shape[0] // block_size, image.shape[1] // block_size
        grid = image.reshape(rows, block_size, columns, block_size, 3).transpose(0, 2, 1, 3, 4)
        grid = grid.reshape(rows, columns, -1).astype(np.float32)
        first, second = (grid[:-1], grid[1:]) if axis == 0 else (grid[:, :-1], grid[:, 1:])
        firsts.append(first.reshape(-1, grid.shape[-1]))
        seconds.append(second.reshape(-1, grid.shape[-1]))
    return np.concatenate(firsts), np.concatenate(seconds)


# ------------------------------------------------------------------ agreement
def value_maps(cipher: BlockCipher) -> np.ndarray:
    """``L x 256``: what each output position makes of each input value."""
    values = np.arange(256)[None, :] ^ cipher.xor.astype(np.int64)[:, None]
    if cipher.ffx_table is not None:
        values = np.where(cipher.ffx_mask[:, None], cipher.ffx_table.astype(np.int64)[values], values)
    return values


def key_agreement(estimate: BlockCipher, truth: BlockCipher) -> Dict[str, float]:
    """How much of a key an estimate gets right.

    Returns:
        dict: ``positions``, the fraction of output positions that read the
        right input position and map every value 0..255 as the key does (1.0
        means the estimate encrypts exactly as the key); ``sources``, the
        fraction with the right input position; ``flips``, the fraction with
        the right XOR; ``pixels``, the fraction that read the right pixel,
        whatever its colour channel; and ``table_entries``, the fraction of
        FFX table entries right (when the key has FFX).
    """
    if estimate.block_size != truth.block_size:
        raise KeyProtectError(f'block sizes differ: {estimate.block_size} and {truth.block_size}')
    sources = estimate.source == truth.source
    same_maps = (value_maps(estimate) == value_maps(truth)).all(axis=1)
    result = dict(positions=float(np.mean(sources & same_maps)), sources=float(np.mean(sources)),
                  flips=float(np.mean(estimate.xor == truth.xor)),
                  pixels=float(np.mean(estimate.source // 3 == truth.source // 3)))
    if truth.ffx_table is not None:
        table = estimate.ffx_table if estimate.ffx_table is not None else np.arange(256)
        result['table_entries'] = float(np.mean(table == truth.ffx_table))
    return result


# ------------------------------------------------------------ known plaintext
def recover_known_plaintext(plain_images: Sequence[np.ndarray], encrypted_images: Sequence[np.ndarray],
                            block_size: int) -> Tuple[BlockCipher, Dict[str, float]]:
    """Recover a key from plain/encrypted image pairs.

    Every block of a pair is a known plaintext under the same key. An output
    position that copies (or inverts) an input position matches it on every
    block; an FFX position is a one-to-one function of its input position,
    and all FFX positions share one table.

    Args:
        plain_images (Sequence[np.ndarray]): HxWx3 uint8 RGB images.
        encrypted_images (Sequence[np.ndarray]): the same images encrypted
            (uint8, or int16 for FFX).
        block_size (int): M (public: it is in the config).

    Returns:
        tuple: the recovered cipher, and ``dict(blocks=, table_entries_seen=)``
        (FFX table entries that no block showed cannot be recovered; they
        are filled with unused outputs).
    """
    if len(plain_images) != len(encrypted_images):
        raise KeyProtectError(f'{len(plain_images)} plain images but {len(encrypted_images)} encrypted ones')
    plain = image_blocks(plain_images, block_size)
    cipher = image_blocks(encrypted_images, block_size)
    length = plain.shape[1]
    scores = np.zeros((length, length))
    inverted = np.zeros((length, length), bool)
    # Chunks bound memory at N x chunk x L booleans.
    chunk = max(1, int(2e7 // (len(plain) * length)))
    for start in range(0, length, chunk):
        columns = cipher[:, start:start + chunk, None]
        copies = (columns == plain[:, None, :]).mean(axis=0)
        inverts = (columns == 255 - plain[:, None, :]).mean(axis=0)
        scores[start:start + chunk] = np.maximum(copies, inverts)
        inverted[start:start + chunk] = inverts > copies
    ffx_positions = (scores.max(axis=1) < 1.0) | (cipher > 255).any(axis=0)
    for position in np.flatnonzero(ffx_positions):
        scores[position] = [_functional_score(plain[:, candidate], cipher[:, position]) for candidate in range(length)]
    source = _greedy_assignment(scores)
    xor = np.where(inverted[np.arange(length), source], 255, 0)
    info = dict(blocks=int(len(plain)))
    if not ffx_positions.any():
        return BlockCipher.from_map(source, xor, block_size), info
    table = np.full(256, -1, np.int64)
    for position in np.flatnonzero(ffx_positions):
        xor[position] = _merge_table(table, plain[:, source[position]], cipher[:, position])
    info['table_entries_seen'] = float(np.mean(table >= 0))
    unused = np.setdiff1d(np.arange(FFX_DOMAIN), table[table >= 0])
    table[table < 0] = unused[:int((table < 0).sum())]
    return BlockCipher.from_map(source, xor, block_size, ffx_positions, table), info


def _greedy_assignment(scores: np.ndarray) -> np.ndarray:
    """A permutation taking the best-scoring (output, input) pairs first.

    Where the data cannot tell inputs apart (flat regions), ties are broken
    arbitrarily but the result stays a permutation.
    """
    length = len(scores)
    source = np.full(length, -1)
    used = np.zeros(length, bool)
    for flat in np.argsort(-scores, axis=None, kind='stable'):
        output, candidate = divmod(int(flat), length)
        if source[output] < 0 and not used[candidate]:
            source[output], used[candidate] = candidate, True
    return source


def _functional_score(inputs: np.ndarray, outputs: np.ndarray) -> float:
    """1.0 when ``outputs`` is a one-to-one function of ``inputs`` on these samples."""
    pairs = len(np.unique(inputs.astype(np.int64) * FFX_DOMAIN + outputs))
    return (len(np.unique(inputs)) + len(np.unique(outputs))) / (2 * pairs)


def _merge_table(table: np.ndarray, inputs: np.ndarray, outputs: np.ndarray) -> int:
    """Add observed ``table[input ^ xor] = output`` pairs; return the XOR (0 or 255) that agrees best."""
    def conflicts(xor):
        known = table[inputs ^ xor]
        return int(((known >= 0) & (known != outputs)).sum())
    xor = 0 if conflicts(0) <= conflicts(255) else 255
    table[inputs ^ xor] = outputs
    return xor


# ------------------------------------------------------------ ciphertext only
def find_ffx_positions(encrypted_images: Sequence[np.ndarray], block_size: int) -> np.ndarray:
    """The FFX positions (bool, length L), from the values alone.

    FFX outputs range over 0..999, so a position whose value ever exceeds 255
    is encrypted with FFX; with a few hundred blocks every FFX position shows
    such a value. ``ffx8`` stays in 0..255; there a substituted position
    stands out by its value histogram, which is a natural one with its bins
    permuted and so far rougher than the histograms of the other positions:
    the positions on the rough side of the widest gap in roughness are taken.
    """
    blocks = image_blocks(encrypted_images, block_size)
    beyond = (blocks > 255).any(axis=0)
    if beyond.any():
        return beyond
    histograms = np.stack([np.bincount(column, minlength=256)[:256] for column in blocks.T.clip(0, 255)])
    roughness = np.abs(np.diff(histograms, axis=1)).sum(1) / np.maximum(histograms.sum(1), 1)
    ordered = np.sort(roughness)
    gap = int(np.argmax(np.diff(ordered)))
    return roughness > ordered[gap]


def estimate_flips(encrypted_images: Sequence[np.ndarray], block_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Estimate the NP flips from encrypted images alone.

    Plain values in a block are positively correlated (neighbouring pixels,
    and the channels of one pixel); flipping position i negates its
    correlations, so the correlation of positions i and j has the sign of
    ``s_i * s_j``. Signs are assigned greedily: each step takes the position
    most strongly tied to those already signed, so weakly correlated groups
    (say, two colour channels) are linked through a third.

    Returns:
        tuple: two candidate XOR vectors (0/255), the second the complement of
        the first. Statistics cannot tell them apart; an attacker holding the
        model tries both.
    """
    blocks = image_blocks(encrypted_images, block_size).astype(np.float64)
    correlation = np.nan_to_num(np.corrcoef(blocks, rowvar=False))
    np.fill_diagonal(correlation, 0.0)
    signs = np.zeros(len(correlation))
    signs[0] = 1.0
    for _ in range(len(correlation) - 1):
        pull = correlation @ signs
        pull[signs != 0] = 0.0
        position = int(np.argmax(np.abs(pull)))
        signs[position] = 1.0 if pull[position] >= 0 else -1.0
    candidate = np.where(signs > 0, 0, 255)
    return candidate, 255 - candidate


def position_statistics(images: Sequence[np.ndarray], block_size: int) -> List[np.ndarray]:
    """Correlations of block positions: within a block, and with the right and lower neighbours.

    Returns three ``L x L`` matrices: ``[within, right, below]``, where
    ``right[i, j]`` correlates position i of a block with position j of the
    block to its right.
    """
    within = image_blocks(images, block_size).astype(np.float64)
    return [_cross_correlation(within, within), _cross_correlation(*neighbour_pairs(images, block_size, 1)),
            _cross_correlation(*neighbour_pairs(images, block_size, 0))]


def _cross_correlation(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    # A shuffle keeps each block's mean, so removing it loses nothing the key hides, and leaves
    # the local structure (near pixels alike, far ones not) that pins positions down.
    left = left - left.mean(1, keepdims=True)
    right = right - right.mean(1, keepdims=True)
    left = (left - left.mean(0)) / (left.std(0) + 1e-6)
    right = (right - right.mean(0)) / (right.std(0) + 1e-6)
    return left.T @ right / len(left)


def estimate_shuffle(encrypted_images: Sequence[np.ndarray], reference_images: Sequence[np.ndarray],
                     block_size: int, xor: Optional[np.ndarray] = None, restarts: int = 32,
                     seed: int = 0) -> np.ndarray:
    """Estimate the shuffle from encrypted images and unrelated plain images.

    The attacker measures how block positions correlate in the ciphertexts,
    within a block and across neighbouring blocks, and how they correlate in
    any plain images of the same kind (``reference_images``, public data).
    The permutation that best maps one onto the other solves a quadratic
    assignment problem, searched here by pairwise swaps from random starts.
    Cross-block correlations break the symmetries of the square, which the
    within-block ones alone cannot.

    Args:
        encrypted_images (Sequence[np.ndarray]): HxWx3 RGB ciphertexts.
        reference_images (Sequence[np.ndarray]): HxWx3 RGB plain images, not
            the plaintexts of ``encrypted_images``.
        block_size (int): M.
        xor (np.ndarray, optional): estimated flips to undo first (from
            :func:`estimate_flips`; either candidate works, as a global
            complement leaves correlations unchanged).
        restarts (int): random starts; the best end point wins. At M = 2
            about half the starts end in a local optimum, so a few starts
            miss now and then; 32 make a miss negligible and cost well under
            a second up to M = 4.

    Returns:
        np.ndarray: the estimated composite ``source`` (length L).
    """
    if xor is not None:
        encrypted_images = [np.asarray(image).astype(np.int16) ^ _layout_xor(xor, image.shape, block_size)
                            for image in encrypted_images]
    observed = position_statistics(encrypted_images, block_size)
    expected = position_statistics(reference_images, block_size)
    return best_swap_search(observed, expected, restarts, seed)


def _layout_xor(xor: np.ndarray, shape: Tuple[int, ...], block_size: int) -> np.ndarray:
    """A per-block XOR vector tiled over an HxWx3 image."""
    block = np.asarray(xor, np.int16).reshape(block_size, block_size, 3)
    return np.tile(block, (shape[0] // block_size, shape[1] // block_size, 1))


def estimate_ffx_table(encrypted_images: Sequence[np.ndarray], reference_images: Sequence[np.ndarray],
                       positions: np.ndarray, block_size: int) -> np.ndarray:
    """Estimate the FFX table by matching value frequencies (ciphertext only).

    The values seen at FFX positions are the table's outputs; the k-th most
    frequent of them is taken for the image of the k-th most frequent plain
    value of unrelated plain images. This only works as far as value
    frequencies are distinct and shared between the two sets; with an NP step
    before FFX, half the positions see complemented values, which blurs them.

    Args:
        encrypted_images: encrypted RGB images (int16).
        reference_images: unrelated plain RGB images (uint8).
        positions (np.ndarray): bool, the FFX positions (:func:`find_ffx_positions`).
        block_size (int): M.

    Returns:
        np.ndarray: an FFX table (256 distinct values in 0..999).
    """
    if not positions.any():
        raise KeyProtectError('no FFX positions given')
    observed = image_blocks(encrypted_images, block_size)[:, positions].ravel()
    encrypted_counts = np.bincount(observed, minlength=FFX_DOMAIN)
    plain_counts = np.bincount(image_blocks(reference_images, block_size).ravel(), minlength=256)[:256]
    # Ties broken by value, so the estimate is deterministic.
    encrypted_order = np.lexsort((np.arange(FFX_DOMAIN), -encrypted_counts))[:256]
    plain_order = np.lexsort((np.arange(256), -plain_counts))
    table = np.empty(256, np.int64)
    table[plain_order] = encrypted_order
    return table


def undo_ffx(encrypted_images: Sequence[np.ndarray], positions: np.ndarray, table: np.ndarray,
             block_size: int) -> List[np.ndarray]:
    """Map the FFX positions of encrypted images back through an estimated table: uint8 images that
    carry only the chain's SHF/NP part (values the table never outputs become 0)."""
    inverse = np.zeros(FFX_DOMAIN, np.uint8)
    inverse[table] = np.arange(256, dtype=np.uint8)
    results = []
    for image in encrypted_images:
        height, width, _ = image.shape
        mask = np.tile(positions.reshape(block_size, block_size, 3), (height // block_size, width // block_size, 1))
        plain = np.where(mask, inverse[np.clip(image, 0, FFX_DOMAIN - 1)], image).astype(np.uint8)
        results.append(plain)
    return results
