"""Figures of the protection report: wrong-key distribution, near-key curves, learning-attack curves."""
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use('Agg')  # files only; no display is assumed
import matplotlib.pyplot as plt  # noqa: E402

PART_LABELS = dict(sources='shuffle positions right', flips='NP flip bits right', table_entries='FFX table entries right')


def _reference_lines(axis, report: Dict) -> None:
    lines = [('with the key', report['authorized_mIoU'], 'tab:green'),
             ('plain images', report['plain_mIoU'], 'tab:red'),
             ('chance (class frequencies)', report['chance']['class_frequency'], 'tab:gray')]
    if report.get('baseline'):
        lines.insert(0, ('unprotected baseline', report['baseline']['mIoU'], 'black'))
    for label, value, colour in lines:
        axis.axhline(value, color=colour, linestyle='--', linewidth=1, label=f'{label} ({value:.1f})')


def write_figures(report: Dict, out_dir: Path) -> List[Path]:
    """Write the report's PNG figures into ``out_dir``; return their paths."""
    written = []
    wrong = report.get('wrong_keys')
    if wrong:
        figure, axis = plt.subplots(figsize=(6, 3.5))
        axis.hist(wrong['values'], bins=20, color='tab:blue', alpha=0.8)
        for value, colour, label in ((report['authorized_mIoU'], 'tab:green', 'with the key'),
                                     (report['plain_mIoU'], 'tab:red', 'plain images')):
            axis.axvline(value, color=colour, linestyle='--', label=f'{label} ({value:.1f})')
        axis.set(xlabel='mIoU (%)', ylabel='wrong keys',
                 title=f'{wrong["summary"]["count"]} random wrong keys ({report["method"]}, M = {report["block_size"]})')
        axis.legend(fontsize=8)
        written.append(_save(figure, out_dir / 'wrong_keys.png'))
    if report.get('near_keys'):
        figure, axis = plt.subplots(figsize=(6, 3.5))
        for part, curve in report['near_keys'].items():
            axis.plot([100 * f for f, _ in curve], [m for _, m in curve], marker='o', label=PART_LABELS[part])
        _reference_lines(axis, report)
        axis.set(xlabel='share of the key right (%)', ylabel='mIoU (%)', title='Near keys')
        axis.legend(fontsize=7)
        written.append(_save(figure, out_dir / 'near_keys.png'))
    attacks = report.get('learning_attacks') or []
    if attacks:
        kinds = list(dict.fromkeys(row['attack'] for row in attacks))
        figure, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.5), sharey=True, squeeze=False)
        for axis, kind in zip(axes[0], kinds):
            for row in sorted((r for r in attacks if r['attack'] == kind), key=lambda r: r['k']):
                axis.plot([i for i, _ in row['curve']], [m for _, m in row['curve']], marker='o',
                          label=f'k = {row["k"]}')
            _reference_lines(axis, report)
            axis.set(xlabel='training iterations', title=kind.replace('_', ' '))
            axis.legend(fontsize=7)
        axes[0][0].set_ylabel('mIoU on plain images (%)')
        written.append(_save(figure, out_dir / 'learning_attacks.png'))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
