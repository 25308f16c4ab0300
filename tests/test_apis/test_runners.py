import os
from pathlib import Path

import pytest

from mmseg_keyprotect.apis.runners import build_test_runner, build_train_runner, load_run_config, use_key_file
from mmseg_keyprotect.errors import ConfigError, KeyFileError


def test_use_key_file_validates_then_exports_the_path(key_file, monkeypatch, tmp_path):
    monkeypatch.delenv('KEYPROTECT_KEY_FILE', raising=False)
    use_key_file(key_file)
    assert os.environ['KEYPROTECT_KEY_FILE'] == os.path.abspath(key_file)
    (tmp_path / 'bad.key').write_text('{}')
    with pytest.raises(KeyFileError):
        use_key_file(str(tmp_path / 'bad.key'))


def test_load_config_accepts_mmseg_names_and_sets_work_dir():
    cfg = load_run_config('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', {'train_cfg.max_iters': 7})
    assert cfg.train_cfg.max_iters == 7 and cfg.work_dir.endswith('segformer_mit-b0_8xb2-160k_ade20k-512x512')
    with pytest.raises(ConfigError, match='does not exist'):
        load_run_config("configs/nope.py")


def test_test_runner_needs_an_existing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        build_test_runner('configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py', str(tmp_path / 'missing.pth'))


def test_a_config_that_protects_only_some_pipelines_is_refused(tmp_path, key_env):
    """One added transform line in train and test pipelines, the inherited TTA pipeline left plain:
    --tta would feed plain images to the protected model, so the tools refuse the config, naming it."""
    config = tmp_path / 'one_line.py'
    base = Path(__file__).resolve().parents[2] / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
    config.write_text(f'''_base_ = [{str(base)!r}]
encrypt = dict(type='BlockwiseEncrypt', method='shuffle', block_size=4)
train_pipeline = _base_.train_pipeline[:-1] + [encrypt, _base_.train_pipeline[-1]]
test_pipeline = _base_.test_pipeline[:-1] + [encrypt, _base_.test_pipeline[-1]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
''')
    (tmp_path / 'model.pth').write_bytes(b'')
    for build in (lambda: build_train_runner(str(config), work_dir=str(tmp_path)),
                  lambda: build_test_runner(str(config), str(tmp_path / 'model.pth'), work_dir=str(tmp_path),
                                            tta=True)):
        with pytest.raises(ConfigError, match=r'(?s)some pipelines but not all.*tta_pipeline.*no BlockwiseEncrypt'):
            build()
