"""scrypt, the package's one deliberately slow function: the parameters it accepts, and its errors.

Password key files and transform verifiers both store scrypt parameters next
to their salt. Stored parameters come from files anyone can edit, so both
accept only the same bounded range, and a derivation that OpenSSL refuses
(its memory limit) is a clear error, not a traceback.
"""
import hashlib
from typing import Optional

from ..errors import KeyProtectError

#: What this package writes: about half a second and 128 MiB per derivation.
SCRYPT_DEFAULTS = dict(n=2 ** 17, r=8, p=1)
MAX_N, MAX_R, MAX_P = 2 ** 20, 32, 16
MAX_MEMORY_BYTES = 2 ** 30


def scrypt_problem(n, r, p, prefix: str = '') -> Optional[str]:
    """What is wrong with stored scrypt parameters (fields named with ``prefix``), or None when they are in
    the accepted range."""
    for name, value, low, high in (('n', n, 2, MAX_N), ('r', r, 1, MAX_R), ('p', p, 1, MAX_P)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f'"{prefix}{name}" must be an integer from {low} to {high}, got {value!r:.40}'
    if n & (n - 1):
        return f'"{prefix}n" must be a power of two, got {n}'
    if 128 * n * r > MAX_MEMORY_BYTES:
        return f'n = {n} with r = {r} needs more than {MAX_MEMORY_BYTES // 2 ** 20} MiB'
    return None


def scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    """``hashlib.scrypt`` with parameters checked by :func:`scrypt_problem`.

    Raises:
        KeyProtectError: parameters out of range, or a derivation this
            machine's OpenSSL refuses.
    """
    problem = scrypt_problem(n, r, p)
    if problem:
        raise KeyProtectError(f'scrypt parameters refused: {problem}')
    try:
        # scrypt needs 128 * n * r bytes (at most MAX_MEMORY_BYTES here); Python caps maxmem below 2 GiB.
        maxmem = min(256 * n * r + 2 ** 20, 2 ** 31 - 1)
        return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)
    except (ValueError, MemoryError) as error:
        raise KeyProtectError(f'scrypt with n = {n}, r = {r}, p = {p} cannot run here ({error})') from None
