"""What protection costs in accuracy: protected models against the unprotected baseline, same schedule.

Every protected variant is the demo's baseline config with BlockwiseEncrypt
added by :func:`~mmseg_keyprotect.config.protect_config` (as the committed
``*_shuffle-m4.py`` and friends were written), trained on the Shapes data
with the demo's schedule. The baseline and the variants named in
``repeated`` are trained with several seeds, since seed-to-seed spread is the
yardstick for any gap. Runs are shared with the demo (seed 0) and reused when
their checkpoint exists, so the study can be resumed.
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmseg_keyprotect.datasets import generate_shapes
from mmseg_keyprotect.utils import save_figure

from .runs import (
    BASELINE,
    CONFIG_DIR,
    PUBLIC_DEMO_KEY,
    Variant,
    evaluate,
    experiment_log,
    parse_variant,
    run_dir,
    train,
    variant_config,
)

VARIANTS = tuple(parse_variant(v) for v in ('shuffle:2', 'shuffle:4', 'shuffle:8', 'shuffle:16', 'np:4', 'ffx:4'))
REPEATED = (parse_variant('shuffle:4'),)
_log = experiment_log('accuracy_study')


def run_accuracy_study(work_dir: str = 'work_dirs/demo', data_root: str = 'data/shapes',
                       key_file: Optional[str] = None, iterations: int = 1000,
                       variants: Sequence[Variant] = VARIANTS, repeated: Sequence[Variant] = REPEATED,
                       seeds: Sequence[int] = (0, 1, 2), num_train: int = 400, num_val: int = 100) -> Dict:
    """Train and score the baseline and every variant; write ``accuracy_study.{md,json,png}``.

    Args:
        variants: the protected settings, trained with seed 0.
        repeated: variants also trained with every seed in ``seeds``; the
            baseline always is.
        seeds: seeds of the repeated runs.
        num_train (int), num_val (int): generated Shapes images (the demo's).

    Returns:
        dict: rows with the mIoU of every seed, and the written paths.
    """
    started = time.time()
    work_dir, data_root = Path(work_dir), Path(data_root)
    generate_shapes(data_root, num_train, num_val)
    if key_file is None:
        key_file = str(PUBLIC_DEMO_KEY)
    plan: List[Tuple[Optional[Variant], Path, List[int]]] = [(None, CONFIG_DIR / f'{BASELINE}.py', list(seeds))]
    for variant in variants:
        plan.append((variant, variant_config(variant, work_dir), list(seeds) if variant in repeated else [0]))
    rows = []
    for variant, config, variant_seeds in plan:
        stem = BASELINE if variant is None else variant.stem
        runs = {}
        for seed in variant_seeds:
            directory = run_dir(work_dir, stem, seed)
            name = 'baseline' if variant is None else f'{variant.method}, M = {variant.block_size}'
            _log(f'{name}, seed {seed}: training ({iterations} iterations) in {directory}')
            protected_key = None if variant is None else key_file
            checkpoint = train(config, directory, protected_key, iterations, data_root, seed)
            metrics = evaluate(config, checkpoint, directory, protected_key, data_root, 0)
            runs[seed] = dict(mIoU=float(metrics['mIoU']), plain_mIoU=float(metrics['plain/mIoU'])
                              if 'plain/mIoU' in metrics else None)
            _log(f'{name}, seed {seed}: mIoU {metrics["mIoU"]:.2f}')
        values = np.array([run['mIoU'] for run in runs.values()])
        rows.append(dict(method='none' if variant is None else variant.method,
                         block_size=None if variant is None else variant.block_size, runs=runs,
                         mean=float(values.mean()), std=float(values.std(ddof=1)) if len(values) > 1 else None))
    baseline = rows[0]['mean']
    for row in rows:
        row['gap'] = row['mean'] - baseline
    report = dict(iterations=iterations, dataset=str(data_root), rows=rows, minutes=(time.time() - started) / 60)
    (work_dir / 'accuracy_study.json').write_text(json.dumps(report, indent=2))
    report['figure'] = str(write_figure(rows, work_dir / 'accuracy_study.png'))
    report['table'] = markdown_table(rows)
    (work_dir / 'accuracy_study.md').write_text(
        f'# Accuracy study\n\nShapes validation mIoU, {iterations} training iterations per model, '
        f'{report["minutes"]:.0f} minutes.\n\n{report["table"]}\n\n![accuracy study](accuracy_study.png)\n')
    return report


def markdown_table(rows: List[Dict]) -> str:
    lines = ['| method | M | seeds | mIoU per seed | mean | std | gap to baseline |', '|---|---|---|---|---|---|---|']
    for row in rows:
        per_seed = ', '.join(f'{run["mIoU"]:.2f}' for run in row['runs'].values())
        std = '-' if row['std'] is None else f'{row["std"]:.2f}'
        gap = '-' if row['method'] == 'none' else f'{row["gap"]:+.2f}'
        lines.append(f'| {row["method"]} | {row["block_size"] or "-"} | {len(row["runs"])} | {per_seed} | '
                     f'{row["mean"]:.2f} | {std} | {gap} |')
    return '\n'.join(lines)


def write_figure(rows: List[Dict], path: Path) -> Path:
    """mIoU of every run, one column per model, the baseline's seed range shaded."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 3.5))
    baseline = [run['mIoU'] for run in rows[0]['runs'].values()]
    axis.axhspan(min(baseline), max(baseline), color='tab:gray', alpha=0.2, label='baseline seed range')
    axis.axhline(np.mean(baseline), color='black', linestyle='--', linewidth=1, label='baseline mean')
    labels = []
    for index, row in enumerate(rows):
        values = [run['mIoU'] for run in row['runs'].values()]
        axis.scatter([index] * len(values), values, color='tab:blue' if row['method'] != 'none' else 'black', zorder=3)
        labels.append('baseline' if row['method'] == 'none' else f'{row["method"]}\nM={row["block_size"]}')
    axis.set_xticks(range(len(rows)))
    axis.set_xticklabels(labels, fontsize=8)
    axis.set(ylabel='mIoU with the key (%)', title='Protected vs unprotected, same schedule')
    axis.legend(fontsize=8)
    return save_figure(figure, path)
