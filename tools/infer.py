"""Predict with a protected model and its key; write label maps and overlays.

    python tools/infer.py CONFIG CHECKPOINT --key-file KEY IMAGES --out DIR [--device cuda]
    python tools/infer.py CONFIG CHECKPOINT --encrypted-input ENCRYPTED_IMAGES --out DIR

IMAGES is an image or a folder. For each image, DIR gets <name>_mask.png (class
indices) and <name>_overlay.png (colours over the plain image; with
--encrypted-input, over nothing: the server never sees the plain image).
"""
import argparse
import sys
from pathlib import Path

import cv2

from mmseg_keyprotect.apis import ProtectedInferencer
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.images import list_images, read_image, write_image
from mmseg_keyprotect.visualization import colorize, overlay


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
    root, files = list_images(args.images)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(files, 1):
        [result] = inferencer([path])
        mask = result.pred_sem_seg.data[0].cpu().numpy().astype('uint8')
        stem = out / path.relative_to(root).with_suffix('')
        stem.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(f'{stem}_mask.png', mask)
        colours = colorize(mask, inferencer.palette)
        picture = colours if args.encrypted_input else overlay(read_image(path), mask, inferencer.palette, args.alpha)
        write_image(f'{stem}_overlay.png', picture)
        print(f'\r[{number}/{len(files)}] {path}', end='' if number < len(files) else '\n', file=sys.stderr)
    print(f'wrote masks and overlays for {len(files)} image(s) to {out}')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'infer: error: {error}')
