"""Publish a checkpoint: drop training state, name it <config stem>_<time>-<sha256[:8]>.pth.

    python tools/publish_model.py work_dirs/x/iter_600.pth configs/segformer/x.py [--out-dir checkpoints]
        [--key-file KEY] [--keep-norm-statistics]

A locked checkpoint stays locked (the key unlocks it in memory); a plain one stays plain. The running statistics
of batch norm layers are folded into their weights (same predictions; a thief with the weights cannot search the
key on them directly) unless --keep-norm-statistics: keep them for a checkpoint meant for fine-tuning.
"""
import argparse
from pathlib import Path

from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.zoo import config_norm_epsilons, publish_checkpoint, sha256_of


def main():
    parser = argparse.ArgumentParser(description='Publish a (protected) checkpoint for the model zoo')
    parser.add_argument('checkpoint')
    parser.add_argument('config', help='its config (names the file)')
    parser.add_argument('--out-dir', default='checkpoints')
    parser.add_argument('--key-file', help='key of a locked checkpoint (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--keep-norm-statistics', action='store_true',
                        help='keep the batch norm running statistics as trained (for fine-tuning) instead of '
                             'folding them into the layers\' weights')
    args = parser.parse_args()
    fold = None if args.keep_norm_statistics else config_norm_epsilons(args.config)
    published = publish_checkpoint(args.checkpoint, Path(args.config).stem, args.out_dir, args.key_file, fold)
    print(f'published {published}\nsha256 {sha256_of(published)}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'publish_model: error: {error}')
