"""The protection frontier: each protected setting's accuracy against its best attacker, on the demo data.

    python tools/analysis_tools/protection_frontier.py [--variants shuffle:4 np:4 ffx:4 shuffle:4+kc0.1 ...]
        [--seeds 0 1] [--num-wrong-keys 100] [--trimmed] [--results-file docs/en/results/protection_frontier.json]

Trains (or reuses, from --work-dir, shared with tools/demo.py) the demo model of each variant, measures
it with the protection report's attacks, and writes frontier.json, protection_frontier.png and the table
to --work-dir. Every measurement is saved as it finishes: run the same command again to resume, or
with --report-only to write the outputs of what is measured so far.
"""
import argparse
import json
import sys
from pathlib import Path

from mmseg_keyprotect.attacks.protection_report import UNLABELLED_DRAWS, WEIGHTS_SEARCH_BUDGET
from mmseg_keyprotect.attacks.unlabelled_images import CLIMB_BUDGET, RELAXED_STEPS, UNLABELLED_COUNTS
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.utils import provenance
from mmseg_keyprotect_experiments.protection_frontier import (
    ATTACK_DRAWS,
    BEST_MAX_LABELLED,
    FULL_ATTACK_SIZES,
    TRAINING_COSTS,
    TRIMMED_ATTACK_SIZES,
    TRIMMED_FINE_TUNE_SIZES,
    VARIANTS,
    FrontierStudy,
    frontier_rows,
    parse_variant,
    run_frontier,
    training_costs,
    write_figure,
)

ROOT = Path(__file__).resolve().parents[2]


def earlier_studies(earlier: dict) -> list:
    """The studies a results file grew from, latest first: the file's own and those it started from."""
    before = earlier.get('earlier_studies') or ([earlier['earlier_study']] if 'earlier_study' in earlier else [])
    return [{k: earlier[k] for k in ('command', 'date', 'machine')}] + before


def main():
    parser = argparse.ArgumentParser(description='Accuracy against the best attack, for every protected setting')
    parser.add_argument('--work-dir', default='work_dirs/demo', help='runs and frontier.json (shared with the demo)')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--key-file', help='key file (default: the public demo key)')
    parser.add_argument('--iterations', type=int, default=1000, help='training iterations per model')
    parser.add_argument('--variants', nargs='+', default=[v.name for v in VARIANTS],
                        help='METHOD:M, or METHOD:M+kcWEIGHT for key-contrastive training')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1],
                        help='seeds of the authorized mIoU (the attacks run on the first)')
    parser.add_argument('--candidate-margin', type=float, default=2.0,
                        help='train the other seeds only where the first is at most this far below the baseline')
    parser.add_argument('--all-seeds', action='store_true',
                        help='train every seed of every variant (default: only where the choice depends on it)')
    parser.add_argument('--num-wrong-keys', type=int, default=100)
    parser.add_argument('--attack-sizes', type=int, nargs='+', default=list(FULL_ATTACK_SIZES),
                        help='labelled images k of the adapter attacks')
    parser.add_argument('--fine-tune-sizes', type=int, nargs='+', default=list(FULL_ATTACK_SIZES),
                        help='labelled images k of fine-tuning and of the from-scratch floor')
    parser.add_argument('--attack-iterations', type=int, default=200)
    parser.add_argument('--weights-search-budget', type=int, default=WEIGHTS_SEARCH_BUDGET,
                        help='oracle evaluations of the weights-only thief\'s search (default %(default)s)')
    parser.add_argument('--unlabelled-images', type=int, nargs='*', default=list(UNLABELLED_COUNTS), metavar='N',
                        help='N of the thief with the weights and N unlabelled images (default %(default)s)')
    parser.add_argument('--climb-budget', type=int, default=CLIMB_BUDGET,
                        help='oracle evaluations of each of that thief\'s climbs (default %(default)s)')
    parser.add_argument('--relaxed-steps', type=int, default=RELAXED_STEPS,
                        help='gradient steps of that thief\'s relaxed search (default %(default)s)')
    parser.add_argument('--unlabelled-draws', type=int, default=UNLABELLED_DRAWS,
                        help='draws of that thief\'s unlabelled images (their mean counts; default %(default)s)')
    parser.add_argument('--attack-draws', type=int, default=ATTACK_DRAWS,
                        help=f'draws of labelled images for the learning attacks at k = {BEST_MAX_LABELLED} '
                             '(their mean counts; other k values have one draw)')
    parser.add_argument('--training-costs', metavar='FILE', default=str(ROOT / TRAINING_COSTS),
                        help='training time of each key-contrastive setting against ordinary protected training, as '
                             'benchmark_training.py --results-file writes it (default %(default)s)')
    parser.add_argument('--trimmed', action='store_true',
                        help=f'adapters at k = {" ".join(map(str, TRIMMED_ATTACK_SIZES))}, fine-tuning at k = '
                             f'{" ".join(map(str, TRIMMED_FINE_TUNE_SIZES))} (about 8 minutes a variant on 2 cores)')
    parser.add_argument('--from-results', metavar='FILE',
                        help='start from the measurements of a results file (variants not yet in --work-dir); '
                             'models are trained again only where an attack needs them and must score as recorded')
    parser.add_argument('--report-only', action='store_true',
                        help='measure nothing: apply the rule to what frontier.json holds and write the outputs')
    parser.add_argument('--results-file', help='write the rows, the decision, the command, date and machine as JSON '
                        '(docs/en/results/ feeds the docs)')
    args = parser.parse_args()
    if args.trimmed:
        args.attack_sizes, args.fine_tune_sizes = list(TRIMMED_ATTACK_SIZES), list(TRIMMED_FINE_TUNE_SIZES)
    study = FrontierStudy(args.work_dir, args.data_root, args.key_file, args.iterations, args.seeds,
                          args.num_wrong_keys, args.attack_sizes, args.fine_tune_sizes, args.attack_iterations,
                          args.weights_search_budget, args.attack_draws, training_costs(args.training_costs),
                          args.unlabelled_images, args.climb_budget, args.relaxed_steps, args.unlabelled_draws)
    earlier = None
    if args.from_results:
        earlier = json.loads(Path(args.from_results).read_text())
        study.import_results(earlier)
    decision = study.decide() if args.report_only else run_frontier(
        study, [parse_variant(v) for v in args.variants], args.candidate_margin, args.all_seeds)
    rows = frontier_rows(study.state)
    baseline = study.state['baseline']['mean']
    figure = write_figure(rows, baseline, Path(args.work_dir) / 'protection_frontier.png', decision['choice'])
    for row in sorted(rows, key=lambda r: r['attackers_best'] if r['attackers_best'] is not None else 1e9):
        seeds = ', '.join(f'{v:.2f}' for v in row['authorized'].values())
        print(f'{row["variant"]:>22}  key holder {seeds:<14} (gap {row["gap"]:+.2f})  attacker\'s best '
              f'{row["attackers_best"]:.2f} ({row["attackers_best_by"]})')
    print(f'\nbaseline {baseline:.2f}; rule: {decision["rule"]}\nchoice: {decision["choice"]}\nfigure: {figure}')
    if args.results_file:
        command = ('python tools/analysis_tools/protection_frontier.py ' + ' '.join(sys.argv[1:])).split(
            ' --results-file')[0]
        Path(args.results_file).write_text(json.dumps(dict(
            provenance(command), key_fingerprint=RunKey.load(study.key_file).fingerprint,
            iterations=args.iterations, seeds=args.seeds, num_wrong_keys=args.num_wrong_keys,
            attack_sizes=args.attack_sizes, fine_tune_sizes=args.fine_tune_sizes,
            attack_iterations=args.attack_iterations, weights_search_budget=args.weights_search_budget,
            attack_draws=args.attack_draws, unlabelled_images=args.unlabelled_images,
            climb_budget=args.climb_budget, relaxed_steps=args.relaxed_steps, unlabelled_draws=args.unlabelled_draws,
            baseline=study.state['baseline'],
            scratch={k: v['mIoU'] for k, v in study.state.get('scratch', {}).items()},
            rows=rows, decision=decision,
            **({'earlier_studies': earlier_studies(earlier)} if earlier else {})),
            indent=2) + '\n')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'protection_frontier: error: {error}')
