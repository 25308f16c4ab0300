"""Predict with a protected model and its key; write label maps and overlays.

    python tools/infer.py CONFIG CHECKPOINT IMAGES --key-file KEY --out-dir DIR [--device cuda]
    python tools/infer.py CONFIG CHECKPOINT ENCRYPTED_IMAGES --encrypted-input --out-dir DIR

IMAGES is an image or a folder. DIR gets pred/<name>_pred.png (class indices) and
vis/<name> (the prediction over the plain image); with --encrypted-input only the
class indices: the server never sees the plain image.
"""
import argparse

from mmseg_keyprotect.apis import ProtectedInferencer
from mmseg_keyprotect.errors import KeyProtectError


def parse_args():
    parser = argparse.ArgumentParser(description='Key-aware inference with a protected checkpoint')
    parser.add_argument('config', help='protected config file')
    parser.add_argument('checkpoint', help='protected checkpoint')
    parser.add_argument('images', help='image file or folder')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--encrypted-input', action='store_true',
                        help='images are already encrypted (tools/encrypt_images.py); no key is used here')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    parser.add_argument('--opacity', type=float, default=0.5, help='opacity of the painted prediction')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    return parser.parse_args()


def main():
    args = parse_args()
    inferencer = ProtectedInferencer(args.config, args.checkpoint, key_file=args.key_file, device=args.device,
                                     encrypted_input=args.encrypted_input)
    kwargs = {} if args.encrypted_input else dict(opacity=args.opacity)
    inferencer(args.images, out_dir=args.out_dir, batch_size=args.batch_size, **kwargs)
    written = len(inferencer.input_names)
    print(f'wrote predictions for {written} image(s) to {args.out_dir}/pred'
          + ('' if args.encrypted_input else f' and overlays to {args.out_dir}/vis'))


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'infer: error: {error}')
