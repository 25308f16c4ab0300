import time

import pytest

from mmseg_keyprotect.crypto import SecretKey
from mmseg_keyprotect.crypto.ciphers import enumerable_warning, key_space
from mmseg_keyprotect.crypto.verifier import make_verifier, matches
from mmseg_keyprotect.errors import KeyProtectError


def test_a_verifier_tells_the_right_transform_from_others():
    right, wrong = SecretKey.generate().cipher('np', 2), SecretKey.generate().cipher('np', 2)
    verifier = make_verifier(right, 'image')
    assert matches(verifier, right, 'image') and not matches(verifier, wrong, 'image')
    assert make_verifier(right, 'image')['digest'] != verifier['digest']  # a fresh salt each time: no shared tables
    assert right.fingerprint not in str(verifier)


def test_checking_a_candidate_costs_a_password_guess():
    """Searching the 924 NP masks of M = 2 through a verifier takes minutes, not the 0.01 s of a plain hash."""
    cipher = SecretKey.generate().cipher('np', 2)
    verifier = make_verifier(cipher, 'checkpoint')
    candidate = SecretKey.generate().cipher('np', 2)
    started = time.perf_counter()
    matches(verifier, candidate, 'checkpoint')
    assert time.perf_counter() - started > 0.05


@pytest.mark.parametrize('damage', [dict(n=1000), dict(salt='***'), dict(digest=None), dict(kdf='md5'),
                                    dict(n=2 ** 30)])
def test_malformed_verifiers_are_refused(damage):
    verifier = dict(make_verifier(SecretKey.generate().cipher('shuffle', 4), 'image', n=16, r=1), **damage)
    with pytest.raises(KeyProtectError, match='malformed transform verifier'):
        matches(verifier, SecretKey.generate().cipher('shuffle', 4), 'image')


def test_a_verifier_checks_only_for_its_purpose():
    """An encrypted image's record copied into a checkpoint does not pass as the checkpoint's, and the digests of
    the two purposes differ for the same salt."""
    cipher = SecretKey.generate().cipher('shuffle', 4)
    image = make_verifier(cipher, 'image', salt=b'0' * 16, n=16, r=1)
    checkpoint = make_verifier(cipher, 'checkpoint', salt=b'0' * 16, n=16, r=1)
    assert image['digest'] != checkpoint['digest']
    with pytest.raises(KeyProtectError, match="made for 'image', not for 'checkpoint'"):
        matches(image, cipher, 'checkpoint')
    legacy = {k: v for k, v in checkpoint.items() if k != 'purpose'}  # written before purposes: the old digest
    legacy['digest'] = make_verifier.__globals__['_digest'](cipher, b'0' * 16, 16, 1, 1, None)
    assert matches(legacy, cipher, 'checkpoint') and matches(legacy, cipher, 'image')


def test_a_verifier_that_asks_for_more_work_than_this_package_writes_is_refused():
    """A crafted record could make every check cost about a minute and 1 GiB of memory."""
    cipher = SecretKey.generate().cipher('shuffle', 4)
    verifier = dict(make_verifier(cipher, 'image', n=16, r=1), n=2 ** 20, r=8)
    with pytest.raises(KeyProtectError, match='more than this package writes'):
        matches(verifier, cipher, 'image')


def test_small_key_spaces_are_named():
    assert key_space('np', 2) == 924 and key_space('shuffle', 2) == 479001600 and key_space('shuffle', 1) == 6
    assert '924 keys' in enumerable_warning('np', 2)
    assert enumerable_warning('shuffle', 1) and enumerable_warning('shuffle+np', 2)
    assert enumerable_warning('shuffle', 4) is None and enumerable_warning('np', 4) is None
