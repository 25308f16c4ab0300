"""The protection report as people read it: markdown tables and figures (wrong-key distribution,
near-key curves, learning-attack curves)."""
from pathlib import Path
from typing import Dict, List

import matplotlib
import numpy as np

matplotlib.use('Agg')  # files only; no display is assumed
import matplotlib.pyplot as plt  # noqa: E402

from ..utils import save_figure  # noqa: E402
from .protection_report import PART_NAMES, attack_finals  # noqa: E402


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
        title = f'{wrong["summary"]["count"]} random wrong keys ({report["method"]}, M = {report["block_size"]})'
        axis.set(xlabel='mIoU (%)', ylabel='wrong keys', title=title)
        axis.legend(fontsize=8)
        written.append(save_figure(figure, out_dir / 'wrong_keys.png'))
    if report.get('near_keys'):
        figure, axis = plt.subplots(figsize=(6, 3.5))
        for part, curve in report['near_keys'].items():
            axis.plot([100 * f for f, _ in curve], [m for _, m in curve], marker='o', label=f'{PART_NAMES[part]} right')
        _reference_lines(axis, report)
        axis.set(xlabel='share of the key right (%)', ylabel='mIoU (%)', title='Near keys')
        axis.legend(fontsize=7)
        written.append(save_figure(figure, out_dir / 'near_keys.png'))
    attacks = report.get('learning_attacks') or []
    if attacks:
        kinds = list(dict.fromkeys(row['attack'] for row in attacks))
        several = any(len(attack_finals(row)) > 1 for row in attacks)
        figure, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.5), sharey=True, squeeze=False)
        for axis, kind in zip(axes[0], kinds):
            for row in sorted((r for r in attacks if r['attack'] == kind), key=lambda r: r['k']):
                [line] = axis.plot([i for i, _ in row['curve']], [m for _, m in row['curve']], marker='o',
                                   label=f'k = {row["k"]}')
                if several:
                    finals = attack_finals(row)
                    axis.scatter([row['curve'][-1][0]] * len(finals), finals, marker='x', color=line.get_color())
            _reference_lines(axis, report)
            axis.set(xlabel='training iterations' + (' (x: where each draw of images ended)' if several else ''),
                     title=kind.replace('_', ' '))
            axis.legend(fontsize=7)
        axes[0][0].set_ylabel('mIoU on plain images (%)')
        written.append(save_figure(figure, out_dir / 'learning_attacks.png'))
    return written


def _percent(value) -> str:
    return '-' if value is None else f'{value:.2f}'


def markdown_report(report: Dict) -> str:
    """The report as markdown: tables first, figures after."""
    lines = [f'# Protection report: {report["method"]}, M = {report["block_size"]}', '',
             f'`{report["checkpoint"]}` on {report["test_images"]} test images; {report["minutes"]:.1f} minutes.', '',
             '| condition | mIoU |', '|---|---|']
    if report.get('baseline'):
        lines.append(f'| unprotected baseline, plain images | {_percent(report["baseline"]["mIoU"])} |')
    lines += [f'| protected, with the key | {_percent(report["authorized_mIoU"])} |',
              f'| protected, plain images | {_percent(report["plain_mIoU"])} |',
              f'| chance: always the majority class | {_percent(report["chance"]["majority_class"])} |',
              f'| chance: random labels with the class frequencies | {_percent(report["chance"]["class_frequency"])} |']
    wrong = report.get('wrong_keys')
    if wrong:
        s = wrong['summary']
        lines += ['', f'## Wrong keys ({s["count"]} random keys)', '',
                  '| mean | median | 95th percentile | 99th percentile | max |', '|---|---|---|---|---|',
                  f'| {s["mean"]:.2f} | {s["median"]:.2f} | {s["p95"]:.2f} | {s["p99"]:.2f} | {s["max"]:.2f} |', '',
                  f'The largest of {s["count"]} keys bounds the 95th percentile with '
                  f'{100 * s["max_bounds_p95_confidence"]:.1f}% confidence and the 99th with '
                  f'{100 * s["max_bounds_p99_confidence"]:.1f}% ({s["keys_for_p95_claim"]} and '
                  f'{s["keys_for_p99_claim"]} keys give 95% confidence).']
    if report.get('near_keys'):
        fractions = [f for f, _ in next(iter(report['near_keys'].values()))]
        lines += ['', '## Near keys: mIoU when part of the key is right', '',
                  '| part of the key right | ' + ' | '.join(f'{100 * f:.0f}%' for f in fractions) + ' |',
                  '|---|' + '---|' * len(fractions)]
        for part, curve in report['near_keys'].items():
            lines.append(f'| {PART_NAMES[part]} | ' + ' | '.join(f'{m:.2f}' for _, m in curve) + ' |')
    lines += ['', '## Known plaintext', '', '| pairs | blocks | seconds | key positions right | mIoU |',
              '|---|---|---|---|---|']
    for row in report['known_plaintext']:
        lines.append(f'| {row["pairs"]} | {row["blocks"]} | {row["seconds"]:.2f} | '
                     f'{100 * row["agreement"]["positions"]:.1f}% | {row["mIoU"]:.2f} |')
    only = report['ciphertext_only']
    lines += ['', '## Ciphertext only', '', f'From {only["encrypted_images"]} encrypted test images'
              + (f' and {only["reference_images"]} unrelated plain images' if 'reference_images' in only else '')
              + f', {only["seconds"]:.1f} s.', '']
    if 'agreement' in only:
        agreement, method = only['agreement'], report['method'].split('+')
        parts = []
        if 'shuffle' in method:
            parts.append(f'shuffle positions right: {100 * agreement["sources"]:.1f}% (the right pixel, whatever '
                         f'the channel: {100 * agreement["pixels"]:.1f}%)')
        if 'np' in method:
            parts.append(f'NP flips right: {100 * agreement["flips"]:.1f}%')
        text = '; '.join(parts + [f'mIoU with the estimated key: {only["mIoU"]:.2f}.'])
        lines.append(text[0].upper() + text[1:])
    if 'ffx_positions' in only:
        lines.append(f'FFX positions found: {only["ffx_positions"]["found"]}, '
                     f'{100 * only["ffx_positions"]["correct"]:.1f}% of positions classified right.')
    if only.get('note'):
        lines += ['', only['note'] + '.']
    lines += weights_only_section(report.get('weights_only') or {}, report['method'])
    lines += unlabelled_images_section(report.get('unlabelled_images') or [])
    attacks = report.get('learning_attacks') or []
    if attacks:
        draws = max(len(attack_finals(row)) for row in attacks)
        if draws > 1:
            about = (f'Each attack trained on {draws} draws of k labelled images: the end mIoU is their mean, each '
                     "draw's in brackets. Seconds and the figure's curves are the first draw's.")
        else:
            about = ('One draw of k labelled images. Which images a thief labels moves the result by several '
                     'points; `--attack-draws` gives the mean over several draws.')
        lines += ['', '## Learning attacks with k labelled plain images', '', about, '',
                  '| attack | k | iterations | trained parameters | seconds | mIoU at start | mIoU at end |',
                  '|---|---|---|---|---|---|---|']
        for row in attacks:
            share = f' ({row["size"]})' if row['size'].endswith('%') else ''
            finals = attack_finals(row)
            each = f' ({" / ".join(f"{m:.2f}" for m in finals)})' if len(finals) > 1 else ''
            lines.append(f'| {row["attack"]} | {row["k"]}{share} | {row["iterations"]} | '
                         f'{row["trained_parameters"]:,} | {row["seconds"]:.0f} | {row["curve"][0][1]:.2f} | '
                         f'{np.mean(finals):.2f}{each} |')
    lines += [''] + [f'![{Path(f).stem}]({Path(f).name})' for f in report.get('figures', [])]
    return '\n'.join(lines) + '\n'


def weights_only_section(result: Dict, method: str) -> List[str]:
    """The thief with the weights and no labels, as markdown lines."""
    lines = ['', '## Weights only (no labels)', '']
    if 'mIoU' not in result:
        return lines + [result.get('note', 'Not measured.')]
    agreement, search = result['agreement'], result['search']
    lines += [f'Uses {result["uses"]}. Keyed structure found in the first convolution: {result["structure"]:.2f} '
              f'(near 0 when its filters look plain); {result["phases"]} output phase(s) per block.', '',
              '| step | key positions right | NP flips right | pixels placed right | oracle evaluations | mIoU |',
              '|---|---|---|---|---|---|',
              f'| read off the weights | {100 * agreement["positions"]:.1f}% | {100 * agreement["flips"]:.1f}% | '
              f'{100 * agreement["pixels"]:.1f}% | {result["candidates"]} | {result["mIoU"]:.2f} |',
              f'| then searched | {100 * search["agreement"]["positions"]:.1f}% | '
              f'{100 * search["agreement"]["flips"]:.1f}% | {100 * search["agreement"]["pixels"]:.1f}% | '
              f'{search["evaluations"]} | {search["mIoU"]:.2f} |']
    oracles = result.get('oracles')
    if oracles:
        lines += ['', 'Which label-free statistic tells the key from plain images and random keys (the evaluator\'s '
                  'check; the search uses mutual information):', '', '| statistic | with the key | best other | '
                  'separates |', '|---|---|---|---|']
        lines += [f'| {name.replace("_", " ")} | {row["key"]:.3f} | {row["others_max"]:.3f} | '
                  f'{"yes" if row["separates"] else "no"} |' for name, row in oracles.items()]
    return lines


def unlabelled_images_section(results: List[Dict]) -> List[str]:
    """The thief with the weights and N unlabelled images, as markdown lines."""
    if not results:
        return []
    first = results[0]
    relaxed = 'relaxed, then climbed' in first['candidates']
    lines = ['', '## Weights and unlabelled images (no labels)', '',
             f'A search for a key that works, on N plain images without labels, guided by the model\'s '
             f'{first["oracle"]}: climbs of at most {first["budget"]} evaluations from the key read off the weights'
             + (f' and from a relaxed key fitted by gradient ({first["relaxed_steps"]} steps)' if relaxed else '')
             + (', the weights read against the public weights the model was trained from' if first['public_weights']
                else '') + f'; {first["holdout_images"]} other unlabelled images pick the key the thief keeps.', '',
             '| N | candidate | key positions right | NP flips right | pixels placed right | mIoU | kept |',
             '|---|---|---|---|---|---|---|']
    for result in results:
        for name, candidate in result['candidates'].items():
            agreement = candidate['agreement']
            lines.append(f'| {result["images"]} | {name} | {100 * agreement["positions"]:.1f}% | '
                         f'{100 * agreement["flips"]:.1f}% | {100 * agreement["pixels"]:.1f}% | '
                         f'{candidate["mIoU"]:.2f} | {"yes" if name == result["chosen"] else ""} |')
    for result in results:
        draws = result.get('draws') or [result['mIoU']]
        if len(draws) > 1:
            lines += ['', f'N = {result["images"]}: the table is the first draw of the images; the kept key\'s mIoU, '
                          f'mean of {len(draws)} draws of the images: {result["mIoU"]:.2f} (each: '
                          + ', '.join(f'{value:.2f}' for value in draws) + ').']
    lines += ['', ' '.join(f'N = {r["images"]}: {r["evaluations"]} oracle evaluations, {r["seconds"] / 60:.1f} min'
                           + (f' over {len(r["draws"])} draws' if len(r.get('draws') or []) > 1 else '') + '.'
                           for r in results)]
    return lines


def write_report_files(report: Dict, out_dir: Path) -> List[Path]:
    """Write ``protection_report.md`` and its figures beside the JSON report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report['figures'] = [str(path) for path in write_figures(report, out_dir)]
    markdown = out_dir / 'protection_report.md'
    markdown.write_text(markdown_report(report))
    return [markdown] + [Path(f) for f in report['figures']]
