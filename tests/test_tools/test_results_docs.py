"""Every table of numbers in the README and docs is what its results file renders."""
import json
import re
from pathlib import Path

import pytest

from mmseg_keyprotect_experiments.results_docs import RENDERERS, blocks, documents, render
from mmseg_keyprotect_experiments.results_docs import RESULTS_DIR as RELATIVE_RESULTS_DIR

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = documents(ROOT)
RESULTS_DIR = ROOT / RELATIVE_RESULTS_DIR


def test_every_results_block_matches_its_results_file():
    found = [(path, name, body) for path in DOCUMENTS for name, body in blocks(path)]
    assert {name for _, name, _ in found} >= {'demo-headline', 'demo-provenance'}
    for path, name, body in found:
        assert body == render(name, RESULTS_DIR), f'{path}: table {name} is stale (python tools/update_results_docs.py)'


@pytest.mark.parametrize('name', sorted({path.stem for results, _ in RENDERERS.values()
                                          for name in ([results] if isinstance(results, str) else results)
                                          for path in RESULTS_DIR.glob(f'{name}.json')}))
def test_results_files_say_how_they_were_measured(name):
    report = json.loads((RESULTS_DIR / f'{name}.json').read_text())
    assert report['command'].startswith('python tools/') and re.fullmatch(r'\d{4}-\d{2}-\d{2}', report['date'])
    assert report['machine']['cores'] >= 1 and report['machine']['cpu']


def test_markdown_numbers_sit_only_in_results_blocks():
    """Outside the generated blocks, the README and results page quote no mIoU figure of their own."""
    for path in [p for p in DOCUMENTS if p.name in ('README.md', 'results.md')]:
        text = re.sub(r'<!-- results:([\w-]+) -->.*?<!-- /results:\1 -->', '', path.read_text(), flags=re.S)
        tables = [line for line in text.splitlines() if line.startswith('|') and re.search(r'\d+\.\d\d', line)]
        assert not tables, f'{path}: table rows with numbers outside results blocks: {tables[:2]}'


def test_the_unlabelled_thief_headline_is_the_default_models():
    from mmseg_keyprotect_experiments.results_docs import unlabelled_thief, unlabelled_thief_headline
    thief = dict(images=8, mIoU=40.0, draws=[30.0, 40.0, 50.0], chosen='climbed', seconds=600.0, budget=10,
                 relaxed_steps=2, oracle='normalisation statistics')
    report = dict(config='configs/x_shuffle-np-m4-kc0.1.py', method='shuffle+np', block_size=4,
                  authorized_mIoU=80.0, plain_mIoU=10.0, test_images=100, command='python tools/evaluate_protection.py',
                  date='2026-12-04', machine=dict(cores=2, cpu='CPU', torch='2.13.0', gpu=None),
                  weights_only=dict(mIoU=20.0, search=dict(mIoU=30.0)), unlabelled_images=[thief])
    defence = dict(report, config='configs/x_shuffle-np-m4-kc0.1-gn.py')
    cheaper = dict(report, config='configs/x_shuffle-np-m4-kc0.1-share0.25.py')
    published = dict(report, unlabelled_images=[dict(thief, mIoU=20.0, draws=[20.0],
                                                     oracle='normalisation statistics, guessed from folded weights')])
    assert 'not measured yet' in unlabelled_thief_headline((None, [defence, cheaper, published]))
    headline = unlabelled_thief_headline((report, [defence]))
    assert '**40.00** with N = 8 (50% of the key holder\'s 80.00; 30.00 to 50.00 over 3 draws)' in headline
    assert 'publish' not in headline
    assert '**20.00** with N = 8 (25% of the key holder\'s 80.00; one draw)' in unlabelled_thief_headline(
        (None, [published, defence, report]))
    table = unlabelled_thief((report, [defence, published, cheaper]))
    assert '| shuffle+np, M = 4; negatives for 25% of each batch | 80.00 |' in table
    assert '| shuffle+np, M = 4; group norm in the head (no running statistics) | 80.00 | 10.00 | 30.00 |' in table
    assert '| shuffle+np, M = 4; as published: batch norm statistics folded into the weights | 80.00 |' in table
    assert '| normalisation statistics, guessed from folded weights | 10 | 2026-12-04, CPU |' in table
    assert unlabelled_thief((dict(report, unlabelled_images=[]), [])) == 'Not measured yet.'


def test_the_protection_report_table_carries_the_thief_with_unlabelled_images():
    from mmseg_keyprotect_experiments.results_docs import protection_report
    report = dict(authorized_mIoU=80.0, plain_mIoU=10.0, chance=dict(majority_class=9.0, class_frequency=8.0),
                  wrong_keys=dict(summary=dict(count=5, mean=11.0, p95=12.0, max=13.0)), near_keys={},
                  known_plaintext=[dict(pairs=1, agreement=dict(positions=1.0), mIoU=80.0)], ciphertext_only={},
                  checkpoint='x.pth', method='shuffle+np', block_size=4, test_images=10, minutes=3.0,
                  unlabelled_images=[dict(images=8, mIoU=40.0, draws=[30.0, 40.0, 50.0], budget=3600,
                                          oracle='normalisation statistics')])
    assert ('| the weights and 8 unlabelled images: key searched on the normalisation statistics (climbs of 3600 '
            'evaluations, mean of 3 draws of the images) | 40.00 (30.00 to 50.00) |') in protection_report(report)


def test_the_update_tool_checks_without_writing():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, 'tools/update_results_docs.py', '--check'], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cheaper_negatives_sit_beside_full_and_ordinary_training():
    """Each candidate row carries its measured cost; a setting the frontier has not measured says so."""
    from mmseg_keyprotect_experiments import results_docs

    def row(variant, negatives='', seeds=(80.0, 82.0), thief=50.0):
        return dict(variant=variant, negatives=negatives, authorized={str(i): v for i, v in enumerate(seeds)},
                    authorized_mean=sum(seeds) / len(seeds), plain=10.0, wrong_keys=dict(mean=12.0, max=20.0),
                    near_keys={'shuffle': [[0.5, 30.0], [0.9, 70.0]]}, attacks=dict(adapter={'10': 40.0}),
                    thiefs_best=thief, thiefs_best_by='adapter, k = 10')
    cost = dict(key_contrastive_ratio=1.9, negatives_ratios={'interval4': 1.22})
    report = dict(rows=[row('np:4'), row('np:4+kc0.1/interval4', 'interval4', thief=45.0),
                        row('np:4+kc0.1/share0.5', 'share0.5')])
    lines = results_docs.key_contrastive_negatives((report, cost)).splitlines()[2:]
    assert [line.split(' | ')[1:3] for line in lines] == [
        ['none (ordinary training)', '1.00'], ['every image, every iteration', '1.90'], ['interval4', '1.22'],
        ['share0.5', 'not measured yet']]
    assert lines[1].endswith('| not measured yet | | | | | |')  # the full setting's row is missing from the report
    assert '80.00, 82.00 (81.00) | 10.00 | 12.00 / 20.00 | 30.0 / 70.0 | 40.00 | 45.00 (adapter, k = 10) |' in lines[2]
