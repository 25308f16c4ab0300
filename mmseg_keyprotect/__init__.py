"""mmseg-keyprotect: protect MMSegmentation models with a secret key.

Configs load the plugin with
``custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)``.
Importing it changes these global things, and nothing else:

* mmseg's registries gain ``BlockwiseEncrypt``, ``ShapesDataset``, the data
  preprocessors ``KeyProtectDataPreProcessor`` and
  ``KeyContrastiveDataPreProcessor``, the key-contrastive segmentors,
  ``KeyProtectHook`` and ``CheckpointKeyHook``;
* ``PackSegInputs`` in mmseg's transform registry becomes the plugin's
  subclass, which also keeps the ``padding_size`` record of
  ``BlockwiseEncrypt`` (no mmseg transform writes that key, so every other
  pipeline packs exactly as before);
* MMEngine's loader of local checkpoint files is replaced by one that also
  opens locked checkpoints with the run's key (other files load exactly as
  before), and a file backend that writes locked checkpoints is registered;
* warnings of the OpenMMLab stack that no user can act on (setuptools'
  ``pkg_resources`` notice, mmseg's ``build_loss`` and ``avg_non_ignore``
  notices) are filtered, unless the process has warning options of its own
  (``python -W default``);
* torch's safe globals for ``torch.load(weights_only=True)`` gain the
  MMEngine and numpy types that MMEngine checkpoints hold, so checkpoints load
  under torch >= 2.6 with ``weights_only`` kept on.

``docs/en/user_guides/protect_configs.md`` says the same for users; a test
checks that stock pipelines and stock checkpoints behave as without the plugin.
"""
from .utils.stack_warnings import quiet_stack_warnings

quiet_stack_warnings()  # before the stack is imported: its import warns too

from .checkpoint import allow_checkpoint_globals
from .config import check_config, protect_config
from .crypto import BlockCipher, load_key, parse_method, write_password_key, write_random_key
from .datasets import BlockwiseEncrypt, ShapesDataset
from .engine import CheckpointKeyHook, KeyProtectHook
from .errors import ConfigError, ImageFormatError, KeyFileError, KeyProtectError
from .models import KeyProtectDataPreProcessor
from .version import __version__

allow_checkpoint_globals()

__all__ = [
    '__version__', 'BlockCipher', 'BlockwiseEncrypt', 'CheckpointKeyHook', 'ConfigError', 'ImageFormatError',
    'KeyFileError', 'KeyProtectDataPreProcessor', 'KeyProtectError', 'KeyProtectHook', 'ShapesDataset', 'check_config',
    'load_key', 'parse_method', 'protect_config', 'write_password_key', 'write_random_key'
]
