from pathlib import Path

import pytest

from mmseg_keyprotect.apis.runners import build_test_runner, build_train_runner, close_distributed, load_run_config
from mmseg_keyprotect.errors import ConfigError


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


PROTECTED = 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_np-m4.py'


def tiny(data_root, iterations=2) -> dict:
    options = {'train_cfg.max_iters': iterations, 'train_cfg.val_interval': iterations,
               'default_hooks.checkpoint.interval': iterations, 'train_dataloader.batch_size': 2}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False,
                        f'{loader}.dataset.data_root': str(data_root)})
    return options


def test_a_password_key_is_derived_once_for_train_test_and_inference(tmp_path, shapes_root, monkeypatch):
    """One process trains (locked checkpoints), tests and infers with a password key: one scrypt derivation,
    no prompt, although the transform, the preprocessor, the hook, the checkpoint backend and loader and the
    inferencer all use the key."""
    from mmseg_keyprotect.apis import ProtectedInferencer
    from mmseg_keyprotect.crypto import passwords as key_module
    from mmseg_keyprotect.crypto.key_files import write_password_key
    key = tmp_path / 'password.key'
    write_password_key(key, 'correct horse battery staple')
    monkeypatch.setenv('KEYPROTECT_PASSWORD', 'correct horse battery staple')
    monkeypatch.setattr('getpass.getpass', lambda *_: pytest.fail('prompted for the password'))
    derivations = []
    original = key_module.derive_material
    monkeypatch.setattr(key_module, "derive_material", lambda *a, **k: derivations.append(1) or original(*a, **k))
    build_train_runner(PROTECTED, key_file=str(key), work_dir=str(tmp_path / 'work'),
                       cfg_options=tiny(shapes_root)).train()
    checkpoint = str(tmp_path / 'work' / 'iter_2.pth')
    build_test_runner(PROTECTED, checkpoint, key_file=str(key), work_dir=str(tmp_path / 'work'),
                      cfg_options=tiny(shapes_root)).test()
    inferencer = ProtectedInferencer(PROTECTED, checkpoint, key_file=str(key), device='cpu')
    inferencer(str(next((Path(shapes_root) / 'img_dir' / 'val').iterdir())))
    assert len(derivations) == 1


def test_what_a_run_needs_from_its_key_is_checked_before_anything_is_built(tmp_path, key_file):
    from mmseg_keyprotect.crypto.key_files import export_arrays, load_key, write_legacy_key
    from mmseg_keyprotect.errors import KeyFileError
    write_legacy_key(tmp_path / 'legacy.key', 7)
    with pytest.warns(UserWarning, match='legacy'):
        with pytest.raises(KeyFileError, match='legacy.key.*checkpoints are written locked'):
            build_train_runner(PROTECTED, key_file=str(tmp_path / 'legacy.key'), work_dir=str(tmp_path))
    arrays = tmp_path / 'arrays.key'
    arrays.write_text(__import__('json').dumps(export_arrays(load_key(key_file), 'np', 8)))
    arrays.chmod(0o600)
    with pytest.raises(KeyFileError, match='block size 8, not 4'):
        build_test_runner(PROTECTED, __file__, key_file=str(arrays), work_dir=str(tmp_path))
    assert not list(tmp_path.glob('**/*.log'))  # refused before a runner (and its log) existed


def test_a_config_naming_another_key_file_is_refused(tmp_path, key_file, other_key_file):
    from mmseg_keyprotect.config import protect_config, write_leaf_config
    stock = 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
    protected, notes = protect_config(stock, 'np', 4, key_file=key_file)
    config = write_leaf_config(stock, tmp_path / 'named.py', protected, 'np', 4, notes)
    with pytest.raises(ConfigError, match='--key-file .*other.key given, but the config names'):
        build_train_runner(str(config), key_file=other_key_file, work_dir=str(tmp_path))
    assert build_train_runner(str(config), work_dir=str(tmp_path)).cfg.work_dir == str(tmp_path)


def test_close_distributed_destroys_the_groups_and_is_a_no_op_without_them(tmp_path):
    import torch.distributed as torch_dist
    close_distributed()  # nothing started: nothing to do
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    torch_dist.new_group(backend='gloo')  # as MMEngine's result collection on CPU makes one
    close_distributed()
    assert not torch_dist.is_initialized()


@pytest.mark.parametrize('locked', [True, False])
def test_a_protected_config_of_an_earlier_version_gets_the_checkpoint_hook_and_backend(tmp_path, locked):
    """Earlier protected configs had one hook that also locked checkpoints; the tools give them what
    protect_config writes now, and keep lock_checkpoints=False plain."""
    base = Path(__file__).resolve().parents[2] / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
    hook = "dict(type='KeyProtectHook', num_wrong_keys=1)" if locked else \
        "dict(type='KeyProtectHook', lock_checkpoints=False)"
    config = tmp_path / 'earlier.py'
    config.write_text(f'''_base_ = [{str(base)!r}]
custom_imports = dict(imports=['mmseg_keyprotect'], allow_failed_imports=False)
encrypt = dict(type='BlockwiseEncrypt', method='np', block_size=4)
train_pipeline = _base_.train_pipeline[:-1] + [encrypt, _base_.train_pipeline[-1]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [{hook}]
''')
    cfg = load_run_config(str(config))
    assert [h['type'] for h in cfg.custom_hooks] == ['KeyProtectHook', 'CheckpointKeyHook']
    assert 'lock_checkpoints' not in cfg.custom_hooks[0]
    expected = dict(backend='keyprotect_locked') if locked else None
    assert cfg.default_hooks.checkpoint.backend_args == expected
    # A config that names its backend keeps it.
    config.write_text(config.read_text() + "default_hooks = dict(checkpoint=dict(backend_args=None))\n"
                      "custom_hooks = [dict(type='KeyProtectHook')]\n")
    assert load_run_config(str(config)).default_hooks.checkpoint.backend_args is None
