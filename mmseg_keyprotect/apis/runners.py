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

from ..config.check import check_config
from ..config.loading import resolve_config_path
from ..config.pipelines import encrypt_settings
from ..crypto.keys import KEY_FILE_ENV, load_key
from ..errors import ConfigError


def use_key_file(key_file: Optional[str]) -> None:
    """Point ``BlockwiseEncrypt`` (in this process and its workers) at a key file.

    Only the path travels, through ``$KEYPROTECT_KEY_FILE``; the key is
    validated here so that a bad file fails before any model is built.
    """
    if key_file is None:
        return
    load_key(key_file)
    os.environ[KEY_FILE_ENV] = osp.abspath(osp.expanduser(key_file))


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


def build_train_runner(config: str, key_file: Optional[str] = None, work_dir: Optional[str] = None,
                       resume: bool = False, amp: bool = False, cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Runner:
    """A runner that trains ``config`` (``runner.train()`` starts it).

    Args:
        config (str): config path.
        key_file (str, optional): key file; default ``$KEYPROTECT_KEY_FILE``.
        work_dir (str, optional): default ``./work_dirs/<config name>``.
        resume (bool): resume from the latest checkpoint in the work dir.
        amp (bool): automatic mixed precision (``AmpOptimWrapper``).
        cfg_options (dict, optional): overrides, as ``--cfg-options``.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
    """
    use_key_file(key_file)
    cfg = load_run_config(config, cfg_options, launcher, work_dir)
    if amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ConfigError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    cfg.resume = resume
    refuse_partly_protected(cfg)
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
    use_key_file(key_file)
    cfg = load_run_config(config, cfg_options, launcher, work_dir)
    cfg.load_from = checkpoint
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
    refuse_partly_protected(cfg)
    prepare_cpu_distributed(cfg)
    return Runner.from_cfg(cfg)
