from .hooks import KeyProtectHook

__all__ = ['KeyProtectHook']
