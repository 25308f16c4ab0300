"""Train a segmentor, protected or not, with MMEngine.

    python tools/train.py CONFIG --key-file KEY [--work-dir DIR] [--resume] [--amp]
    torchrun --nproc_per_node=2 tools/train.py CONFIG --key-file KEY --launcher pytorch
"""
import argparse
import os

from mmengine.config import DictAction

from mmseg_keyprotect.apis import build_train_runner, close_distributed
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor (protected configs encrypt with --key-file)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', action='store_true', help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. train_cfg.max_iters=100)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    build_train_runner(args.config, key_file=args.key_file, work_dir=args.work_dir, resume=args.resume,
                       amp=args.amp, cfg_options=args.cfg_options, launcher=args.launcher).train()
    close_distributed()  # success only: after a failure the other ranks may never reach it


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'train: error: {error}')
