"""Salted, deliberately slow verifiers: tell the right transform from a wrong one, without enabling a search.

A checkpoint or an encrypted image must say "wrong key" clearly, so it stores
something derived from its transform. A plain hash of the transform would let
anyone who holds the file test candidate keys at millions per second, which
enumerates small key spaces (924 NP masks at M = 2; 12! shuffles at M = 2).
A verifier is ``scrypt(transform, salt)`` with a random salt stored beside
it: testing one candidate costs as much as one guess against a password key
file (about half a second and 128 MiB), and no precomputed table applies to
another file. For key spaces that small this still only slows a search down
(924 candidates take minutes); :func:`~mmseg_keyprotect.crypto.ciphers.enumerable_warning`
says so when such a setting is chosen.

Each verifier names its purpose (``'checkpoint'`` or ``'image'``), and the
purpose is part of what is hashed: a verifier copied from an encrypted image
does not check as a checkpoint's, or the other way round. Verifiers written
before purposes existed carry none and check as before.
"""
import base64
import hmac
import secrets
from typing import Dict, Optional

from ..errors import KeyProtectError
from .ciphers import BlockCipher
from .scrypt import SCRYPT_DEFAULTS, scrypt, scrypt_problem

_DIGEST_BYTES = 16
PURPOSES = ('checkpoint', 'image')
_cache: Dict[tuple, str] = {}


def _digest(cipher: BlockCipher, salt: bytes, n: int, r: int, p: int, purpose: Optional[str]) -> str:
    # One run checks the same cipher against the same salt many times (every checkpoint, every image).
    cache_key = (cipher.fingerprint, salt, n, r, p, purpose)
    if cache_key not in _cache:
        bound = cipher.transform_bytes() if purpose is None else \
            b'mmseg-keyprotect/verifier/' + purpose.encode() + b'\0' + cipher.transform_bytes()
        _cache[cache_key] = scrypt(bound, salt, n, r, p, _DIGEST_BYTES).hex()
    return _cache[cache_key]


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise KeyProtectError(f'verifier purpose must be one of {PURPOSES}, got {purpose!r}')
    return purpose


def make_verifier(cipher: BlockCipher, purpose: str, salt: Optional[bytes] = None, **cost) -> dict:
    """A verifier of ``cipher`` for ``purpose`` (``'checkpoint'`` or ``'image'``) with a fresh random salt
    (JSON-able)."""
    params = {**SCRYPT_DEFAULTS, **cost}
    salt = secrets.token_bytes(16) if salt is None else salt
    return dict(kdf='scrypt', purpose=_check_purpose(purpose), salt=base64.b64encode(salt).decode('ascii'),
                **params, digest=_digest(cipher, salt, **params, purpose=purpose))


def matches(verifier: dict, cipher: BlockCipher, purpose: str) -> bool:
    """Whether ``cipher`` is the transform ``verifier`` was made from, for ``purpose``.

    Raises:
        KeyProtectError: the verifier is malformed (not one this module
            writes), made for another purpose, or asks for a scrypt cost above
            the default (``SCRYPT_DEFAULTS``; this package never writes more).
    """
    stored_purpose = verifier.get('purpose') if isinstance(verifier, dict) else None
    if stored_purpose is not None and stored_purpose != _check_purpose(purpose):
        raise KeyProtectError(f'this verifier was made for {stored_purpose!r:.20}, not for {purpose!r}: a record '
                              f'copied from another kind of file')
    try:
        salt = base64.b64decode(verifier['salt'], validate=True)
        n, r, p = (verifier[name] for name in ('n', 'r', 'p'))
        digest = str(verifier['digest'])
        valid = (verifier.get('kdf') == 'scrypt' and 8 <= len(salt) <= 64 and scrypt_problem(n, r, p) is None
                 and len(digest) == 2 * _DIGEST_BYTES and digest.isascii())
    except (KeyError, TypeError, ValueError, AttributeError):
        valid = False
    if not valid:
        raise KeyProtectError(f'malformed transform verifier {str(verifier)[:80]!r}')
    # A record travels with files from anyone: a crafted cost would stall every check (about a minute and 1 GiB).
    if verifier_cost(verifier) > verifier_cost(SCRYPT_DEFAULTS):
        raise KeyProtectError(f'this verifier asks for scrypt with n = {n}, r = {r}, p = {p}, more than this package '
                              f'writes (n = {SCRYPT_DEFAULTS["n"]}, r = {SCRYPT_DEFAULTS["r"]}, p = '
                              f'{SCRYPT_DEFAULTS["p"]}): not a record it made')
    return hmac.compare_digest(_digest(cipher, salt, n, r, p, stored_purpose), digest)


def verifier_cost(params: dict) -> int:
    """The work and memory of one scrypt derivation, up to a constant: ``n * r * p``."""
    return int(params['n']) * int(params['r']) * int(params['p'])
