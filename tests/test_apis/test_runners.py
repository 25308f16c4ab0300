import os

import pytest

from mmseg_keyprotect.apis.runners import build_test_runner, load_run_config, use_key_file
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
