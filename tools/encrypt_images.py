"""Encrypt (or decrypt) image files on the client, losslessly.

    python tools/encrypt_images.py --key-file K --method shuffle --block-size 4 IN OUT [--pad] [--decrypt]

IN is an image or a folder (searched recursively); OUT is a folder (or a .png
file for a single image). Encrypted images are 8-bit PNG, or 16-bit PNG when
the chain has FFX.
"""
import argparse
import sys

from mmseg_keyprotect.apis import list_images, transform_files
from mmseg_keyprotect.crypto import load_key
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Encrypt or decrypt images block-wise with a key')
    parser.add_argument('input', help='image file or folder')
    parser.add_argument('output', help='output folder (or .png file for a single image)')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--method', default='shuffle', help='method or chain: shuffle, np, ffx, shuffle+np, ...')
    parser.add_argument('--block-size', type=int, default=4, help='block size M')
    parser.add_argument('--decrypt', action='store_true', help='decrypt instead of encrypt')
    parser.add_argument('--pad', action='store_true',
                        help='pad right/bottom to a multiple of M instead of refusing such images')
    return parser.parse_args()


def main():
    args = parse_args()
    cipher = load_key(args.key_file).cipher(args.method, args.block_size)
    root, files = list_images(args.input)
    verb = 'decrypt' if args.decrypt else 'encrypt'

    def progress(number, path):
        print(f'\r[{number}/{len(files)}] {verb}ed {path}', end='' if number < len(files) else '\n',
              file=sys.stderr, flush=True)

    written = transform_files(cipher, files, root, args.output, decrypt=args.decrypt, pad=args.pad,
                              progress=progress)
    print(f'{verb}ed {len(written)} image(s) into {args.output} ({args.method}, M = {args.block_size}, '
          f'transform fingerprint {cipher.fingerprint})')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'encrypt_images: error: {error}')
