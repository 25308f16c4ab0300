"""Key files, sub-key derivation and fingerprints.

A key file is a small JSON document, written with mode 0600. Three kinds exist:

``random`` (the default)
    256 bits from the OS (:func:`secrets.token_bytes`), stored base64.
``password``
    No secret is stored: the file holds a random salt and scrypt parameters,
    and the 256-bit key material is ``scrypt(password, salt)``. The password
    comes from an environment variable or a prompt, never a command line.
``legacy``
    An integer seed and FFX password as used by the published code
    (``torch.manual_seed(seed); torch.randperm(L)``; the NP/FFX mask is
    ``permutation > L / 2``). For re-running papers only: the key space
    collapses to the seed, so loading one warns.

Exported explicit arrays (``tools/keygen.py --export``) are accepted as keys
too: the JSON holds the concrete permutation, mask and FFX table for one block
size, for interoperating with other implementations.

Sub-keys (random and password keys) are derived with HMAC-SHA256 in counter
mode (NIST SP 800-108) from ``PRK = HMAC-SHA256(b"mmseg-keyprotect/v1",
material)``; the label names the method, block size, position in the chain
and purpose, for example ``b"shuffle/M=4/step=0/permutation"``. Permutations are
an unbiased Fisher-Yates shuffle driven by that stream (rejection sampling of
32-bit big-endian integers); masks set exactly ``L // 2`` positions, chosen by
such a permutation; the FFX password is 32 hex digits of the stream. Nothing
depends on numpy or torch random generators, so a key file gives the same
transform on every machine and version (pinned by tests/data vectors).
"""
import base64
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import sys
import unicodedata
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import KeyFileError, KeyProtectError
from ..utils.atomic_file import PRIVATE_MODE, atomic_file
from .ciphers import (
    FFX,
    FFX_METHODS,
    MAX_BLOCK_SIZE,
    BlockCipher,
    NegativePositive,
    Shuffle,
    Step,
    block_length,
    check_block_size,
    ffx_table,
    parse_method,
    ranked_table,
)
from .scrypt import SCRYPT_DEFAULTS, scrypt, scrypt_problem

KEY_FORMAT = 'mmseg-keyprotect-key'
ARRAYS_FORMAT = 'mmseg-keyprotect-arrays'
FORMAT_VERSION = 1
PASSWORD_ENV = 'KEYPROTECT_PASSWORD'
# The FFX password of a legacy key comes from its own variable: a user's real password never lands there.
LEGACY_PASSWORD_ENV = 'KEYPROTECT_LEGACY_FFX_PASSWORD'
LEGACY_DEFAULT_PASSWORD = 'password'
# Password keys store a verifier; 12 random characters put offline guessing out of reach at one scrypt a guess.
MIN_PASSWORD_LENGTH = 12
MATERIAL_BYTES = 32
# Exported arrays of the largest block sizes stay far below this; anything larger is not a key file.
MAX_KEY_FILE_BYTES = 4 * 2**20


class KeyStream:
    """Deterministic byte stream: HMAC-SHA256(PRK, label || counter), counter = 0, 1, ..."""

    def __init__(self, prk: bytes, label: str):
        self._prk, self._label = prk, label.encode()
        self._counter, self._buffer = 0, b''

    def read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            block = hmac.new(self._prk, self._label + self._counter.to_bytes(4, 'big'), hashlib.sha256).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def below(self, bound: int) -> int:
        """Uniform integer in ``[0, bound)`` by rejection sampling (no modulo bias)."""
        limit = (2**32 // bound) * bound
        while True:
            value = int.from_bytes(self.read(4), 'big')
            if value < limit:
                return value % bound

    def permutation(self, length: int) -> np.ndarray:
        """Fisher-Yates: for i = L-1 .. 1 swap a[i] with a[j], j uniform in [0, i]."""
        order = list(range(length))
        for i in range(length - 1, 0, -1):
            j = self.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return np.array(order, dtype=np.int64)


def half_mask(permutation: np.ndarray) -> np.ndarray:
    """Mask with ones at the positions named by the first ``L // 2`` entries."""
    mask = np.zeros(len(permutation), dtype=np.int64)
    mask[permutation[:len(permutation) // 2]] = 1
    return mask


class Key:
    """Base class: something that yields the concrete arrays of each step."""

    source: str = '<memory>'

    def step(self, method: str, block_size: int, index: int) -> Step:
        raise NotImplementedError

    def cipher(self, method: Union[str, Sequence[str]], block_size: int) -> BlockCipher:
        """Build the :class:`BlockCipher` for a method chain at block size M."""
        block_size = check_block_size(block_size)
        names = parse_method(method)
        return BlockCipher([self.step(name, block_size, index) for index, name in enumerate(names)], block_size)

    @property
    def fingerprint(self) -> str:
        raise NotImplementedError


class SecretKey(Key):
    """256-bit key material (random or from a password)."""

    def __init__(self, material: bytes, source: str = '<memory>'):
        if len(material) != MATERIAL_BYTES:
            raise KeyFileError(f'{source}: key material must be {MATERIAL_BYTES} bytes, got {len(material)}')
        self._prk = hmac.new(b'mmseg-keyprotect/v1', material, hashlib.sha256).digest()
        self._fingerprint = hmac.new(material, b'mmseg-keyprotect/fingerprint', hashlib.sha256).hexdigest()[:16]
        self.source = source

    @classmethod
    def generate(cls) -> 'SecretKey':
        return cls(secrets.token_bytes(MATERIAL_BYTES))

    @property
    def fingerprint(self) -> str:
        """First 8 bytes of HMAC(material, "mmseg-keyprotect/fingerprint"), hex."""
        return self._fingerprint

    def stream(self, label: str) -> KeyStream:
        return KeyStream(self._prk, label)

    def step(self, method: str, block_size: int, index: int) -> Step:
        length = block_length(block_size)
        label = f'{method}/M={block_size}/step={index}'
        if method == 'shuffle':
            return Shuffle(self.stream(label + '/permutation').permutation(length))
        mask = half_mask(self.stream(label + '/mask').permutation(length)).astype(bool)
        if method == 'np':
            return NegativePositive(mask)
        table = ffx_table(self.ffx_password(block_size, index))
        return FFX(mask, ranked_table(table) if method == 'ffx8' else table)

    def ffx_password(self, block_size: int, index: int) -> bytes:
        return self.stream(f'ffx/M={block_size}/step={index}/password').read(16).hex().encode()

    def __repr__(self):  # never show material
        return f'SecretKey(fingerprint={self.fingerprint}, source={self.source!r})'


class LegacyKey(Key):
    """Keys of the published code: a torch-seeded permutation and a password.

    Every step of a chain uses the same seeded permutation, as the published
    code re-seeds in each transform.
    """

    def __init__(self, seed: int, password: str = 'password', source: str = '<memory>'):
        self.seed, self.password, self.source = int(seed), password, source

    def _permutation(self, length: int) -> np.ndarray:
        import torch
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(length, generator=generator).numpy().astype(np.int64)

    def step(self, method: str, block_size: int, index: int) -> Step:
        length = block_length(block_size)
        permutation = self._permutation(length)
        if method == 'shuffle':
            return Shuffle(permutation)
        mask = permutation > length / 2
        if method == 'np':
            return NegativePositive(mask)
        table = ffx_table(self.password.encode())
        return FFX(mask, ranked_table(table) if method == 'ffx8' else table)

    @property
    def fingerprint(self) -> str:
        text = f'legacy/{self.seed}/{self.password}'.encode()
        return hashlib.sha256(b'mmseg-keyprotect/legacy-fingerprint/' + text).hexdigest()[:16]

    def __repr__(self):
        return f'LegacyKey(fingerprint={self.fingerprint}, source={self.source!r})'


def weak_step_problem(step: Step) -> Optional[str]:
    """Why an explicit step protects little or nothing, or None.

    Generated masks set exactly half of the positions. A mask far from that leaves most values as they are, or
    changes nearly all of them the same way (all ones is the image's negative: a fixed map, no key at all), so
    masks must set between a quarter and three quarters of the positions.
    """
    if isinstance(step, Shuffle):
        if np.array_equal(step.permutation, np.arange(len(step.permutation))):
            return 'leaves every block as it is (an identity permutation): such a key protects nothing'
        return None
    length, ones = len(step.mask), int(np.count_nonzero(step.mask))
    if not ones:
        return 'leaves every block as it is (an empty mask): such a key protects nothing'
    if not length / 4 <= ones <= 3 * length / 4:
        return (f'has a mask that sets {ones} of its {length} positions: a quarter to three quarters must be set '
                f'(generated masks set {length // 2}), or the step barely changes an image or is a fixed map')
    return None


class ArrayKey(Key):
    """Explicit per-block arrays for one block size (the ``--export`` format)."""

    def __init__(self, block_size: int, steps: Sequence[dict], source: str = '<memory>'):
        self.block_size, self.source = check_block_size(block_size), source
        self.entries = [dict(entry) for entry in steps]
        length = block_length(self.block_size)
        self._steps = []
        for number, entry in enumerate(self.entries):
            method = entry.get('method')
            try:
                if method == 'shuffle':
                    self._steps.append(Shuffle.checked(entry['permutation'], length))
                elif method == 'np':
                    self._steps.append(NegativePositive.checked(entry['mask'], length))
                elif method in FFX_METHODS:
                    step = FFX.checked(entry['mask'], entry['ffx_table'], length)
                    if method == 'ffx8' and step.table.max() > 255:
                        raise KeyFileError(f'{source}: step {number} (ffx8) has table values above 255')
                    self._steps.append(step)
                else:
                    raise KeyFileError(f'{source}: step {number} has unknown method {method!r}')
            except KeyError as missing:
                raise KeyFileError(f'{source}: step {number} ({method}) lacks the array {missing}') from None
            except ValueError as error:
                raise KeyFileError(f'{source}: step {number} ({method}): {error}') from None
            problem = weak_step_problem(self._steps[-1])
            if problem:
                raise KeyFileError(f'{source}: step {number} ({method}) {problem}')

    @property
    def methods(self):
        return tuple(entry['method'] for entry in self.entries)

    def step(self, method: str, block_size: int, index: int) -> Step:
        if block_size != self.block_size:
            raise KeyFileError(f'{self.source} holds arrays for block size {self.block_size}, not {block_size}')
        if index >= len(self._steps) or self.entries[index]['method'] != method:
            raise KeyFileError(f'{self.source} holds arrays for the chain {"+".join(self.methods)}; '
                               f'step {index} "{method}" is not in it')
        return self._steps[index]

    def cipher(self, method, block_size):
        if len(parse_method(method)) != len(self._steps):
            raise KeyFileError(f'{self.source} holds arrays for the chain {"+".join(self.methods)}, '
                               f'not {"+".join(parse_method(method))}')
        return super().cipher(method, block_size)

    @property
    def fingerprint(self) -> str:
        return self.cipher(self.methods, self.block_size).fingerprint


def shown_fingerprint(key: Key) -> str:
    """The fingerprint to print or log. A random or password key's comes from 256 secret bits and reveals
    nothing; a legacy or array key's would be a plain hash of a key small enough to search, so a note
    stands in for it."""
    if isinstance(key, SecretKey):
        return key.fingerprint
    return 'not shown (legacy and array keys are searchable from a hash of them)'


# ------------------------------------------------------------------ key files
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode('ascii')


def write_private_json(path: Union[str, Path], document: dict, overwrite: bool = False) -> Path:
    """Write a key file as a secrets tool does: 0600 from the first byte, atomically, never through a link.

    The document goes to a new file in the target's folder (created 0600 with
    ``O_EXCL`` whatever the umask, so it can be neither an existing file nor a
    link), is flushed to disk, and then takes the target's name: by a hard
    link, which fails if the name exists, or with ``overwrite`` by a rename,
    which replaces a link or file rather than writing into it. No moment
    exists where key material sits in a file with looser permissions, and an
    interrupted write leaves the old file (or none).
    """
    path = Path(path)
    if path.is_symlink():
        raise KeyFileError(f'{path} is a symbolic link; key files are never written through a link')
    if path.exists() and not path.is_file():
        raise KeyFileError(f'{path} exists and is not a regular file')
    if path.exists() and not overwrite:
        raise KeyFileError(f'{path} exists; refusing to overwrite a key file (delete it first)')
    try:
        with atomic_file(path, mode=PRIVATE_MODE, durable=True, replace=overwrite) as handle:
            handle.write((json.dumps(document, indent=2) + '\n').encode('utf-8'))
    except FileExistsError:
        raise KeyFileError(f'{path} appeared while the key was being written; nothing was overwritten') from None
    except PermissionError as error:
        raise KeyFileError(f'cannot write the key file {path}: {error.strerror}; nothing was written there') from None
    return path


def write_random_key(path, overwrite: bool = False) -> SecretKey:
    """Write a new random key file (mode 0600) and return its key."""
    material = secrets.token_bytes(MATERIAL_BYTES)
    key = SecretKey(material, str(path))
    write_private_json(path, dict(format=KEY_FORMAT, version=FORMAT_VERSION, kind='random',
                              material=_b64(material), fingerprint=key.fingerprint), overwrite)
    return key


def normalise_password(password: str) -> str:
    """The password in Unicode normal form C (RFC 8265's OpaqueString profile): the same characters typed on
    Linux (composed) or pasted on macOS (decomposed) give the same key."""
    return unicodedata.normalize('NFC', password)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    try:
        return scrypt(password.encode('utf-8'), salt, n, r, p, MATERIAL_BYTES)
    except KeyProtectError as error:
        raise KeyFileError(str(error)) from None


def _password_check(kdf: dict, fingerprint: str) -> str:
    """A checksum of what a password key file stores (no secret): a file damaged or edited since it was written
    is told apart from a wrong password."""
    stored = json.dumps(dict(kdf=kdf, fingerprint=fingerprint), sort_keys=True).encode()
    return hashlib.sha256(b'mmseg-keyprotect/password-key-check/' + stored).hexdigest()[:16]


def write_password_key(path, password: str, overwrite: bool = False, min_length: int = MIN_PASSWORD_LENGTH,
                       **scrypt_params) -> SecretKey:
    """Write a password key file: salt and scrypt parameters, no secret.

    The file also holds the key's fingerprint, so that a wrong password gets a
    clear error; that lets whoever holds the file test guesses offline at the
    cost of one scrypt each (about half a second here). ``min_length``
    characters keep that search out of reach for random passwords; lower it
    only for tests. The password is normalised first (:func:`normalise_password`).
    """
    password = normalise_password(password or '')
    if len(password) < min_length:
        raise KeyFileError(f'the password has {len(password or "")} characters; at least {min_length} are needed '
                           '(the key file lets anyone who holds it test guesses offline)')
    params = {**SCRYPT_DEFAULTS, **scrypt_params}
    salt = secrets.token_bytes(16)
    key = SecretKey(_scrypt(password, salt, **params), str(path))
    kdf = dict(name='scrypt', salt=_b64(salt), **params)
    write_private_json(path, dict(format=KEY_FORMAT, version=FORMAT_VERSION, kind='password', kdf=kdf,
                              fingerprint=key.fingerprint, check=_password_check(kdf, key.fingerprint)), overwrite)
    return key


def write_legacy_key(path, seed: int, password: str = LEGACY_DEFAULT_PASSWORD, overwrite: bool = False) -> LegacyKey:
    """Write a key of the published code: an integer seed and the FFX password, both stored in the file."""
    write_private_json(path, dict(format=KEY_FORMAT, version=FORMAT_VERSION, kind='legacy', seed=int(seed),
                              password=password,
                              note='published-code key: the seed and the FFX password above are the whole key, '
                                   'stored in plain text; for reproducing published results only'), overwrite)
    return LegacyKey(seed, password, str(path))


def export_arrays(key: Key, method, block_size: int) -> dict:
    """The concrete per-block arrays of ``method`` at block size M, as JSON-able dict.

    Arrays are in (row, column, channel) order, RGB, length ``3*M*M``.
    """
    cipher = key.cipher(method, block_size)
    steps = []
    for name, step in zip(parse_method(method), cipher.steps):
        entry = dict(method=name)
        if isinstance(step, Shuffle):
            entry['permutation'] = step.permutation.tolist()
        else:
            entry['mask'] = step.mask.astype(int).tolist()
        if isinstance(step, FFX):
            entry['ffx_table'] = step.table.astype(int).tolist()
        steps.append(entry)
    document = dict(format=ARRAYS_FORMAT, version=FORMAT_VERSION, block_size=block_size,
                    layout='(row, column, channel), channel fastest, RGB', fingerprint=cipher.fingerprint)
    if len(steps) == 1:
        document.update(steps[0])
    else:
        document['steps'] = steps
    return document


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


def _require(document: dict, field: str, path: str):
    if field not in document:
        raise KeyFileError(f'{path}: the key file lacks the field "{field}"')
    return document[field]


def load_key(path: Union[str, Path], password: Optional[str] = None, password_env: str = PASSWORD_ENV,
             warn_permissions: bool = True, prompt: bool = True) -> Key:
    """Load any key file: random, password, legacy or exported arrays.

    A run loads its key once, through
    :meth:`~mmseg_keyprotect.crypto.run_key.RunKey.load`, which also reads
    ``$KEYPROTECT_KEY_FILE`` when no path is given.

    Args:
        path (str | Path): the key file.
        password (str | None): for password key files; otherwise read from
            ``password_env`` or a prompt.
        password_env (str): environment variable holding the password.
        warn_permissions (bool): warn when the file is readable by group or
            others.
        prompt (bool): whether a password may be asked for at the terminal.

    Raises:
        KeyFileError: naming the file and what is wrong with it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise KeyFileError(f'key file {path} does not exist' if not path.exists() else f'{path} is not a file')
    size = path.stat().st_size
    if size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f'{path} is {size} bytes: not a key file (key files are at most '
                           f'{MAX_KEY_FILE_BYTES // 2**20} MiB)')
    try:
        with open(path, 'rb') as handle:
            document = json.loads(handle.read(MAX_KEY_FILE_BYTES + 1).decode('utf-8'))
    except UnicodeDecodeError:
        raise KeyFileError(f'{path} is not a mmseg-keyprotect key file (binary content)') from None
    except json.JSONDecodeError as error:
        raise KeyFileError(f'{path} is not a valid key file: it is truncated or not JSON ({error.msg} '
                           f'at line {error.lineno})') from None
    except (ValueError, RecursionError) as error:  # numbers of thousands of digits, nesting thousands deep
        raise KeyFileError(f'{path} is not a mmseg-keyprotect key file ({type(error).__name__}: '
                           f'{str(error)[:120] or "nested too deeply"})') from None
    except OSError as error:
        raise KeyFileError(f'key file {path} cannot be read: {error.strerror or error}') from None
    if not isinstance(document, dict) or document.get('format') not in (KEY_FORMAT, ARRAYS_FORMAT):
        raise KeyFileError(f'{path} is not a mmseg-keyprotect key file (no "format": "{KEY_FORMAT}")')
    mode = path.stat().st_mode
    # A key published on purpose (test vectors, the demo key) says so; every other key should be private.
    if warn_permissions and mode & (stat.S_IRWXG | stat.S_IRWXO) and document.get('public') is not True:
        warnings.warn(f'key file {path} is readable by group or others (mode {oct(mode & 0o777)}); '
                      f'restrict it with: chmod 600 {path}', stacklevel=2)
    version = document.get('version')
    if not isinstance(version, int) or version < 1:
        raise KeyFileError(f'{path}: invalid format version {version!r}')
    if version > FORMAT_VERSION:
        raise KeyFileError(f'{path} has key format version {version}; this mmseg-keyprotect reads versions '
                           f'up to {FORMAT_VERSION}: upgrade mmseg-keyprotect')
    source = str(path)
    if document['format'] == ARRAYS_FORMAT:
        steps = document.get('steps')
        if steps is None:
            steps = [{k: v for k, v in document.items() if k in ('method', 'permutation', 'mask', 'ffx_table')}]
        if not isinstance(steps, list) or not steps or not all(isinstance(step, dict) for step in steps):
            raise KeyFileError(f'{path}: "steps" must be a non-empty list of objects')
        return ArrayKey(_integer(document, 'block_size', source, 1, MAX_BLOCK_SIZE), steps, source)
    kind = _require(document, 'kind', source)
    if kind == 'random':
        key = SecretKey(_base64(document, 'material', source, MATERIAL_BYTES, MATERIAL_BYTES), source)
    elif kind == 'password':
        kdf = _require(document, 'kdf', source)
        if not isinstance(kdf, dict) or kdf.get('name') != 'scrypt':
            raise KeyFileError(f'{path}: "kdf" must be an object with "name": "scrypt"')
        salt = _base64(kdf, 'salt', source, 8, 64, 'kdf.')
        n, r, p = (kdf.get(name) for name in ('n', 'r', 'p'))
        problem = scrypt_problem(n, r, p, 'kdf.')
        if problem:
            raise KeyFileError(f'{path}: {problem}')
        stored = _fingerprint(document, source)
        check = document.get('check')
        if check is not None and not hmac.compare_digest(str(check).encode(), _password_check(kdf, stored).encode()):
            raise KeyFileError(f'{path} is damaged or was edited: its salt, scrypt settings or fingerprint no '
                               'longer match its checksum (no password can open it; restore the file from a copy)')
        if password is None:
            password = password_from_environment(password_env, f'key file {path}', prompt)
        # Files written before passwords were normalised hold the password as it was typed.
        for typed in dict.fromkeys((normalise_password(password), password)):
            key = SecretKey(_scrypt(typed, salt, n, r, p), source)
            if hmac.compare_digest(key.fingerprint, stored):
                return key
        raise KeyFileError(f'wrong password for key file {path}' + ('' if check is not None else
                           ' (or the file was damaged: it was written without a checksum, so the two cannot be '
                           'told apart)'))
    elif kind == 'legacy':
        seed = _integer(document, 'seed', source, 0, 2 ** 63 - 1)
        password = document.get('password', LEGACY_DEFAULT_PASSWORD)
        if not isinstance(password, str) or not password or len(password) > 1024:
            raise KeyFileError(f'{path}: "password" must be a non-empty string of at most 1024 characters')
        warnings.warn(f'{path} is a legacy (published-code) key: the whole key is the integer seed and the '
                      'password stored in the file, and can be enumerated; use it only to reproduce published '
                      'results', stacklevel=2)
        return LegacyKey(seed, password, source)
    else:
        raise KeyFileError(f'{path}: unknown key kind {kind!r} (expected random, password or legacy)')
    if document.get('fingerprint') is not None and not hmac.compare_digest(key.fingerprint,
                                                                            _fingerprint(document, source)):
        raise KeyFileError(f'{path} is corrupted: its material does not match its fingerprint')
    return key


def _integer(document: dict, field: str, path: str, low: int, high: int, prefix: str = '') -> int:
    value = _require(document, field, path)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise KeyFileError(f'{path}: "{prefix}{field}" must be an integer from {low} to {high}, got {value!r:.40}')
    return value


def _base64(document: dict, field: str, path: str, low: int, high: int, prefix: str = '') -> bytes:
    value = _require(document, field, path)
    try:
        decoded = base64.b64decode(value.encode('ascii'), validate=True) if isinstance(value, str) else None
    except (ValueError, UnicodeEncodeError):
        decoded = None
    if decoded is None or not low <= len(decoded) <= high:
        size = f'{low}' if low == high else f'{low} to {high}'
        raise KeyFileError(f'{path}: "{prefix}{field}" must be base64 of {size} bytes')
    return decoded


def _fingerprint(document: dict, path: str) -> str:
    value = _require(document, 'fingerprint', path)
    if not isinstance(value, str) or not re.fullmatch(r'[0-9a-f]{16}', value):
        raise KeyFileError(f'{path}: "fingerprint" must be 16 lowercase hex digits, got {value!r:.40}')
    return value

