"""Locked checkpoints in MMEngine: a file backend that writes them, and a loader that reads them.

Importing the plugin registers both, so every MMEngine code path works on
locked files given the key: ``load_from``, ``--resume``, mmseg's own
``tools/test.py``, the inferencer. The loader replaces MMEngine's loader of
local files; files that are not locked load exactly as before.
"""
import os.path as osp

import torch
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader

from ..crypto.run_key import RunKey
from .locked import is_locked, load_locked_checkpoint, write_locked

LOCKED_BACKEND = 'keyprotect_locked'
#: ``default_hooks.checkpoint.backend_args`` of a run whose checkpoints are written locked under its key.
LOCKED_BACKEND_ARGS = dict(backend=LOCKED_BACKEND)


def writes_locked_checkpoints(cfg) -> bool:
    """Whether a run of ``cfg`` writes its checkpoints locked (its CheckpointHook uses the locked backend)."""
    checkpoint_hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    return (checkpoint_hook.get('backend_args') or {}).get('backend') == LOCKED_BACKEND


@register_backend(LOCKED_BACKEND)
class LockedLocalBackend(LocalBackend):
    """MMEngine's local file backend, writing every checkpoint locked under the run's key.

    ``CheckpointHook`` hands it the serialized checkpoint; it is encrypted in
    memory and written atomically. Text files (``last_checkpoint``) stay plain.
    """

    def put(self, obj: bytes, filepath) -> None:
        write_locked(filepath, obj, RunKey.current().key)


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None):
    """MMEngine's loader of local files, which also unlocks locked ones with the run's key (named as MMEngine's,
    whose log line names the backend after the function)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if is_locked(filename):
        return load_locked_checkpoint(filename, RunKey.current().key, map_location)
    return torch.load(filename, map_location=map_location)
