"""Tables in the README and the docs, rendered from the results files next to the docs.

A table lives between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``
in a markdown file; NAME says which results file (``docs/en/results/*.json``,
written by a committed command) and which renderer make it. ``python
tools/update_results_docs.py`` rewrites every such block, and a test checks
that each block equals what its results file renders, so no number in the docs
can drift from a measurement.
"""
import json
import re
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from mmseg_keyprotect.attacks.protection_report import PART_NAMES

from .demo import headline_table

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / 'docs' / 'en' / 'results'
DOCUMENTS = [REPO / 'README.md'] + sorted((REPO / 'docs' / 'en').rglob('*.md'))
BLOCK = re.compile(r'<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->', re.S)


def _load(name: str) -> Dict:
    return json.loads((RESULTS_DIR / f'{name}.json').read_text())


def _machine(report: Dict) -> str:
    machine = report['machine']
    device = machine.get('gpu') or f'{machine["cores"]} CPU cores ({machine["cpu"]}), no GPU'
    return f'{device}, torch {machine["torch"]}'


def demo_provenance(report: Dict) -> str:
    generated = report['stage_seconds'].get('generating the data', 0) > 1
    return (f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}; '
            f'{report["minutes"]:.1f} minutes from start to report'
            + ('' if generated else ' (the data was already generated)') + '.')


def demo_stages(report: Dict) -> str:
    lines = ['| stage | minutes |', '|---|---|']
    lines += [f'| {name} | {seconds / 60:.1f} |' for name, seconds in report['stage_seconds'].items()]
    lines.append(f'| total | {report["minutes"]:.1f} |')
    return '\n'.join(lines)


def cipher_speed(report: Dict) -> str:
    lines = [f'{report["size"]}x{report["size"]} RGB image, median of {report["repeats"]} calls; measured by '
             f'`{report["command"]}` on {report["date"]}: {_machine(report)}. A plain copy takes '
             f'{report["rows"][0]["copy_ms"]:.3f} ms.', '',
             '| method | M | encrypt ms | decrypt ms | published style ms | speed-up |', '|---|---|---|---|---|---|']
    lines += [f'| {r["method"]} | {r["block_size"]} | {r["encrypt_ms"]:.3f} | {r["decrypt_ms"]:.3f} | '
              f'{r["published_ms"]:.3f} | {r["speedup"]:.1f}x |' for r in report['rows']]
    if report.get('batch_rows'):
        lines += ['', f'Per batch of {report["batch_rows"][0]["batch_size"]} images at M = 4, '
                  f'on {report["batch_rows"][0]["device"]}:', '',
                  '| method | pipeline transform ms | on-device ms | ratio |', '|---|---|---|---|']
        lines += [f'| {r["method"]} | {r["pipeline_ms"]:.2f} | {r["on_device_ms"]:.2f} | {r["ratio"]:.2f} |'
                  for r in report['batch_rows']]
    return '\n'.join(lines)


def protection_report(report: Dict) -> str:
    """The report's headline numbers as one table; the report's own markdown has every detail."""
    wrong = report['wrong_keys']['summary']
    rows = [('with the key', f'{report["authorized_mIoU"]:.2f}'), ('plain images', f'{report["plain_mIoU"]:.2f}'),
            ('chance: always the majority class / random labels with the class frequencies',
             f'{report["chance"]["majority_class"]:.2f} / {report["chance"]["class_frequency"]:.2f}'),
            (f'{wrong["count"]} random wrong keys: mean / 95th percentile / max',
             f'{wrong["mean"]:.2f} / {wrong["p95"]:.2f} / {wrong["max"]:.2f}')]
    if report.get('baseline'):
        rows.insert(0, ('unprotected baseline', f'{report["baseline"]["mIoU"]:.2f}'))
    for part, curve in report['near_keys'].items():
        shares = ', '.join(f'{100 * f:.0f}%: {m:.1f}' for f, m in curve)
        rows.append((f'near keys, share of {PART_NAMES.get(part, part)} right', shares))
    pair = report['known_plaintext'][0]
    recovered = f'{100 * pair["agreement"]["positions"]:.0f}%, mIoU {pair["mIoU"]:.2f}'
    rows.append((f'known plaintext, {pair["pairs"]} pair: key positions right', recovered))
    only = report['ciphertext_only']
    if 'mIoU' in only:
        rows.append((f'ciphertext only, {only["encrypted_images"]} intercepted images', f'{only["mIoU"]:.2f}'))
    attacks = {}
    for row in report.get('learning_attacks') or []:
        attacks.setdefault(row['attack'], []).append((row['k'], row['curve'][-1][1], row['iterations']))
    names = dict(adapter='block-wise adapter on the frozen model', fine_tune='fine-tuning the stolen model',
                 scratch='floor: the same architecture from scratch')
    for attack, results in attacks.items():
        rows.append((f'{names.get(attack, attack)}, k = ' + ' / '.join(str(k) for k, _, _ in results)
                     + f' labelled images ({results[0][2]} iterations)', ' / '.join(f'{m:.2f}' for _, m, _ in results)))
    lines = [f'`{report["checkpoint"]}` ({report["method"]}, M = {report["block_size"]}) on '
             f'{report["test_images"]} test images, {report["minutes"]:.0f} minutes.', '',
             '| condition | mIoU |', '|---|---|']
    lines += [f'| {name} | {value} |' for name, value in rows]
    return '\n'.join(lines)


def training_cost(report: Dict) -> str:
    lines = [f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}; {report["rounds"]} '
             f'alternating rounds of {report["iterations"]} iterations.', '',
             '| config | seconds per iteration, each round | median |', '|---|---|---|']
    lines += [f'| {name} | {" ".join(f"{v:.3f}" for v in values)} | {report["medians"][name]:.3f} |'
              for name, values in report['times'].items()]
    lines += ['', f'Ratio of the medians, protected / unprotected: {report["ratio"]:.3f}.']
    return '\n'.join(lines)


def accuracy_study(report: Dict) -> str:
    lines = [f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}; key fingerprint '
             f'`{report["key_fingerprint"]}`, {report["iterations"]} iterations per model, '
             f'{report["minutes"]:.0f} minutes.', '',
             '| method | M | seed: mIoU with the key (plain images) | mean | gap to the baseline mean |',
             '|---|---|---|---|---|']
    for row in report['rows']:
        runs = ', '.join(f'{seed}: {run["mIoU"]:.2f}' + (f' ({run["plain_mIoU"]:.2f})' if run.get('plain_mIoU')
                                                          is not None else '') for seed, run in row['runs'].items())
        gap = '-' if row['method'] == 'none' else f'{row["gap"]:+.2f}'
        lines.append(f'| {row["method"]} | {row["block_size"] or "-"} | {runs} | {row["mean"]:.2f} | {gap} |')
    return '\n'.join(lines)


def checkpoint_speed(report: Dict) -> str:
    size, seconds = report['megabytes'], report['seconds']
    lines = [f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}; a state dict of '
             f'{size:.0f} MB, median of {report["repeats"]} runs.', '',
             '| operation | plain s | locked s | plain MB/s | locked MB/s | locked / plain |',
             '|---|---|---|---|---|---|']
    for name in ('save', 'load'):
        plain, locked = seconds[f'{name}_plain'], seconds[f'{name}_locked']
        lines.append(f'| {name} | {plain:.3f} | {locked:.3f} | {size / plain:.0f} | {size / locked:.0f} | '
                     f'{locked / plain:.2f}x |')
    return '\n'.join(lines)


RENDERERS: Dict[str, Tuple[str, Callable[[Dict], str]]] = {
    'checkpoint-speed': ('checkpoint_speed', checkpoint_speed),
    'accuracy-study': ('accuracy_study', accuracy_study),
    'accuracy-study-other-key': ('accuracy_study_other_key', accuracy_study),
    'training-cost': ('training_cost', training_cost),
    'protection-report': ('protection_report', protection_report),
    'demo-headline': ('demo', headline_table),
    'demo-provenance': ('demo', demo_provenance),
    'demo-stages': ('demo', demo_stages),
    'cipher-speed': ('cipher_speed', cipher_speed),
}


def render(name: str) -> str:
    if name not in RENDERERS:
        raise KeyError(f'no renderer for results block {name!r}; known: {sorted(RENDERERS)}')
    results, renderer = RENDERERS[name]
    return renderer(_load(results)) + '\n'


def blocks(path: Path) -> List[Tuple[str, str]]:
    """``(name, body)`` of every results block in a markdown file."""
    return [(match['name'], match['body']) for match in BLOCK.finditer(path.read_text())]


def update(path: Path) -> bool:
    """Rewrite the results blocks of one file; return whether it changed."""
    text = path.read_text()
    updated = BLOCK.sub(lambda m: f'<!-- results:{m["name"]} -->\n{render(m["name"])}<!-- /results:{m["name"]} -->',
                        text)
    if updated != text:
        path.write_text(updated)
    return updated != text
