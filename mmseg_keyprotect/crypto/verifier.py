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
"""
import base64
import hmac
import secrets
from typing import Dict, Optional

from ..errors import KeyProtectError
from .ciphers import BlockCipher
from .scrypt import SCRYPT_DEFAULTS, scrypt, scrypt_problem

_DIGEST_BYTES = 16
_cache: Dict[tuple, str] = {}


def _digest(cipher: BlockCipher, salt: bytes, n: int, r: int, p: int) -> str:
    # One run checks the same cipher against the same salt many times (every checkpoint, every image).
    cache_key = (cipher.fingerprint, salt, n, r, p)
    if cache_key not in _cache:
        _cache[cache_key] = scrypt(cipher.transform_bytes(), salt, n, r, p, _DIGEST_BYTES).hex()
    return _cache[cache_key]


def make_verifier(cipher: BlockCipher, salt: Optional[bytes] = None, **cost) -> dict:
    """A verifier of ``cipher`` with a fresh random salt (JSON-able)."""
    params = {**SCRYPT_DEFAULTS, **cost}
    salt = secrets.token_bytes(16) if salt is None else salt
    return dict(kdf='scrypt', salt=base64.b64encode(salt).decode('ascii'), **params,
                digest=_digest(cipher, salt, **params))


def matches(verifier: dict, cipher: BlockCipher) -> bool:
    """Whether ``cipher`` is the transform ``verifier`` was made from.

    Raises:
        KeyProtectError: the verifier is malformed (not one this module writes).
    """
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
    return hmac.compare_digest(_digest(cipher, salt, n, r, p), digest)
