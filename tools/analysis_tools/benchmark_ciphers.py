"""Time the ciphers on one 512x512 RGB image against a copy and the published style.

    python tools/analysis_tools/benchmark_ciphers.py [--size 512] [--block-sizes 2 4 8 16] [--repeats 30]
        [--batch-size 8] [--device cpu]

Every number is a median over --repeats calls, all measured in this one run.
A second table times one batch both ways: the pipeline transform (numpy, image
by image) and the on-device data preprocessor (one torch call on --device).
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from mmseg_keyprotect.utils import provenance
from mmseg_keyprotect_experiments.benchmarks import benchmark_batch_encryption, benchmark_ciphers


def main():
    parser = argparse.ArgumentParser(description='Benchmark the block ciphers (numpy front end)')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--block-sizes', type=int, nargs='+', default=[2, 4, 8, 16])
    parser.add_argument('--methods', nargs='+', default=['shuffle', 'np', 'ffx', 'shuffle+np+ffx'])
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--batch-size', type=int, default=8, help='batch of the per-batch table (0: skip it)')
    parser.add_argument('--device', default='cpu', help='device of the on-device path: cpu, cuda, ...')
    parser.add_argument('--results-file', help='write every number, with the command, date and machine, as JSON '
                        '(docs/en/results/cipher_speed.json feeds docs/en/benchmarks.md)')
    args = parser.parse_args()
    torch.set_num_threads(1)  # the published style gets no help from threads the data pipeline would not have
    rows = cipher_rows = benchmark_ciphers(args.size, args.block_sizes, args.methods, args.repeats)
    print(f'{args.size}x{args.size} RGB, median of {args.repeats}; plain copy {rows[0]["copy_ms"]:.3f} ms')
    print(f'{"method":<16}{"M":>3}{"encrypt ms":>12}{"decrypt ms":>12}{"published ms":>14}{"speed-up":>10}'
          f'{"x copy":>8}')
    for row in rows:
        print(f'{row["method"]:<16}{row["block_size"]:>3}{row["encrypt_ms"]:>12.3f}{row["decrypt_ms"]:>12.3f}'
              f'{row["published_ms"]:>14.3f}{row["speedup"]:>9.1f}x{row["over_copy"]:>7.0f}x')
    batch_rows = []
    if args.batch_size:
        rows = batch_rows = benchmark_batch_encryption(args.batch_size, args.size, 4, repeats=args.repeats,
                                                       device=args.device)
        print(f'\nper batch of {args.batch_size} at M = 4: pipeline transform (numpy, per image, CPU) vs '
              f'on-device preprocessor (torch, {args.device}); torch threads: {torch.get_num_threads()}')
        print(f'{"method":<16}{"pipeline ms":>13}{"on-device ms":>14}{"ratio":>8}')
        for row in rows:
            print(f'{row["method"]:<16}{row["pipeline_ms"]:>13.3f}{row["on_device_ms"]:>14.3f}{row["ratio"]:>8.2f}')
    if args.results_file:
        command = 'python tools/analysis_tools/benchmark_ciphers.py ' + ' '.join(sys.argv[1:])
        command = command.split(' --results-file')[0].strip()
        Path(args.results_file).write_text(json.dumps(dict(
            provenance(command, args.device), size=args.size, repeats=args.repeats, rows=cipher_rows,
            batch_rows=batch_rows),
            indent=2) + '\n')


if __name__ == '__main__':
    main()
