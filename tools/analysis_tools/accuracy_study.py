"""Accuracy of protected models against the unprotected baseline, same schedule, on the demo data.

    python tools/analysis_tools/accuracy_study.py [--variants shuffle:2 shuffle:4 shuffle:8 shuffle:16 np:4 ffx:4]
        [--repeated shuffle:4] [--seeds 0 1 2] [--iterations 1000]

Writes accuracy_study.{md,json,png} to --work-dir (default work_dirs/demo, whose
runs it shares with tools/demo.py) and prints the table. Finished runs are reused.
"""
import argparse
import json
import sys
from pathlib import Path

from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.utils import provenance
from mmseg_keyprotect_experiments.accuracy_study import REPEATED, VARIANTS, parse_variant, run_accuracy_study
from mmseg_keyprotect_experiments.demo import PUBLIC_DEMO_KEY


def main():
    parser = argparse.ArgumentParser(description='Authorized mIoU of protected variants vs the unprotected baseline')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--key-file', help='key file (default: the public demo key)')
    parser.add_argument('--iterations', type=int, default=1000, help='training iterations per model')
    parser.add_argument('--variants', nargs='+', default=[v.name for v in VARIANTS],
                        help='METHOD:M pairs, trained with seed 0')
    parser.add_argument('--repeated', nargs='*', default=[v.name for v in REPEATED],
                        help='variants also trained with every --seeds (the baseline always is)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--results-file', help='write every number, with the command, date, machine and key '
                        'fingerprint, as JSON (docs/en/results/ feeds the docs)')
    args = parser.parse_args()
    report = run_accuracy_study(args.work_dir, args.data_root, args.key_file, args.iterations,
                                [parse_variant(v) for v in args.variants], [parse_variant(v) for v in args.repeated],
                                args.seeds)
    print(f'\naccuracy study ({report["minutes"]:.0f} min); {args.work_dir}/accuracy_study.md\n')
    print(report['table'])
    if args.results_file:
        command = ('python tools/analysis_tools/accuracy_study.py ' + ' '.join(sys.argv[1:])).split(
            ' --results-file')[0]
        fingerprint = RunKey.load(args.key_file or str(PUBLIC_DEMO_KEY)).fingerprint
        Path(args.results_file).write_text(json.dumps(dict(
            provenance(command), key_fingerprint=fingerprint, iterations=report['iterations'], rows=report['rows'],
            minutes=report['minutes']), indent=2) + '\n')


if __name__ == '__main__':
    try:
        main()
    except KeyProtectError as error:
        raise SystemExit(f'accuracy_study: error: {error}')
