"""Write a protected config that inherits a stock one.

    python tools/protect_config.py mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-769x769.py \
        --method shuffle --block-size 4 -o configs/pspnet/pspnet_..._shuffle-m4.py

The key is not written into the config: train and test with --key-file
(or $KEYPROTECT_KEY_FILE).
"""
import argparse
import os
from pathlib import Path

from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.protect import leaf_config_text, protect_config


def parse_args():
    parser = argparse.ArgumentParser(description='Protect a stock MMSegmentation config with BlockwiseEncrypt')
    parser.add_argument('config', help='stock config: a path or mmseg::<algo>/<name>.py')
    parser.add_argument('--method', default='shuffle', help='method or chain: shuffle, np, ffx, shuffle+np, ...')
    parser.add_argument('--block-size', type=int, default=4, help='block size M')
    parser.add_argument('--key-file', help='write this key file path into the config (default: read at run time)')
    parser.add_argument('--num-wrong-keys', type=int, default=2, help='random wrong keys evaluated at validation')
    parser.add_argument('--on-device', action='store_true',
                        help='encrypt whole batches on the model device (KeyProtectDataPreProcessor)')
    parser.add_argument('-o', '--output', required=True, help='protected config to write')
    parser.add_argument('--force', action='store_true', help='overwrite the output')
    return parser.parse_args()


def main():
    args = parse_args()
    output = Path(args.output)
    if output.exists() and not args.force:
        raise SystemExit(f'protect_config: {output} exists (use --force to overwrite)')
    protected, notes = protect_config(args.config, args.method, args.block_size, args.key_file, args.num_wrong_keys,
                                      on_device=args.on_device)
    stock = args.config
    if not stock.startswith('mmseg::'):
        # Inherit by a path relative to the new file, so the pair can move together.
        stock = os.path.relpath(Path(stock).resolve(), output.resolve().parent)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(leaf_config_text(stock, protected, args.method, args.block_size, notes))
    for note in notes:
        print(f'changed: {note}')
    print(f'wrote {output}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'protect_config: error: {error}')
