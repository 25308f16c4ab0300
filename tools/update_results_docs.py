"""Rewrite the result tables of the README and docs/en from docs/en/results/*.json.

    python tools/update_results_docs.py [--check]

Each table sits between <!-- results:NAME --> markers; the results files are
written by the commands named in each table's text (tools/demo.py
--results-file, tools/analysis_tools/benchmark_ciphers.py --results-file, ...).
--check only reports stale tables and exits non-zero if there are any.
"""
import argparse
from pathlib import Path

from mmseg_keyprotect_experiments.results_docs import RESULTS_DIR, blocks, documents, render, update

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description='Regenerate the result tables of the docs from results files')
    parser.add_argument('--check', action='store_true', help='report stale tables instead of rewriting them')
    args = parser.parse_args()
    results_dir = ROOT / RESULTS_DIR
    stale = [(path, name) for path in documents(ROOT) for name, body in blocks(path)
             if body != render(name, results_dir)]
    if args.check:
        for path, name in stale:
            print(f'stale: {path.relative_to(ROOT)}: {name}')
        raise SystemExit(1 if stale else 0)
    for path in documents(ROOT):
        if update(path, results_dir):
            print(f'updated {path.relative_to(ROOT)}')


if __name__ == '__main__':
    main()
