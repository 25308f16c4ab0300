from .checkpoint_key_hook import CheckpointKeyHook
from .keyprotect_hook import KeyProtectHook

__all__ = ['CheckpointKeyHook', 'KeyProtectHook']
