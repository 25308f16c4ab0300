"""What a protected checkpoint records about its key, and the check against it.

The record holds the method, the block size and a salted, slow verifier of the
transform (:mod:`mmseg_keyprotect.crypto.verifier`), never the key: loading with
another key fails with a clear error instead of silently producing garbage, and
the file does not let anyone test candidate keys quickly. Records written
before verifiers existed hold a plain ``fingerprint``; they are still checked.
"""
import hmac
from typing import Optional

from ..crypto.ciphers import BlockCipher
from ..crypto.verifier import make_verifier, matches
from ..errors import KeyFileError, KeyProtectError

CHECKPOINT_META_KEY = 'keyprotect'


def protection_record(method: str, cipher: BlockCipher) -> dict:
    """The record for ``meta['keyprotect']``: method, M and a fresh verifier of ``cipher``."""
    return dict(method=method, block_size=cipher.block_size, verifier=make_verifier(cipher))


def check_checkpoint_key(record: Optional[dict], method: str, cipher: BlockCipher,
                         key_name: str = '$KEYPROTECT_KEY_FILE', checkpoint: str = 'checkpoint') -> None:
    """Raise :class:`KeyFileError` when a key does not match a checkpoint's record (None: nothing to check)."""
    if not record:
        return
    if not isinstance(record, dict) or 'method' not in record or 'block_size' not in record:
        raise KeyFileError(f'{checkpoint} has a damaged mmseg-keyprotect record')
    expected = f'{record["method"]} with M = {record["block_size"]}'
    if (record['method'], record['block_size']) != (method, cipher.block_size):
        raise KeyFileError(f'{checkpoint} was trained with {expected}, but the config encrypts with '
                           f'{method} with M = {cipher.block_size}')
    if 'verifier' in record:
        try:
            right = matches(record['verifier'], cipher)
        except KeyProtectError as error:
            raise KeyFileError(f'{checkpoint}: {error}') from None
    else:
        right = hmac.compare_digest(str(record.get('fingerprint')), cipher.fingerprint)
    if not right:
        raise KeyFileError(f'wrong key: {key_name} is not the key {checkpoint} was trained with ({expected}); '
                           'use the key file the model was trained with')
