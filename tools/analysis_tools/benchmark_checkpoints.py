"""Time saving and loading a realistic state dict, plain (torch.save / torch.load) against locked.

    python tools/analysis_tools/benchmark_checkpoints.py [--megabytes 170] [--repeats 5] [--results-file F]

The state dict has the size of a DeepLabV3+-R50 checkpoint (about 170 MB by
default) in float32 tensors of that model's typical shapes. Every time is the
median of --repeats runs measured in this one run, alternating plain and
locked, on the same disk; the ratios locked / plain are printed with MB/s.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmseg_keyprotect.checkpoint import load_locked_checkpoint, save_locked_checkpoint
from mmseg_keyprotect.crypto import SecretKey
from mmseg_keyprotect.utils import provenance


def state_dict(megabytes: float) -> dict:
    """Conv-sized float32 tensors adding up to about ``megabytes``."""
    generator = torch.Generator().manual_seed(0)
    tensors, total, index = {}, 0, 0
    while total < megabytes * 2**20:
        shape = (512, 512, 3, 3) if index % 3 else (2048, 512, 1, 1)
        tensors[f'layer{index}.weight'] = torch.randn(shape, generator=generator)
        total += tensors[f'layer{index}.weight'].numel() * 4
        index += 1
    return dict(state_dict=tensors, meta=dict(note='benchmark'))


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description='Plain vs locked checkpoint save and load times')
    parser.add_argument('--megabytes', type=float, default=170)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--results-file', help='write the result, with the command, date and machine, as JSON')
    args = parser.parse_args()
    checkpoint, key = state_dict(args.megabytes), SecretKey.generate()
    size = sum(t.numel() * 4 for t in checkpoint['state_dict'].values()) / 2**20
    with tempfile.TemporaryDirectory(dir='.') as folder:
        plain, locked = Path(folder) / 'plain.pth', Path(folder) / 'locked.pth'
        torch.save(checkpoint, plain)
        save_locked_checkpoint(checkpoint, locked, key)
        times = dict(
            save_plain=median_seconds(lambda: torch.save(checkpoint, plain), args.repeats),
            save_locked=median_seconds(lambda: save_locked_checkpoint(checkpoint, locked, key), args.repeats),
            load_plain=median_seconds(lambda: torch.load(plain, map_location='cpu'), args.repeats),
            load_locked=median_seconds(lambda: load_locked_checkpoint(locked, key, 'cpu'), args.repeats))
    result = dict(megabytes=size, repeats=args.repeats, seconds=times,
                  save_ratio=times['save_locked'] / times['save_plain'],
                  load_ratio=times['load_locked'] / times['load_plain'])
    print(f'state dict of {size:.0f} MB, median of {args.repeats}')
    for name, seconds in times.items():
        print(f'{name:<12} {seconds:7.3f} s  {size / seconds:8.0f} MB/s')
    print(f'locked / plain: save {result["save_ratio"]:.2f}x, load {result["load_ratio"]:.2f}x')
    if args.results_file:
        command = ('python tools/analysis_tools/benchmark_checkpoints.py ' + ' '.join(sys.argv[1:])).split(
            ' --results-file')[0]
        Path(args.results_file).write_text(json.dumps(dict(provenance(command), **result), indent=2) + '\n')


if __name__ == '__main__':
    main()
