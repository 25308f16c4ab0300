"""Locked checkpoints in MMEngine: a file backend that writes them, and a loader that reads them.

Importing the plugin registers both, so every MMEngine code path works on
locked files given the key: ``load_from``, ``--resume``, mmseg's own
``tools/test.py``, the inferencer. The loader replaces MMEngine's loader of
local files; files that are not locked load exactly as before.
"""
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader

from ..crypto.keys import Key, load_key
from .locked import is_locked, load_locked_checkpoint, write_locked

LOCKED_BACKEND = 'keyprotect_locked'
_key_file_override: Optional[str] = None


@contextmanager
def unlocking_with(key_file: Optional[str]) -> Iterator[None]:
    """Unlock checkpoints loaded inside the block with ``key_file`` (default: ``$KEYPROTECT_KEY_FILE``)."""
    global _key_file_override
    previous, _key_file_override = _key_file_override, key_file
    try:
        yield
    finally:
        _key_file_override = previous


def checkpoint_key(key_file: Optional[str] = None) -> Key:
    """The key that locks and unlocks checkpoints: ``key_file``, the one given to
    :func:`unlocking_with`, or ``$KEYPROTECT_KEY_FILE``."""
    return load_key(key_file or _key_file_override)


@register_backend(LOCKED_BACKEND)
class LockedLocalBackend(LocalBackend):
    """MMEngine's local file backend, writing every checkpoint locked under the key.

    ``CheckpointHook`` hands it the serialized checkpoint; it is encrypted in
    memory and written atomically. Text files (``last_checkpoint``) stay plain.

    Args:
        key_file (str, optional): the model's key file; default ``$KEYPROTECT_KEY_FILE``.
    """

    def __init__(self, key_file: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.key_file = key_file

    def put(self, obj: bytes, filepath) -> None:
        write_locked(filepath, obj, checkpoint_key(self.key_file))


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_local_checkpoint(filename: str, map_location=None):
    """MMEngine's loader of local files, which also unlocks locked ones with :func:`checkpoint_key`."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if is_locked(filename):
        return load_locked_checkpoint(filename, checkpoint_key(), map_location)
    return torch.load(filename, map_location=map_location)
