from .hooks import CheckpointKeyHook, KeyProtectHook

__all__ = ['CheckpointKeyHook', 'KeyProtectHook']
