import pytest
from mmcv.transforms import Compose

from mmseg_keyprotect.checkpoint import check_checkpoint_key
from mmseg_keyprotect.engine.hooks.keyprotect_hook import KeyProtectHook, walk_transforms
from mmseg_keyprotect.errors import ConfigError, KeyFileError


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


def test_one_transform_line_is_enough(tmp_path, key_file, shapes_root):
    """A stock pipeline plus only BlockwiseEncrypt: the hook makes PackSegInputs keep the padding."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_keyprotect.config.pipelines import config_pipelines
    cfg = Config.fromfile('configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py')
    for _, pipeline in config_pipelines(cfg):
        if pipeline[-1]['type'] == 'PackSegInputs':
            pipeline.insert(len(pipeline) - 1, dict(type='BlockwiseEncrypt', key_file=key_file))
    cfg.tta_pipeline = None
    cfg.custom_hooks = [dict(type='KeyProtectHook', num_wrong_keys=1)]
    cfg.work_dir = str(tmp_path)
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(shapes_root)
    for unused in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
        cfg.pop(unused)
    runner = Runner.from_cfg(cfg)
    runner._test_loop = runner.build_test_loop(runner._test_loop)
    runner.call_hook('before_run')
    [pack] = [t for t in runner.test_dataloader.dataset.pipeline.transforms if type(t).__name__ == 'PackSegInputs']
    assert 'padding_size' in pack.meta_keys
