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
    return dict(method=method, block_size=cipher.block_size, verifier=make_verifier(cipher, 'checkpoint'))


def check_record_settings(record: dict, method: str, block_size: int, checkpoint: str = 'checkpoint') -> None:
    """Raise :class:`KeyFileError` unless ``record`` is a well-formed record of ``method`` at M = ``block_size``.

    Needs no key: a server of encrypted images checks this much.
    """
    if (not isinstance(record, dict) or not isinstance(record.get('method'), str)
            or not isinstance(record.get('block_size'), int) or not ('verifier' in record or 'fingerprint' in record)):
        raise KeyFileError(f'{checkpoint} has a damaged mmseg-keyprotect record ({str(record)[:60]}): its key '
                           'cannot be checked; use an undamaged copy of the checkpoint')
    if (record['method'], record['block_size']) != (method, block_size):
        raise KeyFileError(f'{checkpoint} was trained with {record["method"]} with M = {record["block_size"]}, but '
                           f'the config encrypts with {method} with M = {block_size}')


def check_checkpoint_key(record: Optional[dict], method: str, cipher: BlockCipher,
                         key_name: str = 'the key', checkpoint: str = 'checkpoint') -> None:
    """Raise :class:`KeyFileError` when a key does not match a checkpoint's record, or the record is damaged
    (None, an unprotected checkpoint's: nothing to check)."""
    if record is None:
        return
    check_record_settings(record, method, cipher.block_size, checkpoint)
    if 'verifier' in record:
        try:
            right = matches(record['verifier'], cipher, 'checkpoint')
        except KeyProtectError as error:
            raise KeyFileError(f'{checkpoint}: {error}') from None
    else:
        right = hmac.compare_digest(str(record.get('fingerprint')), cipher.fingerprint)
    if not right:
        raise KeyFileError(f'wrong key: {key_name} is not the key {checkpoint} was trained with '
                           f'({record["method"]} with M = {record["block_size"]}); use the key file the model was '
                           'trained with')
