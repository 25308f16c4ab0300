"""What every experiment shares: the demo's configs and key, variants, training and testing runs, logging.

The demo, the accuracy study and the protection frontier train the same
models; a run lives in ``run_dir(work_dir, stem, seed)`` and is reused when its
checkpoint exists, so studies share runs and resume.
"""
import contextlib
import copy
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from mmseg_keyprotect.apis import build_test_runner, build_train_runner
from mmseg_keyprotect.config import plugin_config_dir, protect_config
from mmseg_keyprotect.errors import ConfigError

CONFIG_DIR = plugin_config_dir() / 'segformer'
#: Published on purpose: every demo run gets the same cipher, and it protects nothing.
PUBLIC_DEMO_KEY = Path(__file__).resolve().parents[1] / 'public_demo_key.json'
BASELINE = 'segformer_mit-b0_1xb8-1k_shapes-128x128'


def experiment_log(name: str) -> Callable[[str], None]:
    """A logger for one experiment: timestamped lines on standard output, flushed at once."""
    def log(message: str) -> None:
        print(f'[{name} {time.strftime("%H:%M:%S")}] {message}', flush=True)
    return log


_log = experiment_log('runs')


#: What a variant may change in the model and its training (after ``@``, joined by ``+``): ``gn``, group norm in
#: the decode head, which keeps no running statistics; ``public``, training starts from the unprotected baseline's
#: weights, which stand for public weights (a thief holds them too); ``affine``, training starts with the batch norm
#: scales and shifts drawn at random per channel (:func:`random_affine_init`), so that a thief cannot take them for
#: 1 and 0 when guessing folded statistics back.
MODEL_OPTIONS = ('gn', 'public', 'affine')


@dataclass(frozen=True)
class Variant:
    """One protected setting: a cipher chain, a block size, the key-contrastive weight (None: off), which
    negatives key-contrastive training draws (a :func:`parse_negatives` name; empty: a negative for every image
    at every iteration), and ``MODEL_OPTIONS`` joined by ``+``."""
    method: str
    block_size: int
    key_contrastive: Optional[float] = None
    negatives: str = ''
    model: str = ''

    @property
    def name(self) -> str:
        suffix = '' if self.key_contrastive is None else f'+kc{self.key_contrastive:g}'
        return (f'{self.method}:{self.block_size}{suffix}' + (f'/{self.negatives}' if self.negatives else '')
                + (f'@{self.model}' if self.model else ''))

    @property
    def stem(self) -> str:
        """The config name of the variant (``-kcW`` for key-contrastive training with weight W, then the
        negatives and the model options)."""
        stem = protected_stem(self.method, self.block_size, self.key_contrastive)
        return (stem + (f'-{self.negatives.replace("+", "-")}' if self.negatives else '')
                + (f'-{self.model.replace("+", "-")}' if self.model else ''))

    @property
    def model_options(self) -> Tuple[str, ...]:
        return tuple(filter(None, self.model.split('+')))

    @property
    def key_contrastive_settings(self):
        """``protect_config``'s ``key_contrastive`` argument for this variant."""
        if self.key_contrastive is None:
            return False
        return dict(negative_weight=self.key_contrastive, **parse_negatives(self.negatives))


def parse_variant(text: str) -> Variant:
    """``'shuffle+np:4'``, ``'shuffle:4+kc0.1'``, ``'shuffle+np:4+kc0.1/share0.25+running'`` or
    ``'shuffle+np:4+kc0.1/share0.25@gn'`` -> a :class:`Variant`."""
    text, _, model = text.partition('@')
    unknown = [option for option in filter(None, model.split('+')) if option not in MODEL_OPTIONS]
    if unknown:
        raise ConfigError(f'variant {text}@{model}: unknown model option {unknown[0]!r}; expected '
                          f'{", ".join(MODEL_OPTIONS)} joined by "+"')
    setting, _, negatives = text.partition('/')
    setting, _, contrastive = setting.partition('+kc')
    method, _, block_size = setting.rpartition(':')
    try:
        variant = Variant(method, int(block_size), float(contrastive) if contrastive else None, negatives, model)
    except ValueError:
        variant = None
    if variant is None or (negatives and not contrastive):
        raise ConfigError(f'variant {text!r}: expected METHOD:M, METHOD:M+kcWEIGHT or METHOD:M+kcWEIGHT/NEGATIVES, '
                          'for example shuffle+np:4, shuffle:4+kc0.1 or shuffle+np:4+kc0.1/share0.25')
    parse_negatives(negatives)  # an unknown name fails here, before any training
    return variant


def protected_stem(method: str, block_size: int, key_contrastive: Optional[float] = None) -> str:
    """The config name of a protected demo variant (``-kcW`` for key-contrastive training with weight W)."""
    suffix = '' if not key_contrastive else f'-kc{key_contrastive:g}'
    return f'{BASELINE}_{method.replace("+", "-")}-m{block_size}{suffix}'


def run_dir(work_dir: Path, stem: str, seed: int = 0) -> Path:
    """Where one training run lives; the demo's runs are the seed-0 runs of the accuracy study."""
    name = 'baseline' if stem == BASELINE else stem
    return work_dir / (name if seed == 0 else f'{name}_seed{seed}')


def train(config: Path, work_dir: Path, key_file: Optional[str], iterations: int, data_root: Path,
          seed: int = 0, progress: bool = False) -> Path:
    """Train ``config`` for ``iterations`` with ``seed``; return the final checkpoint (reused if present).

    With ``progress``, a progress bar replaces MMEngine's console log (the work dir keeps the full log).
    """
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
    if progress:
        options['log_level'] = 'ERROR'
    with _one_runner_of_many():
        runner = build_train_runner(str(config), key_file=key_file, work_dir=str(work_dir), cfg_options=options)
    if progress:
        runner.register_hook(_TrainingProgress())
    runner.train()
    return checkpoint


def evaluate(config: Path, checkpoint: Path, work_dir: Path, key_file: Optional[str], data_root: Path,
             num_wrong_keys: int, quiet: bool = False) -> Dict[str, float]:
    """Test metrics; for a protected config these include plain/ and wrong_key/ entries."""
    options = {'test_dataloader.dataset.data_root': str(data_root)}
    if quiet:
        options['log_level'] = 'ERROR'
    if key_file is not None:
        options['custom_hooks'] = [dict(type='KeyProtectHook', num_wrong_keys=num_wrong_keys, evaluate_plain=True)]
    with _one_runner_of_many():
        runner = build_test_runner(str(config), str(checkpoint), key_file=key_file,
                                   work_dir=str(work_dir / 'test'), cfg_options=options)
    return runner.test()


@contextlib.contextmanager
def _one_runner_of_many():
    """Silence what MMEngine and mmseg say when a study builds its tenth runner in one process: the visualizer
    is reused by name, and a study's test runs draw nothing. A process started with warning options sees them."""
    with warnings.catch_warnings():
        if not sys.warnoptions:
            warnings.filterwarnings('ignore', message=r'.*instance named of visualizer has been created',
                                    category=UserWarning)
            warnings.filterwarnings('ignore', message='The draw is False', category=UserWarning)
        yield


class _TrainingProgress(Hook):
    """A progress bar with the time left, instead of MMEngine's log lines, while the demo trains."""

    priority = 'LOW'

    def before_train(self, runner) -> None:
        self.bar = ProgressBar(runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.bar.update()

    def after_train(self, runner) -> None:
        sys.stdout.write('\n')




def variant_config(variant: Variant, out_dir: Path, iterations: int = 1000) -> Path:
    """The protected config of a variant: the committed one when it exists, else written under ``out_dir`` from
    the baseline by :func:`~mmseg_keyprotect.config.protect_config` (as the committed ones were)."""
    committed = CONFIG_DIR / f'{variant.stem}.py'
    if committed.is_file():
        return committed
    cfg, _ = protect_config(str(CONFIG_DIR / f'{BASELINE}.py'), variant.method, variant.block_size,
                            key_contrastive=variant.key_contrastive_settings)
    if 'gn' in variant.model_options:
        cfg.model.decode_head.norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
    if 'public' in variant.model_options:
        cfg.load_from = str(public_weights(out_dir, iterations))
    if 'affine' in variant.model_options:
        cfg.load_from = str(random_affine_init(cfg, out_dir / 'init' / f'{variant.stem}.pth'))
    path = out_dir / 'configs' / f'{variant.stem}.py'
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(path))
    return path


def random_affine_init(cfg, path: Path, seed: int = 0) -> Path:
    """Initial weights of ``cfg``'s model, as its own initialisation draws them with ``seed``, except that every
    batch norm layer's weight is drawn log-uniformly from [0.5, 2] and its bias uniformly from [-1, 1], per
    channel (reused if ``path`` exists). The draw stays with whoever trains: it is not in the config."""
    if path.is_file():
        return path
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from torch.nn.modules.batchnorm import _BatchNorm
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['data_preprocessor'] = dict(type='SegDataPreProcessor')  # no parameters, and no key to ask for
    model = MODELS.build(model_cfg)
    model.init_weights()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, _BatchNorm) and layer.affine:
                count = layer.num_features
                layer.weight.copy_(2.0 ** (torch.rand(count, generator=generator) * 2 - 1))
                layer.bias.copy_(torch.rand(count, generator=generator) * 2 - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(seed=seed)), path)
    return path


def public_weights(work_dir: Path, iterations: int = 1000) -> Path:
    """The weights that stand for public ones: the unprotected baseline's, seed 0 (trained first by the studies)."""
    return run_dir(work_dir, BASELINE) / f'iter_{iterations}.pth'


#: Negatives that include keys close to the key (:func:`~mmseg_keyprotect.crypto.near_keys.close_key`).
CLOSE_NEGATIVES = dict(random_key=0.25, near_key=0.25, close_key=0.25, plain=0.25)
#: A negative for every image at every iteration, under the negatives' own batch statistics.
ALL_NEGATIVES = dict(negative_share=1.0, negative_interval=1, negative_statistics='batch')


def negatives_name(options: Dict) -> str:
    """The short name of key-contrastive negatives (the inverse of :func:`parse_negatives`; ``''`` for a negative for
    every image at every iteration under batch statistics)."""
    options = {**ALL_NEGATIVES, **options}
    tokens = [f'share{options["negative_share"]:g}' if options['negative_share'] != 1.0 else '',
              f'interval{options["negative_interval"]}' if options['negative_interval'] != 1 else '',
              'running' if options['negative_statistics'] == 'running' else '',
              'close' if options.get('negatives') == CLOSE_NEGATIVES else '']
    return '+'.join(filter(None, tokens))


def parse_negatives(text: str) -> Dict:
    """Key-contrastive negatives, as ``protect_config(key_contrastive=...)`` takes them, from a short name:
    ``'share0.25'`` (a quarter of each batch), ``'interval4'`` (every fourth iteration), ``'running'`` (batch norm
    on the negatives as deployed), joined by ``+``; ``'all'`` or ``''`` is a negative for every image at every
    iteration under batch statistics; ``'close'`` adds negatives close to the key. Every setting is spelled
    out, so the result does not depend on
    ``protect_config``'s defaults."""
    options = dict(ALL_NEGATIVES)
    for token in filter(None, text.split('+')):
        share, interval = token[len('share'):], token[len('interval'):]
        if token == 'all':
            continue
        if token == 'running':
            options['negative_statistics'] = 'running'
        elif token == 'close':
            options['negatives'] = dict(CLOSE_NEGATIVES)
        elif token.startswith('share') and share.replace('.', '', 1).isdigit() and 0 < float(share) <= 1:
            options['negative_share'] = float(share)
        elif token.startswith('interval') and interval.isdigit() and int(interval) >= 1:
            options['negative_interval'] = int(interval)
        else:
            raise ConfigError(f'negatives {text!r}: expected all, shareF (0 < F <= 1), intervalN (N >= 1), running or '
                              'close, '
                              'joined by "+", for example share0.25+running')
    return options
