"""Write a protected config that inherits a stock one.

    python tools/protect_config.py mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py \
        --method shuffle --block-size 4 -o configs/pspnet/pspnet_..._shuffle-m4.py

The key is not written into the config: train and test with --key-file
(or $KEYPROTECT_KEY_FILE).
"""
import argparse

from mmseg_keyprotect.config import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_KEY_CONTRASTIVE,
    DEFAULT_METHOD,
    KEY_CONTRASTIVE_NEGATIVES,
    KEY_CONTRASTIVE_WEIGHT,
    protect_config,
    write_leaf_config,
)
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.engine import KeyProtectHook
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.models import KeyContrastiveDataPreProcessor, KeyContrastiveEncoderDecoder
from mmseg_keyprotect.models.segmentors.key_contrastive import NEGATIVE_STATISTICS
from mmseg_keyprotect.utils.signatures import own_arguments


def parse_args():
    parser = argparse.ArgumentParser(description='Protect a stock MMSegmentation config with BlockwiseEncrypt')
    parser.add_argument('config', help='stock config: a path or mmseg::<algo>/<name>.py')
    parser.add_argument('--method', default=DEFAULT_METHOD,
                        help=f'method or chain: shuffle, np, ffx, ffx8, shuffle+np, ... (default {DEFAULT_METHOD})')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE,
                        help=f'block size M (default {DEFAULT_BLOCK_SIZE})')
    parser.add_argument('--key-file', help='check this key file against the setting and name it in the config (the '
                        'path only; default: the key is named at run time by --key-file or $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--num-wrong-keys', type=int, help='random wrong keys evaluated at validation (default '
                        f'{own_arguments(KeyProtectHook)["num_wrong_keys"]})')
    parser.add_argument('--on-device', action='store_true',
                        help='encrypt whole batches on the model device (KeyProtectDataPreProcessor)')
    contrastive = parser.add_mutually_exclusive_group()
    contrastive.add_argument('--key-contrastive', nargs='?', type=float, const=KEY_CONTRASTIVE_WEIGHT,
                             metavar='WEIGHT', help='train the model to fail without the key: predictions on images '
                             'under random keys, near keys and plain are pushed toward uniform with this loss weight '
                             f'(default {KEY_CONTRASTIVE_WEIGHT})' + (' (on by default)' if DEFAULT_KEY_CONTRASTIVE
                                                                       else ''))
    contrastive.add_argument('--no-key-contrastive', action='store_true', help='ordinary protected training')
    defaults = {**own_arguments(KeyContrastiveDataPreProcessor), **own_arguments(KeyContrastiveEncoderDecoder),
                **KEY_CONTRASTIVE_NEGATIVES}
    parser.add_argument('--negative-share', type=float,
                        help='key-contrastive: share of each batch that gets a negative copy (default '
                             f'{defaults["negative_share"]:g})')
    parser.add_argument('--negative-interval', type=int,
                        help='key-contrastive: add negatives at every n-th iteration only (default '
                             f'{defaults["negative_interval"]})')
    parser.add_argument('--negative-statistics', choices=list(NEGATIVE_STATISTICS),
                        help="key-contrastive: batch norm on the negatives uses their batch's statistics or the "
                             f'running ones, as at deployment (default {defaults["negative_statistics"]})')
    parser.add_argument('-o', '--output', required=True, help='protected config to write')
    parser.add_argument('--force', action='store_true', help='overwrite the output')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.key_file is not None:
        run_key = RunKey.load(args.key_file)
        run_key.cipher(args.method, args.block_size)
        run_key.require_lockable('checkpoints of protected runs are written locked')
    options = {name: value for name, value in (('negative_share', args.negative_share),
                                               ('negative_interval', args.negative_interval),
                                               ('negative_statistics', args.negative_statistics)) if value is not None}
    if args.no_key_contrastive and options:
        raise KeyProtectError(f'--no-key-contrastive with {", ".join("--" + n.replace("_", "-") for n in options)}: '
                              'those settings are of key-contrastive training')
    if args.key_contrastive is not None:
        options['negative_weight'] = args.key_contrastive
    protected, notes = protect_config(args.config, args.method, args.block_size, args.key_file, args.num_wrong_keys,
                                      on_device=args.on_device,
                                      key_contrastive=False if args.no_key_contrastive else options or None)
    output = write_leaf_config(args.config, args.output, protected, args.method, args.block_size, notes,
                               overwrite=args.force)
    for note in notes:
        print(f'changed: {note}')
    print(f'wrote {output}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'protect_config: error: {error}')
