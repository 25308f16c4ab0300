"""The main job: train a baseline and a protected model on generated data, report.

    python tools/demo.py [--iterations 1000] [--num-wrong-keys 5] [--full]

Writes work_dirs/demo/report.{md,json} and work_dirs/demo/figures/*.png, and
prints the table. --full adds shuffle at M = 2 and 8, np, ffx and shuffle+np.
"""
import argparse

from experiments.demo import run_demo


def main():
    parser = argparse.ArgumentParser(description='Protected vs unprotected segmentation on the Shapes demo data')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--key-file', help='key file (default: tools/experiments/public_demo_key.json)')
    parser.add_argument('--iterations', type=int, default=1000, help='training iterations per model')
    parser.add_argument('--num-wrong-keys', type=int, default=5, help='random wrong keys to evaluate')
    parser.add_argument('--num-figures', type=int, default=4, help='sample rows to draw')
    parser.add_argument('--full', action='store_true', help='also np, ffx, shuffle+np and M = 2, 8')
    parser.add_argument('--num-train', type=int, default=400, help='generated training images')
    parser.add_argument('--num-val', type=int, default=100, help='generated validation images')
    args = parser.parse_args()
    report = run_demo(args.work_dir, args.data_root, args.key_file, args.iterations, args.num_wrong_keys,
                      args.full, args.num_figures, args.num_train, args.num_val)
    print(f'\nmmseg-keyprotect demo ({report["minutes"]:.1f} min); report in {args.work_dir}/report.md\n')
    print(report['table'])


if __name__ == '__main__':
    main()
