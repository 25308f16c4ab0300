"""Key estimation from the stolen weights alone: the first convolution read as a filter bank.

A model trained on encrypted blocks holds, in the convolution that reads the
image, filters for encrypted inputs. Moved back to plain coordinates (each tap
to the pixel and channel its input came from, negated where NP flipped it),
they are the filters of an ordinary model: alike across neighbouring pixels and
across the channels of a pixel. The key under which the stolen filters look
most like that is the estimate. No image and no label is used.

How a tap maps to a block position depends on the convolution's stride. When
the stride is a multiple of M (SegFormer's patch embedding at M = 4), every tap
always reads the same position of the same neighbouring block. Otherwise
(ResNet stems at stride 2, or M = 8 under a stride of 4) the output pixels fall
into ``(M / gcd(stride, M))^2`` phases, each reading the kernel's taps at other
block positions; the statistics of every phase are added, since one set of
filters serves them all.

What each method leaves in the weights:

* NP: a sign per block position; the smoothness of the filters is a quadratic
  form in those signs (:func:`~.assignment.sign_search`). A global complement
  leaves it unchanged: both candidates are returned.
* shuffle: a permutation of positions; the smoothness is a quadratic
  assignment problem (:func:`~.assignment.swap_search`).
* shuffle with NP: positions from sign-blind statistics first, then signs,
  then positions again with the signs undone.
* FFX and ``ffx8``: the masked positions, whose inputs are scrambled values,
  carry weaker filters (raw FFX values up to 999 also shrink them): the half
  of the positions with the smallest filter energy. The table is invisible to
  a linear first layer; the estimate uses a guess (evenly spaced values for
  ``ffx``, the identity for ``ffx8``).
"""
import math
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..crypto.ciphers import DEFAULT_CHANNEL_ORDER, FFX_DOMAIN, FFX_METHODS, BlockCipher, block_length, parse_method
from ..errors import KeyProtectError
from .assignment import (
    assignment_score,
    best_swap_search,
    candidates_with_complement,
    sign_margins,
    sign_search,
    signs_to_xor,
    total_swap_gains,
)

#: Block-position pairs whose filters are compared: the same block, the block to the right, the one below.
NEIGHBOUR_SHIFTS = ((0, 0), (0, 1), (1, 0))


@dataclass
class Stem:
    """The convolution that reads the image, as the attack needs it.

    Attributes:
        weight (np.ndarray): ``O x 3 x K x K`` kernel with its input channels in
            the key's RGB order.
        stride (int), padding (int): of that convolution (square).
    """
    weight: np.ndarray
    stride: int
    padding: int


@dataclass
class WeightsEstimate:
    """What the weights say of a key.

    Attributes:
        candidates (list[BlockCipher]): the estimated keys; two for NP (the
            estimate and its complement), one otherwise.
        structure (float): how much better the estimate explains the filters
            than no key at all, in [-1, 1]: near 1 when the filters carry a
            keyed block structure, near 0 when they look plain already (a
            model that was never trained on encrypted blocks).
        phases (int): output phases of the stem (1 when its stride is a
            multiple of M).
        uncertain_flips (list[int]): NP positions, least certain first.
        uncertain_swaps (list[tuple]): shuffle position pairs, least certain
            first: where a search should look.
    """
    candidates: List[BlockCipher]
    structure: float
    phases: int
    uncertain_flips: List[int] = field(default_factory=list)
    uncertain_swaps: List[Tuple[int, int]] = field(default_factory=list)


def first_convolution(model):
    """The first convolution that reads the 3-channel image, or None."""
    from torch import nn
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), None)


def model_stem(model, image_channel_order: str = DEFAULT_CHANNEL_ORDER) -> Optional[Stem]:
    """The stem of an mmseg model, its channels put in the key's RGB order.

    Args:
        model: an mmseg segmentor.
        image_channel_order (str): how the data pipeline stores images
            (mmseg loads BGR); the data preprocessor's ``bgr_to_rgb`` swaps
            them before the network.

    Returns:
        Stem | None: None when no convolution reads a 3-channel input.
    """
    convolution = first_convolution(model)
    if convolution is None:
        return None
    if convolution.groups != 1 or tuple(convolution.dilation) != (1, 1):
        return None
    if len(set(convolution.stride)) != 1 or not isinstance(convolution.padding, tuple) \
            or len(set(convolution.padding)) != 1:
        return None
    return Stem(_rgb_kernel(model, convolution.weight, image_channel_order), int(convolution.stride[0]),
                int(convolution.padding[0]))


def _rgb_kernel(model, weight, image_channel_order: str) -> np.ndarray:
    swapped = bool(getattr(model.data_preprocessor, 'channel_conversion', False))
    network_order = image_channel_order if not swapped else ('rgb' if image_channel_order == 'bgr' else 'bgr')
    weight = weight.detach().float().cpu().numpy()
    return np.ascontiguousarray(weight[:, ::-1] if network_order == 'bgr' else weight)


def public_model_stem(checkpoint: str, model, image_channel_order: str = DEFAULT_CHANNEL_ORDER) -> Stem:
    """The stem of the public weights ``model`` was trained from: the kernel of the same convolution in
    ``checkpoint`` (a model checkpoint, or a backbone's whose keys lack the ``backbone.`` prefix).

    Raises:
        KeyProtectError: the checkpoint has no kernel of that convolution's name and shape.
    """
    from ..checkpoint.mmengine_io import load_from_local
    stem = model_stem(model, image_channel_order)
    if stem is None:
        raise KeyProtectError('the model has no plain convolution reading the image, so no public stem to compare')
    name = next(n for n, m in model.named_modules() if m is first_convolution(model)) + '.weight'
    state = load_from_local(str(checkpoint), map_location='cpu')
    state = state.get('state_dict', state)
    found = next((value for key, value in state.items()
                  if (key == name or name.endswith('.' + key)) and tuple(value.shape) == stem.weight.shape), None)
    if found is None:
        raise KeyProtectError(f'{checkpoint} holds no {name} of shape {stem.weight.shape}: not the public weights '
                              'this model was trained from')
    return Stem(_rgb_kernel(model, found, image_channel_order), stem.stride, stem.padding)


# ------------------------------------------------------------ tap statistics
def phase_taps(stem: Stem, block_size: int) -> List[Dict[Tuple[int, int], np.ndarray]]:
    """For each output phase, the kernel's taps grouped by the block they read.

    Returns:
        list[dict]: one dict per phase, ``(block row, block column) -> O x L``
        array of the taps that read each position of that block (NaN where
        no tap does), blocks relative to the block of the output's first
        input pixel.
    """
    weight, length = stem.weight, block_length(block_size)
    step = math.gcd(stem.stride, block_size)
    phases = []
    for phase_row in range(0, block_size, step):
        for phase_column in range(0, block_size, step):
            by_block: Dict[Tuple[int, int], np.ndarray] = {}
            for row in range(weight.shape[2]):
                block_row, within_row = divmod(phase_row + row - stem.padding, block_size)
                for column in range(weight.shape[3]):
                    block_column, within_column = divmod(phase_column + column - stem.padding, block_size)
                    taps = by_block.setdefault((block_row, block_column), np.full((weight.shape[0], length), np.nan))
                    first = (within_row * block_size + within_column) * 3
                    taps[:, first:first + 3] = weight[:, :, row, column]
            phases.append(by_block)
    return phases


def spatial_prior(block_size: int, row_shift: int = 0, column_shift: int = 0) -> np.ndarray:
    """How alike filters of a plain model are at two block positions (the second block shifted):
    close pixels more than far ones, the same channel more than two channels of a pixel."""
    rows, columns, channels = np.unravel_index(np.arange(block_length(block_size)), (block_size, block_size, 3))
    distance = ((rows[None, :] + row_shift * block_size - rows[:, None]) ** 2
                + (columns[None, :] + column_shift * block_size - columns[:, None]) ** 2)
    prior = np.exp(-distance / 2.0) * np.where(channels[:, None] == channels[None, :], 1.0, 0.5)
    if not row_shift and not column_shift:
        np.fill_diagonal(prior, 0.0)
    return prior


def tap_correlation(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Correlation over output filters of every pair of positions; 0 where a tap is missing."""
    def standardised(taps):
        with warnings.catch_warnings():  # positions no tap reads are all-NaN columns: they become 0
            warnings.simplefilter('ignore', RuntimeWarning)
            centred = taps - np.nanmean(taps, axis=0)
            return np.nan_to_num(centred / (np.nanstd(taps, axis=0) + 1e-8))
    return standardised(left).T @ standardised(right) / left.shape[0]


def stem_statistics(stem: Stem, block_size: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Observed tap correlations and the plain prior for them, over every phase and neighbouring block."""
    observed, expected = [], []
    for by_block in phase_taps(stem, block_size):
        for (block_row, block_column), taps in by_block.items():
            for row_shift, column_shift in NEIGHBOUR_SHIFTS:
                other = by_block.get((block_row + row_shift, block_column + column_shift))
                if other is not None:
                    observed.append(tap_correlation(taps, other))
                    expected.append(spatial_prior(block_size, row_shift, column_shift))
    return observed, expected


def position_energy(stem: Stem, block_size: int) -> np.ndarray:
    """Root mean square of the taps that read each block position (length L)."""
    squares, counts = np.zeros(block_length(block_size)), np.zeros(block_length(block_size))
    for by_block in phase_taps(stem, block_size):
        for taps in by_block.values():
            present = ~np.isnan(taps)
            squares += (np.nan_to_num(taps) ** 2).sum(0)
            counts += present.sum(0)
    return np.sqrt(squares / np.maximum(counts, 1))


# ------------------------------------------------------------ the estimate
def _sign_form(observed, expected, source) -> np.ndarray:
    return sum(o * e[np.ix_(source, source)] for o, e in zip(observed, expected))


def _signed(observed: List[np.ndarray], signs: np.ndarray) -> List[np.ndarray]:
    return [o * np.outer(signs, signs) for o in observed]


def guessed_table(name: str) -> np.ndarray:
    """The table an attacker without data assumes: evenly spaced FFX values, or the identity for ``ffx8``."""
    if name == 'ffx8':
        return np.arange(256, dtype=np.int64)
    return np.round(np.arange(256) * (FFX_DOMAIN - 1) / 255).astype(np.int64)


def _observed_and_expected(stem: Stem, block_size: int, public_stem: Optional[Stem]):
    """The stolen stem's tap statistics and the template of plain filters they are read against: a generic
    one, or, given the public stem, what training added against the public kernel's own statistics."""
    if stem.weight.ndim != 4 or stem.weight.shape[1] != 3:
        raise KeyProtectError(f'the stem kernel must be O x 3 x K x K, got shape {stem.weight.shape}')
    if public_stem is None:
        return stem_statistics(stem, block_size)
    if public_stem.weight.shape != stem.weight.shape or public_stem.stride != stem.stride:
        raise KeyProtectError(f'the public stem has shape {public_stem.weight.shape} and stride '
                              f'{public_stem.stride}; the stolen one {stem.weight.shape} and {stem.stride}')
    added = Stem(stem.weight - public_stem.weight, stem.stride, stem.padding)
    return stem_statistics(added, block_size)[0], stem_statistics(public_stem, block_size)[0]


def estimate_key_from_weights(stem: Stem, method: str, block_size: int, restarts: int = 8,
                              seed: int = 0, max_uncertain_swaps: int = 200,
                              public_stem: Optional[Stem] = None) -> WeightsEstimate:
    """Estimate the key of ``method`` at block size ``block_size`` from the stem alone.

    Args:
        stem (Stem): the stolen first convolution (:func:`model_stem`).
        method (str): the cipher chain (public: it is in the config).
        block_size (int): M (public).
        restarts (int): random starts of each search.
        seed (int): seed of those starts.
        max_uncertain_swaps (int): how many least-certain position pairs to
            list for a later search.
        public_stem (Stem, optional): the same convolution in the public
            weights the model was trained from. The estimate then reads what
            training on encrypted images added (the stolen kernel minus the
            public one) and compares it with the public kernel's own tap
            correlations, a template of plain filters, instead of a generic
            one.

    Raises:
        KeyProtectError: a kernel that is not ``O x 3 x K x K``.

    Returns:
        WeightsEstimate: the candidate keys and how much keyed structure the
        weights showed.
    """
    names = parse_method(method)
    length = block_length(block_size)
    observed, expected = _observed_and_expected(stem, block_size, public_stem)
    identity = np.arange(length)
    ffx_name = next((name for name in names if name in FFX_METHODS), None)
    ffx_mask = table = None
    if ffx_name:
        energy = position_energy(stem, block_size)
        ffx_mask = np.zeros(length, bool)
        ffx_mask[np.argsort(energy, kind='stable')[:length // 2]] = True
        table = guessed_table(ffx_name)
        # Positions behind the table carry no smooth filters: leave them out of the statistics.
        keep = np.outer(~ffx_mask, ~ffx_mask)
        observed = [o * keep for o in observed]

    source, signs = identity, np.ones(length)
    if 'shuffle' in names and 'np' in names:
        source = best_swap_search([np.abs(o) for o in observed], expected, restarts, seed)
        signs = sign_search(_sign_form(observed, expected, source), restarts, seed)
        source = best_swap_search(_signed(observed, signs), expected, restarts, seed, start=source)
        signs = sign_search(_sign_form(observed, expected, source), restarts, seed)
    elif 'shuffle' in names:
        source = best_swap_search(observed, expected, restarts, seed)
    elif 'np' in names:
        signs = sign_search(_sign_form(observed, expected, identity), restarts, seed)

    signed = _signed(observed, signs)
    found = assignment_score(signed, expected, source)
    plain = assignment_score(observed, expected, identity)
    structure = (found - plain) / (abs(found) + abs(plain) + 1e-12)

    xors = candidates_with_complement(signs_to_xor(signs)) if 'np' in names else [np.zeros(length, np.int64)]
    if ffx_mask is not None:
        # The table's own NP-like flips are not separable from the table guess; positions behind it keep no XOR.
        xors = [np.where(ffx_mask, 0, xor) for xor in xors]
    candidates = [BlockCipher.from_map(source, xor, block_size, ffx_mask, table) for xor in xors]
    uncertain_flips = [int(i) for i in np.argsort(sign_margins(_sign_form(observed, expected, source), signs))] \
        if 'np' in names else []
    uncertain_swaps = []
    if 'shuffle' in names:
        gains = total_swap_gains(signed, expected, source)
        upper = np.triu_indices(length, 1)
        order = np.argsort(-gains[upper], kind='stable')[:max_uncertain_swaps]
        uncertain_swaps = [(int(upper[0][i]), int(upper[1][i])) for i in order]
    phases = (block_size // math.gcd(stem.stride, block_size)) ** 2
    return WeightsEstimate(candidates, float(structure), phases, uncertain_flips, uncertain_swaps)
