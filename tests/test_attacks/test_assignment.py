import itertools

import numpy as np
import pytest

from mmseg_keyprotect.attacks.assignment import sign_margins, sign_search, swap_gains


def test_swap_gains_are_exact():
    rng = np.random.default_rng(1)
    observed, expected = rng.normal(size=(7, 7)), rng.normal(size=(7, 7))
    gains = swap_gains(observed, expected)
    base = (observed * expected).sum()
    for a in range(7):
        for b in range(7):
            order = np.arange(7)
            order[[a, b]] = order[[b, a]]
            assert (observed * expected[np.ix_(order, order)]).sum() - base == pytest.approx(gains[a, b])


@pytest.mark.parametrize('seed', range(5))
def test_sign_search_finds_the_best_signs(seed):
    """On forms small enough to enumerate, the search reaches the maximum, with the first sign positive."""
    form = np.random.default_rng(seed).normal(size=(9, 9))
    symmetric = (form + form.T) / 2
    np.fill_diagonal(symmetric, 0)
    best = max(symmetric.__matmul__(np.array(s)).__matmul__(np.array(s))
               for s in itertools.product([1.0, -1.0], repeat=9))
    found = sign_search(form)
    assert found[0] == 1.0
    assert found @ symmetric @ found == pytest.approx(best)
    assert (sign_margins(form, found) >= -1e-9).all()  # no single change helps at the maximum
