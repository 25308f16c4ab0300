"""Evaluate a checkpoint, protected or not, with MMEngine.

    python tools/test.py CONFIG CHECKPOINT --key-file KEY [--tta] [--show-dir DIR] [--out DIR]
"""
import argparse
import os

from mmengine.config import DictAction

from mmseg_keyprotect.apis import build_test_runner, close_distributed
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Test a segmentor (protected configs encrypt with --key-file)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument('--out', help='directory to save predicted label maps')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--show-dir', help='directory to save predictions drawn on the plain images')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each image is shown with --show')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (tta_model, tta_pipeline)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    build_test_runner(args.config, args.checkpoint, key_file=args.key_file, work_dir=args.work_dir,
                      out=args.out, show=args.show, show_dir=args.show_dir, wait_time=args.wait_time,
                      tta=args.tta, cfg_options=args.cfg_options, launcher=args.launcher).test()
    close_distributed()  # success only: after a failure the other ranks may never reach it


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'test: error: {error}')
