"""The main job: the whole protection story on the embedded Shapes data.

Generates the data, trains an unprotected baseline and a protected twin (the
same stock SegFormer config plus BlockwiseEncrypt), evaluates the protected
model with its key, on plain images and under random wrong keys, and writes a
report (markdown, JSON and one PNG per sample row).
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from mmseg_keyprotect.apis import ProtectedInferencer, build_test_runner, build_train_runner
from mmseg_keyprotect.checkpoint import CHECKPOINT_META_KEY
from mmseg_keyprotect.config import plugin_config_dir
from mmseg_keyprotect.crypto.keys import SecretKey, load_key
from mmseg_keyprotect.datasets import generate_shapes
from mmseg_keyprotect.zoo import publish_checkpoint, sha256_of, write_metafile

from .panels import colorize, displayable

CONFIG_DIR = plugin_config_dir() / 'segformer'
# Published on purpose, so that anyone re-running the demo gets the same cipher.
PUBLIC_DEMO_KEY = Path(__file__).with_name('public_demo_key.json')
BASELINE = 'segformer_mit-b0_1xb8-1k_shapes-128x128'
# (method, M) -> protected config stem; all are written by tools/protect_config.py from BASELINE.
PROTECTED = {('shuffle', 4): f'{BASELINE}_shuffle-m4'}
FULL = {('shuffle', 2): f'{BASELINE}_shuffle-m2', ('shuffle', 8): f'{BASELINE}_shuffle-m8',
        ('np', 4): f'{BASELINE}_np-m4', ('ffx', 4): f'{BASELINE}_ffx-m4',
        ('shuffle+np', 4): f'{BASELINE}_shuffle-np-m4'}


def run_dir(work_dir: Path, stem: str, seed: int = 0) -> Path:
    """Where one training run lives; the demo's runs are the seed-0 runs of the accuracy study."""
    name = 'baseline' if stem == BASELINE else stem
    return work_dir / (name if seed == 0 else f'{name}_seed{seed}')


def _log(message: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {message}', flush=True)


def train(config: Path, work_dir: Path, key_file: Optional[str], iterations: int, data_root: Path,
          seed: int = 0) -> Path:
    """Train ``config`` for ``iterations`` with ``seed``; return the final checkpoint (reused if present)."""
    warmup = min(50, max(1, iterations // 10))
    options = {'randomness.seed': seed, 'train_cfg.max_iters': iterations, 'train_cfg.val_interval': iterations,
               'default_hooks.checkpoint.interval': iterations,
               'train_dataloader.dataset.data_root': str(data_root),
               'val_dataloader.dataset.data_root': str(data_root),
               'test_dataloader.dataset.data_root': str(data_root),
               # Warm-up then linear decay, scaled to the budget (the config's is for 1000 iterations).
               'param_scheduler.0.end': warmup, 'param_scheduler.1.begin': warmup,
               'param_scheduler.1.end': iterations}
    checkpoint = work_dir / f'iter_{iterations}.pth'
    if checkpoint.is_file():
        _log(f'{config.name}: reusing {checkpoint}')
        return checkpoint
    build_train_runner(str(config), key_file=key_file, work_dir=str(work_dir), cfg_options=options).train()
    return checkpoint


def evaluate(config: Path, checkpoint: Path, work_dir: Path, key_file: Optional[str], data_root: Path,
             num_wrong_keys: int) -> Dict[str, float]:
    """Test metrics; for a protected config these include plain/ and wrong_key/ entries."""
    options = {'test_dataloader.dataset.data_root': str(data_root)}
    if key_file is not None:
        options['custom_hooks'] = [dict(type='KeyProtectHook', num_wrong_keys=num_wrong_keys, evaluate_plain=True)]
    runner = build_test_runner(str(config), str(checkpoint), key_file=key_file, work_dir=str(work_dir / 'test'),
                               cfg_options=options)
    return runner.test()


def sample_figures(config: Path, checkpoint: Path, key_file: str, data_root: Path, out_dir: Path,
                   count: int = 4) -> List[Path]:
    """One PNG per validation sample: plain, encrypted, ground truth and three predictions."""
    inferencer = ProtectedInferencer(str(config), str(checkpoint), key_file=key_file)
    wrong = SecretKey.generate().cipher(inferencer.method, inferencer.block_size)
    palette = inferencer.palette
    images = sorted((data_root / 'img_dir' / 'val').glob('*.png'))[:count]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in images:
        rgb = cv2.imread(str(path))[..., ::-1]
        truth = cv2.imread(str(data_root / 'ann_dir' / 'val' / path.name), cv2.IMREAD_UNCHANGED)
        predictions = [inferencer(rgb[..., ::-1], cipher=c, return_datasamples=True).pred_sem_seg.data[0].cpu().numpy()
                       for c in ('key', 'plain', wrong)]
        panels = [rgb, displayable(inferencer.cipher.encrypt(rgb)), colorize(truth, palette)]
        panels += [colorize(p, palette) for p in predictions]
        titles = ['plain image', 'encrypted', 'ground truth', 'with key', 'plain input', 'wrong key']
        written.append(_save_row(panels, titles, out_dir / f'sample_{path.stem}.png'))
    return written


def _save_row(panels: Sequence[np.ndarray], titles: Sequence[str], path: Path, scale: int = 2) -> Path:
    tiles = []
    for panel, title in zip(panels, titles):
        tile = cv2.resize(np.ascontiguousarray(panel), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        header = np.full((22, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(header, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([header, tile], 0))
        tiles.append(np.full((tiles[-1].shape[0], 4, 3), 255, np.uint8))
    cv2.imwrite(str(path), np.concatenate(tiles[:-1], 1)[..., ::-1])
    return path


def publish_demo_models(rows: List[Dict], work_dir: Path, key_fingerprint: str, iterations: int) -> List[Dict]:
    """Publish every demo checkpoint and describe it in ``work_dir/metafile.yaml``."""
    baseline = rows[0]['metrics'].get('mIoU')
    models = []
    for row in rows:
        stem = row['config']
        published = publish_checkpoint(row['checkpoint'], stem, work_dir / 'checkpoints')
        record = torch.load(str(published), map_location='cpu').get('meta', {}).get(CHECKPOINT_META_KEY) or {}
        metrics = {'Unprotected mIoU': baseline, 'mIoU': row['metrics'].get('mIoU'),
                   'Plain mIoU': row['metrics'].get('plain/mIoU'),
                   'Wrong-key mIoU mean': row['metrics'].get('wrong_key/mIoU_mean'),
                   'Wrong-key mIoU max': row['metrics'].get('wrong_key/mIoU_max')}
        models.append(dict(
            Name=stem, **{'In Collection': 'SegFormer'}, Config=f'configs/segformer/{stem}.py',
            Metadata={'Method': row.get('method', 'none'), 'Block Size': row.get('block_size'),
                      'Key Fingerprint': key_fingerprint if record else None,
                      'Transform Fingerprint': record.get('fingerprint'), 'Training Iterations': iterations,
                      'SHA256': sha256_of(published)},
            Results=[dict(Task='Semantic Segmentation', Dataset='Shapes (demo)',
                          Metrics={k: None if v is None else round(float(v), 2) for k, v in metrics.items()})],
            Weights=str(published)))
    write_metafile(work_dir / 'metafile.yaml', 'SegFormer', models)
    return models


def markdown_table(rows: List[Dict]) -> str:
    header = ('| model | method | M | mIoU with key | plain-image mIoU | wrong-key mIoU mean | wrong-key mIoU max |\n'
              '|---|---|---|---|---|---|---|')
    lines = [header]
    for row in rows:
        cells = [row['model'], row.get('method', '-'), str(row.get('block_size', '-'))]
        for key in ('mIoU', 'plain/mIoU', 'wrong_key/mIoU_mean', 'wrong_key/mIoU_max'):
            value = row['metrics'].get(key)
            cells.append('-' if value is None else f'{value:.2f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def run_demo(work_dir: str = 'work_dirs/demo', data_root: str = 'data/shapes', key_file: Optional[str] = None,
             iterations: int = 1000, num_wrong_keys: int = 5, full: bool = False, num_figures: int = 4,
             num_train: int = 400, num_val: int = 100) -> Dict:
    """Run the demo end to end and return the report (also written to ``work_dir``)."""
    started = time.time()
    work_dir, data_root = Path(work_dir), Path(data_root)
    _log(f'generating the Shapes dataset in {data_root}')
    generate_shapes(data_root, num_train, num_val)
    if key_file is None:
        key_file = str(PUBLIC_DEMO_KEY)
        _log(f'using the public demo key {key_file}: every run gets the same cipher; it protects nothing')
    fingerprint = load_key(key_file).fingerprint
    rows = []
    _log(f'training the unprotected baseline ({iterations} iterations)')
    baseline_dir = run_dir(work_dir, BASELINE)
    baseline_checkpoint = train(CONFIG_DIR / f'{BASELINE}.py', baseline_dir, None, iterations, data_root)
    metrics = evaluate(CONFIG_DIR / f'{BASELINE}.py', baseline_checkpoint, baseline_dir, None, data_root, 0)
    rows.append(dict(model='baseline (unprotected)', config=BASELINE, metrics=metrics,
                     checkpoint=str(baseline_checkpoint)))
    figures = []
    for (method, block_size), stem in {**PROTECTED, **(FULL if full else {})}.items():
        _log(f'training the protected model: {method}, M = {block_size} ({iterations} iterations)')
        config = CONFIG_DIR / f'{stem}.py'
        model_dir = run_dir(work_dir, stem)
        checkpoint = train(config, model_dir, key_file, iterations, data_root)
        _log(f'evaluating {stem}: with the key, plain images and {num_wrong_keys} wrong keys')
        metrics = evaluate(config, checkpoint, model_dir, key_file, data_root, num_wrong_keys)
        rows.append(dict(model='protected', config=stem, method=method, block_size=block_size, metrics=metrics,
                         checkpoint=str(checkpoint)))
        if not figures:
            figures = sample_figures(config, checkpoint, key_file, data_root, work_dir / 'figures', num_figures)
    zoo_entries = publish_demo_models(rows, work_dir, fingerprint, iterations)
    report = dict(dataset=str(data_root), iterations=iterations, num_wrong_keys=num_wrong_keys,
                  key_fingerprint=fingerprint, rows=rows, figures=[str(f) for f in figures], zoo=zoo_entries,
                  minutes=(time.time() - started) / 60)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / 'report.json').write_text(json.dumps(report, indent=2, default=float))
    table = markdown_table(rows)
    (work_dir / 'report.md').write_text(
        f'# mmseg-keyprotect demo\n\nShapes validation set, {iterations} training iterations, '
        f'{num_wrong_keys} random wrong keys, {report["minutes"]:.1f} minutes.\n\n{table}\n\n'
        + '\n'.join(f'![sample]({Path(f).relative_to(work_dir)})' for f in figures) + '\n')
    report['table'] = table
    return report
