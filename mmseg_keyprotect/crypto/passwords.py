"""Passwords of password key files: where they come from, their normal form, and the derivation."""
import getpass
import hashlib
import json
import os
import sys
import unicodedata

from ..errors import KeyFileError, KeyProtectError
from .keys import MATERIAL_BYTES
from .scrypt import scrypt

PASSWORD_ENV = 'KEYPROTECT_PASSWORD'
# The FFX password of a legacy key comes from its own variable: a user's real password never lands there.
LEGACY_PASSWORD_ENV = 'KEYPROTECT_LEGACY_FFX_PASSWORD'
# Password keys store a verifier; 12 random characters put offline guessing out of reach at one scrypt a guess.
MIN_PASSWORD_LENGTH = 12


def normalise_password(password: str) -> str:
    """The password in Unicode normal form C (RFC 8265's OpaqueString profile): the same characters typed on
    Linux (composed) or pasted on macOS (decomposed) give the same key."""
    return unicodedata.normalize('NFC', password)


def derive_material(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    try:
        return scrypt(password.encode('utf-8'), salt, n, r, p, MATERIAL_BYTES)
    except KeyProtectError as error:
        raise KeyFileError(str(error)) from None


def password_check(kdf: dict, fingerprint: str) -> str:
    """A checksum of what a password key file stores (no secret): a file damaged or edited since it was written
    is told apart from a wrong password."""
    stored = json.dumps(dict(kdf=kdf, fingerprint=fingerprint), sort_keys=True).encode()
    return hashlib.sha256(b'mmseg-keyprotect/password-key-check/' + stored).hexdigest()[:16]


def password_from_environment(variable: str = PASSWORD_ENV, what: str = 'key file', prompt: bool = True) -> str:
    """The password in ``$variable``, else one typed at a prompt (when ``prompt`` and a terminal allow)."""
    password = os.environ.get(variable)
    if password:
        return password
    if not prompt:
        raise KeyFileError(f'{what} is password-protected and several processes run (none of them can prompt): '
                           f'set {variable}')
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f'Password for {what}: ')
    raise KeyFileError(f'{what} is password-protected: set {variable} or run interactively to be prompted')
