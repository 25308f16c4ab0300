"""The protection frontier: variants, the attacker's best, the decision rule, and a resumable run."""
import json

import pytest
import torch

from mmseg_keyprotect.config import load_config
from mmseg_keyprotect.errors import ConfigError
from mmseg_keyprotect_experiments.protection_frontier import (
    FrontierStudy,
    Variant,
    frontier_rows,
    parse_variant,
    run_frontier,
    variant_config,
    write_figure,
)


def test_variants_parse_and_name_themselves():
    assert parse_variant('shuffle+np:4') == Variant('shuffle+np', 4)
    assert parse_variant('shuffle:4+kc0.1') == Variant('shuffle', 4, 0.1)
    assert parse_variant('shuffle:4+kc0.1').name == 'shuffle:4+kc0.1'
    assert parse_variant('np+ffx:8').stem.endswith('_np-ffx-m8')
    cheaper = parse_variant('shuffle+np:4+kc0.1/share0.25+running')
    assert cheaper == Variant('shuffle+np', 4, 0.1, 'share0.25+running')
    assert cheaper.name == 'shuffle+np:4+kc0.1/share0.25+running'
    assert cheaper.stem.endswith('_shuffle-np-m4-kc0.1-share0.25-running')
    for bad in ('shuffle', 'shuffle:x', 'shuffle:4+kcx', 'shuffle:4/share0.25'):
        with pytest.raises(ConfigError, match='METHOD:M'):
            parse_variant(bad)
    with pytest.raises(ConfigError, match="negatives 'half'"):
        parse_variant('shuffle:4+kc0.1/half')
    public = parse_variant('shuffle+np:4+kc0.1/share0.25+close@gn+public')
    assert public.name == 'shuffle+np:4+kc0.1/share0.25+close@gn+public' and public.model_options == ('gn', 'public')
    assert public.stem.endswith('_shuffle-np-m4-kc0.1-share0.25-close-gn-public')
    with pytest.raises(ConfigError, match="unknown model option 'bn'"):
        parse_variant('shuffle:4@bn')


def test_key_contrastive_variants_get_their_config(tmp_path):
    cfg = load_config(str(variant_config(Variant('np', 4, 0.3), tmp_path)))
    assert cfg.model.type == 'KeyContrastiveEncoderDecoder' and cfg.model.negative_weight == 0.3
    cfg = load_config(str(variant_config(parse_variant('np:4+kc0.1/interval4+running'), tmp_path)))
    assert cfg.model.negative_statistics == 'running' and cfg.model.data_preprocessor.negative_interval == 4
    cfg = load_config(str(variant_config(parse_variant('np:4+kc0.1/close@gn+public'), tmp_path)))
    assert cfg.model.data_preprocessor.negatives['close_key'] == 0.25
    assert cfg.model.decode_head.norm_cfg.type == 'GN'
    assert cfg.load_from.endswith('baseline/iter_1000.pth')


def test_the_affine_option_starts_from_random_batch_norm_scales_and_shifts(tmp_path):
    cfg = load_config(str(variant_config(parse_variant('shuffle+np:4+kc0.1/share0.25@affine'), tmp_path)))
    state = torch.load(cfg.load_from)['state_dict']
    weights = torch.cat([v for k, v in state.items() if k.endswith('bn.weight')])
    biases = torch.cat([v for k, v in state.items() if k.endswith('bn.bias')])
    assert weights.min() >= 0.5 and weights.max() <= 2 and weights.std() > 0.2
    assert biases.abs().max() <= 1 and biases.std() > 0.3
    # Reused, not drawn again: a second config of the variant starts from the same weights.
    again = load_config(str(variant_config(parse_variant('shuffle+np:4+kc0.1/share0.25@affine'), tmp_path)))
    assert again.load_from == cfg.load_from


def test_the_thief_with_unlabelled_images_counts_among_the_thieves():
    row = dict(plain=20.0, ciphertext_only=dict(mIoU=None), attacks=dict(adapter={'10': dict(mIoU=50.0)}),
               unlabelled_images=[dict(images=8, mIoU=44.0), dict(images=32, mIoU=61.0)])
    best = FrontierStudy.best_attack(row)
    assert best['thiefs_best'] == 61.0 and best['thiefs_best_by'] == 'the weights and 32 unlabelled images'


def test_attackers_best_leaves_out_more_labelled_images_than_allowed():
    row = dict(plain=20.0, wrong_keys=dict(max=35.0), ciphertext_only=dict(mIoU=None),
               attacks=dict(adapter={'1': dict(mIoU=30.0), '10': dict(mIoU=50.0), '40': dict(mIoU=80.0)}))
    assert FrontierStudy.best_attack(row) == dict(attackers_best=50.0, attackers_best_by='adapter, k = 10',
                                                  thiefs_best=50.0, thiefs_best_by='adapter, k = 10')
    row['ciphertext_only'] = dict(mIoU=60.0)
    best = FrontierStudy.best_attack(row)
    assert best['attackers_best_by'] == 'ciphertext-only estimation' and best['thiefs_best'] == 50.0


def variant_row(seeds, attacker, thief, method='np', block_size=4):
    return dict(method=method, block_size=block_size, runs={str(i): v for i, v in enumerate(seeds)},
                mean=sum(seeds) / len(seeds), plain=10.0, ciphertext_only=dict(mIoU=attacker),
                attacks=dict(adapter={'10': dict(mIoU=thief)}))


def test_learning_attacks_at_the_deciding_k_are_averaged_over_draws(tmp_path, monkeypatch):
    """k = 10 decides the attacker's best: three draws of labelled images there, one elsewhere; a study measured
    with one draw keeps it as the first, and a resumed study measures nothing again."""
    from mmseg_keyprotect_experiments import protection_frontier as frontier
    monkeypatch.setattr(frontier, 'ProtectionEvaluation', lambda *args, **kwargs: None)
    calls = []

    def attack(self, evaluation, attack, k, name, draw=0):
        calls.append((attack, k, draw))
        return dict(mIoU=10.0 * (draw + 1) + k, final=0.0, seconds=1.0)

    monkeypatch.setattr(frontier.FrontierStudy, '_attack', attack)
    study = FrontierStudy(tmp_path, tmp_path, attack_sizes=(1, 10), fine_tune_sizes=(10,), attack_draws=3)
    study.state['scratch'] = {'10': dict(mIoU=5.0)}
    row = dict(plain=1.0, wrong_keys=dict(count=100, mean=1.0, p95=1.0, max=1.0), near_keys={}, ciphertext_only={},
               weights_only=dict(search=dict(budget=study.weights_search_budget)),
               unlabelled_images=[dict(images=n, budget=study.climb_budget, relaxed_steps=study.relaxed_steps, mIoU=1.0,
                                       draws=[1.0] * study.unlabelled_draws) for n in study.unlabelled_counts],
               attacks=dict(adapter={'10': dict(mIoU=20.0, final=19.0, seconds=2.0)}))
    for _ in range(2):
        study._report(row, Variant('shuffle', 4), tmp_path / 'config.py', tmp_path / 'model.pth')
    assert calls == [('adapter', 1, 0), ('adapter', 10, 1), ('adapter', 10, 2),
                     ('fine_tune', 10, 0), ('fine_tune', 10, 1), ('fine_tune', 10, 2)]
    assert row['attacks']['adapter']['10'] == dict(mIoU=30.0, draws=[20.0, 30.0, 40.0], final=19.0, seconds=2.0)
    assert row['attacks']['adapter']['1'] == dict(mIoU=11.0, draws=[11.0], final=0.0, seconds=1.0)
    assert FrontierStudy.best_attack(row)['thiefs_best_by'] == 'fine_tune, k = 10, mean of 3 draws'


def test_the_rule_wants_every_seed_and_the_accuracy_then_the_weakest_attacker(tmp_path):
    study = FrontierStudy(tmp_path, seeds=(0, 1))
    study.state = dict(baseline=dict(runs={'0': 80.0, '1': 82.0}, mean=81.0), variants=dict(
        strong_but_costly=variant_row([70.0, 70.0], 10.0, 10.0),
        one_seed=variant_row([85.0], 15.0, 15.0),
        kept=variant_row([80.5, 80.1], 40.0, 30.0),
        kept_weaker=variant_row([84.0, 84.0], 60.0, 20.0),
        searchable=variant_row([84.0, 84.0], 5.0, 5.0, 'np', 2)))
    decision = study.decide()
    assert decision['choice'] == 'kept' and decision['eligible'] == ['kept', 'kept_weaker']
    # NP at M = 2 has C(12, 6) = 924 keys: whoever holds the model tries them all.
    assert decision['searchable'] == ['searchable'] and 'at least 2^40 keys' in decision['rule']
    assert decision['ranked_by'] == 'attackers_best' and decision['tie_break'] is None
    study.save()
    assert json.loads((tmp_path / 'frontier.json').read_text())['decision']['choice'] == 'kept'


def test_when_intercepted_images_give_every_key_away_the_thief_decides(tmp_path):
    study = FrontierStudy(tmp_path, seeds=(0, 1))
    study.state = dict(baseline=dict(runs={'0': 80.0, '1': 82.0}, mean=81.0), variants=dict(
        lower_attacker=variant_row([81.0, 81.0], 80.5, 70.0),
        stronger_against_thieves=variant_row([84.0, 84.0], 84.0, 40.0)))
    decision = study.decide()
    assert decision['ranked_by'] == 'thiefs_best' and decision['choice'] == 'stronger_against_thieves'
    assert 'cannot separate' in decision['tie_break']


def test_of_variants_within_the_spread_of_the_lowest_the_cheapest_to_train_is_chosen(tmp_path):
    """The lowest thief's best comes from draws 48.8 to 55.0 (mean 52.0): a cheaper setting at 53.9 is not
    separated from it and wins on cost; one at 60.1 is, and does not."""
    from mmseg_keyprotect_experiments.results_docs import frontier_decision
    study = FrontierStudy(tmp_path, seeds=(0, 1), training_costs={'all': 1.9, 'share0.25': 1.27, 'interval4': 1.22})
    rows = dict(full=variant_row([85.0, 85.0], 85.0, 52.0), share=variant_row([85.0, 85.0], 85.0, 53.9),
                interval=variant_row([85.0, 85.0], 85.0, 60.1), ordinary=variant_row([86.0, 86.0], 86.0, 67.8))
    rows['full']['attacks']['adapter']['10']['draws'] = [52.2, 48.8, 55.0]
    for name, negatives in (('full', ''), ('share', 'share0.25'), ('interval', 'interval4')):
        rows[name].update(key_contrastive=0.1, negatives=negatives)
    study.state = dict(baseline=dict(runs={'0': 84.0, '1': 84.0}, mean=84.0), variants=rows)
    decision = study.decide()
    assert decision['lowest'] == 'full' and decision['margin'] == pytest.approx(3.0)
    assert decision['tied'] == ['full', 'share'] and decision['choice'] == 'share'
    assert decision['training_costs'] == {'full': 1.9, 'share': 1.27}
    report = dict(decision=decision, baseline=dict(mean=84.0), rows=[
        dict(variant=name, authorized={'0': 85.0, '1': 85.0}, authorized_mean=85.0, **FrontierStudy.best_attack(row))
        for name, row in rows.items()])
    assert 'full 1.90, share 1.27; the cheapest is chosen' in frontier_decision(report)
    study.training_costs = {}  # costs unknown: the lowest stands
    assert study.decide()['choice'] == 'full'


def test_rows_without_the_unlabelled_thief_are_open_only_where_they_could_be_chosen(tmp_path):
    """A row imported from a study without the thief with unlabelled images can only rise with it: it keeps the
    choice open while it is among the tied ones, and not once it stands above them."""
    from mmseg_keyprotect_experiments.results_docs import frontier_decision
    study = FrontierStudy(tmp_path, seeds=(0, 1), unlabelled_counts=(8,))
    rows = dict(measured=variant_row([85.0, 85.0], 85.0, 50.0), imported_low=variant_row([85.0, 85.0], 85.0, 48.0),
                imported_high=variant_row([85.0, 85.0], 85.0, 70.0))
    rows['measured']['unlabelled_images'] = [dict(images=8, mIoU=55.0, draws=[52.0, 55.0, 58.0])]
    study.state = dict(baseline=dict(runs={'0': 84.0, '1': 84.0}, mean=84.0), variants=rows)
    decision = study.decide()
    assert decision['without_unlabelled_thief'] == ['imported_low', 'imported_high']
    assert decision['open'] == ['imported_low'] and decision['choice'] == 'imported_low'

    def rendered(decision):
        return frontier_decision(dict(decision=decision, baseline=dict(mean=84.0), rows=[
            dict(variant=name, authorized={'0': 85.0, '1': 85.0}, authorized_mean=85.0,
                 **FrontierStudy.best_attack(row)) for name, row in rows.items()]))

    assert 'the choice is provisional' in rendered(decision)
    rows['imported_low']['unlabelled_images'] = [dict(images=8, mIoU=60.0, draws=[57.0, 60.0, 63.0])]
    decision = study.decide()
    # The measured row's 55 comes from draws up to 3 points above: the imported 70 cannot reach it.
    assert decision['choice'] == 'measured' and decision['margin'] == pytest.approx(3.0)
    assert decision['without_unlabelled_thief'] == ['imported_high'] and decision['open'] == []
    assert 'none of them can change the choice' in rendered(decision)


def test_every_eligible_row_is_measured_with_the_unlabelled_thief_open_rows_first(tmp_path, monkeypatch):
    """Rows that could still be chosen are measured with the thief first, then every other eligible row, lowest
    first; a row that does not keep accuracy is left as it is."""
    from mmseg_keyprotect_experiments import protection_frontier as frontier
    study = FrontierStudy(tmp_path, seeds=(0, 1), unlabelled_counts=(8,))
    rows = {'shuffle:4': variant_row([85.0, 85.0], 85.0, 70.0), 'np:4': variant_row([85.0, 85.0], 85.0, 48.0),
            'shuffle+np:4': variant_row([85.0, 85.0], 85.0, 50.0), 'np:8': variant_row([70.0, 70.0], 70.0, 30.0)}
    rows['shuffle+np:4']['unlabelled_images'] = [dict(images=8, mIoU=55.0, draws=[52.0, 55.0, 58.0])]
    study.state = dict(baseline=dict(runs={'0': 84.0, '1': 84.0}, mean=84.0), variants=rows)
    measured = []

    def measure(variant, seeds=None):
        measured.append(variant.name)
        rows[variant.name]['unlabelled_images'] = [dict(images=8, mIoU=60.0, draws=[60.0])]

    monkeypatch.setattr(frontier, 'generate_shapes', lambda *args: None)
    monkeypatch.setattr(study, 'baseline', lambda: study.state['baseline'])
    monkeypatch.setattr(study, 'measure', measure)
    decision = run_frontier(study, [])
    assert measured == ['np:4', 'shuffle:4']
    assert decision['without_unlabelled_thief'] == [] and decision['choice'] == 'shuffle+np:4'
    assert 'unlabelled_images' not in rows['np:8']


def test_imported_rows_keep_their_thieves_and_the_published_model_is_attacked(tmp_path, monkeypatch):
    """An imported row keeps its weights-only thief (nothing measured again); a row without the unlabelled thief
    has it measured on the model as published."""
    from mmseg_keyprotect_experiments import protection_frontier as frontier
    attacked = []

    class Evaluation:
        def __init__(self, *args, published=False, **kwargs):
            self.published = published

        def as_published(self):
            return Evaluation(published=True)

        def unlabelled_images(self, counts, *args):
            attacked.append(self.published)
            return [dict(images=n, budget=6, relaxed_steps=1, oracle='o', chosen='c', draws=[1.0], agreement={},
                         evaluations=6, seconds=1.0, candidates=[], mIoU=1.0) for n in counts]

    monkeypatch.setattr(frontier, 'ProtectionEvaluation', Evaluation)
    study = FrontierStudy(tmp_path, tmp_path, attack_sizes=(), fine_tune_sizes=(), unlabelled_counts=(8,),
                          climb_budget=6, relaxed_steps=1, unlabelled_draws=1)
    weights = dict(search=dict(budget=study.weights_search_budget, mIoU=40.0), mIoU=30.0)
    imported = [dict(variant=variant, method=variant[:-2], block_size=4, key_contrastive=None, authorized={'0': 85.0},
                     plain=9.0, wrong_keys=dict(count=1, mean=1.0, p95=1.0, max=1.0), near_keys={},
                     ciphertext_only={'mIoU': 85.0}, weights_only=weights, attacks={})
                for variant in ('shuffle:4', 'np:4')]
    imported[1]['unlabelled_images'] = [dict(images=8, mIoU=50.0)]
    study.import_results(dict(date='2026-01-02', machine=dict(cpu='c'), baseline=dict(runs={'0': 80.0}, mean=80.0),
                              rows=imported))
    row = study.state['variants']['shuffle:4']
    assert row['weights_only'] == weights and 'unlabelled_images' not in row
    # A thief measured by the imported study, which did not say where per result, ran where that study ran.
    assert study.state['variants']['np:4']['unlabelled_images'][0]['measured'] == dict(date='2026-01-02',
                                                                                       machine=dict(cpu='c'))
    study._report(row, Variant('shuffle', 4), tmp_path / 'config.py', tmp_path / 'model.pth')
    assert attacked == [True] and row['unlabelled_images'][0]['images'] == 8 and row['weights_only'] == weights


@pytest.mark.slow
def test_a_tiny_study_runs_resumes_and_draws(tmp_path, capsys):
    """Two training iterations, the smallest budget: every section is measured once and reused on resume."""
    settings = dict(iterations=2, seeds=(0,), num_wrong_keys=2, attack_sizes=(1,), fine_tune_sizes=(1,),
                    attack_iterations=2, weights_search_budget=20)
    study = FrontierStudy(tmp_path / 'work', tmp_path / 'data', **settings)
    decision = run_frontier(study, [Variant('shuffle', 4)], num_train=8, num_val=4)
    row = study.state['variants']['shuffle:4']
    assert set(row['attacks']) == {'adapter', 'fine_tune'} and set(study.state['scratch']) == {'1'}
    assert row['wrong_keys']['count'] == 2 and 'sources' in row['near_keys']
    assert row['attackers_best'] >= row['plain']
    assert decision['choice'] in (None, 'shuffle:4')
    again = FrontierStudy(tmp_path / 'work', tmp_path / 'data', **settings)
    capsys.readouterr()
    run_frontier(again, [Variant('shuffle', 4)], num_train=8, num_val=4)
    log = capsys.readouterr().out
    assert 'adapter with k' not in log and 'wrong keys' not in log  # everything was reused
    rows = frontier_rows(again.state)
    assert rows[0]['attacks']['adapter']['1'] == row['attacks']['adapter']['1']['mIoU']
    figure = write_figure(rows, again.state['baseline']['mean'], tmp_path / 'frontier.png', decision['choice'])
    assert figure.stat().st_size > 1000


@pytest.mark.slow
def test_the_study_command_line_with_every_flag(tmp_path):
    """The tiny study through its command line: measure, write the results, and start another work dir from them."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]

    def run(*args):
        result = subprocess.run([sys.executable, 'tools/analysis_tools/protection_frontier.py', *map(str, args)],
                                cwd=repo, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, result.stderr[-3000:]
        # Many runners in one process: nothing the user could act on is said about the reused visualizer.
        assert 'instance named of visualizer' not in result.stderr and 'The draw is False' not in result.stderr
        return result.stdout

    budget = ['--data-root', tmp_path / 'data', '--iterations', 2, '--seeds', 0, '--num-wrong-keys', 2,
              '--attack-sizes', 1, '--fine-tune-sizes', 1, '--attack-iterations', 2, '--weights-search-budget', 20,
              '--attack-draws', 2, '--unlabelled-images', 2, '--climb-budget', 6, '--relaxed-steps', 1,
              '--unlabelled-draws', 2]
    run('--work-dir', tmp_path / 'work', *budget, '--variants', 'shuffle:4', '--candidate-margin', 100, '--all-seeds',
        '--training-costs', repo / 'docs/en/results/training_cost_negatives.json')
    out = run('--work-dir', tmp_path / 'work', *budget, '--report-only', '--results-file', tmp_path / 'results.json')
    assert 'choice:' in out
    results = json.loads((tmp_path / 'results.json').read_text())
    assert [row['variant'] for row in results['rows']] == ['shuffle:4']
    assert 'search' in results['rows'][0]['weights_only']
    assert [t['images'] for t in results['rows'][0]['unlabelled_images']] == [2]
    assert len(results['rows'][0]['unlabelled_images'][0]['draws']) == 2 and results['unlabelled_draws'] == 2
    assert results['rows'][0]['unlabelled_images'][0]['measured']['machine'] == results['machine']
    again = run('--work-dir', tmp_path / 'imported', *budget, '--trimmed', '--report-only', '--from-results',
                tmp_path / 'results.json', '--results-file', tmp_path / 'again.json')
    assert 'shuffle:4' in again
    # The studies a file grew from are kept, latest first.
    again = json.loads((tmp_path / 'again.json').read_text())
    assert [study['command'] for study in again['earlier_studies']] == [results['command']]


def test_negatives_names_and_settings_go_both_ways():
    from mmseg_keyprotect_experiments.runs import negatives_name, parse_negatives
    for name in ('', 'share0.25', 'interval4', 'share0.5+interval2+running', 'running', 'share0.25+close'):
        assert negatives_name(parse_negatives(name)) == name
    assert parse_negatives('all') == parse_negatives('')
