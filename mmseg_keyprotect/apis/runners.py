"""Build MMEngine runners for training and testing, as mmseg's tools do.

``tools/train.py`` and ``tools/test.py`` are thin command lines over
:func:`build_train_runner` and :func:`build_test_runner`; the differences
from mmseg's own tools are the ``key_file`` argument and the plugin import.
"""
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from ..checkpoint.mmengine_io import LOCKED_BACKEND_ARGS, writes_locked_checkpoints
from ..config.check import check_config
from ..config.loading import resolve_config_path
from ..config.pipelines import CHECKPOINT_HOOK, HOOK, encrypt_settings, preprocessor_encrypts, transform_type
from ..crypto.run_key import RunKey
from ..datasets.transforms.blockwise_encrypt import transform_settings
from ..errors import ConfigError


def prepare_run_key(cfg: Config, key_file: Optional[str] = None, training: bool = False) -> Optional[RunKey]:
    """Load the run's key once, and check everything the run will need from it before anything is built.

    A config that encrypts nothing needs no key (None). Otherwise: the
    pipelines must all be protected alike; the key is ``key_file``, else the
    one the config names, else ``$KEYPROTECT_KEY_FILE``; it must have a
    sub-key for every method and block size the config uses (an exported-array
    key holds one); and a training run that writes locked checkpoints (what
    protected configs do) needs a key with secret material to lock them with.

    Raises:
        ConfigError: pipelines that disagree, or two key files named.
        KeyFileError: a missing, invalid or unsuitable key.
    """
    settings = encrypt_settings(cfg)
    if not settings:
        return None
    refuse_partly_protected(cfg)
    preprocessor = cfg.model.get('data_preprocessor') or {}
    if preprocessor_encrypts(preprocessor):
        settings = settings + [preprocessor]
    resolved = [transform_settings(setting) for setting in settings]
    named = {osp.abspath(osp.expanduser(s['key_file'])) for s in resolved if s['key_file']}
    if len(named) > 1:
        raise ConfigError(f'the config names several key files ({", ".join(sorted(named))}); a run has one key')
    if key_file is not None and named and named != {osp.abspath(osp.expanduser(key_file))}:
        raise ConfigError(f'--key-file {key_file} given, but the config names the key file {named.pop()}')
    run_key = RunKey.load(key_file if key_file is not None else next(iter(named), None))
    for setting in {(s['method'], s['block_size']) for s in resolved}:
        run_key.cipher(*setting)
    if training and writes_locked_checkpoints(cfg):
        run_key.require_lockable()
    return run_key


def complete_protected_config(cfg: Config) -> None:
    """Give a protected config written by an earlier version what :func:`~mmseg_keyprotect.config.protect_config`
    now writes: the checkpoint key hook, and checkpoints written locked unless its hook said otherwise.

    Configs that name the checkpoint backend themselves, or that have no ``KeyProtectHook``, are left as they are.
    """
    hooks = cfg.get('custom_hooks') or []
    hook = next((h for h in hooks if transform_type(h) == HOOK), None)
    if hook is None or any(transform_type(h) == CHECKPOINT_HOOK for h in hooks):
        return
    locked = hook.pop('lock_checkpoints', True)
    cfg.custom_hooks = list(hooks) + [dict(type=CHECKPOINT_HOOK)]
    checkpoint_hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint_hook is not None and 'backend_args' not in checkpoint_hook:
        checkpoint_hook['backend_args'] = dict(LOCKED_BACKEND_ARGS) if locked else None


def load_run_config(config: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                    work_dir: Optional[str] = None) -> Config:
    """The config of a run, as mmseg's tools prepare it: launcher, overrides and work dir."""
    cfg = Config.fromfile(resolve_config_path(config))
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(str(config)))[0])
    complete_protected_config(cfg)
    return cfg


def refuse_partly_protected(cfg: Config) -> None:
    """Raise :class:`ConfigError` when some pipelines encrypt and others (train, val, test, TTA) do not.

    A config with only some pipelines protected would feed plain images to a
    protected model without a word; the hook refuses such a config too, but a
    config with one added transform line has no hook.
    """
    if encrypt_settings(cfg):
        problems = check_config(cfg)
        if problems:
            raise ConfigError('the config protects some pipelines but not all of them:\n  ' + '\n  '.join(problems))


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let MMEngine's launcher run DDP on CPU (gloo), where it assumes CUDA.

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper
    passes ``device_ids=[LOCAL_RANK]``; both fail without CUDA. Initialising
    the gloo process group first (the Runner then skips its own) and asking
    for ``device_ids=None`` is all it takes.
    """
    import torch
    import torch.distributed as torch_dist
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ConfigError(f'--launcher {cfg.launcher} needs GPUs; on CPU use torchrun with --launcher pytorch')
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                                 find_unused_parameters=cfg.get('find_unused_parameters', False))


def close_distributed() -> None:
    """End a distributed run cleanly: free what the run left, then destroy the process groups.

    MMEngine leaves the groups open. Torn down with the interpreter instead,
    gloo's worker threads still hold work of the DDP wrapper and abort a rank
    now and then ("terminate called without an active exception") after a run
    that succeeded, and the launcher reports a failure. Call it once the runner
    is out of reference.
    """
    import gc

    import torch.distributed as torch_dist
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()
        torch_dist.destroy_process_group()


def build_train_runner(config: str, key_file: Optional[str] = None, work_dir: Optional[str] = None,
                       resume: bool = False, amp: bool = False, cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Runner:
    """A runner that trains ``config`` (``runner.train()`` starts it).

    Args:
        config (str): config path.
        key_file (str, optional): key file; default the one the config names, else ``$KEYPROTECT_KEY_FILE``.
        work_dir (str, optional): default ``./work_dirs/<config name>``.
        resume (bool): resume from the latest checkpoint in the work dir.
        amp (bool): automatic mixed precision (``AmpOptimWrapper``).
        cfg_options (dict, optional): overrides, as ``--cfg-options``.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
    """
    cfg = load_run_config(config, cfg_options, launcher, work_dir)
    prepare_run_key(cfg, key_file, training=True)
    if amp:
        import torch
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a GPU: MMEngine\'s AmpOptimWrapper runs on CUDA (and NPU/MLU) devices, '
                              'and this machine has none')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ConfigError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    cfg.resume = resume
    prepare_cpu_distributed(cfg)
    return Runner.from_cfg(cfg)


def build_test_runner(config: str, checkpoint: str, key_file: Optional[str] = None,
                      work_dir: Optional[str] = None, out: Optional[str] = None, show: bool = False,
                      show_dir: Optional[str] = None, wait_time: float = 2, tta: bool = False,
                      cfg_options: Optional[dict] = None, launcher: str = 'none') -> Runner:
    """A runner that evaluates ``checkpoint`` (``runner.test()`` starts it).

    Args:
        checkpoint (str): checkpoint path; its key fingerprint is checked
            against the key when it is loaded.
        out (str, optional): directory for the predicted label maps.
        show (bool), show_dir (str, optional), wait_time (float): drawing of
            predictions on the (plain) input images.
        tta (bool): use ``tta_model`` and ``tta_pipeline``.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    cfg = load_run_config(config, cfg_options, launcher, work_dir)
    cfg.load_from = checkpoint
    if show and not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        raise ConfigError('--show opens a window, and no display is available ($DISPLAY is not set); '
                          'use --show-dir to save the drawings instead')
    if show or show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ConfigError('--show/--show-dir need default_hooks.visualization in the config')
        # mmseg's hook draws every 50th batch by default; a show dir is expected to show them all.
        hook.update(draw=True, show=show, wait_time=wait_time, interval=1)
        if show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        if cfg.get('tta_pipeline') is None or cfg.get('tta_model') is None:
            raise ConfigError('--tta needs tta_pipeline and tta_model in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator.update(output_dir=out, keep_results=True)
    prepare_run_key(cfg, key_file)
    prepare_cpu_distributed(cfg)
    return Runner.from_cfg(cfg)
