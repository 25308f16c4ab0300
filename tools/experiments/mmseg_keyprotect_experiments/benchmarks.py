"""Timing helpers for the benchmark tools: medians of repeated calls, in one run."""
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from mmseg_keyprotect.crypto import SecretKey, published_style
from mmseg_keyprotect.crypto.ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.errors import ConfigError

from .runs import parse_negatives


def median_ms(function: Callable[[], object], repeats: int = 30, warmup: int = 3) -> float:
    """Median wall time of ``function()`` in milliseconds."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def benchmark_ciphers(size: int = 512, block_sizes: Sequence[int] = (2, 4, 8, 16),
                      methods: Sequence[str] = ('shuffle', 'np', 'ffx', 'shuffle+np+ffx'),
                      repeats: int = 30) -> List[Dict]:
    """Per-image time of each method (numpy front end, encrypt and decrypt) next to
    a plain copy (the floor) and the published-style float implementation.

    Returns:
        list[dict]: one row per (method, M) with times in ms and ratios.
    """
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    key = SecretKey.generate()
    copy_ms = median_ms(image.copy, repeats)
    rows = []
    for block_size in block_sizes:
        for method in methods:
            cipher = key.cipher(method, block_size)
            encrypted = cipher.encrypt(image)
            encrypt_ms = median_ms(lambda: cipher.encrypt(image), repeats)
            decrypt_ms = median_ms(lambda: cipher.decrypt(encrypted), repeats)
            published_ms = median_ms(_published_style(cipher, image), repeats)
            rows.append(dict(method=method, block_size=block_size, copy_ms=copy_ms, encrypt_ms=encrypt_ms,
                             decrypt_ms=decrypt_ms, published_ms=published_ms,
                             speedup=published_ms / encrypt_ms, over_copy=encrypt_ms / copy_ms))
    return rows


def _published_style(cipher, image: np.ndarray) -> Callable[[], object]:
    """The same chain as the published code runs it: uint8 -> float tensor, then per step
    reshape into blocks, index by the key, reshape back."""
    steps = []
    for step in cipher.steps:
        name = type(step).__name__
        if name == 'Shuffle':
            permutation = torch.from_numpy(step.permutation)
            steps.append(lambda x, p=permutation: published_style.shuffle(x, p, cipher.block_size))
        elif name == 'NegativePositive':
            mask = torch.from_numpy(step.mask)
            steps.append(lambda x, m=mask: published_style.negative_positive(x, m, cipher.block_size))
        else:
            mask, table = torch.from_numpy(step.mask), torch.from_numpy(step.table.astype(np.int64))
            steps.append(lambda x, m=mask, t=table: published_style.ffx(x, m, t, cipher.block_size))

    def run():
        batch = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        for step in steps:
            batch = step(batch)
        return batch

    return run


def benchmark_batch_encryption(batch_size: int = 8, size: int = 512, block_size: int = 4,
                               methods: Sequence[str] = ('shuffle', 'shuffle+np', 'ffx'), device: str = 'cpu',
                               repeats: int = 30) -> List[Dict]:
    """Per-batch time of the two encryption paths on the same images.

    ``pipeline_ms``: the pipeline transform's work, the numpy cipher on each
    BGR image in turn (as dataloader workers run it, before the batch exists).
    ``on_device_ms``: ``KeyProtectDataPreProcessor``'s work, one
    ``encrypt_tensor`` call on the uint8 batch already on ``device``.

    Returns:
        list[dict]: one row per method with both times and their ratio.
    """
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(batch_size)]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)
    synchronize = torch.cuda.synchronize if batch.is_cuda else (lambda: None)
    key = SecretKey.generate()
    rows = []
    for method in methods:
        cipher = key.cipher(method, block_size)

        def on_device(cipher=cipher):
            cipher.encrypt_tensor(batch, 'bgr')
            synchronize()
        pipeline_ms = median_ms(lambda: [cipher.encrypt(image, 'bgr') for image in images], repeats)
        on_device_ms = median_ms(on_device, repeats)
        rows.append(dict(method=method, block_size=block_size, batch_size=batch_size, size=size, device=str(device),
                         pipeline_ms=pipeline_ms, on_device_ms=on_device_ms, ratio=on_device_ms / pipeline_ms))
    return rows


def benchmark_training(config: str, key_file: str, method: str = DEFAULT_METHOD, block_size: int = DEFAULT_BLOCK_SIZE,
                       iterations: int = 20, rounds: int = 5, cfg_options: Dict = None,
                       work_dir: str = 'work_dirs/benchmark_training', on_device: bool = False,
                       key_contrastive: Optional[float] = None, negatives: Sequence[str] = ()) -> Dict:
    """Seconds per training iteration (data pipeline included) of a config and its
    protected twin, measured in alternating rounds in one process.

    Args:
        key_contrastive (float, optional): also time the key-contrastive twin
            with this loss weight.
        negatives: also time key-contrastive twins with these cheaper
            settings (:func:`~.runs.parse_negatives` names, such as
            ``'share0.25'``), with the same loss weight.

    Returns:
        dict: per-round times of each and the ratios of their medians
        (``ratio``: protected / unprotected; ``key_contrastive_ratio``:
        key-contrastive / protected; ``negatives_ratios``: each cheaper
        setting / protected).
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_keyprotect.config import load_config, protect_config
    from mmseg_keyprotect.crypto import RunKey
    for name in negatives:
        interval = parse_negatives(name)['negative_interval']
        if iterations % interval:
            raise ConfigError(f'--iterations {iterations} with negatives {name!r}: rounds would hold different '
                              f'numbers of negative iterations; use a multiple of {interval}')
    RunKey.load(key_file)
    stock = load_config(config)
    if cfg_options:
        stock.merge_from_dict(cfg_options)
    protected, _ = protect_config(stock, method, block_size, num_wrong_keys=0, evaluate_plain=False,
                                  on_device=on_device, key_contrastive=False)
    configs = [('unprotected', stock), ('protected', protected)]
    if key_contrastive is not None:
        configs.append(('key_contrastive', protect_config(
            stock, method, block_size, num_wrong_keys=0, evaluate_plain=False, on_device=on_device,
            key_contrastive=dict(negative_weight=key_contrastive, **parse_negatives('all')))[0]))
    for name in negatives:
        configs.append((f'key_contrastive:{name}', protect_config(
            stock, method, block_size, num_wrong_keys=0, evaluate_plain=False, on_device=on_device,
            key_contrastive=dict(negative_weight=key_contrastive or 0.1, **parse_negatives(name)))[0]))
    steps = {}
    for name, cfg in configs:
        cfg = Config(cfg.to_dict())
        cfg.work_dir = f'{work_dir}/{name}'
        runner = Runner.from_cfg(cfg)
        loader = runner.build_dataloader(cfg.train_dataloader)
        optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
        batches = iter(loader)
        runner.model.train()

        def step(model=runner.model, batches=batches, optim_wrapper=optim_wrapper):
            model.train_step(next(batches), optim_wrapper)
        step()  # warm-up: workers start, first batch
        steps[name] = step
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(iterations):
                step()
            times[name].append((time.perf_counter() - start) / iterations)
    medians = {name: float(np.median(values)) for name, values in times.items()}
    result = dict(times=times, medians=medians, ratio=medians['protected'] / medians['unprotected'])
    if key_contrastive is not None:
        result['key_contrastive_ratio'] = medians['key_contrastive'] / medians['protected']
    if negatives:
        result['negatives_ratios'] = {name: medians[f'key_contrastive:{name}'] / medians['protected']
                                      for name in negatives}
    return result
