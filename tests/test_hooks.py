import pytest
from mmcv.transforms import Compose

from mmseg_keyprotect.errors import ConfigError, KeyFileError
from mmseg_keyprotect.hooks import KeyProtectHook, check_checkpoint_key, walk_transforms


def test_checkpoint_record_mismatches_are_explained():
    record = dict(method='shuffle', block_size=4, fingerprint='aaaa')
    check_checkpoint_key(record, 'shuffle', 4, 'aaaa')
    check_checkpoint_key(None, 'np', 8, 'bbbb')  # unprotected checkpoints carry no record
    with pytest.raises(KeyFileError, match='wrong key: my.key gives transform fingerprint bbbb.*trained with aaaa'):
        check_checkpoint_key(record, 'shuffle', 4, 'bbbb', 'my.key')
    with pytest.raises(KeyFileError, match='trained with shuffle with M = 4, but the config encrypts with np'):
        check_checkpoint_key(record, 'np', 4, 'aaaa')


def test_walk_transforms_reaches_tta_branches(key_file):
    pipeline = Compose([dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)],
        [dict(type='BlockwiseEncrypt', key_file=key_file)], [dict(type='PackSegInputs')]])])
    names = [type(t).__name__ for t in walk_transforms(pipeline)]
    assert names.count('PackSegInputs') == 2 and names.count('BlockwiseEncrypt') == 2


def test_hook_settings_are_validated():
    assert KeyProtectHook.priority == 'NORMAL'
    with pytest.raises(ConfigError, match='num_wrong_keys must be >= 0'):
        KeyProtectHook(num_wrong_keys=-1)
