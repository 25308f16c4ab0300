"""Exceptions raised for bad user input, so callers can tell them from bugs."""


class KeyProtectError(ValueError):
    """Base class: the message names the file, setting or value at fault."""


class KeyFileError(KeyProtectError):
    """A key file is missing, unreadable, malformed, of an unknown version or
    does not match what it is used with."""


class ImageFormatError(KeyProtectError):
    """An image has a mode, dtype, size or value range the cipher cannot take."""


class ConfigError(KeyProtectError):
    """A config cannot be protected, or is protected in a way that breaks
    block alignment."""
