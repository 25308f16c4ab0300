"""Keys and the block ciphers they drive (SHF, NP, FFX and their chains)."""
from .ciphers import METHODS, BlockCipher, parse_method
from .keys import (
                   ArrayKey,
                   LegacyKey,
                   SecretKey,
                   export_arrays,
                   load_key,
                   write_legacy_key,
                   write_password_key,
                   write_random_key,
)
from .run_key import KEY_FILE_ENV, RunKey, named_key_file

__all__ = [
    'METHODS', 'BlockCipher', 'parse_method', 'KEY_FILE_ENV', 'ArrayKey', 'LegacyKey', 'SecretKey', 'export_arrays',
    'load_key', 'write_legacy_key', 'write_password_key', 'write_random_key', 'RunKey', 'named_key_file'
]
