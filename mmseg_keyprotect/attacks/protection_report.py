"""The protection report: how a protected model fares against each attacker of the threat model.

>>> report = evaluate_protection('configs/...shuffle-m4.py', 'model.pth', key_file='my.key',
...                              out_dir='work_dirs/protection')

Sections (``docs/en/threat_model.md`` describes the attackers):

* authorized, plain-image and (with a baseline checkpoint) unprotected mIoU;
* chance levels, with the same metric code;
* wrong keys: the mIoU distribution over many random keys;
* near keys: mIoU as a growing share of the key is right;
* known plaintext: the key recovered from 1, 2, 5 plain/encrypted pairs;
* ciphertext only: the key estimated from encrypted images alone;
* weights only: the key estimated from the stolen first convolution, with no labels (plain
  unlabelled images only pick between candidates), and a bounded search from there;
* weights and unlabelled images: a search for a key that works, guided by the statistics the
  model's normalisation layers keep, on a few plain images without labels;
* learning attacks with k labelled plain images (adapter, fine-tuning, and
  training from scratch as the floor).

Every attack records the data it used, its cost in seconds, how much of the
key it recovered and the mIoU it reached. Nothing derived from the key is
written; the report holds fractions and scores only.
"""
import copy
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config
from mmengine.logging import print_log

from ..apis.inference import ProtectedInferencer
from ..checkpoint.norm_statistics import fold_model_norm_statistics
from ..config.loading import load_config
from ..config.pipelines import encrypt_settings
from ..crypto.ciphers import FFX_METHODS, BlockCipher
from ..crypto.keys import SecretKey
from ..crypto.near_keys import key_parts, near_key
from ..datasets.transforms.blockwise_encrypt import transform_settings
from ..errors import ConfigError
from ..utils.progress import Progress
from .key_recovery import (
    estimate_ffx_table,
    estimate_flips,
    estimate_shuffle,
    find_ffx_positions,
    key_agreement,
    recover_known_plaintext,
    undo_ffx,
)
from .key_search import local_search, oracle_separation, pick_candidate
from .labelled_images import LabelledImages, load_labelled_images, plain_dataset_config, score
from .learning_attacks import attacks_for, evaluation_points, train_attack
from .metrics import chance_levels, summarize
from .unlabelled_images import CLIMB_BUDGET, HOLDOUT_IMAGES, RELAXED_STEPS, UNLABELLED_COUNTS, unlabelled_images_attack
from .weights_only import estimate_key_from_weights, model_stem, public_model_stem

NEAR_KEY_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0)
KNOWN_PLAINTEXT_PAIRS = (1, 2, 5)
ATTACK_SIZES = ('10', '100', '10%')
#: Draws of labelled images per learning attack and k: one draw is an anecdote.
ATTACK_DRAWS = 3
#: Draws of the unlabelled images of the thief who searches the key on the normalisation statistics.
UNLABELLED_DRAWS = 3
#: Oracle evaluations the weights-only thief spends searching near the key read off the weights (each one
#: a forward pass over its unlabelled images). More keep helping shuffles: this is a budget, not a ceiling.
WEIGHTS_SEARCH_BUDGET = 1000
PART_NAMES = dict(sources='shuffle positions', flips='NP flip bits', table_entries='FFX table entries')


def _log(message: str) -> None:
    print_log(f'evaluate_protection: {message}', logger='current')


def resolve_sizes(sizes: Sequence[Union[int, str]], train_count: int) -> Dict[str, int]:
    """Turn ``['10', '100', '10%']`` into image counts (capped at the training set).

    Raises:
        ConfigError: for a size that is neither a positive integer nor a percentage.
    """
    resolved = {}
    for size in sizes:
        text = str(size).strip()
        try:
            count = round(float(text[:-1]) / 100 * train_count) if text.endswith('%') else int(text)
        except ValueError:
            raise ConfigError(f'attack size {size!r} is neither a count (10) nor a share of the training set (10%)')
        if count < 1:
            raise ConfigError(f'attack size {size!r} gives {count} images; it must give at least 1')
        resolved[text] = min(count, train_count)
    return resolved


def attack_finals(row: Dict) -> List[float]:
    """The final mIoU of each draw of a learning attack's labelled images (a result from before draws holds
    one)."""
    return list(row.get('draws') or [row['curve'][-1][1]])


def check_draws(draws: int, what: str = 'attack draws') -> None:
    if draws < 1:
        raise ConfigError(f'{what} must be at least 1, got {draws}')


def check_unlabelled(counts: Sequence[int], climb_budget: int, relaxed_steps: int) -> None:
    """Refuse settings of the thief with unlabelled images before any work starts."""
    if any(count < 1 for count in counts):
        raise ConfigError(f'unlabelled image counts must be at least 1, got {list(counts)}')
    if climb_budget < 1 or relaxed_steps < 0:
        raise ConfigError(f'the climb budget must be at least 1 and the relaxed steps at least 0, got {climb_budget} '
                          f'and {relaxed_steps}')


class ProtectionEvaluation:
    """A protected model, its key and its data, scored under every condition of the report.

    Args:
        config (str | Config): the protected config.
        checkpoint (str): the protected checkpoint.
        key_file (str, optional): its key; default the run's key (``$KEYPROTECT_KEY_FILE``).
        device (str): where the model runs.
        num_images (int, optional): score on this many test images (a seeded
            subset); all by default.
        seed (int): seed of every random choice except wrong keys, which come
            from the OS.
        cfg_options (dict, optional): config overrides, as ``--cfg-options``.
    """

    def __init__(self, config: Union[str, Config], checkpoint: str, key_file: Optional[str] = None,
                 device: str = 'cpu', num_images: Optional[int] = None, seed: int = 0,
                 cfg_options: Optional[dict] = None):
        cfg = load_config(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.inferencer = ProtectedInferencer(cfg, checkpoint, key_file=key_file, device=device)
        self.cfg = self.inferencer.model.cfg
        self.model = self.inferencer.model
        self.cipher: BlockCipher = self.inferencer.cipher
        # How the pipeline stores images (mmcv loads BGR), which decides what the first convolution reads.
        self.channel_order = transform_settings(encrypt_settings(self.cfg)[0])['channel_order']
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.test_data = load_labelled_images(plain_dataset_config(self.cfg, 'test'), num_images, seed)
        self._train_data: Optional[LabelledImages] = None

    @property
    def train_data(self) -> LabelledImages:
        """The training split, plain, through the test pipeline (loaded on first use)."""
        if self._train_data is None:
            self._train_data = load_labelled_images(plain_dataset_config(self.cfg, 'train'), for_training=True)
        return self._train_data

    def as_published(self) -> 'ProtectionEvaluation':
        """This evaluation on the model as ``tools/publish_model.py`` publishes it, the batch norm statistics folded
        into the layers' weights: what a thief who steals a published checkpoint holds. The model is a copy, so
        attacks that start from the checkpoint as trained are not affected."""
        self.train_data  # loaded here, so that the copy and this evaluation share one load of the images
        published = copy.copy(self)
        published.model = copy.deepcopy(self.model)
        fold_model_norm_statistics(published.model)
        return published

    def miou(self, cipher: Optional[BlockCipher]) -> float:
        """mIoU on the test images encrypted with ``cipher`` (``None``: plain)."""
        return score(self.model, self.test_data, cipher)

    # -------------------------------------------------------------- sections
    def wrong_keys(self, count: int, log: Callable[[str], None] = _log) -> Dict:
        values = []
        progress = Progress('wrong keys', count, log, every=0.0)
        for index in range(count):
            values.append(self.miou(SecretKey.generate().cipher(self.inferencer.method, self.cipher.block_size)))
            if (index + 1) % 10 == 0 or index + 1 == count:
                progress.update(index + 1, f'mIoU so far mean {np.mean(values):.2f}, max {max(values):.2f}',
                                force=True)
        return dict(summary=summarize(values), values=values)

    def near_keys(self, fractions: Sequence[float] = NEAR_KEY_FRACTIONS) -> Dict:
        curves = {}
        for part in key_parts(self.cipher):
            curves[part] = [[float(f), self.miou(near_key(self.cipher, part, f, self.rng))] for f in fractions]
        return curves

    def known_plaintext(self, pair_counts: Sequence[int] = KNOWN_PLAINTEXT_PAIRS) -> list:
        results = []
        for count in pair_counts:
            chosen = self.rng.choice(len(self.train_data), min(count, len(self.train_data)), replace=False)
            plain = [self.train_data.rgb(i) for i in chosen]
            started = time.perf_counter()
            recovered, info = recover_known_plaintext(plain, [self.cipher.encrypt(p) for p in plain],
                                                      self.cipher.block_size)
            seconds = time.perf_counter() - started
            results.append(dict(pairs=len(plain), seconds=seconds, **info,
                                agreement=key_agreement(recovered, self.cipher), mIoU=self.miou(recovered)))
        return results

    def ciphertext_only(self, num_reference: int = 100) -> Dict:
        """Estimate the key from the encrypted test images and unrelated plain training images."""
        encrypted = [self.cipher.encrypt(self.test_data.rgb(i)) for i in range(len(self.test_data))]
        block_size, length = self.cipher.block_size, self.cipher.length
        method = self.inferencer.method.split('+')
        result = dict(encrypted_images=len(encrypted))
        started = time.perf_counter()
        positions, table = None, None
        if set(FFX_METHODS) & set(method):
            positions = find_ffx_positions(encrypted, block_size)
            result['ffx_positions'] = dict(found=int(positions.sum()),
                                           correct=float(np.mean(positions == self.cipher.ffx_mask)))
            reference = self._reference_images(num_reference)
            result['reference_images'] = len(reference)
            table = estimate_ffx_table(encrypted, reference, positions, block_size)
            result['ffx_table_entries_right'] = float(np.mean(table == self.cipher.ffx_table))
            # What is left is the chain's SHF/NP part, estimated as for those ciphers.
            encrypted = undo_ffx(encrypted, positions, table, block_size)
        candidates = [np.zeros(length, np.int64)]
        if 'np' in method:
            candidates = list(estimate_flips(encrypted, block_size))
        source = np.arange(length)
        if 'shuffle' in method:
            reference = self._reference_images(num_reference)
            result['reference_images'] = len(reference)
            source = estimate_shuffle(encrypted, reference, block_size, xor=candidates[0], seed=self.seed)
        result['seconds'] = time.perf_counter() - started
        estimates = [BlockCipher.from_map(source, xor, block_size, positions, table) for xor in candidates]
        scored = sorted(((self.miou(e), key_agreement(e, self.cipher)) for e in estimates), key=lambda t: -t[0])
        result.update(mIoU=scored[0][0], agreement=scored[0][1], candidates_tried=len(estimates))
        if len(estimates) > 1:
            result['note'] = ('NP flips are known up to a global complement; the better of the two candidates '
                              'is reported (an attacker holding the model tries both)')
        return result

    def weights_only(self, num_images: int = 16, search_budget: int = WEIGHTS_SEARCH_BUDGET,
                     num_wrong_keys: int = 5, log: Callable[[str], None] = _log) -> Dict:
        """The thief with the weights and no labels: the key read off the model's first convolution.

        Step 1 uses the weights only (:mod:`.weights_only`). Where they leave
        candidates (an NP estimate and its complement), the model's prediction
        diversity on ``num_images`` plain, unlabelled training images picks
        one (:mod:`.key_search`). Step 2, ``search``, spends at most
        ``search_budget`` further such evaluations on single flips and swaps
        (the ``search_budget`` least certain pairs), sweeping them while a
        sweep improves. ``oracles`` is the evaluator's
        check of that choice: how each label-free statistic rates the true
        key against plain images and ``num_wrong_keys`` random keys.
        """
        stem = model_stem(self.model, self.channel_order)
        if stem is None:
            return dict(note='no plain convolution reads the 3-channel image (grouped, dilated or absent): '
                             'the weights-only attack needs one')
        started = time.perf_counter()
        estimate = estimate_key_from_weights(stem, self.inferencer.method, self.cipher.block_size, seed=self.seed,
                                             max_uncertain_swaps=search_budget)
        images = self.train_data.subset(np.random.default_rng(self.seed).choice(
            len(self.train_data), min(num_images, len(self.train_data)), replace=False))
        chosen, values = pick_candidate(self.model, images, estimate.candidates)
        estimated = estimate.candidates[chosen]
        result = dict(uses=f'the first convolution; {len(images)} plain unlabelled images to pick among '
                           f'{len(estimate.candidates)} candidate(s) and to search',
                      structure=estimate.structure, phases=estimate.phases, candidates=len(estimate.candidates),
                      seconds=time.perf_counter() - started, mIoU=self.miou(estimated),
                      agreement=key_agreement(estimated, self.cipher))
        searched, info = local_search(self.model, images, estimated, estimate.uncertain_flips,
                                      estimate.uncertain_swaps, search_budget, sweeps=search_budget, log=log)
        result['search'] = dict(info, budget=search_budget, mIoU=self.miou(searched),
                                agreement=key_agreement(searched, self.cipher))
        wrong = [SecretKey.generate().cipher(self.inferencer.method, self.cipher.block_size)
                 for _ in range(num_wrong_keys)]
        result['oracles'] = oracle_separation(self.model, images, self.cipher, [None] + wrong)
        return result

    def unlabelled_images(self, counts: Sequence[int] = UNLABELLED_COUNTS, budget: int = CLIMB_BUDGET,
                          relaxed_steps: int = RELAXED_STEPS, public_weights: Optional[str] = None,
                          draws: int = UNLABELLED_DRAWS, log: Callable[[str], None] = _log) -> List[Dict]:
        """The thief with the weights and N plain, unlabelled images of the domain, for each N in ``counts``
        (:mod:`.unlabelled_images`), on ``draws`` independent draws of the images.

        The images come from the training split (the thief's own images of the domain; their labels are never
        read); ``HOLDOUT_IMAGES`` others pick among the search's candidates. ``public_weights``: the checkpoint
        the model was trained from, when the config names public weights (the thief has them too).

        Returns:
            list: per N, the first draw's search in full (the kept key's agreement, every candidate, each step)
            with ``mIoU`` the mean over the draws, ``draws`` each draw's kept mIoU, ``evaluations`` and
            ``seconds`` summed over the draws.
        """
        check_draws(draws, 'unlabelled image draws')
        stem = model_stem(self.model, self.channel_order)
        public_stem = None if public_weights is None else public_model_stem(public_weights, self.model,
                                                                            self.channel_order)
        results = []
        for count in counts:
            searches = []
            for draw in range(draws):
                what = f'{count} unlabelled images' + (f', draw {draw + 1} of {draws}' if draws > 1 else '')
                log(f'thief with the weights and {what}: searching')
                searches.append(self._unlabelled_search(count, draw, stem, public_stem, budget, relaxed_steps,
                                                        lambda message: log(f'{what}: {message}')))
                log(f'thief with the weights and {what}: mIoU {searches[-1]["mIoU"]:.2f} '
                    f'({searches[-1]["chosen"]}), {searches[-1]["seconds"] / 60:.1f} min')
            finals = [search['mIoU'] for search in searches]
            results.append(dict(searches[0], public_weights=public_weights is not None, mIoU=float(np.mean(finals)),
                                draws=finals, evaluations=sum(search['evaluations'] for search in searches),
                                seconds=sum(search['seconds'] for search in searches)))
        return results

    def _unlabelled_search(self, count: int, draw: int, stem, public_stem, budget: int, relaxed_steps: int,
                           log: Callable[[str], None]) -> Dict:
        """One draw of the thief's images and its search. Draw 0 takes the images every earlier report took."""
        order = np.random.default_rng([self.seed, 1] + ([draw] if draw else [])).permutation(len(self.train_data))
        # A small training split (a test's) still leaves images to search with: at most half of it is held out.
        held = min(HOLDOUT_IMAGES, max(1, len(order) // 2))
        holdout = [self.train_data.images[i] for i in order[:held]]
        chosen = order[held:held + count]
        outcome = unlabelled_images_attack(
            self.model, stem, self.inferencer.method, self.cipher.block_size,
            [self.train_data.images[i] for i in chosen], holdout, self.channel_order, budget, relaxed_steps,
            public_stem, self.seed + draw, log=log)
        candidates = {name: dict(mIoU=self.miou(cipher), agreement=key_agreement(cipher, self.cipher),
                                 value=outcome['values'][name])
                      for name, cipher in outcome['candidates'].items()}
        kept = candidates[outcome['chosen']]
        return dict(images=len(chosen), holdout_images=len(holdout), budget=budget, relaxed_steps=relaxed_steps,
                    oracle=outcome['oracle'], chosen=outcome['chosen'], mIoU=kept['mIoU'],
                    agreement=kept['agreement'], evaluations=outcome['evaluations'], seconds=outcome['seconds'],
                    candidates=candidates, steps={name: {k: v for k, v in step.items() if k != 'trace'}
                                                  for name, step in outcome['steps'].items()})

    def _reference_images(self, count: int) -> list:
        """Unrelated plain images (the training split), the same draw on every call."""
        count = min(count, len(self.train_data))
        chosen = np.random.default_rng(self.seed).choice(len(self.train_data), count, replace=False)
        return [self.train_data.rgb(i) for i in chosen]

    def learning_attacks(self, sizes: Sequence[Union[int, str]] = ATTACK_SIZES, iterations: int = 300,
                         attacks: Optional[Sequence[str]] = None, draws: int = ATTACK_DRAWS,
                         log: Callable[[str], None] = _log) -> list:
        """Train each learning attack on ``draws`` independent draws of k labelled images.

        Which images a thief happens to label moves the result by several points, so a row gives the
        mean over the draws (``mIoU``) and each draw's final mIoU (``draws``); its ``curve`` is the
        first draw's.
        """
        check_draws(draws)
        results = []
        points = evaluation_points(iterations)
        for label, count in resolve_sizes(sizes, len(self.train_data)).items():
            subsets = [self.train_data.subset(np.sort(self.rng.choice(len(self.train_data), count, replace=False)))
                       for _ in range(draws)]
            for attack in attacks or attacks_for(self.inferencer.method):
                runs = []
                for draw, subset in enumerate(subsets):
                    log(f'learning attack {attack} with k = {count} ({label}), {iterations} iterations'
                        + (f', draw {draw + 1} of {draws}' if draws > 1 else ''))
                    runs.append(train_attack(attack, self.model, self.cfg.model, self.cfg.optim_wrapper, subset,
                                             self.test_data, iterations, points, self.cipher.block_size,
                                             seed=self.seed, log=log))
                finals = [run['curve'][-1][1] for run in runs]
                results.append(dict(size=label, **runs[0], mIoU=float(np.mean(finals)), draws=finals))
        return results


def evaluate_protection(config: Union[str, Config], checkpoint: str, key_file: Optional[str] = None,
                        out_dir: Union[str, Path] = 'work_dirs/protection',
                        baseline: Optional[Tuple[str, str]] = None, num_wrong_keys: int = 100,
                        attack_sizes: Sequence[Union[int, str]] = ATTACK_SIZES, attack_iterations: int = 300,
                        attack_draws: int = ATTACK_DRAWS, weights_search_budget: int = WEIGHTS_SEARCH_BUDGET,
                        unlabelled_counts: Sequence[int] = UNLABELLED_COUNTS, climb_budget: int = CLIMB_BUDGET,
                        relaxed_steps: int = RELAXED_STEPS, unlabelled_draws: int = UNLABELLED_DRAWS,
                        public_weights: Optional[str] = None, attacks: Optional[Sequence[str]] = None,
                        num_images: Optional[int] = None, device: str = 'cpu', seed: int = 0,
                        cfg_options: Optional[dict] = None) -> Dict:
    """Write the protection report of a protected checkpoint (``protection_report.json``).

    Args:
        baseline (tuple, optional): ``(config, checkpoint)`` of the same
            architecture trained without protection.
        num_wrong_keys (int): random wrong keys (at least 59 back a 95th
            percentile claim, 299 a 99th).
        attack_sizes: k values for the learning attacks; ``'10%'`` is a share
            of the training set. Empty: no learning attacks.
        attack_iterations (int): training iterations of each learning attack.
        attack_draws (int): draws of labelled images for each learning
            attack and k; the report gives their mean and each one.
        weights_search_budget (int): oracle evaluations of the weights-only
            thief's search.
        unlabelled_counts: N of the thief with the weights and N unlabelled
            images (empty: not run).
        climb_budget (int): oracle evaluations of each of that thief's climbs.
        relaxed_steps (int): gradient steps of its relaxed search.
        unlabelled_draws (int): draws of that thief's images for each N; the
            report gives their mean and each one.
        public_weights (str, optional): the checkpoint the model was trained
            from (public weights that thief holds too).
        attacks: which learning attacks to run; default those that fit the
            cipher (the value-table adapter only for FFX chains).
        num_images (int, optional): test images scored (default all).
        cfg_options (dict, optional): config overrides, as ``--cfg-options``.

    Returns:
        dict: the report, also written to ``out_dir/protection_report.json``.
    """
    started = time.time()
    resolve_sizes(attack_sizes, 10 ** 9)  # a bad size or draw count fails now, not after the long sections
    check_draws(attack_draws)
    check_unlabelled(unlabelled_counts, climb_budget, relaxed_steps)
    check_draws(unlabelled_draws, 'unlabelled image draws')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _log(f'loading {checkpoint} and the test images')
    evaluation = ProtectionEvaluation(config, checkpoint, key_file, device, num_images, seed, cfg_options)
    cipher = evaluation.cipher
    report = dict(config=str(config), checkpoint=str(checkpoint), method=evaluation.inferencer.method,
                  block_size=cipher.block_size,
                  test_images=len(evaluation.test_data), seed=seed)
    report['authorized_mIoU'] = evaluation.miou(cipher)
    report['plain_mIoU'] = evaluation.miou(None)
    _log(f'authorized mIoU {report["authorized_mIoU"]:.2f}, plain images {report["plain_mIoU"]:.2f}')
    if baseline is not None:
        baseline_model = _load_plain_model(*baseline, device=device)
        report['baseline'] = dict(config=str(baseline[0]), checkpoint=str(baseline[1]),
                                  mIoU=score(baseline_model, evaluation.test_data))
        _log(f'unprotected baseline mIoU {report["baseline"]["mIoU"]:.2f}')
    num_classes = len(evaluation.model.dataset_meta['classes'])
    report['chance'] = chance_levels(evaluation.test_data.labels, num_classes, seed=seed)
    _log(f'evaluating {num_wrong_keys} random wrong keys')
    report['wrong_keys'] = evaluation.wrong_keys(num_wrong_keys) if num_wrong_keys else None
    _log('near-key curves')
    report['near_keys'] = evaluation.near_keys()
    _log('known-plaintext key recovery')
    report['known_plaintext'] = evaluation.known_plaintext()
    _log('ciphertext-only key estimation')
    report['ciphertext_only'] = evaluation.ciphertext_only()
    _log('key estimation from the weights alone')
    report['weights_only'] = evaluation.weights_only(search_budget=weights_search_budget)
    _log('key search with the weights and unlabelled images')
    report['unlabelled_images'] = evaluation.unlabelled_images(unlabelled_counts, climb_budget, relaxed_steps,
                                                               public_weights, unlabelled_draws)
    report['learning_attacks'] = evaluation.learning_attacks(attack_sizes, attack_iterations, attacks, attack_draws) \
        if attack_sizes and (attacks is None or attacks) else []
    report['minutes'] = (time.time() - started) / 60
    (out_dir / 'protection_report.json').write_text(json.dumps(report, indent=2))
    _log(f'report written to {out_dir} in {report["minutes"]:.1f} minutes')
    return report


def _load_plain_model(config: str, checkpoint: str, device: str):
    from mmengine.runner import load_checkpoint
    from mmseg.apis import init_model
    model = init_model(load_config(config), None, device='cpu')
    meta = load_checkpoint(model, str(checkpoint), map_location='cpu', logger='silent').get('meta', {})
    if meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    return model.to(device).eval()
