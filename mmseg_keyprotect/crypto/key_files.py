"""Key files: their format, writing them privately, and loading any of them.

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
"""
import base64
import hmac
import json
import re
import secrets
import stat
import warnings
from pathlib import Path
from typing import Optional, Union

from ..errors import KeyFileError
from ..utils.atomic_file import PRIVATE_MODE, atomic_file
from . import passwords
from .ciphers import FFX, MAX_BLOCK_SIZE, Shuffle, parse_method
from .keys import LEGACY_DEFAULT_PASSWORD, MATERIAL_BYTES, ArrayKey, Key, LegacyKey, SecretKey
from .passwords import MIN_PASSWORD_LENGTH, PASSWORD_ENV, normalise_password, password_from_environment
from .scrypt import SCRYPT_DEFAULTS, scrypt_problem

KEY_FORMAT = 'mmseg-keyprotect-key'
ARRAYS_FORMAT = 'mmseg-keyprotect-arrays'
FORMAT_VERSION = 1
# Exported arrays of the largest block sizes stay far below this; anything larger is not a key file.
MAX_KEY_FILE_BYTES = 4 * 2**20


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
    key = SecretKey(passwords.derive_material(password, salt, **params), str(path))
    kdf = dict(name='scrypt', salt=_b64(salt), **params)
    check = passwords.password_check(kdf, key.fingerprint)
    write_private_json(path, dict(format=KEY_FORMAT, version=FORMAT_VERSION, kind='password', kdf=kdf,
                                  fingerprint=key.fingerprint, check=check), overwrite)
    return key


def write_legacy_key(path, seed: int, password: str = LEGACY_DEFAULT_PASSWORD,
                     overwrite: bool = False) -> LegacyKey:
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
    document = _read_document(path)
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
        return _array_key(document, source)
    kind = _require(document, 'kind', source)
    if kind == 'password':
        return _password_key(document, source, password, password_env, prompt)
    if kind == 'legacy':
        return _legacy_key(document, source)
    if kind != 'random':
        raise KeyFileError(f'{path}: unknown key kind {kind!r} (expected random, password or legacy)')
    key = SecretKey(_base64(document, 'material', source, MATERIAL_BYTES, MATERIAL_BYTES), source)
    if document.get('fingerprint') is not None and not hmac.compare_digest(key.fingerprint,
                                                                            _fingerprint(document, source)):
        raise KeyFileError(f'{path} is corrupted: its material does not match its fingerprint')
    return key


def _read_document(path: Path) -> dict:
    """The JSON document of a key file, refused with a clear error when it is not one."""
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
    return document


def _array_key(document: dict, path: str) -> ArrayKey:
    steps = document.get('steps')
    if steps is None:
        steps = [{k: v for k, v in document.items() if k in ('method', 'permutation', 'mask', 'ffx_table')}]
    if not isinstance(steps, list) or not steps or not all(isinstance(step, dict) for step in steps):
        raise KeyFileError(f'{path}: "steps" must be a non-empty list of objects')
    return ArrayKey(_integer(document, 'block_size', path, 1, MAX_BLOCK_SIZE), steps, path)


def _password_key(document: dict, path: str, password: Optional[str], password_env: str, prompt: bool) -> SecretKey:
    kdf = _require(document, 'kdf', path)
    if not isinstance(kdf, dict) or kdf.get('name') != 'scrypt':
        raise KeyFileError(f'{path}: "kdf" must be an object with "name": "scrypt"')
    salt = _base64(kdf, 'salt', path, 8, 64, 'kdf.')
    n, r, p = (kdf.get(name) for name in ('n', 'r', 'p'))
    problem = scrypt_problem(n, r, p, 'kdf.')
    if problem:
        raise KeyFileError(f'{path}: {problem}')
    stored = _fingerprint(document, path)
    check = document.get('check')
    if check is not None and not hmac.compare_digest(str(check).encode(),
                                                     passwords.password_check(kdf, stored).encode()):
        raise KeyFileError(f'{path} is damaged or was edited: its salt, scrypt settings or fingerprint no '
                           'longer match its checksum (no password can open it; restore the file from a copy)')
    if password is None:
        password = password_from_environment(password_env, f'key file {path}', prompt)
    # Files written before passwords were normalised hold the password as it was typed.
    for typed in dict.fromkeys((normalise_password(password), password)):
        key = SecretKey(passwords.derive_material(typed, salt, n, r, p), path)
        if hmac.compare_digest(key.fingerprint, stored):
            return key
    raise KeyFileError(f'wrong password for key file {path}' + ('' if check is not None else
                       ' (or the file was damaged: it was written without a checksum, so the two cannot be '
                       'told apart)'))


def _legacy_key(document: dict, path: str) -> LegacyKey:
    seed = _integer(document, 'seed', path, 0, 2 ** 63 - 1)
    password = document.get('password', LEGACY_DEFAULT_PASSWORD)
    if not isinstance(password, str) or not password or len(password) > 1024:
        raise KeyFileError(f'{path}: "password" must be a non-empty string of at most 1024 characters')
    warnings.warn(f'{path} is a legacy (published-code) key: the whole key is the integer seed and the '
                  'password stored in the file, and can be enumerated; use it only to reproduce published '
                  'results', stacklevel=3)
    return LegacyKey(seed, password, path)


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

