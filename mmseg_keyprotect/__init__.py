"""mmseg-keyprotect: protect MMSegmentation models with a secret key.

Importing the package registers its transform, data preprocessor, hook and dataset in mmseg's
registries; configs load it with
``custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)``.
"""
from .checkpoint import allow_checkpoint_globals
from .config import check_config, protect_config
from .crypto import BlockCipher, load_key, parse_method, write_password_key, write_random_key
from .datasets import BlockwiseEncrypt, ShapesDataset
from .engine import KeyProtectHook
from .errors import ConfigError, ImageFormatError, KeyFileError, KeyProtectError
from .models import KeyProtectDataPreProcessor
from .version import __version__

allow_checkpoint_globals()

__all__ = [
    '__version__', 'BlockCipher', 'BlockwiseEncrypt', 'ConfigError', 'ImageFormatError', 'KeyFileError',
    'KeyProtectDataPreProcessor', 'KeyProtectError', 'KeyProtectHook', 'ShapesDataset', 'check_config', 'load_key',
    'parse_method', 'protect_config', 'write_password_key', 'write_random_key'
]
