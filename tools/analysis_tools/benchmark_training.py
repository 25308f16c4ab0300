"""Time training iterations of a config and its protected twin, alternating, in one run.

    python tools/analysis_tools/benchmark_training.py CONFIG --key-file KEY [--method shuffle+np --block-size 4]
        [--iterations 20 --rounds 5]

Prints seconds per iteration (data pipeline included) for each round and the
ratio of the medians, protected / unprotected.
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import DictAction

from mmseg_keyprotect.crypto.ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.utils import provenance
from mmseg_keyprotect_experiments.benchmarks import benchmark_training


def main():
    parser = argparse.ArgumentParser(description='Training cost of protection')
    parser.add_argument('config', help='an unprotected config (its protected twin is made in memory)')
    parser.add_argument('--key-file', required=True)
    parser.add_argument('--method', default=DEFAULT_METHOD, help='method or chain (default %(default)s)')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE, help='block size M (default %(default)s)')
    parser.add_argument('--iterations', type=int, default=20, help='iterations per round')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--on-device', action='store_true',
                        help='protected twin encrypts batches on the model device (KeyProtectDataPreProcessor)')
    parser.add_argument('--key-contrastive', nargs='?', type=float, const=0.1, metavar='WEIGHT',
                        help='also time the key-contrastive twin (loss weight, default 0.1)')
    parser.add_argument('--negatives', nargs='+', default=[], metavar='SETTING',
                        help='also time cheaper key-contrastive settings: all, share0.25, interval4, running, '
                             'joined by + (each against ordinary protected training)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--results-file', help='write the result, with the command, date and machine, as JSON')
    args = parser.parse_args()
    result = benchmark_training(args.config, args.key_file, args.method, args.block_size, args.iterations,
                                args.rounds, args.cfg_options, on_device=args.on_device,
                                key_contrastive=args.key_contrastive, negatives=args.negatives)
    for name, values in result['times'].items():
        print(f'{name:<12} s/iteration per round: ' + ' '.join(f'{v:.4f}' for v in values)
              + f'   median {result["medians"][name]:.4f}')
    print(f'protected / unprotected = {result["ratio"]:.3f}')
    if 'key_contrastive_ratio' in result:
        print(f'key-contrastive / protected = {result["key_contrastive_ratio"]:.3f}')
    for name, ratio in result.get('negatives_ratios', {}).items():
        print(f'key-contrastive, negatives {name} / protected = {ratio:.3f}')
    if args.results_file:
        command = ('python tools/analysis_tools/benchmark_training.py ' + ' '.join(sys.argv[1:])).split(
            ' --results-file')[0]
        Path(args.results_file).write_text(json.dumps(dict(
            provenance(command), method=args.method, block_size=args.block_size, on_device=args.on_device,
            key_contrastive=args.key_contrastive,
            iterations=args.iterations, rounds=args.rounds, **result), indent=2) + '\n')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'benchmark_training: error: {error}')
