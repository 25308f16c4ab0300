"""Rewrite the result tables of the README and docs/en from docs/en/results/*.json.

    python tools/update_results_docs.py [--check]

Each table sits between <!-- results:NAME --> markers; the results files are
written by the commands named in each table's text (tools/demo.py
--results-file, tools/analysis_tools/benchmark_ciphers.py --results-file, ...).
--check only reports stale tables and exits non-zero if there are any.
"""
import argparse

from mmseg_keyprotect_experiments.results_docs import DOCUMENTS, REPO, blocks, render, update


def main():
    parser = argparse.ArgumentParser(description='Regenerate the result tables of the docs from results files')
    parser.add_argument('--check', action='store_true', help='report stale tables instead of rewriting them')
    args = parser.parse_args()
    stale = [(path, name) for path in DOCUMENTS for name, body in blocks(path) if body != render(name)]
    if args.check:
        for path, name in stale:
            print(f'stale: {path.relative_to(REPO)}: {name}')
        raise SystemExit(1 if stale else 0)
    for path in DOCUMENTS:
        if update(path):
            print(f'updated {path.relative_to(REPO)}')


if __name__ == '__main__':
    main()
