"""The two searches behind the statistical key attacks: positions (a quadratic assignment) and signs.

Both attacks on the key that use no labels, ciphertext-only estimation and the
weights-only attack, reduce the key to an assignment that makes observed
statistics of block positions match what plain images (or filters learned on
plain images) look like. For a shuffle that is a quadratic assignment
problem over permutations; for NP flips, a sign vector that maximises a
quadratic form.
"""
from typing import List, Sequence, Tuple

import numpy as np


def assignment_score(observed: Sequence[np.ndarray], expected: Sequence[np.ndarray], source: np.ndarray) -> float:
    """``sum_m sum_ij observed_m[i, j] * expected_m[source_i, source_j]``."""
    return float(sum((o * e[np.ix_(source, source)]).sum() for o, e in zip(observed, expected)))


def swap_gains(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``gains[a, b]``: exact change of ``sum_ij observed[i, j] * expected[i, j]`` when a and b swap.

    ``expected`` is already permuted. Rows a and b and columns a and b change;
    the sums over them come from two matrix products, and the four entries
    where a swapped row meets a swapped column are corrected separately.
    """
    a, b = observed, expected
    a_diag, b_diag = np.diag(a), np.diag(b)
    gains = np.zeros_like(a)
    for left, right in ((a, b.T), (a.T, b)):  # rows, then columns
        product = left @ right
        diagonal = np.diag(product)
        gains += product + product.T - diagonal[:, None] - diagonal[None, :]
    gains -= (a_diag[:, None] - a.T) * (b.T - b_diag[:, None]) + (a - a_diag[None, :]) * (b_diag[None, :] - b)
    gains -= (a_diag[:, None] - a) * (b - b_diag[:, None]) + (a.T - a_diag[None, :]) * (b_diag[None, :] - b.T)
    gains += (a_diag[:, None] - a_diag[None, :]) * (b_diag[None, :] - b_diag[:, None])
    gains += (a - a.T) * (b.T - b)
    return gains


def total_swap_gains(observed: Sequence[np.ndarray], expected: Sequence[np.ndarray],
                     source: np.ndarray) -> np.ndarray:
    """:func:`swap_gains` summed over every pair of statistics, at ``source``."""
    return sum(swap_gains(o, e[np.ix_(source, source)]) for o, e in zip(observed, expected))


def swap_search(observed: Sequence[np.ndarray], expected: Sequence[np.ndarray], source: np.ndarray,
                max_rounds: int = 100000) -> Tuple[np.ndarray, float]:
    """Steepest-ascent pairwise swaps on :func:`assignment_score`, from ``source``."""
    source = source.copy()
    for _ in range(max_rounds):
        gains = total_swap_gains(observed, expected, source)
        a, b = np.unravel_index(np.argmax(gains), gains.shape)
        if gains[a, b] <= 1e-9:
            break
        source[[a, b]] = source[[b, a]]
    return source, assignment_score(observed, expected, source)


def best_swap_search(observed: Sequence[np.ndarray], expected: Sequence[np.ndarray], restarts: int,
                     seed: int = 0, start: np.ndarray = None) -> np.ndarray:
    """The best end point of :func:`swap_search` from ``start`` (when given) and ``restarts`` random starts."""
    rng = np.random.default_rng(seed)
    length = len(observed[0])
    starts = ([start] if start is not None else []) + [rng.permutation(length) for _ in range(max(1, restarts))]
    best, best_score = None, -np.inf
    for first in starts:
        source, score = swap_search(observed, expected, first)
        if score > best_score:
            best, best_score = source, score
    return best


def sign_search(form: np.ndarray, restarts: int = 8, seed: int = 0) -> np.ndarray:
    """Signs ``s`` (+1/-1) that maximise ``s^T form s``, with ``s[0] = +1`` (the form cannot tell ``-s``).

    The leading eigenvector's signs start the search, then random starts;
    each climbs by single sign changes until none helps, and the best wins.
    """
    form = (form + form.T) / 2
    np.fill_diagonal(form, 0.0)
    rng = np.random.default_rng(seed)
    leading = np.linalg.eigh(form)[1][:, -1]
    starts = [np.where(leading >= 0, 1.0, -1.0)] + [rng.choice([-1.0, 1.0], len(form)) for _ in range(restarts)]
    best, best_value = None, -np.inf
    for signs in starts:
        signs = signs.copy()
        while True:
            # Changing s_i moves the form by -4 s_i (form s)_i.
            gains = -4 * signs * (form @ signs)
            position = int(np.argmax(gains))
            if gains[position] <= 1e-12:
                break
            signs[position] = -signs[position]
        value = float(signs @ form @ signs)
        if value > best_value:
            best, best_value = signs, value
    return best if best[0] > 0 else -best


def sign_margins(form: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """How much each sign holds the form up (what changing it alone would lose); small means uncertain."""
    form = (form + form.T) / 2
    np.fill_diagonal(form, 0.0)
    return 4 * signs * (form @ signs)


def signs_to_xor(signs: np.ndarray) -> np.ndarray:
    """+1/-1 signs as an NP XOR vector (0 where kept, 255 where flipped)."""
    return np.where(np.asarray(signs) > 0, 0, 255).astype(np.int64)


def candidates_with_complement(xor: np.ndarray) -> List[np.ndarray]:
    """An NP estimate and its global complement, which no statistic of positions can tell apart."""
    return [xor, 255 - xor]
