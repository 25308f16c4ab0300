"""Keys and the block ciphers they drive (SHF, NP, FFX and their chains)."""
from .ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD, METHODS, BlockCipher, parse_method
from .conditions import condition_cipher, encrypt_batch
from .key_files import export_arrays, load_key, write_legacy_key, write_password_key, write_random_key
from .keys import ArrayKey, LegacyKey, SecretKey
from .run_key import KEY_FILE_ENV, RunKey, named_key_file

__all__ = [
    'DEFAULT_BLOCK_SIZE', 'DEFAULT_METHOD', 'METHODS', 'BlockCipher', 'parse_method', 'condition_cipher',
    'encrypt_batch', 'KEY_FILE_ENV', 'ArrayKey', 'LegacyKey', 'SecretKey', 'export_arrays',
    'load_key', 'write_legacy_key', 'write_password_key', 'write_random_key', 'RunKey', 'named_key_file'
]
