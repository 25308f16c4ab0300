"""Predict with a protected model and its key; write label maps and overlays.

    python tools/infer.py CONFIG CHECKPOINT IMAGES --key-file KEY --out DIR [--device cuda]
    python tools/infer.py CONFIG CHECKPOINT ENCRYPTED_IMAGES --encrypted-input --out DIR

IMAGES is an image or a folder. For each image, DIR gets <name>_mask.png (class
indices) and <name>_overlay.png (colours over the plain image; with
--encrypted-input, colours alone: the server never sees the plain image).
"""
import argparse
import sys

from mmseg_keyprotect.apis import ProtectedInferencer, predict_folder
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Key-aware inference with a protected checkpoint')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', help='image file or folder')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--encrypted-input', action='store_true',
                        help='images are already encrypted (tools/encrypt_images.py); no key is used here')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    parser.add_argument('--alpha', type=float, default=0.5, help='overlay opacity')
    return parser.parse_args()


def main():
    args = parse_args()
    inferencer = ProtectedInferencer(args.config, args.checkpoint, key_file=args.key_file, device=args.device,
                                     encrypted_input=args.encrypted_input)

    def progress(number, total, path):
        print(f'[{number}/{total}] {path}', file=sys.stderr, flush=True)

    written = predict_folder(inferencer, args.images, args.out, args.alpha, progress)
    print(f'wrote masks and overlays for {len(written)} image(s) to {args.out}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'infer: error: {error}')
