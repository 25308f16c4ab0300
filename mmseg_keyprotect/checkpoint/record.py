"""What a protected checkpoint records about its key, and the check against it.

The record holds the method, the block size and the transform fingerprint,
never the key; loading with another key fails with a clear error instead of
silently producing garbage.
"""
import hmac
from typing import Optional

from ..errors import KeyFileError

CHECKPOINT_META_KEY = 'keyprotect'


def protection_record(encrypt) -> dict:
    """The record of a :class:`~mmseg_keyprotect.datasets.transforms.BlockwiseEncrypt` for ``meta['keyprotect']``."""
    return dict(method=encrypt.method, block_size=encrypt.block_size, fingerprint=encrypt.fingerprint)


def check_checkpoint_key(record: Optional[dict], method: str, block_size: int, fingerprint: str,
                         key_name: str = '$KEYPROTECT_KEY_FILE', checkpoint: str = 'checkpoint') -> None:
    """Raise :class:`KeyFileError` when a key does not match a checkpoint's record."""
    if not record:
        return
    expected = f'{record["method"]} with M = {record["block_size"]}'
    if (record['method'], record['block_size']) != (method, block_size):
        raise KeyFileError(f'{checkpoint} was trained with {expected}, but the config encrypts with '
                           f'{method} with M = {block_size}')
    if not hmac.compare_digest(str(record['fingerprint']), fingerprint):
        raise KeyFileError(f'wrong key: {key_name} gives transform fingerprint {fingerprint}, but {checkpoint} '
                           f'was trained with {record["fingerprint"]} ({expected}); use the key file the model '
                           'was trained with')
