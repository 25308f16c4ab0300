"""Encrypt (or decrypt) image files on the client, losslessly, without losing or overwriting any.

    python tools/encrypt_images.py IN OUT --key-file K [--method shuffle] [--block-size 4]
        [--pad] [--decrypt] [--keep-going] [--overwrite]

IN is an image or a folder (searched recursively). A folder goes to the folder
OUT (structure kept, every file a .png); a single image goes to the file OUT
(*.png) or into OUT if that is an existing folder. Encrypted images are 8-bit
PNG, or 16-bit PNG when the chain has FFX, and carry their method, block size
and a salted verifier of the transform (never the key) in their metadata, so decryption and
the server's --encrypted-input mode refuse a mismatching key. Every problem is
checked before the first file is written, and each file appears complete or
not at all.
"""
import argparse
import sys

from mmseg_keyprotect.apis import plan_outputs, transform_files
from mmseg_keyprotect.apis.image_encryption import MAX_IMAGE_PIXELS
from mmseg_keyprotect.config import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto.ciphers import enumerable_warning
from mmseg_keyprotect.crypto.keys import shown_fingerprint
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Encrypt or decrypt images block-wise with a key')
    parser.add_argument('input', help='image file or folder')
    parser.add_argument('output', help='output folder (a .png file, or an existing folder, for a single image)')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--method', default=DEFAULT_METHOD,
                        help=f'method or chain: shuffle, np, ffx, ffx8, shuffle+np, ... (default {DEFAULT_METHOD}); '
                             'the model\'s')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE,
                        help=f'block size M (default {DEFAULT_BLOCK_SIZE}); the model\'s')
    parser.add_argument('--decrypt', action='store_true', help='decrypt instead of encrypt')
    parser.add_argument('--pad', action='store_true',
                        help='pad right/bottom to a multiple of M instead of refusing such images')
    parser.add_argument('--keep-going', action='store_true',
                        help='on a bad image, go on with the rest; list the failures and exit non-zero')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing output files (even the inputs, when OUT is IN)')
    parser.add_argument('--max-pixels', type=int, default=MAX_IMAGE_PIXELS,
                        help='refuse images whose header declares more pixels, before decoding them (default '
                             '%(default)s, 8192 x 8192; 0: no limit)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    key = RunKey.load(args.key_file).key
    cipher = key.cipher(args.method, args.block_size)
    warning = enumerable_warning(args.method, args.block_size)
    if warning:
        print(f'warning: {warning}', file=sys.stderr)
    pairs = plan_outputs(args.input, args.output, overwrite=args.overwrite)
    verb = 'decrypt' if args.decrypt else 'encrypt'

    def progress(number, path):
        print(f'\r[{number}/{len(pairs)}] {path}', end='' if number < len(pairs) else '\n', file=sys.stderr,
              flush=True)

    written, failures = transform_files(cipher, args.method, pairs, decrypt=args.decrypt, pad=args.pad,
                                        keep_going=args.keep_going, progress=progress,
                                        max_pixels=args.max_pixels or None)
    print(f'{verb}ed {len(written)} of {len(pairs)} image(s) into {args.output} ({args.method}, '
          f'M = {args.block_size}, key fingerprint {shown_fingerprint(key)})')
    for failure in failures:
        print(f'failed: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyProtectError as error:
        raise SystemExit(f'encrypt_images: error: {error}')
