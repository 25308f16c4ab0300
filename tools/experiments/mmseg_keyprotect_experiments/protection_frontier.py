"""The protection frontier: every method and block size against its best attacker, on the demo data.

For each variant (method, M, and optionally key-contrastive training) the
study trains the demo's protected model (runs shared with the demo and the
accuracy study), then measures, through the protection report's API: the
authorized mIoU per seed, plain images, random wrong keys, near keys,
ciphertext-only key estimation, and the learning attacks by number of
labelled images k. The attacker's best is the highest mIoU of any attack
with at most ``BEST_MAX_LABELLED`` labelled images and the intercepted test
images (known plaintext is reported by the protection report but left out:
one pair always recovers SHF/NP/FFX keys).

Every measurement is saved to ``frontier.json`` as soon as it exists, so an
interrupted study resumes where it stopped and finished runs are reused.
"""
import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from mmseg_keyprotect.attacks.learning_attacks import attacks_for, evaluation_points, train_attack
from mmseg_keyprotect.attacks.protection_report import (
    ATTACK_DRAWS,
    UNLABELLED_DRAWS,
    WEIGHTS_SEARCH_BUDGET,
    ProtectionEvaluation,
)
from mmseg_keyprotect.attacks.unlabelled_images import CLIMB_BUDGET, RELAXED_STEPS, UNLABELLED_COUNTS
from mmseg_keyprotect.crypto.ciphers import ENUMERABLE_BITS, key_space
from mmseg_keyprotect.datasets import generate_shapes
from mmseg_keyprotect.errors import ConfigError
from mmseg_keyprotect.utils import atomic_file, machine, save_figure

from .runs import (
    BASELINE,
    CONFIG_DIR,
    PUBLIC_DEMO_KEY,
    Variant,
    evaluate,
    experiment_log,
    parse_variant,
    public_weights,
    run_dir,
    train,
    variant_config,
)

#: The learning attacks at this k decide the attacker's best, so only they run on ATTACK_DRAWS draws of images.
BEST_MAX_LABELLED = 10
#: Gap to the baseline's mean within which a variant "keeps accuracy" (the rule that picks the default).
ACCURACY_TOLERANCE = 1.0
#: A model trained again with the same seed and code scores the same mIoU on the CPU, up to rounding.
REPRODUCED_TOLERANCE = 0.011


VARIANTS = tuple(parse_variant(v) for v in (
    'shuffle:4', 'np:4', 'shuffle+np:4', 'ffx:4', 'np+ffx:4', 'shuffle+np+ffx:4', 'shuffle:4+kc0.1', 'np:4+kc0.1',
    'shuffle:8', 'np:8', 'shuffle+np:8', 'shuffle:2', 'np:2', 'shuffle+np:2', 'ffx8:4', 'np+ffx8:4',
    # Key-contrastive training of the chosen chain, then its cheaper negatives (see parse_negatives).
    'shuffle+np:4+kc0.1', 'shuffle+np:4+kc0.1/share0.25', 'shuffle+np:4+kc0.1/interval4',
    'shuffle+np:4+kc0.1/share0.25+running', 'shuffle+np:4+kc0.1/interval4+running'))
FULL_ATTACK_SIZES = (1, 2, 5, 10, 40)
# Adapters cost ~30 s per k on 2 CPU cores, fine-tuning ~90 s: the trimmed budget keeps the adapters' curve.
TRIMMED_ATTACK_SIZES, TRIMMED_FINE_TUNE_SIZES = (1, 10, 40), (10,)


#: benchmark_training.py's measurement of what each key-contrastive setting costs to train, in a checkout.
TRAINING_COSTS = Path('docs') / 'en' / 'results' / 'training_cost_negatives.json'

_log = experiment_log('protection_frontier')


def cost_ratios(report: Dict) -> Dict[str, float]:
    """Training time against ordinary protected training by negatives name (``'all'``: a negative for every image
    at every iteration), from a ``benchmark_training.py --key-contrastive --negatives`` result."""
    return dict(report.get('negatives_ratios', {}), all=report['key_contrastive_ratio'])


def training_costs(path) -> Dict[str, float]:
    """:func:`cost_ratios` of a results file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'--training-costs {path}: no such file; benchmark_training.py --key-contrastive '
                          '--negatives ... --results-file writes one')
    return cost_ratios(json.loads(path.read_text()))


class FrontierStudy:
    """The study's state: ``frontier.json`` in the work dir, saved after every measurement.

    Args:
        work_dir (str | Path): runs and the state file (the demo's work dir
            by default, so its runs are reused).
        data_root (str | Path): the Shapes data (generated if missing).
        key_file (str, optional): default the public demo key.
        iterations (int): training iterations per model (the demo's 1000).
        seeds (Sequence[int]): seeds of the authorized mIoU; the report runs
            on the first seed's model.
        num_wrong_keys (int): random wrong keys per variant.
        attack_sizes (Sequence[int]): k values of the adapter attacks.
        fine_tune_sizes (Sequence[int]): k values of fine-tuning, and of
            training from scratch (the floor, measured once: it needs no key).
        attack_iterations (int): iterations of each learning attack.
        weights_search_budget (int): oracle evaluations of the weights-only
            thief's search.
        attack_draws (int): draws of labelled images for each learning
            attack at ``k = BEST_MAX_LABELLED`` (its mIoU is their mean; other
            k values have one draw).
        unlabelled_counts (Sequence[int]): N of the thief with the weights and
            N unlabelled images.
        climb_budget (int), relaxed_steps (int): that thief's budget.
        unlabelled_draws (int): draws of that thief's images (its mIoU is
            their mean).
        training_costs (dict, optional): training time relative to ordinary
            protected training, by key-contrastive negatives name (``'all'``
            for a negative for every image at every iteration), as
            ``benchmark_training.py`` measures it; the rule prefers the
            cheapest of the variants it cannot separate.
    """

    def __init__(self, work_dir='work_dirs/demo', data_root='data/shapes', key_file: Optional[str] = None,
                 iterations: int = 1000, seeds: Sequence[int] = (0, 1), num_wrong_keys: int = 100,
                 attack_sizes: Sequence[int] = FULL_ATTACK_SIZES, fine_tune_sizes: Sequence[int] = FULL_ATTACK_SIZES,
                 attack_iterations: int = 200, weights_search_budget: int = WEIGHTS_SEARCH_BUDGET,
                 attack_draws: int = ATTACK_DRAWS, training_costs: Optional[Dict[str, float]] = None,
                 unlabelled_counts: Sequence[int] = UNLABELLED_COUNTS, climb_budget: int = CLIMB_BUDGET,
                 relaxed_steps: int = RELAXED_STEPS, unlabelled_draws: int = UNLABELLED_DRAWS,
                 log: Callable[[str], None] = _log):
        self.work_dir, self.data_root = Path(work_dir), Path(data_root)
        self.key_file = key_file or str(PUBLIC_DEMO_KEY)
        self.iterations, self.seeds = iterations, list(seeds)
        self.num_wrong_keys, self.attack_iterations = num_wrong_keys, attack_iterations
        self.weights_search_budget, self.attack_draws = weights_search_budget, attack_draws
        self.training_costs = dict(training_costs or {})
        self.unlabelled_counts, self.climb_budget, self.relaxed_steps = list(unlabelled_counts), climb_budget, \
            relaxed_steps
        self.unlabelled_draws = unlabelled_draws
        self.attack_sizes, self.fine_tune_sizes = list(attack_sizes), list(fine_tune_sizes)
        self.log = log
        self.path = self.work_dir / 'frontier.json'
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else dict(variants={})
        self.state.update(iterations=iterations, num_wrong_keys=num_wrong_keys, attack_iterations=attack_iterations)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path) as handle:
            handle.write(json.dumps(self.state, indent=2).encode())

    # ------------------------------------------------------------ training
    def _authorized(self, row: Dict, config: Path, stem: str, seed: int, key_file: Optional[str],
                    checkpoint_needed: bool = True) -> float:
        """Train (or reuse) one seed's model and record its mIoU with the key.

        A recorded mIoU whose model is not in the work dir (a study imported
        from a results file) stands as it is unless the model is needed; then
        the model is trained again and must score the same, or the row's
        measurements, which belonged to the other model, are dropped and taken
        again.
        """
        runs = row.setdefault('runs', {})
        if str(seed) in runs and not checkpoint_needed:
            return runs[str(seed)]
        directory = run_dir(self.work_dir, stem, seed)
        retrained = not (directory / f'iter_{self.iterations}.pth').is_file()
        checkpoint = train(config, directory, key_file, self.iterations, self.data_root, seed)
        if str(seed) not in runs or retrained:
            metrics = evaluate(config, checkpoint, directory, key_file, self.data_root, 0, quiet=True)
            value = float(metrics['mIoU'])
            recorded = runs.get(str(seed))
            if recorded is not None and abs(recorded - value) > REPRODUCED_TOLERANCE:
                self.log(f'{stem}, seed {seed}: trained again, mIoU {value:.2f} where {recorded:.2f} was recorded; '
                         'its measurements are taken again')
                for name in list(row):
                    if name not in ('method', 'block_size', 'key_contrastive', 'negatives', 'runs'):
                        del row[name]
            runs[str(seed)] = value
            self.save()
        return runs[str(seed)]

    def import_results(self, results: Dict) -> None:
        """Start from a results file of this study (``--results-file``): its baseline, floor and rows, for
        variants the work dir has not measured. Models are trained again only where an attack needs them,
        and their measurements are kept only if they score what the file recorded."""
        # Where the file does not say per result where its thieves ran, they ran in the file's own study.
        measured = {k: results[k] for k in ('date', 'machine') if k in results}
        self.state.setdefault('baseline', dict(results['baseline']))
        self.state.setdefault('scratch', {k: dict(mIoU=v) for k, v in results.get('scratch', {}).items()})
        for row in results['rows']:
            if row['variant'] in self.state['variants']:
                continue
            self.state['variants'][row['variant']] = dict(
                method=row['method'], block_size=row['block_size'], key_contrastive=row['key_contrastive'],
                negatives=row.get('negatives', ''), runs=dict(row['authorized']), plain=row['plain'],
                wrong_keys=row['wrong_keys'], near_keys=row['near_keys'], ciphertext_only=row['ciphertext_only'],
                **{thief: row[thief] for thief in ('weights_only', 'unlabelled_images') if row.get(thief)},
                attacks={attack: {k: dict(mIoU=v, draws=row.get('attack_draws', {}).get(attack, {}).get(k, [v]))
                                  for k, v in by_k.items()} for attack, by_k in row['attacks'].items()},
                minutes=row.get('minutes', 0.0))
            for result in self.state['variants'][row['variant']].get('unlabelled_images', []):
                result.setdefault('measured', measured)
        self.save()

    def baseline(self, seeds: Optional[Sequence[int]] = None) -> Dict:
        """The unprotected baseline's mIoU per seed."""
        row = self.state.setdefault('baseline', {})
        config = CONFIG_DIR / f'{BASELINE}.py'
        for seed in seeds or self.seeds:
            value = self._authorized(row, config, BASELINE, seed, None, checkpoint_needed=False)
            self.log(f'baseline, seed {seed}: mIoU {value:.2f}')
        row['mean'] = float(np.mean(list(row['runs'].values())))
        self.save()
        return row

    # ------------------------------------------------------------ one variant
    def measure(self, variant: Variant, seeds: Optional[Sequence[int]] = None) -> Dict:
        """Train (or reuse) and measure one variant on the first seed, and its authorized mIoU on ``seeds``."""
        row = self.state['variants'].setdefault(variant.name, dict(
            method=variant.method, block_size=variant.block_size, key_contrastive=variant.key_contrastive,
            negatives=variant.negatives))
        config = variant_config(variant, self.work_dir, self.iterations)
        started = time.time()
        for seed in seeds or self.seeds[:1]:
            value = self._authorized(row, config, variant.stem, seed, self.key_file,
                                     checkpoint_needed=seed == self.seeds[0])
            self.log(f'{variant.name}, seed {seed}: authorized mIoU {value:.2f}')
        if seeds is None or self.seeds[0] in seeds:
            self._report(row, variant, config, run_dir(self.work_dir, variant.stem, self.seeds[0]) /
                         f'iter_{self.iterations}.pth')
        row['mean'] = float(np.mean(list(row['runs'].values())))
        row['minutes'] = row.get('minutes', 0.0) + (time.time() - started) / 60
        row.update(self.best_attack(row))
        self.save()
        return row

    def _report(self, row: Dict, variant: Variant, config: Path, checkpoint: Path) -> None:
        evaluation = None

        def loaded() -> ProtectionEvaluation:
            nonlocal evaluation
            if evaluation is None:
                evaluation = ProtectionEvaluation(str(config), str(checkpoint), self.key_file, seed=self.seeds[0],
                                                  cfg_options={'test_dataloader.dataset.data_root': str(self.data_root),
                                                               'train_dataloader.dataset.data_root':
                                                                   str(self.data_root)})
            return evaluation

        if 'plain' not in row:
            row['plain'] = loaded().miou(None)
            self.save()
        if 'wrong_keys' not in row and self.num_wrong_keys:
            summary = loaded().wrong_keys(self.num_wrong_keys, log=self.log)['summary']
            row['wrong_keys'] = {k: summary[k] for k in ('count', 'mean', 'p95', 'max')}
            self.save()
        if 'near_keys' not in row:
            row['near_keys'] = loaded().near_keys()
            self.save()
        if 'ciphertext_only' not in row:
            result = loaded().ciphertext_only()
            row['ciphertext_only'] = {k: result[k] for k in ('mIoU', 'agreement', 'encrypted_images', 'note', 'seconds')
                                      if k in result}
            self.save()
        # A result from another search budget (or the earlier shuffle-only attack, with no search) is measured again.
        if ((row.get('weights_only') or {}).get('search') or {}).get('budget') != self.weights_search_budget:
            row['weights_only'] = loaded().weights_only(search_budget=self.weights_search_budget, log=self.log)
            self.save()
        wanted = [dict(images=n, budget=self.climb_budget, relaxed_steps=self.relaxed_steps,
                       draws=self.unlabelled_draws) for n in self.unlabelled_counts]
        measured = [dict({k: r[k] for k in ('images', 'budget', 'relaxed_steps')}, draws=len(r.get('draws') or [0]))
                    for r in row.get('unlabelled_images', [])]
        if measured != wanted:
            # The thief steals what tools/publish_model.py publishes: the statistics folded into the weights.
            # Rows of one results file can be measured on several days and machines: each says its own.
            when_and_where = dict(date=time.strftime('%Y-%m-%d'), machine=machine())
            row['unlabelled_images'] = [
                dict({k: r[k] for k in ('images', 'budget', 'relaxed_steps', 'oracle', 'chosen', 'mIoU', 'draws',
                                        'agreement', 'evaluations', 'seconds', 'candidates')}, measured=when_and_where)
                for r in loaded().as_published().unlabelled_images(
                    self.unlabelled_counts, self.climb_budget, self.relaxed_steps,
                    str(public_weights(self.work_dir, self.iterations)) if 'public' in variant.model_options else None,
                    self.unlabelled_draws, self.log)]
            self.save()
        plan = [(attack, self.fine_tune_sizes if attack == 'fine_tune' else self.attack_sizes)
                for attack in attacks_for(variant.method) if attack != 'scratch']
        for attack, sizes in plan:
            for k in sizes:
                by_k = row.setdefault('attacks', {}).setdefault(attack, {})
                wanted = self.attack_draws if k == BEST_MAX_LABELLED else 1
                draws = attack_draws(by_k.get(str(k)))
                while len(draws) < wanted:
                    result = self._attack(loaded(), attack, k, variant.name, draw=len(draws))
                    draws.append(result['mIoU'])
                    by_k[str(k)] = dict(by_k.get(str(k)) or result, mIoU=float(np.mean(draws)), draws=list(draws))
                    self.save()
        for k in self.fine_tune_sizes:
            if str(k) not in self.state.setdefault('scratch', {}):
                self.state['scratch'][str(k)] = self._attack(loaded(), 'scratch', k, 'no key')
                self.save()

    def _attack(self, evaluation: ProtectionEvaluation, attack: str, k: int, name: str, draw: int = 0) -> Dict:
        # Fixed draws per (seed, k): a resumed study attacks with the same images.
        chosen = np.sort(np.random.default_rng([self.seeds[0], k] + ([draw] if draw else [])).choice(
            len(evaluation.train_data), min(k, len(evaluation.train_data)), replace=False))
        self.log(f'{name}: {attack} with k = {k}, {self.attack_iterations} iterations'
                 + (f', draw {draw + 1} of the labelled images' if draw else ''))
        result = train_attack(attack, evaluation.model, evaluation.cfg.model, evaluation.cfg.optim_wrapper,
                              evaluation.train_data.subset(chosen), evaluation.test_data, self.attack_iterations,
                              evaluation_points(self.attack_iterations), evaluation.cipher.block_size,
                              seed=self.seeds[0], log=self.log)
        # The attacker scores along training with its labelled images; the best point is what it keeps.
        best = max(value for _, value in result['curve'])
        self.log(f'{name}: {attack}, k = {k}: mIoU {best:.2f} (best along training)')
        return dict(mIoU=best, final=result['curve'][-1][1], seconds=result['seconds'])

    def training_cost(self, row: Dict) -> Optional[float]:
        """Training time relative to ordinary protected training (None: not measured)."""
        if row.get('key_contrastive') is None:
            return 1.0
        return self.training_costs.get(row.get('negatives') or 'all')

    @staticmethod
    def draw_spread(row: Dict, measure: str) -> float:
        """How far above its mean the highest draw of images went, for the attack that gave the row its
        ``measure`` (0 when another attack, with nothing to draw, gave it)."""
        results = [by_k.get(str(BEST_MAX_LABELLED)) for by_k in (row.get('attacks') or {}).values()]
        for result in results + list(row.get('unlabelled_images') or []):
            if result is not None and len(attack_draws(result)) > 1 and result['mIoU'] == row[measure]:
                return max(attack_draws(result)) - result['mIoU']
        return 0.0

    @staticmethod
    def best_attack(row: Dict) -> Dict:
        """The attacker's best with at most ``BEST_MAX_LABELLED`` labelled images, and which attack gave it;
        and the thief's best: the same without the intercepted images (ciphertext-only estimation)."""
        candidates = [('plain images', row.get('plain'))]
        if row.get('wrong_keys'):
            candidates.append(('best of the random wrong keys', row['wrong_keys']['max']))
        weights = row.get('weights_only') or {}
        candidates.append(('key read off the weights', weights.get('mIoU')))
        candidates.append(('key read off the weights, then searched', (weights.get('search') or {}).get('mIoU')))
        for result in row.get('unlabelled_images') or []:
            candidates.append((f'the weights and {result["images"]} unlabelled images', result['mIoU']))
        for attack, by_k in (row.get('attacks') or {}).items():
            for k, result in by_k.items():
                if int(k) <= BEST_MAX_LABELLED:
                    draws = len(attack_draws(result))
                    candidates.append((f'{attack}, k = {k}' + (f', mean of {draws} draws' if draws > 1 else ''),
                                       result['mIoU']))
        thief = max((value, name) for name, value in candidates if value is not None)
        intercepted = (row.get('ciphertext_only') or {}).get('mIoU')
        best = max(thief, (intercepted, 'ciphertext-only estimation')) if intercepted is not None else thief
        return dict(attackers_best=best[0], attackers_best_by=best[1], thiefs_best=thief[0], thiefs_best_by=thief[1])

    # ------------------------------------------------------------ the decision
    def decide(self) -> Dict:
        """Apply the rule: among variants whose mean over every seed is within ``ACCURACY_TOLERANCE`` of the
        baseline's (or above), the lowest attacker's best. Variants with fewer seeds than the study's are not
        eligible.

        When every eligible variant leaves the attacker within ``ACCURACY_TOLERANCE`` of its own key holder
        (ciphertext-only estimation recovering each key), the rule can only rank noise; the choice then
        falls to the lowest thief's best, the attacker without intercepted images.

        Variants whose key space is small enough to search (under ``2 ** ENUMERABLE_BITS`` keys, the
        product's own warning) are not eligible whatever the attacks here measured: whoever holds the model
        can try every key on a few labelled images, an attack this study does not run.
        """
        baseline = self.state['baseline']['mean']
        eligible, searchable = [], []
        for name, row in self.state['variants'].items():
            if not row.get('runs'):  # still training
                continue
            row['mean'] = float(np.mean(list(row['runs'].values())))
            row.update(self.best_attack(row))
            row['gap'] = row['mean'] - baseline
            row['seeds_measured'] = len(row['runs'])
            row['key_space_bits'] = math.log2(key_space(row['method'], row['block_size']))
            row['keeps_accuracy'] = row['seeds_measured'] >= len(self.seeds) and row['gap'] >= -ACCURACY_TOLERANCE
            if row['keeps_accuracy']:
                (eligible if row['key_space_bits'] >= ENUMERABLE_BITS else searchable).append(name)
        rows = self.state['variants']
        rule = (f'among variants whose {len(self.seeds)}-seed mean is within {ACCURACY_TOLERANCE:g} point of the '
                f'baseline\'s (or above) and whose key space has at least 2^{ENUMERABLE_BITS} keys, the one with '
                'the lowest attacker\'s best; of those within the spread of its deciding attack\'s draws of '
                'images, the cheapest to train')
        # Before every seed is in, the variants measured so far stand in for the eligible ones.
        pool = eligible or [n for n in rows if rows[n].get('runs')]
        recovered = bool(pool) and all(rows[n]['attackers_best'] >= rows[n]['mean'] - ACCURACY_TOLERANCE for n in pool)
        measure = 'thiefs_best' if recovered else 'attackers_best'
        eligible.sort(key=lambda n: rows[n][measure])
        lowest = eligible[0] if eligible else None
        margin = self.draw_spread(rows[lowest], measure) if lowest else 0.0
        tied = [n for n in eligible if rows[n][measure] <= rows[lowest][measure] + margin]
        # A row imported from a study without the thief with unlabelled images has a thief's best that this thief
        # can only raise: it cannot change the choice unless it stands among the tied ones.
        unmeasured = [n for n in eligible if self.unlabelled_counts and not rows[n].get('unlabelled_images')]
        open_rows = [n for n in unmeasured if n in tied]
        choice = min(tied, key=lambda n: (self.training_cost(rows[n]) is None, self.training_cost(rows[n]) or 0.0,
                                         rows[n][measure])) if tied else None
        self.state['decision'] = dict(
            rule=rule, choice=choice, lowest=lowest, eligible=eligible, searchable=searchable,
            ranked_by=measure, margin=margin, tied=tied, without_unlabelled_thief=unmeasured, open=open_rows,
            training_costs={n: self.training_cost(rows[n]) for n in tied},
            tie_break=(f'every eligible variant leaves the attacker within {ACCURACY_TOLERANCE:g} point of its key '
                       'holder, so the rule cannot separate them; the choice falls to the lowest thief\'s best '
                       '(the same attacks without intercepted images)') if recovered else None)
        return self.state['decision']


def attack_draws(result: Optional[Dict]) -> List[float]:
    """The mIoU of each draw of labelled images of one attack (a study measured before draws holds one)."""
    if result is None:
        return []
    return list(result.get('draws', [result['mIoU']]))


def run_frontier(study: FrontierStudy, variants: Sequence[Variant] = VARIANTS, candidate_margin: float = 2.0,
                 all_seeds: bool = False, num_train: int = 400, num_val: int = 100) -> Dict:
    """Measure every variant on the first seed, then train the other seeds where the rule needs them.

    The rule picks the lowest attacker's best (or thief's best, see
    :meth:`FrontierStudy.decide`) among variants that keep accuracy over
    every seed. So the other seeds are trained in that order (over every
    variant the study holds) until no variant ranked ahead of the current
    choice lacks them; the rest cannot change the choice and are skipped
    unless ``all_seeds``. A variant whose first seed is more than
    ``candidate_margin`` points below the baseline's mean cannot meet the
    tolerance unless its seeds spread far wider than measured, and is skipped
    too (``all_seeds`` trains it all the same). Skipped variants stay marked
    as measured with one seed. Eligible rows imported without the thief with
    unlabelled images are then measured with it: first those that could
    still be chosen (:meth:`FrontierStudy.decide`'s ``open``), then the rest,
    lowest first, so that every eligible row carries every thief.
    """
    generate_shapes(study.data_root, num_train, num_val)
    baseline = study.baseline()['mean']
    for variant in variants:
        study.log(f'{variant.name}: measuring')
        study.measure(variant)
    rows = study.state['variants']
    while True:
        decision = study.decide()
        ranking, choice = decision['ranked_by'], decision['choice']
        pending = []
        for name in sorted((n for n in rows if ranking in rows[n]), key=lambda n: rows[n][ranking]):
            first = rows[name]['runs'][str(study.seeds[0])]
            if len(rows[name]['runs']) >= len(study.seeds) or (not all_seeds and first < baseline - candidate_margin):
                continue
            if all_seeds or choice is None or rows[name][ranking] < rows[choice][ranking]:
                pending.append(name)
        if pending:
            study.measure(parse_variant(pending[0]), study.seeds[1:])
        elif decision['without_unlabelled_thief']:
            name = (decision['open'] or decision['without_unlabelled_thief'])[0]
            study.log(f'{name}: measured before the thief with unlabelled images'
                      + (' and could still be chosen' if decision['open'] else '') + ': measuring it with that thief')
            study.measure(parse_variant(name))
        else:
            break
    decision = study.decide()
    study.save()
    return decision


def frontier_rows(state: Dict) -> List[Dict]:
    """One row per variant, in the JSON layout of the results file."""
    rows = []
    for name, row in state['variants'].items():
        if not row.get('runs'):
            continue
        rows.append(dict(
            variant=name, method=row['method'], block_size=row['block_size'], key_contrastive=row['key_contrastive'],
            negatives=row.get('negatives', ''),
            authorized=row['runs'], authorized_mean=row['mean'], baseline=state['baseline']['runs'],
            gap=row.get('gap'), plain=row.get('plain'), wrong_keys=row.get('wrong_keys'),
            near_keys=row.get('near_keys'), ciphertext_only=row.get('ciphertext_only'),
            weights_only=row.get('weights_only'), unlabelled_images=row.get('unlabelled_images'),
            key_space_bits=row.get('key_space_bits'),
            thiefs_best=row.get('thiefs_best'),
            thiefs_best_by=row.get('thiefs_best_by'),
            attacks={attack: {k: v['mIoU'] for k, v in by_k.items()}
                     for attack, by_k in row.get('attacks', {}).items()},
            attack_draws={attack: {k: attack_draws(v) for k, v in by_k.items()}
                          for attack, by_k in row.get('attacks', {}).items()},
            attackers_best=row.get('attackers_best'), attackers_best_by=row.get('attackers_best_by'),
            keeps_accuracy=row.get('keeps_accuracy'), minutes=row.get('minutes')))
    return rows


def _label_points(axis, points: List) -> None:
    """Label ``(x, y, text)`` points, moving a label down (with a leader line) until it clears the labels placed."""
    axis.figure.canvas.draw()  # fixes the limits, so data positions map to display points
    placed = []  # (left, right, bottom) of each label, in points; 7-point text is about 4 points a character
    for x, y, text in sorted(points, key=lambda point: (-point[1], point[0])):
        anchor_x, anchor_y = axis.transData.transform((x, y)) * 72 / axis.figure.dpi
        left, right, drop = anchor_x + 5, anchor_x + 5 + 4 * len(text), 0

        def clashes(bottom):
            return any(left < other_right and other_left < right and abs(bottom - other_bottom) < 9
                       for other_left, other_right, other_bottom in placed)

        while clashes(anchor_y + 4 - drop):
            drop += 9
        placed.append((left, right, anchor_y + 4 - drop))
        axis.annotate(text, (x, y), textcoords='offset points', xytext=(5, 4 - drop), fontsize=7,
                      arrowprops=dict(arrowstyle='-', color='0.6', linewidth=0.5) if drop else None)


def write_figure(rows: List[Dict], baseline: float, path: Path, choice: Optional[str] = None) -> Path:
    """Key holder's mIoU (mean over seeds) against the attacker's best and against the thief's best,
    one labelled point per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    measured = [row for row in rows if row['attackers_best'] is not None]
    top = max([baseline] + [row['authorized_mean'] for row in measured]) + 2
    for axis, key, label in ((axes[0], 'attackers_best', f"attacker's best (≤ {BEST_MAX_LABELLED} labelled images, "
                              '100 intercepted)'),
                             (axes[1], 'thiefs_best', f"thief's best (≤ {BEST_MAX_LABELLED} labelled images, "
                              'no intercepted images)')):
        axis.axhspan(baseline - ACCURACY_TOLERANCE, top, color='tab:green', alpha=0.08,
                     label=f'within {ACCURACY_TOLERANCE:g} point of the baseline or above')
        axis.axhline(baseline, color='black', linestyle='--', linewidth=1, label=f'unprotected baseline {baseline:.1f}')
        for row in measured:
            chosen = row['variant'] == choice
            axis.scatter(row[key], row['authorized_mean'], marker='o' if len(row['authorized']) > 1 else 'x',
                         s=70 if chosen else 35, color='tab:red' if chosen else 'tab:blue', zorder=3)
        axis.set(xlabel=f'{label} mIoU', ylim=(None, top))
        _label_points(axis, [(row[key], row['authorized_mean'], row['variant'] + (' (default)' if
                                                                                   row['variant'] == choice else ''))
                             for row in measured])
        axis.legend(fontsize=7, loc='lower right')
    axes[0].set_ylabel('key holder mIoU (mean over seeds)')
    figure.suptitle('Protection frontier (o: every seed measured, x: one seed)')
    return save_figure(figure, path)
