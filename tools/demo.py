"""The main job: what a protected model gives the key holder, a stranger and a thief.

    python tools/demo.py [--iterations 1000] [--num-wrong-keys 20] [--attack-images 10]

Generates the Shapes data, trains an unprotected baseline and a protected twin,
scores the protected model with the key, on plain images, under random wrong
keys, after the block-wise adapter attack and for two thieves who hold the
weights (with no data, and with a few unlabelled images), and writes report.{md,json} and
figures/ to --work-dir. Takes about eleven minutes on a 2-core CPU (its report
names the machine it ran on); finished trainings are reused.
"""
import argparse
import shutil
import warnings

from mmseg_keyprotect.attacks.protection_report import ATTACK_DRAWS, UNLABELLED_DRAWS, WEIGHTS_SEARCH_BUDGET
from mmseg_keyprotect.attacks.unlabelled_images import CLIMB_BUDGET, RELAXED_STEPS, UNLABELLED_COUNTS
from mmseg_keyprotect.config import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD, KEY_CONTRASTIVE_WEIGHT
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect_experiments.demo import DEFAULT_DEMO_KEY_CONTRASTIVE, DEFAULT_DEMO_NEGATIVES, run_demo


def main():
    # The demo is read by people: MMEngine's and mmseg's notices about deprecated options and unset
    # visualiser backends would bury the stage headers and the progress bars.
    warnings.simplefilter('ignore', UserWarning)
    warnings.simplefilter('ignore', DeprecationWarning)
    parser = argparse.ArgumentParser(description='Protected vs unprotected segmentation on the Shapes demo data')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--key-file', help='key file (default: tools/experiments/public_demo_key.json)')
    parser.add_argument('--iterations', type=int, default=1000, help='training iterations per model')
    parser.add_argument('--method', default=DEFAULT_METHOD, help='protection method or chain')
    parser.add_argument('--block-size', type=int, default=DEFAULT_BLOCK_SIZE, help='block size M')
    contrastive = parser.add_mutually_exclusive_group()
    contrastive.add_argument('--key-contrastive', nargs='?', type=float, const=KEY_CONTRASTIVE_WEIGHT,
                             metavar='WEIGHT', help='train the protected model key-contrastively with this loss weight'
                             + (' (the default)' if DEFAULT_DEMO_KEY_CONTRASTIVE else ''))
    contrastive.add_argument('--no-key-contrastive', action='store_true', help='ordinary protected training')
    parser.add_argument('--negatives', default=DEFAULT_DEMO_NEGATIVES or 'all',
                        help='negatives of key-contrastive training: all, or shareF, intervalN, running joined by + '
                             '(default %(default)s); the committed config of that setting is used')
    parser.add_argument('--num-wrong-keys', type=int, default=20, help='random wrong keys to evaluate')
    parser.add_argument('--attack-images', type=int, default=10, help='labelled images of the adapter attack')
    parser.add_argument('--attack-iterations', type=int, default=200, help='iterations of the adapter attack')
    parser.add_argument('--attack-draws', type=int, default=ATTACK_DRAWS,
                        help='draws of the labelled images; the report gives the mean (default %(default)s)')
    parser.add_argument('--weights-search-budget', type=int, default=WEIGHTS_SEARCH_BUDGET,
                        help='oracle evaluations of the weights-only thief\'s search (default %(default)s)')
    parser.add_argument('--unlabelled-images', type=int, default=UNLABELLED_COUNTS[0],
                        help='unlabelled images of the thief who searches the key on the model\'s normalisation '
                             'statistics (default %(default)s; 0: not run)')
    parser.add_argument('--climb-budget', type=int, default=CLIMB_BUDGET,
                        help='oracle evaluations of each of that thief\'s climbs (default %(default)s)')
    parser.add_argument('--relaxed-steps', type=int, default=RELAXED_STEPS,
                        help='gradient steps of that thief\'s relaxed search (default %(default)s)')
    parser.add_argument('--unlabelled-draws', type=int, default=UNLABELLED_DRAWS,
                        help='draws of that thief\'s unlabelled images; the report gives the mean '
                             '(default %(default)s)')
    parser.add_argument('--num-figures', type=int, default=4, help='sample images to draw')
    parser.add_argument('--num-train', type=int, default=400, help='generated training images')
    parser.add_argument('--num-val', type=int, default=100, help='generated validation images')
    parser.add_argument('--results-file', help='also write the report JSON here (docs/en/results/demo.json '
                        'feeds the tables of the README and docs: python tools/update_results_docs.py)')
    args = parser.parse_args()
    report = run_demo(args.work_dir, args.data_root, args.key_file, args.iterations, args.num_wrong_keys,
                      args.attack_images, args.attack_iterations, args.num_figures, args.num_train, args.num_val,
                      args.method, args.block_size,
                      None if args.no_key_contrastive else args.key_contrastive or DEFAULT_DEMO_KEY_CONTRASTIVE,
                      args.weights_search_budget, args.attack_draws, args.negatives, args.unlabelled_images,
                      args.climb_budget, args.relaxed_steps, args.unlabelled_draws)
    if args.results_file:
        shutil.copyfile(f'{args.work_dir}/report.json', args.results_file)
    print(f'\n{report["summary"]}\n\n{report["table"]}\n\nReport: {args.work_dir}/report.md, '
          f'figures: {args.work_dir}/figures/')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'demo: error: {error}')
