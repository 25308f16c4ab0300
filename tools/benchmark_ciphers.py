"""Time the ciphers on one 512x512 RGB image against a copy and the published style.

    python tools/benchmark_ciphers.py [--size 512] [--block-sizes 2 4 8 16] [--repeats 30]

Every number is a median over --repeats calls, all measured in this one run.
Targets (issue 3): shuffle and ffx >= 4x faster than the published style, np >= 20x.
"""
import argparse

import torch

from mmseg_keyprotect.benchmarks import benchmark_ciphers

TARGETS = {'shuffle': 4, 'np': 20, 'ffx': 4}


def main():
    parser = argparse.ArgumentParser(description='Benchmark the block ciphers (numpy front end)')
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--block-sizes', type=int, nargs='+', default=[2, 4, 8, 16])
    parser.add_argument('--methods', nargs='+', default=['shuffle', 'np', 'ffx', 'shuffle+np+ffx'])
    parser.add_argument('--repeats', type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the published style gets no help from threads the data pipeline would not have
    rows = benchmark_ciphers(args.size, args.block_sizes, args.methods, args.repeats)
    print(f'{args.size}x{args.size} RGB, median of {args.repeats}; plain copy {rows[0]["copy_ms"]:.3f} ms')
    print(f'{"method":<16}{"M":>3}{"encrypt ms":>12}{"decrypt ms":>12}{"published ms":>14}{"speed-up":>10}'
          f'{"x copy":>8}  target')
    for row in rows:
        target = TARGETS.get(row['method'])
        verdict = '' if target is None else f'>= {target}x: {"met" if row["speedup"] >= target else "MISSED"}'
        print(f'{row["method"]:<16}{row["block_size"]:>3}{row["encrypt_ms"]:>12.3f}{row["decrypt_ms"]:>12.3f}'
              f'{row["published_ms"]:>14.3f}{row["speedup"]:>9.1f}x{row["over_copy"]:>7.0f}x  {verdict}')


if __name__ == '__main__':
    main()
