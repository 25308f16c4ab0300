"""mmseg-keyprotect: protect MMSegmentation models with a secret key.

Importing the package registers its transform, data preprocessor, hook and dataset in mmseg's
registries; configs load it with
``custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)``.
"""
from .checkpoints import allow_checkpoint_globals
from .ciphers import BlockCipher, parse_method
from .data_preprocessor import KeyProtectDataPreProcessor
from .datasets import ShapesDataset
from .errors import ConfigError, ImageFormatError, KeyFileError, KeyProtectError
from .hooks import KeyProtectHook
from .keys import load_key, write_password_key, write_random_key
from .protect import check_config, protect_config
from .transforms import BlockwiseEncrypt
from .version import __version__

allow_checkpoint_globals()

__all__ = [
    '__version__', 'BlockCipher', 'BlockwiseEncrypt', 'ConfigError', 'ImageFormatError', 'KeyFileError',
    'KeyProtectDataPreProcessor', 'KeyProtectError', 'KeyProtectHook', 'ShapesDataset', 'check_config', 'load_key', 'parse_method', 'protect_config',
    'write_password_key', 'write_random_key'
]
