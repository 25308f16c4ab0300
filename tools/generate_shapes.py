"""Generate the Shapes demo dataset (deterministic from --seed).

    python tools/generate_shapes.py [--root data/shapes] [--num-train 400] [--num-val 100]
"""
import argparse
import sys

from mmseg_keyprotect.datasets import generate_shapes


def main():
    parser = argparse.ArgumentParser(description='Generate the Shapes demo segmentation dataset')
    parser.add_argument('--root', default='data/shapes')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='dataset seed (not a key)')
    args = parser.parse_args()

    def progress(done, total):
        if done % max(1, total // 10) == 0 or done == total:
            print(f'generating images: {done}/{total}', file=sys.stderr, flush=True)

    root = generate_shapes(args.root, args.num_train, args.num_val, args.size, args.seed, progress)
    print(f'Shapes dataset ready in {root}')


if __name__ == '__main__':
    main()
