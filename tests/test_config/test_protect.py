import pytest
from mmengine.config import Config

from mmseg_keyprotect.config import (
    check_config,
    encrypt_settings,
    leaf_config_text,
    load_config,
    plugin_config_dir,
    protect_config,
    write_leaf_config,
)
from mmseg_keyprotect.config.leaf import _unscoped as unscoped
from mmseg_keyprotect.errors import ConfigError

STOCK = 'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py'


@pytest.fixture(scope='module')
def protected():
    return protect_config(STOCK, 'shuffle', 4)


def names(pipeline):
    return [t['type'] for t in pipeline]


def test_every_pipeline_encrypts_right_before_packing(protected):
    cfg, _ = protected
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = names(cfg[loader].dataset.pipeline)
        assert pipeline[-2:] == ['BlockwiseEncrypt', 'PackSegInputs'], loader
        assert 'meta_keys' not in cfg[loader].dataset.pipeline[-1]  # the plugin's PackSegInputs keeps the padding
    stages = cfg.tta_pipeline[-1].transforms
    assert [t['type'] for t in stages[-2]] == ['BlockwiseEncrypt']
    assert [t['type'] for t in stages[-1]] == ['PackSegInputs']
    assert check_config(cfg) == []


def test_slide_windows_are_made_block_aligned(protected):
    cfg, notes = protected
    assert tuple(cfg.model.test_cfg.crop_size) == (768, 768)
    assert tuple(cfg.model.test_cfg.stride) == (512, 512)
    assert any('crop_size' in note for note in notes) and any('stride' in note for note in notes)


def test_plugin_import_hooks_and_locked_checkpoints_are_added(protected):
    cfg, _ = protected
    assert 'mmseg_keyprotect' in cfg.custom_imports.imports
    assert [h['type'] for h in cfg.custom_hooks] == ['KeyProtectHook', 'CheckpointKeyHook']
    assert cfg.custom_hooks[0] == dict(type='KeyProtectHook')  # the hook's own defaults, not restated
    assert cfg.default_hooks.checkpoint.backend_args == dict(backend='keyprotect_locked')
    # No key path in the config: the key comes from --key-file or $KEYPROTECT_KEY_FILE at run time.
    assert all(s.get('key_file') is None for s in encrypt_settings(cfg))


def test_protecting_twice_is_idempotent(protected):
    cfg, _ = protected
    again, _ = protect_config(cfg, 'shuffle', 4)
    assert again.train_dataloader.dataset.pipeline == cfg.train_dataloader.dataset.pipeline
    assert len(again.custom_hooks) == 2


def test_check_config_names_misplaced_steps(protected):
    cfg, _ = protected
    broken = Config(cfg.to_dict())
    pipeline = list(broken.train_dataloader.dataset.pipeline)
    encrypt = pipeline.pop(-2)
    pipeline.insert(2, encrypt)  # before RandomResize: the crop would shift the grid
    broken.train_dataloader.dataset.pipeline = pipeline
    broken.model.test_cfg.stride = (513, 513)
    problems = '\n'.join(check_config(broken))
    assert 'train_dataloader.dataset.pipeline' in problems and 'RandomCrop' in problems
    assert 'model.test_cfg.stride = (513, 513)' in problems


def test_unprotected_pipeline_is_reported():
    cfg = load_config(STOCK)
    cfg.train_dataloader.dataset.pipeline = protect_config(STOCK)[0].train_dataloader.dataset.pipeline
    problems = check_config(cfg)
    assert any('val_dataloader' in p and 'no BlockwiseEncrypt' in p for p in problems)


def test_wrapped_datasets_are_protected():
    cfg, _ = protect_config('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py', 'np', 8)
    datasets = cfg.train_dataloader.dataset.datasets
    assert len(datasets) == 2 and all(names(d.pipeline)[-2] == 'BlockwiseEncrypt' for d in datasets)
    assert check_config(cfg) == []


def test_refuses_test_time_preprocessor_padding():
    cfg = load_config(STOCK)
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=32)
    with pytest.raises(ConfigError, match='data_preprocessor.test_cfg'):
        protect_config(cfg)


def test_leaf_config_inherits_and_rebuilds_the_same(tmp_path, protected):
    cfg, notes = protected
    text = leaf_config_text(STOCK, cfg, 'shuffle', 4, notes)
    assert f"_base_ = ['{STOCK}']" in text
    # A leaf states only what protection changes: no restated pipeline steps.
    assert len([line for line in text.splitlines() if not line.startswith('#')]) < 25
    assert 'LoadImageFromFile' not in text and 'RandomCrop' not in text
    path = tmp_path / 'leaf.py'
    path.write_text(text)
    rebuilt = Config.fromfile(str(path))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert unscoped(rebuilt[loader].dataset.pipeline) == unscoped(cfg[loader].dataset.pipeline)
    assert unscoped(rebuilt.tta_pipeline) == unscoped(cfg.tta_pipeline)
    assert rebuilt.model.test_cfg == cfg.model.test_cfg
    assert check_config(rebuilt) == []


def test_leaf_restates_wrapped_datasets(tmp_path):
    stock = 'mmseg::pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py'  # a ConcatDataset of two VOC sets
    cfg, notes = protect_config(stock, 'np', 8)
    output = write_leaf_config(stock, tmp_path / 'voc.py', cfg, 'np', 8, notes)
    rebuilt = Config.fromfile(str(output))
    datasets = rebuilt.train_dataloader.dataset.datasets
    assert len(datasets) == 2 and {d.type for d in datasets} == {'PascalVOCDataset'}
    assert all(unscoped(d.pipeline) == unscoped(cfg.train_dataloader.dataset.datasets[0].pipeline) for d in datasets)
    with pytest.raises(ConfigError, match='exists'):
        write_leaf_config(stock, output, cfg, 'np', 8, notes)


def test_every_committed_protected_config_is_aligned():
    configs = sorted(plugin_config_dir().glob('*/*-m[0-9]*.py'))
    assert len(configs) >= 10
    for path in configs:
        cfg = load_config(path)
        assert encrypt_settings(cfg), path
        assert check_config(cfg) == [], path
