"""Measure how strong a protected model's protection is: wrong keys, near keys, attacks.

    python tools/evaluate_protection.py CONFIG CHECKPOINT --key-file KEY \
        [--baseline BASELINE_CONFIG BASELINE_CHECKPOINT] [--num-wrong-keys 100] \
        [--attack-sizes 10 100 10%] [--attack-iterations 300] [--attack-draws 3] \
        [--unlabelled-images 8 16] [--unlabelled-draws 3] [--climb-budget 3600] [--public-weights PUBLIC.pth] \
        [--quick]

Writes protection_report.{json,md} and figures to --out-dir and prints the
markdown. docs/en/user_guides/protection_report.md describes the sections.
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import DictAction

from mmseg_keyprotect.attacks.learning_attacks import ATTACKS
from mmseg_keyprotect.attacks.protection_report import (
    ATTACK_DRAWS,
    ATTACK_SIZES,
    UNLABELLED_DRAWS,
    WEIGHTS_SEARCH_BUDGET,
    evaluate_protection,
)
from mmseg_keyprotect.attacks.report_rendering import write_report_files
from mmseg_keyprotect.attacks.unlabelled_images import CLIMB_BUDGET, RELAXED_STEPS, UNLABELLED_COUNTS
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.utils import provenance

# --quick: a smoke run in a few minutes, too small for percentile claims.
QUICK = dict(num_wrong_keys=20, attack_sizes=['10'], attack_iterations=40, attack_draws=1, weights_search_budget=100,
             unlabelled_counts=[8], climb_budget=100, relaxed_steps=10, unlabelled_draws=1)


def main():
    parser = argparse.ArgumentParser(description='Protection report of a protected segmentation checkpoint')
    parser.add_argument('config', help='protected config file')
    parser.add_argument('checkpoint', help='protected checkpoint')
    parser.add_argument('--key-file', help='key file (default: $KEYPROTECT_KEY_FILE)')
    parser.add_argument('--baseline', nargs=2, metavar=('CONFIG', 'CHECKPOINT'),
                        help='the same architecture trained without protection')
    parser.add_argument('--out-dir', default='work_dirs/protection', help='where the report goes')
    parser.add_argument('--num-wrong-keys', type=int, default=100, help='random wrong keys (>= 59 for a p95 claim)')
    parser.add_argument('--attack-sizes', nargs='*', default=list(ATTACK_SIZES),
                        help='labelled plain images k for the learning attacks: counts or shares (10%%); '
                             'none to skip them')
    parser.add_argument('--attack-iterations', type=int, default=300, help='training iterations per learning attack')
    parser.add_argument('--attack-draws', type=int, default=ATTACK_DRAWS,
                        help='draws of labelled images per attack and k; the report gives their mean '
                             '(default %(default)s)')
    parser.add_argument('--attacks', nargs='+', choices=ATTACKS,
                        help='learning attacks to run (default: those that fit the cipher; value_table for FFX)')
    parser.add_argument('--weights-search-budget', type=int, default=WEIGHTS_SEARCH_BUDGET,
                        help='oracle evaluations of the weights-only thief\'s search (default %(default)s)')
    parser.add_argument('--unlabelled-images', type=int, nargs='*', default=list(UNLABELLED_COUNTS), metavar='N',
                        help='N of the thief with the weights and N unlabelled images (default %(default)s; '
                             'none to skip it)')
    parser.add_argument('--climb-budget', type=int, default=CLIMB_BUDGET,
                        help='oracle evaluations of each of that thief\'s climbs (default %(default)s)')
    parser.add_argument('--relaxed-steps', type=int, default=RELAXED_STEPS,
                        help='gradient steps of that thief\'s relaxed search (default %(default)s; 0: none)')
    parser.add_argument('--unlabelled-draws', type=int, default=UNLABELLED_DRAWS,
                        help='draws of that thief\'s unlabelled images for each N; the report gives their mean '
                             '(default %(default)s)')
    parser.add_argument('--public-weights', metavar='CHECKPOINT',
                        help='the public weights the model was trained from, which a thief holds too')
    parser.add_argument('--num-images', type=int, help='score on this many test images (default: all)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--seed', type=int, default=0, help='seed of image choices and attacks (not of keys)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    parser.add_argument('--results-file', help='also write the report JSON here (docs/en/results/ feeds the docs)')
    parser.add_argument('--quick', action='store_true',
                        help='trim the budget: 20 wrong keys, k = 10 only, one draw of 40 attack iterations, '
                             '100 search evaluations, one draw of N = 8 unlabelled images with climbs of 100 '
                             'evaluations')
    args = parser.parse_args()
    budget = dict(num_wrong_keys=args.num_wrong_keys, attack_sizes=args.attack_sizes,
                  attack_iterations=args.attack_iterations, attack_draws=args.attack_draws,
                  weights_search_budget=args.weights_search_budget, unlabelled_counts=args.unlabelled_images,
                  climb_budget=args.climb_budget, relaxed_steps=args.relaxed_steps,
                  unlabelled_draws=args.unlabelled_draws)
    if args.quick:
        budget.update(QUICK)
    report = evaluate_protection(args.config, args.checkpoint, args.key_file, args.out_dir, baseline=args.baseline,
                                 attacks=args.attacks, public_weights=args.public_weights, num_images=args.num_images,
                                 device=args.device, seed=args.seed, cfg_options=args.cfg_options, **budget)
    markdown = write_report_files(report, args.out_dir)[0]
    if args.results_file:
        command = ('python tools/evaluate_protection.py ' + ' '.join(sys.argv[1:])).split(' --results-file')[0]
        results = {**report, **provenance(command, args.device)}
        Path(args.results_file).write_text(json.dumps(results, indent=2, default=float) + '\n')
    print(markdown.read_text())


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'evaluate_protection: error: {error}')
