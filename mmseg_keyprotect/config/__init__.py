"""Protecting stock configs, checking protected ones, and finding configs to load."""
from .check import check_config, pipeline_encryption
from .leaf import leaf_config_text, write_leaf_config
from .loading import load_config, plugin_config_dir, resolve_config_path
from .pipelines import encrypt_settings
from .protect import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_KEY_CONTRASTIVE,
    DEFAULT_METHOD,
    KEY_CONTRASTIVE_NEGATIVES,
    KEY_CONTRASTIVE_WEIGHT,
    protect_config,
)

__all__ = [
    'check_config', 'pipeline_encryption', 'leaf_config_text', 'write_leaf_config', 'load_config', 'plugin_config_dir',
    'resolve_config_path', 'encrypt_settings', 'protect_config',
    'DEFAULT_BLOCK_SIZE', 'DEFAULT_KEY_CONTRASTIVE', 'DEFAULT_METHOD', 'KEY_CONTRASTIVE_NEGATIVES',
    'KEY_CONTRASTIVE_WEIGHT'
]
