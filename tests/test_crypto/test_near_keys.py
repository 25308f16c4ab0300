"""Keys that are partly right, as the near-key curve and key-contrastive negatives use them."""
import numpy as np
import pytest

from mmseg_keyprotect.attacks.key_recovery import key_agreement
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.crypto.near_keys import close_key, key_parts, near_key
from mmseg_keyprotect.errors import KeyProtectError


@pytest.mark.parametrize('method,part,length', [('shuffle', 'sources', 48), ('np', 'flips', 48),
                                                ('ffx', 'table_entries', 256)])
@pytest.mark.parametrize('fraction', [0.0, 0.5, 0.9, 1.0])
def test_near_key_has_the_asked_share_right(method, part, length, fraction):
    truth = SecretKey.generate().cipher(method, 4)
    near = near_key(truth, part, fraction, np.random.default_rng(0))
    agreement = key_agreement(near, truth)[part]
    assert agreement == pytest.approx(round(fraction * length) / length, abs=1 / length)
    if fraction == 1.0:
        assert near.fingerprint == truth.fingerprint


@pytest.mark.parametrize('seed', range(5))
def test_a_close_key_is_a_few_moves_from_the_key(seed):
    truth = SecretKey.generate().cipher('shuffle+np', 4)
    close = close_key(truth, np.random.default_rng(seed))
    assert close.fingerprint != truth.fingerprint
    assert np.count_nonzero(close.xor != truth.xor) <= 2
    # Channels reordered within each pixel, then at most 4 swaps: at most 8 pixels off.
    assert np.count_nonzero(close.source // 3 != truth.source // 3) <= 8


def test_key_parts_follow_the_method():
    assert key_parts(SecretKey.generate().cipher('shuffle', 4)) == ['sources']
    assert key_parts(SecretKey.generate().cipher('shuffle+np', 4)) == ['sources', 'flips']
    assert key_parts(SecretKey.generate().cipher('ffx', 4)) == ['table_entries']


def test_bad_parts_and_fractions_are_named():
    truth = SecretKey.generate().cipher('shuffle', 4)
    with pytest.raises(KeyProtectError, match='fraction'):
        near_key(truth, 'sources', 1.5, np.random.default_rng(0))
    with pytest.raises(KeyProtectError, match='no FFX table'):
        near_key(truth, 'table_entries', 0.5, np.random.default_rng(0))
