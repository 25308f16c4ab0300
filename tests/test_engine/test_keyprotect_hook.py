import pytest

from mmseg_keyprotect.checkpoint import check_checkpoint_key
from mmseg_keyprotect.engine.hooks import KeyProtectHook
from mmseg_keyprotect.errors import ConfigError, KeyFileError


def test_checkpoint_record_mismatches_are_explained():
    from mmseg_keyprotect.checkpoint import protection_record
    from mmseg_keyprotect.crypto import SecretKey
    right, wrong = SecretKey.generate().cipher('shuffle', 4), SecretKey.generate().cipher('shuffle', 4)
    record = protection_record('shuffle', right)
    check_checkpoint_key(record, 'shuffle', right)
    check_checkpoint_key(None, 'np', wrong)  # unprotected checkpoints carry no record
    with pytest.raises(KeyFileError, match='wrong key: my.key is not the key ckpt.pth was trained with'):
        check_checkpoint_key(record, 'shuffle', wrong, 'my.key', 'ckpt.pth')
    with pytest.raises(KeyFileError, match='trained with shuffle with M = 4, but the config encrypts with np'):
        check_checkpoint_key(record, 'np', right)
    # Records written before verifiers existed hold the plain fingerprint; they still load, and still check.
    old = dict(method='shuffle', block_size=4, fingerprint=right.fingerprint)
    check_checkpoint_key(old, 'shuffle', right)
    with pytest.raises(KeyFileError, match='wrong key'):
        check_checkpoint_key(old, 'shuffle', wrong)
    # A record emptied or reshaped is damaged, not a wrong key: the right key is not blamed.
    for damaged in ({}, [], dict(method='shuffle'), dict(method='shuffle', block_size='4', verifier={})):
        with pytest.raises(KeyFileError, match='ckpt.pth has a damaged mmseg-keyprotect record'):
            check_checkpoint_key(damaged, 'shuffle', right, 'my.key', 'ckpt.pth')


def test_hook_settings_are_validated():
    assert KeyProtectHook.priority == 'NORMAL'
    with pytest.raises(ConfigError, match='num_wrong_keys must be >= 0'):
        KeyProtectHook(num_wrong_keys=-1)


def oracle_runner(tmp_path, key_file, oracle_root, on_device=False, num_wrong_keys=3):
    """A test runner of the protected demo config whose model is the key oracle (see tests/key_oracle.py)."""
    from mmengine.runner import Runner

    from mmseg_keyprotect.config import protect_config
    cfg, _ = protect_config('configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py', 'shuffle', 4,
                            key_file=key_file, num_wrong_keys=num_wrong_keys, on_device=on_device)
    preprocessor = cfg.model.data_preprocessor
    cfg.model = dict(type='KeyOracleSegmentor', key_file=key_file, data_preprocessor=preprocessor)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(oracle_root)
    cfg.work_dir = str(tmp_path)
    cfg.load_from = None
    return Runner.from_cfg(cfg)


@pytest.fixture(scope='module')
def oracle_root(tmp_path_factory):
    from key_oracle import write_oracle_dataset
    return write_oracle_dataset(tmp_path_factory.mktemp('oracle'), num_train=2, num_val=4, size=128)


@pytest.mark.parametrize('on_device', [False, True])
def test_protection_gap_has_the_values_of_each_condition(tmp_path, key_file, oracle_root, on_device):
    """With the true key the oracle is perfect; plain images and each wrong key give exactly what a
    direct computation gives for that cipher, so a condition run with the wrong cipher fails here."""
    import numpy as np
    from key_oracle import expected_miou

    from mmseg_keyprotect.crypto import load_key
    runner = oracle_runner(tmp_path, key_file, oracle_root, on_device)
    metrics = runner.test()
    [hook] = [h for h in runner.hooks if isinstance(h, KeyProtectHook)]
    truth = load_key(key_file).cipher('shuffle', 4)
    assert metrics['mIoU'] == pytest.approx(100.0)
    assert metrics['plain/mIoU'] == pytest.approx(expected_miou(oracle_root, truth, None), abs=0.006)
    wrong_ciphers = [cipher for name, cipher in hook.conditions if name != 'plain']
    wrong = [expected_miou(oracle_root, truth, cipher) for cipher in wrong_ciphers]
    assert len(wrong) == 3 and len({c.fingerprint for c in wrong_ciphers} | {truth.fingerprint}) == 4
    assert metrics['wrong_key/mIoU_mean'] == pytest.approx(np.mean(wrong), abs=0.006)
    assert metrics['wrong_key/mIoU_max'] == pytest.approx(max(wrong), abs=0.006)
    assert max(wrong) < 50 and metrics['plain/mIoU'] < 50
