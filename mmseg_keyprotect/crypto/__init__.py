"""Keys and the block ciphers they drive (SHF, NP, FFX and their chains)."""
from .ciphers import METHODS, BlockCipher, parse_method
from .keys import (
                   KEY_FILE_ENV,
                   ArrayKey,
                   LegacyKey,
                   SecretKey,
                   export_arrays,
                   load_key,
                   write_legacy_key,
                   write_password_key,
                   write_random_key,
)

__all__ = [
    'METHODS', 'BlockCipher', 'parse_method', 'KEY_FILE_ENV', 'ArrayKey', 'LegacyKey', 'SecretKey', 'export_arrays',
    'load_key', 'write_legacy_key', 'write_password_key', 'write_random_key'
]
