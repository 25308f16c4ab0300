from .keyprotect_hook import KeyProtectHook

__all__ = ['KeyProtectHook']
