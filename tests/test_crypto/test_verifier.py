import time

import pytest

from mmseg_keyprotect.crypto import SecretKey
from mmseg_keyprotect.crypto.ciphers import enumerable_warning, key_space
from mmseg_keyprotect.crypto.verifier import make_verifier, matches
from mmseg_keyprotect.errors import KeyProtectError


def test_a_verifier_tells_the_right_transform_from_others():
    right, wrong = SecretKey.generate().cipher('np', 2), SecretKey.generate().cipher('np', 2)
    verifier = make_verifier(right)
    assert matches(verifier, right) and not matches(verifier, wrong)
    assert make_verifier(right)['digest'] != verifier['digest']  # a fresh salt each time: no shared tables
    assert right.fingerprint not in str(verifier)


def test_checking_a_candidate_costs_a_password_guess():
    """Searching the 924 NP masks of M = 2 through a verifier takes minutes, not the 0.01 s of a plain hash."""
    cipher = SecretKey.generate().cipher('np', 2)
    verifier = make_verifier(cipher)
    candidate = SecretKey.generate().cipher('np', 2)
    started = time.perf_counter()
    matches(verifier, candidate)
    assert time.perf_counter() - started > 0.05


@pytest.mark.parametrize('damage', [dict(n=1000), dict(salt='***'), dict(digest=None), dict(kdf='md5'),
                                    dict(n=2 ** 30)])
def test_malformed_verifiers_are_refused(damage):
    verifier = dict(make_verifier(SecretKey.generate().cipher('shuffle', 4), n=16, r=1), **damage)
    with pytest.raises(KeyProtectError, match='malformed transform verifier'):
        matches(verifier, SecretKey.generate().cipher('shuffle', 4))


def test_small_key_spaces_are_named():
    assert key_space('np', 2) == 924 and key_space('shuffle', 2) == 479001600 and key_space('shuffle', 1) == 6
    assert '924 keys' in enumerable_warning('np', 2)
    assert enumerable_warning('shuffle', 1) and enumerable_warning('shuffle+np', 2)
    assert enumerable_warning('shuffle', 4) is None and enumerable_warning('np', 4) is None
