"""Locked checkpoint files: the serialized checkpoint, encrypted at rest under the model's key.

A locked file is useless without the key file the model was trained with: a
copied file, a backup or a leaked bucket gives nothing. The weights are
encrypted with AES-256-GCM (from the ``cryptography`` package) under a sub-key
derived from the key file with the same labelled HMAC derivation as the block
ciphers, so one key file serves both layers. Layout::

    MAGIC | uint32 header length | header (JSON) | segments

The header names the format version, the segment size, the payload size, an
8-byte random nonce prefix and a key check (``HMAC(sub-key, "key-check")``,
which tells a wrong key from a damaged file and says nothing about the key).
The payload is cut into segments of ``SEGMENT_BYTES``, each encrypted with the
nonce ``prefix || index`` and authenticated together with a digest of the
header, its index and whether it is the last one: a flipped byte, a reordered
segment, a cut or an extended file all fail authentication. Plain weights
never touch the disk: checkpoints are serialized to memory, encrypted, and
written to a temporary file that is renamed into place; loading decrypts into
memory.
"""
import hashlib
import hmac
import io
import json
import secrets
import struct
from pathlib import Path
from typing import BinaryIO, Union

import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..crypto.keys import Key, SecretKey
from ..errors import KeyFileError, KeyProtectError
from ..utils.atomic_file import PRIVATE_MODE, atomic_file

MAGIC = b'MMSEG-KEYPROTECT-LOCKED\n'
FORMAT_VERSION = 1
SEGMENT_BYTES = 8 * 2**20
# Headers are a few hundred bytes; anything far larger, or sizes beyond these, is not a file of ours.
MAX_HEADER_BYTES = 2**16
MAX_SEGMENT_BYTES = 2**31
MAX_PAYLOAD_BYTES = 2**48
SUBKEY_LABEL = 'checkpoint/aes-256-gcm'
_TAG_BYTES = 16


class LockedCheckpointError(KeyProtectError):
    """A locked checkpoint cannot be opened: wrong key, damaged, truncated, or not what was expected."""


def _subkey(key: Key, what: str) -> bytes:
    if not isinstance(key, SecretKey):
        raise KeyFileError(f'{key.source}: locked checkpoints need a random or password key file '
                           f'({what}); legacy and exported-array keys have no secret material to lock with')
    return key.stream(SUBKEY_LABEL).read(32)


def _key_check(subkey: bytes) -> str:
    return hmac.new(subkey, b'key-check', hashlib.sha256).hexdigest()[:32]


def _is_count(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _differing_bits(expected: str, found: str) -> int:
    """Bits in which two key checks differ (a check of another length or alphabet differs in all of them)."""
    try:
        found_bytes = bytes.fromhex(found)
    except ValueError:
        found_bytes = b''
    expected_bytes = bytes.fromhex(expected)
    if len(found_bytes) != len(expected_bytes):
        return 8 * len(expected_bytes)
    return sum(bin(a ^ b).count('1') for a, b in zip(expected_bytes, found_bytes))


def _aad(header_digest: bytes, index: int, last: bool) -> bytes:
    return header_digest + struct.pack('>Q?', index, last)


def is_locked(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a locked checkpoint (by its first bytes)."""
    with open(path, 'rb') as handle:
        return handle.read(len(MAGIC)) == MAGIC


def lock_to(handle: BinaryIO, payload, key: Key, segment_bytes: int = SEGMENT_BYTES) -> None:
    """Write ``payload`` (bytes or a buffer) locked under ``key`` to an open binary file."""
    subkey = _subkey(key, 'to lock a checkpoint')
    aes = AESGCM(subkey)
    prefix = secrets.token_bytes(8)
    header = json.dumps(dict(version=FORMAT_VERSION, cipher='AES-256-GCM', segment_bytes=segment_bytes,
                             size=len(payload), nonce_prefix=prefix.hex(), key_check=_key_check(subkey)),
                        sort_keys=True).encode()
    handle.write(MAGIC + struct.pack('>I', len(header)) + header)
    digest = hashlib.sha256(MAGIC + header).digest()
    count = max(1, -(-len(payload) // segment_bytes))
    view = memoryview(payload)
    for index in range(count):
        chunk = view[index * segment_bytes:(index + 1) * segment_bytes]
        segment = aes.encrypt(prefix + struct.pack('>I', index), chunk, _aad(digest, index, index == count - 1))
        handle.write(struct.pack('>I', len(segment)))
        handle.write(segment)


def unlock_to(path: Union[str, Path], key: Key, out: BinaryIO) -> int:
    """Decrypt a locked file into ``out``, one segment at a time; return the payload size.

    Only the payload and one segment are in memory at any moment, never the whole file as well.

    Raises:
        LockedCheckpointError: not a locked file, a wrong key, or a damaged,
            truncated or extended file; each with its own message naming ``path``.
    """
    path = Path(path)
    with open(path, 'rb') as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise LockedCheckpointError(f'{path} is not a locked checkpoint (a plain one, or another file)')
        damaged = LockedCheckpointError(f'{path}: the header of this locked checkpoint is damaged')
        try:
            (length,) = struct.unpack('>I', handle.read(4))
            if length > MAX_HEADER_BYTES:
                raise damaged
            header_bytes = handle.read(length)
            header = json.loads(header_bytes)
            if header.get('version') != FORMAT_VERSION or header.get('cipher') != 'AES-256-GCM':
                raise LockedCheckpointError(f'{path}: locked checkpoint format {header.get("version")!r} is not '
                                            f'one this mmseg-keyprotect reads (version {FORMAT_VERSION})')
            prefix, size = bytes.fromhex(header['nonce_prefix']), header['size']
            check, segment_bytes = header['key_check'], header['segment_bytes']
        except (struct.error, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise damaged from None
        if (len(prefix) != 8 or not isinstance(check, str) or not check.isascii()
                or not _is_count(size, 0, MAX_PAYLOAD_BYTES)
                or not _is_count(segment_bytes, 1, MAX_SEGMENT_BYTES)):
            raise damaged
        subkey = _subkey(key, f'to unlock {path}')
        expected = _key_check(subkey)
        if not hmac.compare_digest(expected, check):
            # A wrong key disagrees in about half of the check's 128 bits; a damaged header in a few.
            if _differing_bits(expected, check) <= 8:
                raise LockedCheckpointError(f'{path}: the key check in its header is damaged (it differs from '
                                            f'{key.source}\'s in a few bits only): the file was altered')
            raise LockedCheckpointError(f'wrong key for {path}: {key.source} is not the key it was locked with; '
                                        'use the key file the model was trained with')
        aes = AESGCM(subkey)
        digest = hashlib.sha256(MAGIC + header_bytes).digest()
        count, filled = max(1, -(-size // segment_bytes)), 0
        for index in range(count):
            prefix_bytes = handle.read(4)
            if len(prefix_bytes) < 4:
                raise LockedCheckpointError(f'{path} is truncated: {index} of {count} segments are there')
            (segment_length,) = struct.unpack('>I', prefix_bytes)
            segment = handle.read(segment_length)
            if len(segment) != segment_length:
                raise LockedCheckpointError(f'{path} is truncated inside segment {index} of {count}')
            try:
                plain = aes.decrypt(prefix + struct.pack('>I', index), segment,
                                    _aad(digest, index, index == count - 1))
            except InvalidTag:
                raise LockedCheckpointError(f'{path} is damaged or was tampered with: segment {index} of {count} '
                                            'fails authentication') from None
            filled += len(plain)
            if filled > size:
                raise LockedCheckpointError(f'{path} is damaged: its segments hold more than the header says')
            out.write(plain)
        if handle.read(1) or filled != size:
            raise LockedCheckpointError(f'{path} has bytes after its last segment: it was extended or damaged')
    return size


def unlock(path: Union[str, Path], key: Key) -> bytes:
    """The payload of a locked file (see :func:`unlock_to`)."""
    with io.BytesIO() as buffer:
        unlock_to(path, key, buffer)
        return buffer.getvalue()


def write_locked(path: Union[str, Path], payload, key: Key, overwrite: bool = True) -> Path:
    """Lock ``payload`` into ``path`` atomically: a complete file under the name, or none.

    Raises:
        LockedCheckpointError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise LockedCheckpointError(f'{path} exists; nothing was written (pass --force to replace it)')
    with atomic_file(path, mode=PRIVATE_MODE, durable=True) as handle:
        lock_to(handle, payload, key)
    return path


def save_locked_checkpoint(checkpoint: dict, path: Union[str, Path], key: Key, overwrite: bool = True) -> Path:
    """``torch.save`` into memory, then :func:`write_locked`."""
    with io.BytesIO() as buffer:
        torch.save(plain_dict(checkpoint), buffer)
        with buffer.getbuffer() as payload:  # no copy of the serialized checkpoint
            return write_locked(path, payload, key, overwrite)


class UnlockedCheckpoint(dict):
    """A checkpoint read from a locked file: authenticated under the key, so nobody without it wrote it.

    No file can produce this type (``torch.load`` with ``weights_only`` builds plain dicts), so it cannot be
    forged; it is saved as the plain dict it holds (:func:`plain_dict`).
    """


def plain_dict(checkpoint):
    """``checkpoint`` as ``torch.save`` may write it: an :class:`UnlockedCheckpoint` becomes a plain dict (the
    type exists in memory only; a file holding it would not load with ``weights_only``)."""
    return dict(checkpoint) if isinstance(checkpoint, UnlockedCheckpoint) else checkpoint


def load_locked_checkpoint(path: Union[str, Path], key: Key, map_location=None):
    """Unlock into memory and ``torch.load`` (``weights_only``, with the plugin's allowlist).

    Returns:
        UnlockedCheckpoint | object: the checkpoint; a dict comes back as an
        :class:`UnlockedCheckpoint`, which says it came from a locked file.
    """
    with io.BytesIO() as buffer:
        unlock_to(path, key, buffer)
        buffer.seek(0)
        checkpoint = torch.load(buffer, map_location=map_location, weights_only=True)
    return UnlockedCheckpoint(checkpoint) if isinstance(checkpoint, dict) else checkpoint
