"""The main job: the whole protection story on the embedded Shapes data, in about ten minutes.

Generates the data, trains an unprotected baseline and a protected twin (the
stock-derived SegFormer config plus BlockwiseEncrypt), then asks what three
people get from the protected model: the key holder, a stranger without the
key (plain images, random wrong keys) and a thief with 10 labelled images
(the block-wise adapter attack). Writes ``report.json`` (every number, with
the command, machine and date), ``report.md``, one figure per sample image
and a local zoo metafile.
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

from mmseg_keyprotect.attacks.labelled_images import predict as predict_batch
from mmseg_keyprotect.attacks.labelled_images import score
from mmseg_keyprotect.attacks.learning_attacks import attacks_for, evaluation_points, train_attack
from mmseg_keyprotect.attacks.metrics import chance_levels, summarize
from mmseg_keyprotect.attacks.protection_report import (
    ATTACK_DRAWS,
    UNLABELLED_DRAWS,
    WEIGHTS_SEARCH_BUDGET,
    ProtectionEvaluation,
    attack_finals,
)
from mmseg_keyprotect.attacks.unlabelled_images import CLIMB_BUDGET, RELAXED_STEPS, UNLABELLED_COUNTS
from mmseg_keyprotect.checkpoint import CHECKPOINT_META_KEY
from mmseg_keyprotect.checkpoint.mmengine_io import load_from_local
from mmseg_keyprotect.config import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_KEY_CONTRASTIVE,
    DEFAULT_METHOD,
    KEY_CONTRASTIVE_NEGATIVES,
    KEY_CONTRASTIVE_WEIGHT,
)
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto.conditions import encrypt_batch
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.datasets import generate_shapes
from mmseg_keyprotect.errors import ConfigError
from mmseg_keyprotect.utils import describe, machine
from mmseg_keyprotect.zoo import config_norm_epsilons, publish_checkpoint, sha256_of, write_metafile

from .panels import colorize, displayable
from .runs import (
    BASELINE,
    CONFIG_DIR,
    PUBLIC_DEMO_KEY,
    Variant,
    evaluate,
    experiment_log,
    negatives_name,
    parse_negatives,
    run_dir,
    train,
)

_log = experiment_log('demo')
#: Where the stage estimates' rates were measured; on other machines they are only a rough guide.
ESTIMATED_ON = 'a 2-core CPU'

ADAPTER_ATTACKS = dict(adapter='block-wise adapter', value_table='value-table adapter')
STAGES = ('generating the data', 'training the unprotected baseline', 'training the protected model',
          'asking what the key holder, a stranger and three thieves get', 'drawing the figures',
          'publishing the checkpoints to the local zoo')


#: The demo's protected model is trained key-contrastively with this loss weight when the default setting is
#: (None: ordinary protected training).
DEFAULT_DEMO_KEY_CONTRASTIVE = KEY_CONTRASTIVE_WEIGHT if DEFAULT_KEY_CONTRASTIVE else None
#: ... and with the default negatives (a :func:`~.runs.parse_negatives` name).
DEFAULT_DEMO_NEGATIVES = negatives_name(KEY_CONTRASTIVE_NEGATIVES)


def _minutes(seconds: float) -> str:
    """A rough duration, as the stage headers give it (rates measured on a 2-core CPU, see ``ESTIMATED_ON``)."""
    if seconds < 45:
        return 'half a minute'
    return 'a minute' if seconds < 90 else f'{round(seconds / 60)} minutes'


class _Stages:
    """Numbered stage headers with the time each took."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}
        self._name, self._started = None, 0.0

    def start(self, name: str, about: str = '') -> None:
        self.finish()
        self._name, self._started = name, time.time()
        index = STAGES.index(name) + 1
        _log(f'[{index}/{len(STAGES)}] {name}' + (f' (about {about} on {ESTIMATED_ON})' if about else ''))

    def finish(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = time.time() - self._started
            self._name = None


def sample_figures(evaluation: ProtectionEvaluation, wrong, adapter, out_dir: Path, count: int,
                   thief: str = 'thief') -> List[Path]:
    """One PNG per validation image (the first ``count`` in file order): what each person gets, with its mIoU."""
    out_dir.mkdir(parents=True, exist_ok=True)
    palette = evaluation.model.dataset_meta['palette']
    data, cipher = evaluation.test_data, evaluation.cipher
    conditions = [('with the key', cipher, None), ('plain input', None, None), ('a wrong key', wrong, None),
                  (thief, None, adapter)]
    written = []
    for index in range(min(count, len(data))):
        one = data.subset([index])
        rgb = data.rgb(index)
        panels = [rgb, displayable(cipher.encrypt(rgb)), colorize(one.labels[0][0].numpy(), palette)]
        titles = ['plain image', 'what the model sees', 'ground truth']
        for name, condition, attack in conditions:
            batch = dict(inputs=encrypt_batch(one.images, condition), data_samples=one.samples)
            with torch.no_grad():
                [prediction] = predict_batch(evaluation.model, batch, attack)
            panels.append(colorize(prediction.pred_sem_seg.data[0].cpu().numpy(), palette))
            titles.append(f'{name}: {score(evaluation.model, one, condition, attack):.1f}')
        path = Path(data.samples[index].img_path).stem
        written.append(_save_row(panels, titles, out_dir / f'sample_{path}.png'))
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
        # As tools/publish_model.py does: the batch norm statistics folded into the layers' weights.
        published = publish_checkpoint(row['checkpoint'], stem, work_dir / 'checkpoints',
                                       fold_norm_layers=config_norm_epsilons(CONFIG_DIR / f'{stem}.py'))
        record = load_from_local(str(published), 'cpu').get('meta', {}).get(CHECKPOINT_META_KEY) or {}
        metrics = {'Unprotected mIoU': baseline, 'mIoU': row['metrics'].get('mIoU'),
                   'Plain mIoU': row['metrics'].get('plain/mIoU'),
                   'Wrong-key mIoU mean': row['metrics'].get('wrong_key/mIoU_mean'),
                   'Wrong-key mIoU max': row['metrics'].get('wrong_key/mIoU_max')}
        models.append(dict(
            Name=stem, **{'In Collection': 'SegFormer'}, Config=f'configs/segformer/{stem}.py',
            Metadata={'Method': row.get('method', 'none'), 'Block Size': row.get('block_size'),
                      'Key Fingerprint': key_fingerprint if record else None,
                      'Training Iterations': iterations,
                      'SHA256': sha256_of(published)},
            Results=[dict(Task='Semantic Segmentation', Dataset='Shapes (demo)',
                          Metrics={k: None if v is None else round(float(v), 2) for k, v in metrics.items()})],
            Weights=str(published)))
    write_metafile(work_dir / 'metafile.yaml', 'SegFormer', models)
    return models


def run_demo(work_dir: str = 'work_dirs/demo', data_root: str = 'data/shapes', key_file: Optional[str] = None,
             iterations: int = 1000, num_wrong_keys: int = 20, attack_images: int = 10, attack_iterations: int = 200,
             num_figures: int = 4, num_train: int = 400, num_val: int = 100, method: str = DEFAULT_METHOD,
             block_size: int = DEFAULT_BLOCK_SIZE, key_contrastive: Optional[float] = DEFAULT_DEMO_KEY_CONTRASTIVE,
             weights_search_budget: int = WEIGHTS_SEARCH_BUDGET, attack_draws: int = ATTACK_DRAWS,
             negatives: str = DEFAULT_DEMO_NEGATIVES, unlabelled_images: int = UNLABELLED_COUNTS[0],
             climb_budget: int = CLIMB_BUDGET, relaxed_steps: int = RELAXED_STEPS,
             unlabelled_draws: int = UNLABELLED_DRAWS) -> Dict:
    """Run the demo end to end and return the report (also written to ``work_dir``).

    ``key_contrastive``: the loss weight of key-contrastive training, or None
    for ordinary protected training, and ``negatives`` the negatives it
    draws (a :func:`~.runs.parse_negatives` name). ``attack_draws``: draws of
    the thief's labelled images (the report gives their mean; the figures use
    the first). ``unlabelled_images``, ``climb_budget``, ``relaxed_steps`` and ``unlabelled_draws``: the thief
    with the weights and unlabelled images (0 images: not run).
    """
    started = time.time()
    stages = _Stages()
    work_dir, data_root = Path(work_dir), Path(data_root)
    stages.start(STAGES[0], _minutes(0.06 * (num_train + num_val)))
    generate_shapes(data_root, num_train, num_val)
    if key_file is None:
        key_file = str(PUBLIC_DEMO_KEY)
        _log(f'using the public demo key {key_file}: every run gets the same cipher; it protects nothing')
    fingerprint = RunKey.load(key_file).fingerprint  # once: a password key asks once for the whole demo

    stages.start(STAGES[1], _minutes(iterations * 0.2))
    baseline_dir = run_dir(work_dir, BASELINE)
    baseline_checkpoint = train(CONFIG_DIR / f'{BASELINE}.py', baseline_dir, None, iterations, data_root,
                                progress=True)
    baseline = evaluate(CONFIG_DIR / f'{BASELINE}.py', baseline_checkpoint, baseline_dir, None, data_root, 0,
                        quiet=True)

    negatives = negatives if key_contrastive and negatives != 'all' else ''
    stem, config = _committed_config(method, block_size, key_contrastive, negatives)
    # Key-contrastive steps also run the negatives: about 0.9 of an ordinary step for a negative of every image at
    # every iteration, less in proportion for fewer (measured: training_cost_negatives).
    settings = parse_negatives(negatives)
    stages.start(STAGES[2], _minutes(iterations * 0.2 * (
        1 + 0.9 * settings['negative_share'] / settings['negative_interval'] if key_contrastive else 1.0)))
    model_dir = run_dir(work_dir, stem)
    checkpoint = train(config, model_dir, key_file, iterations, data_root, progress=True)

    # The rates: seconds per adapter iteration, per wrong key, per evaluation of the weights-only search and of
    # the statistics search, per relaxed step.
    stages.start(STAGES[3], _minutes(20 + attack_draws * attack_iterations * 0.15 + num_wrong_keys * 0.8
                                     + weights_search_budget * 0.2
                                     + (unlabelled_draws * (2 * climb_budget * 0.1 + relaxed_steps * 0.5)
                                        if unlabelled_images else 0)))
    options = {f'{split}_dataloader.dataset.data_root': str(data_root) for split in ('train', 'val', 'test')}
    evaluation = ProtectionEvaluation(str(config), str(checkpoint), key_file, cfg_options=options)
    authorized, plain = evaluation.miou(evaluation.cipher), evaluation.miou(None)
    wrong_ciphers = [SecretKey.generate().cipher(method, block_size) for _ in range(num_wrong_keys)]
    wrong = summarize([evaluation.miou(c) for c in wrong_ciphers]) if wrong_ciphers else None
    attack = _labelled_thief(evaluation, method, block_size, attack_images, attack_iterations, attack_draws)
    adapter = attack.pop('trained')
    # The thief with no data at all: the key read off the first convolution (unlabelled images only choose).
    _log(f'thief with the weights, no data: reading the key off the first convolution, then {weights_search_budget} '
         'evaluations of search')
    weights = evaluation.weights_only(search_budget=weights_search_budget, log=_log)
    # The thief with the weights and a handful of unlabelled images of the domain: the normalisation statistics,
    # of the checkpoint as the demo publishes it.
    statistics = evaluation.as_published().unlabelled_images(
        [unlabelled_images], climb_budget, relaxed_steps, draws=unlabelled_draws, log=_log)[0] \
        if unlabelled_images else None
    num_classes = len(evaluation.model.dataset_meta['classes'])
    protected = dict(method=method, block_size=block_size, key_contrastive=key_contrastive, negatives=negatives,
                     config=stem,
                     authorized=authorized, plain=plain, wrong_keys=wrong, adapter=attack,
                     weights_only=dict(mIoU=weights.get('mIoU'), agreement=weights.get('agreement'),
                                       searched=(weights.get('search') or {}).get('mIoU'), note=weights.get('note')),
                     unlabelled_images=statistics and {k: statistics[k] for k in (
                         'images', 'budget', 'relaxed_steps', 'oracle', 'chosen', 'mIoU', 'draws', 'agreement',
                         'evaluations', 'seconds')},
                     chance=chance_levels(evaluation.test_data.labels, num_classes))

    stages.start(STAGES[4])
    figures = sample_figures(evaluation, wrong_ciphers[0] if wrong_ciphers else SecretKey.generate().cipher(
        method, block_size), adapter, work_dir / 'figures', num_figures, f'thief, {attack["k"]} images')

    stages.start(STAGES[5])
    rows = [dict(model='baseline (unprotected)', config=BASELINE, metrics=baseline,
                 checkpoint=str(baseline_checkpoint)),
            dict(model='protected', config=stem, block_size=block_size, checkpoint=str(checkpoint),
                 method=method + (f', key-contrastive {key_contrastive:g}' if key_contrastive else '')
                 + (f', negatives {negatives}' if negatives else ''),
                 metrics={'mIoU': authorized, 'plain/mIoU': plain,
                          'wrong_key/mIoU_mean': wrong['mean'] if wrong else None,
                          'wrong_key/mIoU_max': wrong['max'] if wrong else None})]
    zoo_entries = publish_demo_models(rows, work_dir, fingerprint, iterations)
    stages.finish()
    report = dict(command='python tools/demo.py' + ('' if iterations == 1000 else f' --iterations {iterations}'),
                  date=time.strftime('%Y-%m-%d'), machine=machine(), dataset=dict(root=str(data_root),
                  num_train=num_train, num_val=num_val), iterations=iterations, key_fingerprint=fingerprint,
                  baseline=dict(mIoU=baseline['mIoU']), protected=protected,
                  figures=[str(f) for f in figures], zoo=zoo_entries, stage_seconds=stages.seconds,
                  minutes=(time.time() - started) / 60)
    _write_report(report, work_dir)
    return report


def _committed_config(method: str, block_size: int, key_contrastive: Optional[float], negatives: str):
    """The stem and path of the committed config of the demo's setting, or an error that says how to write it."""
    stem = Variant(method, block_size, key_contrastive, negatives).stem
    config = CONFIG_DIR / f'{stem}.py'
    if not config.is_file():
        flags = ''.join(f' --{name.replace("_", "-")} {value}' for name, value in parse_negatives(negatives).items())
        raise ConfigError(f'{config} does not exist: the demo runs the committed configs; write it with '
                          f'python tools/protect_config.py {CONFIG_DIR / BASELINE}.py --method {method} '
                          f'--block-size {block_size}'
                          + (f' --key-contrastive {key_contrastive:g}{flags}' if key_contrastive
                             else ' --no-key-contrastive') + f' -o {config}')
    return stem, config


def _labelled_thief(evaluation: ProtectionEvaluation, method: str, block_size: int, attack_images: int,
                    attack_iterations: int, attack_draws: int) -> Dict:
    """The thief's cheap attacks: the block-wise adapter, and for FFX chains the value-table adapter; the better
    one, on each draw of its labelled images (one draw moves the result by several points). The first draw's,
    with what it trained under ``trained`` and every draw's mIoU under ``draws``."""
    draws = []
    _log(f'thief with {attack_images} labelled images: block-wise adapter, {attack_draws} draw(s) of the images')
    for draw in range(attack_draws):
        rng = np.random.default_rng([0, draw] if draw else 0)
        chosen = np.sort(rng.choice(len(evaluation.train_data), min(attack_images, len(evaluation.train_data)),
                                    replace=False))
        attacks = [train_attack(name, evaluation.model, evaluation.cfg.model, evaluation.cfg.optim_wrapper,
                                evaluation.train_data.subset(chosen), evaluation.test_data, attack_iterations,
                                evaluation_points(attack_iterations), block_size, log=_log, keep_trained=draw == 0)
                   for name in attacks_for(method) if name in ADAPTER_ATTACKS]
        draws.append(max(attacks, key=lambda result: result['curve'][-1][1]))
        _log(f'thief with {attack_images} labelled images: draw {draw + 1} of {attack_draws}, mIoU '
             f'{draws[-1]["curve"][-1][1]:.2f}')
    return dict(draws[0], draws=[result['curve'][-1][1] for result in draws])


def _write_report(report: Dict, work_dir: Path) -> None:
    """``report.json`` and ``report.md`` (summary, table and figures) in ``work_dir``; the report gains its table
    and summary."""
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / 'report.json').write_text(json.dumps(report, indent=2, default=float))
    report['table'] = headline_table(report)
    report['summary'] = summary(report)
    attack, figures = report['protected']['adapter'], report['figures']
    (work_dir / 'report.md').write_text(
        f'# mmseg-keyprotect demo\n\n{report["summary"]}\n\n{report["table"]}\n\n'
        f'Rows: the first {len(figures)} validation images. Panels: the plain image, what the protected model '
        'sees, the ground truth, then its predictions with the key, on the plain image, with a wrong key and '
        f'after the {ADAPTER_ATTACKS[attack["attack"]]} attack with {attack["k"]} labelled images, each with its '
        'own mIoU.\n\n'
        + '\n'.join(f'![sample]({Path(f).relative_to(work_dir)})' for f in figures) + '\n')


def headline_table(report: Dict) -> str:
    """The README's table: what the key holder, a stranger and a thief get from the protected model."""
    protected, wrong, attack = report['protected'], report['protected']['wrong_keys'], report['protected']['adapter']
    rows = [('unprotected baseline (for reference)', report['baseline']['mIoU']),
            ('key holder: protected model with the key', protected['authorized']),
            ('stranger: plain images', protected['plain'])]
    if wrong:
        rows.append((f'stranger: {wrong["count"]} random wrong keys, mean / max',
                     f'{wrong["mean"]:.2f} / {wrong["max"]:.2f}'))
    draws = attack_finals(attack)
    rows.append((f'thief with {attack["k"]} labelled images: {ADAPTER_ATTACKS[attack.get("attack", "adapter")]}, '
                 f'{attack["iterations"]} iterations' + _over_draws(draws), mean_and_range(draws)))
    weights = protected.get('weights_only') or {}
    if weights.get('mIoU') is not None:
        best = max(value for value in (weights['mIoU'], weights.get('searched')) if value is not None)
        rows.append(('thief with the weights, no data: key read off the first convolution, then searched on '
                     'unlabelled images (the better)', best))
    statistics = protected.get('unlabelled_images')
    if statistics:
        draws = statistics.get('draws') or [statistics['mIoU']]
        rows.append((f'thief with the weights and {statistics["images"]} unlabelled images: key searched on the '
                     f'{statistics["oracle"]}' + _over_draws(draws) + f' ({statistics["evaluations"]} evaluations, '
                     f'{statistics["seconds"] / 60:.0f} minutes in all)', mean_and_range(draws)))
    rows.append(('chance: always the majority class', protected['chance']['majority_class']))
    contrastive = (', key-contrastive training' if protected.get('key_contrastive') else '') + (
        f', negatives {protected["negatives"]}' if protected.get('negatives') else '')
    lines = [f'| who, with what ({protected["method"]}, M = {protected["block_size"]}{contrastive}) | mIoU |',
             '|---|---|']
    lines += [f'| {name} | {value if isinstance(value, str) else f"{value:.2f}"} |' for name, value in rows]
    return '\n'.join(lines)


def _over_draws(draws: List[float]) -> str:
    return f', mean of {len(draws)} draws of the images (lowest to highest)' if len(draws) > 1 else ''


def mean_and_range(draws: List[float]) -> str:
    """The mean of the draws, with the lowest and highest where there are several."""
    spread = f' ({min(draws):.2f} to {max(draws):.2f})' if len(draws) > 1 else ''
    return f'{np.mean(draws):.2f}{spread}'


def summary(report: Dict) -> str:
    """A few lines that say what happened, in words and numbers."""
    protected, wrong, attack = report['protected'], report['protected']['wrong_keys'], report['protected']['adapter']
    lines = [f'Finished in {report["minutes"]:.1f} minutes on {describe(report["machine"])}.',
             f'The unprotected model scores {report["baseline"]["mIoU"]:.1f} mIoU. Protected with '
             f'{protected["method"]} at M = {protected["block_size"]}'
             + (' and trained key-contrastively' if protected.get('key_contrastive') else '')
             + f', it scores {protected["authorized"]:.1f} with the key.',
             f'Without the key: {protected["plain"]:.1f} on plain images'
             + (f', {wrong["mean"]:.1f} on average under {wrong["count"]} random keys (at most {wrong["max"]:.1f})'
                if wrong else '') + '.',
             f'A thief with {attack["k"]} labelled images and the '
             f'{ADAPTER_ATTACKS[attack.get("attack", "adapter")]} reaches '
             f'{np.mean(attack_finals(attack)):.1f}'
             + (f' on average over {len(attack_finals(attack))} draws of its images'
                if len(attack_finals(attack)) > 1 else '')
             + f', {attack["seconds"] / 60:.1f} minutes a draw.']
    return '\n'.join(lines)
