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
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from mmseg_keyprotect.attacks.protection_report import PART_NAMES, attack_finals

from .demo import headline_table, mean_and_range
from .protection_frontier import cost_ratios

#: Where a checkout keeps the results files, under its root.
RESULTS_DIR = Path('docs') / 'en' / 'results'
BLOCK = re.compile(r'<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->', re.S)


ATTACK_NAMES = dict(adapter='block-wise adapter on the frozen model',
                    value_table='value-table adapter on the frozen model', fine_tune='fine-tuning the stolen model',
                    scratch='floor: the same architecture from scratch')


def documents(root: Path) -> List[Path]:
    """The README and the manual of the checkout at ``root``: the files that hold results blocks."""
    return [root / 'README.md'] + sorted((root / 'docs' / 'en').rglob('*.md'))


def _load(results_dir: Path, name: str):
    """The results file ``name``, or None; a name with ``*`` gives the list of every file it matches."""
    if '*' in name:
        return [json.loads(path.read_text()) for path in sorted(results_dir.glob(f'{name}.json'))]
    path = results_dir / f'{name}.json'
    return json.loads(path.read_text()) if path.is_file() else None


def _machine(report: Dict) -> str:
    machine = report['machine']
    device = machine.get('gpu') or f'{machine["cores"]} CPU cores ({machine["cpu"]}), no GPU'
    return f'{device}, torch {machine["torch"]}'


def demo_provenance(report: Dict) -> str:
    stages = report['stage_seconds']
    reused = [stage.replace('training ', '') for stage in ('training the unprotected baseline',
                                                           'training the protected model') if stages.get(stage, 0) < 5]
    notes = ([] if stages.get('generating the data', 0) > 1 else ['the data was already generated']) + (
        [f'{" and ".join(reused)} reused from an earlier training with the same config, seed and key (the demo, '
         'the accuracy study and the protection frontier share runs), which gives the same model']
        if reused else [])
    return (f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}; '
            f'{report["minutes"]:.1f} minutes from start to report' + (f' ({"; ".join(notes)})' if notes else '') + '.')


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
    weights = report.get('weights_only') or {}
    if weights.get('mIoU') is not None:
        rows.append(('no data: key read off the stolen first convolution / then searched on unlabelled images',
                     f'{weights["mIoU"]:.2f} / {weights["search"]["mIoU"]:.2f}'))
    for thief in report.get('unlabelled_images') or []:
        draws = thief.get('draws') or [thief['mIoU']]
        rows.append((f'the weights and {thief["images"]} unlabelled images: key searched on the {thief["oracle"]} '
                     f'(climbs of {thief["budget"]} evaluations, mean of {len(draws)} draws of the images)',
                     mean_and_range(draws)))
    attacks = {}
    for row in report.get('learning_attacks') or []:
        attacks.setdefault(row['attack'], []).append((row['k'], attack_finals(row), row['iterations']))
    for attack, results in attacks.items():
        draws = len(results[0][1])
        mean = f', mean of {draws} draws of the images' if draws > 1 else ''
        rows.append((f'{ATTACK_NAMES.get(attack, attack)}, k = ' + ' / '.join(str(k) for k, _, _ in results)
                     + f' labelled images ({results[0][2]} iterations{mean})',
                     ' / '.join(f'{np.mean(finals):.2f}' for _, finals, _ in results)))
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
    if 'key_contrastive_ratio' in report:
        lines[-1] += (f' Key-contrastive (weight {report["key_contrastive"]:g}) / ordinary protected: '
                      f'{report["key_contrastive_ratio"]:.3f}.')
    for name, ratio in report.get('negatives_ratios', {}).items():
        lines[-1] += f' Negatives {name} / ordinary protected: {ratio:.3f}.'
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


def _frontier_rows(report: Dict) -> List[Dict]:
    return sorted(report['rows'], key=lambda row: (row['attackers_best'] is None, row['attackers_best'] or 0))


def frontier_provenance(report: Dict) -> str:
    baseline = ', '.join(f'{v:.2f}' for v in report['baseline']['runs'].values())
    how = ('Written from the study\'s saved measurements (the commands above) by' if '--report-only' in
           report['command'] else 'Measured by')
    return (f'{how} `{report["command"]}` on {report["date"]}: {_machine(report)}; key fingerprint '
            f'`{report["key_fingerprint"]}`, {report["iterations"]} training iterations per model, '
            f'{report["num_wrong_keys"]} wrong keys, learning attacks of {report["attack_iterations"]} iterations. '
            f'Unprotected baseline, seeds {", ".join(map(str, report["seeds"]))}: {baseline} '
            f'(mean {report["baseline"]["mean"]:.2f}).' + _earlier_study(report) + _unlabelled_thief_provenance(report))


def _earlier_study(report: Dict) -> str:
    earlier = report.get('earlier_studies') or []
    if not earlier:
        return ''
    studies = '; which started from '.join(f'`{study["command"]}` on {study["date"]}: {_machine(study)}'
                                          for study in earlier)
    return (f' The study started from the results of {studies} (`--from-results`); a row that needed its model '
            'again was trained again and, where it did not score as recorded, measured again in full; the key '
            'holder\'s mIoU of its other seed is the earlier study\'s.')


def _unlabelled_thief_provenance(report: Dict) -> str:
    """Where and when each row's thief with unlabelled images ran, where the rows say."""
    groups: Dict[str, List[str]] = {}
    for row in report['rows']:
        for thief in row.get('unlabelled_images') or []:
            if thief.get('measured'):
                where = f'{thief["measured"]["date"]}, {_machine(thief["measured"])}'
                groups.setdefault(where, []).append(row['variant'])
    return ''.join(f' The thief with unlabelled images on {", ".join(dict.fromkeys(names))}: {where}.'
                   for where, names in groups.items())


def frontier(report: Dict) -> str:
    """One row per variant, strongest protection first."""
    lines = ['| variant | keys | key holder, per seed | gap to baseline | plain | wrong keys mean / p95 '
             '| ciphertext only | weights only | weights and unlabelled images, as published '
             '| attacker\'s best (by) | thief\'s best, no intercepted images (by) | keeps accuracy |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for row in _frontier_rows(report):
        seeds = ', '.join(f'{v:.2f}' for v in row['authorized'].values())
        wrong = row['wrong_keys']
        only = (row.get('ciphertext_only') or {}).get('mIoU')
        weights = _weights_best(row)
        keeps = 'yes' if row['keeps_accuracy'] else ('one seed only' if len(row['authorized']) < len(report['seeds'])
                                                      else 'no')
        lines.append(f'| {row["variant"]} | 2^{row["key_space_bits"]:.0f} | {seeds} | {row["gap"]:+.2f} | '
                     f'{row["plain"]:.2f} | '
                     f'{wrong["mean"]:.2f} / {wrong["p95"]:.2f} | {"-" if only is None else f"{only:.2f}"} | '
                     f'{"-" if weights is None else f"{weights:.2f}"} | {_unlabelled_cell(row)} | '
                     f'{row["attackers_best"]:.2f} ({row["attackers_best_by"]}) | '
                     f'{row["thiefs_best"]:.2f} ({row["thiefs_best_by"]}) | {keeps} |')
    return '\n'.join(lines)


def _unlabelled_cell(row: Dict) -> str:
    thieves = row.get('unlabelled_images') or []
    if not thieves:
        return 'not measured'
    return '; '.join(f'{t["mIoU"]:.2f} (N = {t["images"]}'
                     + (f', {min(t["draws"]):.1f} to {max(t["draws"]):.1f}' if len(t.get('draws') or []) > 1 else '')
                     + ')' for t in thieves)


def _weights_best(row: Dict) -> Optional[float]:
    """The data-free thief's best: the key read off the weights, or after the search."""
    weights = row.get('weights_only') or {}
    values = [v for v in (weights.get('mIoU'), (weights.get('search') or {}).get('mIoU')) if v is not None]
    return max(values) if values else None


def frontier_weights(report: Dict) -> str:
    """The thief with the weights and no labels, step by step, for every variant."""
    lines = ['| variant | keyed structure | key positions right | NP flips right | pixels placed right '
             '| mIoU, key read off the weights | mIoU, then searched (evaluations) '
             '| mutual information tells the key |',
             '|---|---|---|---|---|---|---|---|']
    for row in _frontier_rows(report):
        weights = row.get('weights_only') or {}
        if 'search' not in weights:
            lines.append(f'| {row["variant"]} | not measured yet | | | | | | |')
            continue
        agreement, search = weights['agreement'], weights['search']
        separates = weights.get('oracles', {}).get('mutual_information', {}).get('separates')
        lines.append(f'| {row["variant"]} | {weights["structure"]:.2f} | {100 * agreement["positions"]:.0f}% | '
                     f'{100 * agreement["flips"]:.0f}% | {100 * agreement["pixels"]:.0f}% | {weights["mIoU"]:.2f} | '
                     f'{search["mIoU"]:.2f} ({search["evaluations"]}) | {"yes" if separates else "no"} |')
    return '\n'.join(lines)


def frontier_attacks(report: Dict) -> str:
    """mIoU of each learning attack by number of labelled images k (best point along its training)."""
    columns = sorted({(list(ATTACK_NAMES).index(attack), int(k)) for row in report['rows']
                      for attack, by_k in row['attacks'].items() for k in by_k})
    columns = [(list(ATTACK_NAMES)[index], str(k)) for index, k in columns]
    header = [f'{attack.replace("_", "-")}, k = {k}' for attack, k in columns]
    lines = ['| variant | ' + ' | '.join(header) + ' |', '|---' * (len(header) + 1) + '|']
    def cell(row, attack, k):
        value = row['attacks'].get(attack, {}).get(k)
        draws = row.get('attack_draws', {}).get(attack, {}).get(k, [])
        if value is None:
            return '-'
        return f'{value:.2f}' + (f' ({min(draws):.1f} to {max(draws):.1f})' if len(draws) > 1 else '')

    for row in _frontier_rows(report):
        lines.append(f'| {row["variant"]} | ' + ' | '.join(cell(row, attack, k) for attack, k in columns) + ' |')
    scratch = ', '.join(f'k = {k}: {v["mIoU"] if isinstance(v, dict) else v:.2f}'
                        for k, v in report.get('scratch', {}).items())
    if scratch:
        lines += ['', f'Floor, the same architecture trained from scratch on the k labelled images: {scratch}.']
    return '\n'.join(lines)


def frontier_near_keys(report: Dict) -> str:
    """mIoU with a key of which a share of one part is right (the rest of the key right)."""
    lines = ['| variant | part of the key | 0% | 25% | 50% | 75% | 90% | 95% |', '|---|---|---|---|---|---|---|---|']
    for row in _frontier_rows(report):
        for part, curve in (row.get('near_keys') or {}).items():
            values = dict((round(100 * f), m) for f, m in curve)
            cells = ' | '.join(f'{values[p]:.1f}' if p in values else '-' for p in (0, 25, 50, 75, 90, 95))
            lines.append(f'| {row["variant"]} | {PART_NAMES.get(part, part)} | {cells} |')
    return '\n'.join(lines)


def frontier_decision(report: Dict) -> str:
    decision = report['decision']
    if decision['choice'] is None:
        return f'Rule: {decision["rule"]}. No variant measured so far meets it.'
    row = next(r for r in report['rows'] if r['variant'] == decision['choice'])
    ranked = 'thief\'s best' if decision['ranked_by'] == 'thiefs_best' else 'attacker\'s best'
    text = f'Rule: {decision["rule"]}.'
    if decision.get('tie_break'):
        text += f' Measured: {decision["tie_break"]}.'
    if decision.get('searchable'):
        text += (f' Keep accuracy but not eligible, their key space being small enough to try every key: '
                 f'{", ".join(decision["searchable"])}.')
    rows = {r['variant']: r for r in report['rows']}
    held = [name for name in decision['eligible'] if rows[name]['thiefs_best'] < rows[name]['authorized_mean'] / 2]
    if not held:
        text += (' **No eligible variant keeps the thief below half of its key holder** (the choice\'s '
                 f'{row["thiefs_best"]:.2f} against {row["authorized_mean"]:.2f} is '
                 f'{100 * row["thiefs_best"] / row["authorized_mean"]:.0f}% of it); the choice is among the settings '
                 'that cost the thief most.')
    tied = decision.get('tied') or []
    if len(tied) > 1:
        costs = ', '.join(f'{name} {"not measured" if cost is None else f"{cost:.2f}"}'
                          for name, cost in decision['training_costs'].items())
        text += (f' The lowest {ranked}, {decision["lowest"]}\'s, comes from draws of images whose highest '
                 f'is {decision["margin"]:.2f} points above their mean; within that of it: {", ".join(tied)}, '
                 f'which the measurements cannot separate. Their training time against ordinary protected training: '
                 f'{costs}; the cheapest is chosen.')
    text += _unmeasured_text(decision, rows)
    return (text + f' Eligible, by {ranked}: {", ".join(decision["eligible"])}. '
            f'**Choice: {decision["choice"]}** (key holder {row["authorized_mean"]:.2f} over '
            f'{len(row["authorized"])} seeds against the baseline\'s {report["baseline"]["mean"]:.2f}; attacker\'s '
            f'best {row["attackers_best"]:.2f}, by {row["attackers_best_by"]}; thief\'s best {row["thiefs_best"]:.2f}, '
            f'by {row["thiefs_best_by"]}).')


def _unmeasured_text(decision: Dict, rows: Dict[str, Dict]) -> str:
    """Which eligible rows keep an earlier study's measurements, without the thief with unlabelled images, and
    whether they could change the choice (that thief can only raise a row's thief's best)."""
    unmeasured = decision.get('without_unlabelled_thief') or []
    if not unmeasured:
        return ''
    text = (f' Measured without the thief with unlabelled images (the earlier study\'s measurements): '
            f'{", ".join(unmeasured)}.')
    if decision.get('open'):
        return text + (f' Of those, {", ".join(decision["open"])} could still be chosen: **the choice is provisional** '
                       'until they are measured with it.')
    return text + (' That thief can only raise their thief\'s best, and each already stands above the choice '
                   f'and the variants tied with it ({rows[decision["lowest"]][decision["ranked_by"]]:.2f}, plus '
                   f'{decision["margin"]:.2f} for the spread of its draws), so none of them can change the choice.')


def _near_keys_text(row: Dict) -> str:
    """The best mIoU over the key's parts with 50% / 90% of that part right."""
    near = [dict((round(100 * f), m) for f, m in curve) for curve in (row.get('near_keys') or {}).values()]
    return ' / '.join(f'{max(c.get(p, 0) for c in near):.1f}' for p in (50, 90)) if near else '-'


def key_contrastive(report: Dict) -> str:
    """Each key-contrastive variant beside the same setting trained the ordinary way."""
    rows = {row['variant']: row for row in report['rows']}
    pairs = [(rows[name.split('+kc')[0]], row) for name, row in rows.items()
             if row['key_contrastive'] is not None and not row.get('negatives') and name.split('+kc')[0] in rows]
    lines = ['| setting | training | key holder, per seed | plain | wrong keys mean / p95 / max | near keys, 50% / 90% '
             'of the key right | ciphertext only | adapter, k = 10 | fine-tuning, k = 10 |',
             '|---|---|---|---|---|---|---|---|---|']
    for ordinary, contrastive in pairs:
        for label, row in (('ordinary', ordinary), (f'key-contrastive, weight {contrastive["key_contrastive"]:g}',
                                                     contrastive)):
            wrong = row['wrong_keys']
            near_text = _near_keys_text(row)
            cells = [(row.get('ciphertext_only') or {}).get('mIoU'), row['attacks'].get('adapter', {}).get('10'),
                     row['attacks'].get('fine_tune', {}).get('10')]
            seeds = ', '.join(f'{v:.2f}' for v in row['authorized'].values())
            lines.append(f'| {ordinary["variant"]} | {label} | {seeds} | {row["plain"]:.2f} | '
                         f'{wrong["mean"]:.2f} / {wrong["p95"]:.2f} / {wrong["max"]:.2f} | {near_text} | '
                         + ' | '.join('-' if v is None else f'{v:.2f}' for v in cells) + ' |')
    return '\n'.join(lines)


def key_contrastive_negatives(reports: Tuple[Dict, Dict]) -> str:
    """Cheaper negatives beside a negative for every image at every iteration and beside ordinary training:
    training cost (from the training benchmark) and protection (from the frontier), for each setting of the
    method they were measured with."""
    report, costs = reports
    ratios = cost_ratios(costs)
    rows = {row['variant']: row for row in report['rows']}
    candidates = [row for row in report['rows'] if row.get('negatives')]
    lines = ['| variant | negatives | training time / ordinary protected | key holder, per seed (mean) | plain '
             '| wrong keys mean / max | near keys, 50% / 90% of the key right | adapter, k = 10 '
             '| thief\'s best (by) |', '|---|---|---|---|---|---|---|---|---|']
    for base in dict.fromkeys(row['variant'].split('/')[0] for row in candidates):
        ordinary = rows.get(base.split('+kc')[0])
        table = [(ordinary, 'none (ordinary training)', 1.0)] if ordinary else []
        table += [(rows.get(base), 'every image, every iteration', ratios['all'])]
        table += [(row, row['negatives'], ratios.get(row['negatives'])) for row in candidates
                  if row['variant'].startswith(base + '/')]
        for row, negatives, ratio in table:
            cost_text = 'not measured yet' if ratio is None else f'{ratio:.2f}'
            if row is None:
                lines.append(f'| {base} | {negatives} | {cost_text} | not measured yet | | | | | |')
                continue
            wrong = row['wrong_keys']
            seeds = ', '.join(f'{v:.2f}' for v in row['authorized'].values())
            adapter = row['attacks'].get('adapter', {}).get('10')
            lines.append(f'| {row["variant"]} | {negatives} | {cost_text} | '
                         f'{seeds} ({row["authorized_mean"]:.2f}) | {row["plain"]:.2f} | '
                         f'{wrong["mean"]:.2f} / {wrong["max"]:.2f} | {_near_keys_text(row)} | '
                         f'{"-" if adapter is None else f"{adapter:.2f}"} | '
                         f'{row["thiefs_best"]:.2f} ({row["thiefs_best_by"]}) |')
    return '\n'.join(lines)


def device_check(report: Optional[Dict]) -> str:
    if report is None:
        return ('Not measured yet on a GPU. `python tools/analysis_tools/check_device.py --device cuda '
                '--results-file docs/en/results/device_check.json` measures it, and this section shows the result.')
    from mmseg_keyprotect.apis.device_check import report_markdown
    body = report_markdown(report).split('\n', 2)[2].replace('## ', '#### ')
    return f'Measured by `{report["command"]}` on {report["date"]}: {_machine(report)}.\n\n{body}'


#: What a frontier model option in a config's name changes (see ``runs.MODEL_OPTIONS`` and ``parse_negatives``).
SETTING_NOTES = (('-gn', 'group norm in the head (no running statistics)'), ('-close', 'negatives close to the key'),
                 ('-public', 'trained from public weights'),
                 ('-affine', 'batch norm scales and shifts drawn at random per channel at the start of training'))


_PUBLISHED = 'as published: batch norm statistics folded into the weights'


def _setting_notes(report: Dict) -> List[str]:
    stem = Path(report['config']).stem
    share = re.search(r'-share([0-9.]+)(-|$)', stem)
    notes = [f'negatives for {100 * float(share.group(1)):g}% of each batch'] if share else []
    notes += [note for token, note in SETTING_NOTES if stem.endswith(token) or f'{token}-' in stem]
    if any('folded' in thief.get('oracle', '') for thief in report.get('unlabelled_images') or []):
        notes.append(_PUBLISHED)
    return notes


def _model_setting(report: Dict) -> str:
    """How a reported model was trained, from its config's name, and how its checkpoint was published."""
    notes = _setting_notes(report)
    return f'{report["method"]}, M = {report["block_size"]}' + (f'; {", ".join(notes)}' if notes else '')


def _thief_result(thief: Dict, holder: float) -> str:
    """The mean over the draws of the images, its share of the key holder, and the draws' range."""
    draws = thief.get('draws') or [thief['mIoU']]
    spread = f'; {min(draws):.2f} to {max(draws):.2f} over {len(draws)} draws' if len(draws) > 1 else '; one draw'
    return f'**{thief["mIoU"]:.2f}** with N = {thief["images"]} ({100 * thief["mIoU"] / holder:.0f}% of the key ' \
           f'holder\'s {holder:.2f}{spread})'


def _thief_reports(loaded: Tuple[Optional[Dict], List[Dict]]) -> List[Dict]:
    """The protection report of the default model, where it ran the thief with unlabelled images, then the other
    reports that did."""
    report, others = loaded
    return ([report] if report and report.get('unlabelled_images') else []) + others


def unlabelled_thief(loaded: Tuple[Optional[Dict], List[Dict]]) -> str:
    """The thief with the weights and N unlabelled images against each model it was run on, next to the key
    holder and the thief with no data."""
    reports = _thief_reports(loaded)
    if not reports:
        return 'Not measured yet.'
    lines = ['| model (key-contrastive training, negatives for every image unless the row says otherwise) | key holder '
             '| plain | weights only, searched | weights and N unlabelled images: mean mIoU over draws of the images '
             '| oracle | minutes | measured on |', '|---|---|---|---|---|---|---|---|']
    for report in reports:
        weights = report.get('weights_only') or {}
        searched = max(v for v in (weights.get('mIoU'), (weights.get('search') or {}).get('mIoU'), 0.0)
                       if v is not None)
        thieves = report.get('unlabelled_images') or []
        lines.append(f'| {_model_setting(report)} | {report["authorized_mIoU"]:.2f} | {report["plain_mIoU"]:.2f} | '
                     f'{searched:.2f} | ' + '; '.join(_thief_result(t, report['authorized_mIoU']) for t in thieves)
                     + ' | ' + '; '.join(sorted({t['oracle'] for t in thieves})) + ' | '
                     + '; '.join(f'{t["seconds"] / 60:.0f}' for t in thieves)
                     + f' | {report["date"]}, {report["machine"]["gpu"] or report["machine"]["cpu"]} |')
    first = next((r for r in reports if not _setting_notes(r)), reports[0])
    thief = (first.get('unlabelled_images') or [{}])[0]
    lines += ['', f'Measured by `{first["command"]}` on {first["date"]}: {_machine(first)}; each other row by the '
              'same tool on its own model or published checkpoint and N, on the day and machine it gives (its '
              'results file in `docs/en/results/` holds its command). Each search climbs at most '
              f'{thief.get("budget")} evaluations from the key read off the weights and, where the model keeps '
              f'running statistics, from a relaxed key fitted by gradient ({thief.get("relaxed_steps")} steps); '
              f'other unlabelled images pick the key the thief keeps; {first["test_images"]} test images; one model '
              'each (seed 0). The minutes are those of all draws together.']
    return '\n'.join(lines)


def unlabelled_thief_headline(loaded: Tuple[Optional[Dict], List[Dict]]) -> str:
    """One sentence for the README: the thief with the weights and unlabelled images against the default model (the
    report of a config whose name holds no setting of its own), as trained and as published."""
    reports = _thief_reports(loaded)
    trained = [r for r in reports if not _setting_notes(r) and r.get('unlabelled_images')]
    if not trained:
        return 'The thief with the weights and unlabelled images on the default model: not measured yet.'
    report = trained[0]
    published = next((r for r in reports if _setting_notes(r) == [_PUBLISHED] and r.get('unlabelled_images')), None)
    thieves = report['unlabelled_images']
    text = (f'A thief who holds the weights and N plain, unlabelled images of the domain searches for a key on the '
            f'statistics the model\'s batch norm layers keep: on the default model ({_model_setting(report)}) it '
            f'gets ' + ', '.join(_thief_result(t, report['authorized_mIoU']) for t in thieves) + '.')
    if published:
        text += (' From the checkpoint as `tools/publish_model.py` publishes it, the statistics folded into the '
                 'layers\' weights and guessed back from them, it gets '
                 + ', '.join(_thief_result(t, published['authorized_mIoU']) for t in published['unlabelled_images'])
                 + '.')
    return (text + f' Measured by the protection report (`tools/evaluate_protection.py --unlabelled-images '
            f'{" ".join(str(t["images"]) for t in thieves)}`) on {report["date"]}, {_machine(report)}, on one model; '
            '[results](docs/en/results.md#the-thief-with-the-weights-and-unlabelled-images) has the command.')


#: Block name -> (results file name, or names, and the function that renders what they hold).
RENDERERS: Dict[str, Tuple[Union[str, Tuple[str, ...]], Callable]] = {
    'unlabelled-thief-headline': (('protection_report', 'thief_*'), unlabelled_thief_headline),
    'unlabelled-thief': (('protection_report', 'thief_*'), unlabelled_thief),
    'protection-frontier': ('protection_frontier', frontier),
    'protection-frontier-provenance': ('protection_frontier', frontier_provenance),
    'protection-frontier-attacks': ('protection_frontier', frontier_attacks),
    'protection-frontier-near-keys': ('protection_frontier', frontier_near_keys),
    'protection-frontier-decision': ('protection_frontier', frontier_decision),
    'protection-frontier-weights': ('protection_frontier', frontier_weights),
    'key-contrastive': ('protection_frontier', key_contrastive),
    'key-contrastive-negatives': (('protection_frontier', 'training_cost_negatives'), key_contrastive_negatives),
    'checkpoint-speed': ('checkpoint_speed', checkpoint_speed),
    'accuracy-study': ('accuracy_study', accuracy_study),
    'accuracy-study-other-key': ('accuracy_study_other_key', accuracy_study),
    'training-cost': ('training_cost', training_cost),
    'training-cost-key-contrastive': ('training_cost_key_contrastive', training_cost),
    'training-cost-negatives': ('training_cost_negatives', training_cost),
    'protection-report': ('protection_report', protection_report),
    'demo-headline': ('demo', headline_table),
    'demo-provenance': ('demo', demo_provenance),
    'demo-stages': ('demo', demo_stages),
    'cipher-speed': ('cipher_speed', cipher_speed),
    'device-check': ('device_check', device_check),
}


def render(name: str, results_dir: Path) -> str:
    """The body of results block ``name`` from the results files in ``results_dir``."""
    if name not in RENDERERS:
        raise KeyError(f'no renderer for results block {name!r}; known: {sorted(RENDERERS)}')
    results, renderer = RENDERERS[name]
    loaded = _load(results_dir, results) if isinstance(results, str) else tuple(_load(results_dir, r) for r in results)
    return renderer(loaded) + '\n'


def blocks(path: Path) -> List[Tuple[str, str]]:
    """``(name, body)`` of every results block in a markdown file."""
    return [(match['name'], match['body']) for match in BLOCK.finditer(path.read_text())]


def update(path: Path, results_dir: Path) -> bool:
    """Rewrite the results blocks of one file from the results files in ``results_dir``; return whether it
    changed."""
    text = path.read_text()
    updated = BLOCK.sub(lambda m: f'<!-- results:{m["name"]} -->\n{render(m["name"], results_dir)}'
                                  f'<!-- /results:{m["name"]} -->', text)
    if updated != text:
        path.write_text(updated)
    return updated != text
