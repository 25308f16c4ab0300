"""Check protected training on a device: encryption bit for bit, time per iteration and peak memory.

>>> report = check_device('cuda')            # what tools/analysis_tools/check_device.py runs
>>> report['identity'][0]                    # {'method': 'shuffle', 'block_size': 2, 'identical': True, ...}

Three parts:

* **identity**: for every method and chain at M in {2, 4, 8, 16}, a batch
  encrypted on the device (the data preprocessor's path) equals the same
  images encrypted one by one with numpy (the data pipeline's path), bit for
  bit; and, under autocast in float16 and bfloat16, the normalised inputs
  the two paths hand the network are equal too.
* **iterations**: seconds per training iteration of PSPNet-R50,
  DeepLabV3+-R50 and SegFormer-B0 at their stock crop sizes and per-GPU batch,
  unprotected, protected on the pipeline path (numpy encryption of the batch,
  timed as part of the iteration, which DataLoader workers would run
  alongside), on the device path, and with key-contrastive training;
  measured in alternating rounds in one process, median of the rounds, and
  the ratio of each to unprotected.
* **memory**: peak device memory of each (CUDA only).

The models are built from mmseg's stock configs without pretrained weights
and trained on synthetic batches: nothing is downloaded and no dataset is
needed. A random key is written to a temporary file for the run.
"""
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..config.loading import load_config
from ..config.protect import protect_config
from ..crypto.ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_CHANNEL_ORDER, DEFAULT_METHOD
from ..crypto.key_files import write_random_key
from ..crypto.run_key import RunKey
from ..utils import machine

CHAINS = ('shuffle', 'np', 'ffx', 'ffx8', 'shuffle+np', 'np+ffx', 'np+ffx8', 'shuffle+np+ffx')
BLOCK_SIZES = (2, 4, 8, 16)
#: name -> (stock config, crop (H, W), per-GPU batch), as the stock configs train them.
MODELS = {
    'PSPNet-R50': ('mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', (512, 1024), 2),
    'DeepLabV3+-R50': ('mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py', (512, 1024), 2),
    'SegFormer-B0': ('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', (512, 512), 2),
}
MODES = ('unprotected', 'pipeline', 'device', 'key_contrastive')
AMP_DTYPES = ('float16', 'bfloat16')


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _preprocessors(method: str, block_size: int, device: torch.device):
    """The stock preprocessor (pipeline path: inputs arrive encrypted) and the on-device one."""
    from mmseg.registry import MODELS as REGISTRY
    settings = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                    seg_pad_val=255)
    stock = REGISTRY.build(dict(type='SegDataPreProcessor', **settings)).to(device)
    on_device = REGISTRY.build(dict(type='KeyProtectDataPreProcessor', method=method, block_size=block_size,
                                    **settings)).to(device)
    return stock, on_device


def encryption_identity(device: str, batch_shape: Sequence[int], chains: Sequence[str] = CHAINS,
                        block_sizes: Sequence[int] = BLOCK_SIZES, amp_dtypes: Sequence[str] = AMP_DTYPES,
                        seed: int = 0) -> List[Dict]:
    """One row per (method, M): whether the device path equals the pipeline path, and under each autocast dtype.

    Needs a current :class:`~mmseg_keyprotect.crypto.RunKey`.

    Args:
        batch_shape: ``(N, H, W)``; H and W multiples of every M.
    """
    device = torch.device(device)
    count, height, width = batch_shape
    images = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    rows = []
    for method in chains:
        for block_size in block_sizes:
            cipher = RunKey.current().cipher(method, block_size)
            pipeline = np.stack([cipher.encrypt(image, DEFAULT_CHANNEL_ORDER) for image in images])
            batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
            _synchronize(device)
            started = time.perf_counter()
            on_device = cipher.encrypt_tensor(batch, DEFAULT_CHANNEL_ORDER)
            _synchronize(device)
            row = dict(method=method, block_size=block_size, batch=list(batch_shape),
                       identical=bool(np.array_equal(on_device.permute(0, 2, 3, 1).cpu().numpy(), pipeline)),
                       device_ms=(time.perf_counter() - started) * 1000)
            stock, keyed = _preprocessors(method, block_size, device)
            encrypted = [torch.from_numpy(image).permute(2, 0, 1).contiguous().to(device) for image in pipeline]
            plain = [image for image in batch]
            for dtype in amp_dtypes:
                try:
                    context = torch.autocast(device.type, dtype=getattr(torch, dtype))
                except RuntimeError as error:  # this device has no autocast for the dtype
                    row[f'autocast_{dtype}'] = f'not supported here ({error})'
                    continue
                with context:
                    reference = stock(dict(inputs=list(encrypted)), False)['inputs']
                    result = keyed(dict(inputs=list(plain)), False)['inputs']
                row[f'autocast_{dtype}'] = bool(torch.equal(reference, result))
            rows.append(row)
    return rows


def _model_config(name: str, mode: str, method: str, block_size: int, crop, device: torch.device):
    stock_config, _, _ = MODELS[name]
    stock = load_config(stock_config)
    stock.model.data_preprocessor.size = tuple(crop)
    if mode == 'unprotected' or mode == 'pipeline':
        cfg = stock
    else:
        cfg, _ = protect_config(stock, method, block_size, num_wrong_keys=0, evaluate_plain=False,
                                on_device=True, key_contrastive=mode == 'key_contrastive')
    model = cfg.model
    model.pretrained = None
    if model.get('backbone', {}).get('init_cfg'):
        model.backbone.init_cfg = None
    return model


def _build(model_cfg, device: torch.device):
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import OptimWrapper
    from mmseg.registry import MODELS as REGISTRY
    model = REGISTRY.build(model_cfg)
    if device.type != 'cuda':
        model = revert_sync_batchnorm(model)  # SyncBN has no CPU kernel
    model = model.to(device).train()
    return model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))


def _batch(count: int, crop, num_classes: int, rng: np.random.Generator):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    height, width = crop
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]
    samples = []
    for _ in range(count):
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             pad_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, num_classes, (1, height, width))))
        samples.append(sample)
    return images, samples


def iteration_times(device: str, models: Sequence[str] = tuple(MODELS), method: str = DEFAULT_METHOD,
                    block_size: int = DEFAULT_BLOCK_SIZE,
                    rounds: int = 5, iterations: int = 5, crop: Optional[Sequence[int]] = None,
                    batch_size: Optional[int] = None, seed: int = 0) -> List[Dict]:
    """Seconds per training iteration and peak memory of each model in each mode (see the module docstring).

    Needs a current :class:`~mmseg_keyprotect.crypto.RunKey`.

    Args:
        crop, batch_size: override the stock crop size and per-GPU batch
            (small values make a quick check on a CPU).
    """
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    rows = []
    for name in models:
        _, stock_crop, stock_batch = MODELS[name]
        size, count = tuple(crop or stock_crop), batch_size or stock_batch
        cipher = RunKey.current().cipher(method, block_size)
        steps, peaks = {}, {}
        for mode in MODES:
            model, optim_wrapper = _build(_model_config(name, mode, method, block_size, size, device), device)
            images, samples = _batch(count, size, model.decode_head.num_classes, rng)

            def step(model=model, optim_wrapper=optim_wrapper, images=images, samples=samples, mode=mode):
                pixels = [cipher.encrypt(image, DEFAULT_CHANNEL_ORDER) if mode == 'pipeline' else image
                          for image in images]
                inputs = [torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) for image in pixels]
                model.train_step(dict(inputs=inputs, data_samples=[s.clone() for s in samples]), optim_wrapper)

            step()  # warm-up: kernels chosen, memory pools filled
            steps[mode] = step
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
                step()
                peaks[mode] = torch.cuda.max_memory_allocated(device) / 2 ** 20
        times = {mode: [] for mode in MODES}
        for _ in range(rounds):
            for mode, step in steps.items():
                _synchronize(device)
                started = time.perf_counter()
                for _ in range(iterations):
                    step()
                _synchronize(device)
                times[mode].append((time.perf_counter() - started) / iterations)
        medians = {mode: float(np.median(values)) for mode, values in times.items()}
        for mode in MODES:
            rows.append(dict(model=name, mode=mode, crop=list(size), batch_size=count, seconds=medians[mode],
                             rounds=times[mode], ratio=medians[mode] / medians['unprotected'],
                             peak_memory_mib=peaks.get(mode)))
        del steps
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return rows


def check_device(device: str = 'cpu', quick: bool = False, method: str = DEFAULT_METHOD,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 rounds: Optional[int] = None, iterations: Optional[int] = None,
                 models: Sequence[str] = tuple(MODELS)) -> Dict:
    """The whole report (see the module docstring).

    Args:
        quick (bool): tiny sizes (batches of 2 x 32 x 64 for the identity
            table; 64 x 64 crops, batch 2, 2 rounds of 1 iteration for the
            timings), for a smoke run on a CPU. The numbers of a quick run
            say nothing about a real one.
        method, block_size: the setting timed in the iteration table.
    """
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    rounds = rounds or (2 if quick else 5)
    iterations = iterations or (1 if quick else 5)
    with tempfile.TemporaryDirectory() as folder, DefaultScope.overwrite_default_scope('mmseg'):
        write_random_key(Path(folder) / 'check.key')
        previous = RunKey.current() if RunKey._instance_dict else None
        RunKey.load(str(Path(folder) / 'check.key'))  # the check's own key, the run's while it lasts
        identity_shape = (2, 32, 64) if quick else (8, 512, 1024)
        with torch.no_grad():
            identity = encryption_identity(device, identity_shape)
        timings = iteration_times(device, models, method, block_size, rounds, iterations,
                                  crop=(64, 64) if quick else None, batch_size=2 if quick else None)
        if previous is not None:
            RunKey.load(previous.source)
    # An autocast dtype the device lacks is reported as such, not counted as a difference.
    differences = [row for row in identity if not row['identical'] or any(
        row.get(f'autocast_{dtype}') is False for dtype in AMP_DTYPES)]
    return dict(date=time.strftime('%Y-%m-%d'), device=device, quick=quick, method=method, block_size=block_size,
                rounds=rounds, iterations=iterations, machine=machine(device), identity=identity,
                iterations_table=timings, all_identical=not differences)


def report_markdown(report: Dict) -> str:
    """The report as Markdown tables."""
    lines = [f'# Device check: {report["machine"]["gpu"] or report["machine"]["cpu"]} ({report["device"]})', '',
             '## On-device encryption equals the pipeline path', '',
             '| method | M | batch | bit-identical | ' + ' | '.join(f'autocast {d}' for d in AMP_DTYPES) + ' |',
             '|---|---|---|---|' + '---|' * len(AMP_DTYPES)]
    for row in report['identity']:
        amp = ' | '.join(_yes(row.get(f'autocast_{d}')) for d in AMP_DTYPES)
        lines.append(f'| {row["method"]} | {row["block_size"]} | {"x".join(map(str, row["batch"]))} | '
                     f'{_yes(row["identical"])} | {amp} |')
    lines += ['', f'## Seconds per training iteration ({report["method"]}, M = {report["block_size"]}; median of '
              f'{report["rounds"]} alternating rounds of {report["iterations"]})', '',
              '| model | crop | batch | mode | s / iteration | ratio to unprotected | peak memory (MiB) |',
              '|---|---|---|---|---|---|---|']
    for row in report['iterations_table']:
        memory = '-' if row['peak_memory_mib'] is None else f'{row["peak_memory_mib"]:.0f}'
        lines.append(f'| {row["model"]} | {row["crop"][0]}x{row["crop"][1]} | {row["batch_size"]} | {row["mode"]} | '
                     f'{row["seconds"]:.3f} | {row["ratio"]:.2f} | {memory} |')
    return '\n'.join(lines) + '\n'


def _yes(value) -> str:
    if value is None:
        return '-'
    if isinstance(value, str):
        return value
    return 'yes' if value else '**NO**'
