import json

import numpy as np
import pytest

from mmseg_keyprotect.config import check_config, encrypt_settings, load_config
from mmseg_keyprotect_experiments import accuracy_study as study
from mmseg_keyprotect_experiments.accuracy_study import run_accuracy_study
from mmseg_keyprotect_experiments.runs import Variant, variant_config


def test_study_runs_every_seed_and_reports_the_gap(tmp_path, key_file, monkeypatch):
    """Training and testing are the demo's (tested in test_demo.py); here they return known scores."""
    scores = {('baseline', 0): 50.0, ('baseline', 1): 54.0, ('shuffle-m4', 0): 51.0, ('shuffle-m4', 1): 55.0,
              ('shuffle-m16', 0): 40.0}
    trained = []

    def fake_train(config, directory, key, iterations, data_root, seed):
        trained.append((directory.name, key, seed))
        return directory / 'iter_2.pth'

    def fake_evaluate(config, checkpoint, directory, key, data_root, num_wrong_keys):
        name = 'baseline' if config.stem == study.BASELINE else config.stem.split('_')[-1]
        return {'mIoU': np.float32(scores[name, trained[-1][2]]), **({'plain/mIoU': 9.0} if key else {})}

    monkeypatch.setattr(study, 'train', fake_train)
    monkeypatch.setattr(study, 'evaluate', fake_evaluate)
    report = run_accuracy_study(str(tmp_path / 'work'), str(tmp_path / 'shapes'), key_file, iterations=2,
                                variants=[Variant('shuffle', 4), Variant('shuffle', 16)],
                                repeated=[Variant('shuffle', 4)], seeds=(0, 1), num_train=4, num_val=2)
    assert [(name.split('_')[-1], seed) for name, _, seed in trained] == [
        ('baseline', 0), ('seed1', 1), ('shuffle-m4', 0), ('seed1', 1), ('shuffle-m16', 0)]
    assert [key for _, key, _ in trained] == [None, None, key_file, key_file, key_file]
    baseline, repeated, single = report['rows']
    assert baseline['mean'] == 52.0 and baseline['std'] == pytest.approx(np.std([50, 54], ddof=1))
    assert repeated['gap'] == pytest.approx(1.0) and single['gap'] == pytest.approx(-12.0)
    assert single['std'] is None and single['runs'][0]['plain_mIoU'] == 9.0
    written = json.loads((tmp_path / 'work' / 'accuracy_study.json').read_text())
    assert written['rows'][1]['runs']['1']['mIoU'] == 55.0
    assert (tmp_path / 'work' / 'accuracy_study.png').is_file()
    assert '| shuffle | 4 | 2 | 51.00, 55.00 | 53.00 | 2.83 | +1.00 |' in report['table']


def test_variant_configs_come_from_the_baseline(tmp_path):
    written = variant_config(Variant('shuffle', 16), tmp_path)
    assert written.parent == tmp_path / 'configs' and written.stem == Variant('shuffle', 16).stem
    cfg = load_config(str(written))
    assert check_config(cfg) == [] and encrypt_settings(cfg)[0]['block_size'] == 16
    assert variant_config(Variant('shuffle', 4), tmp_path).parent.name == 'segformer'  # the committed one


@pytest.mark.slow
def test_the_study_command_line_with_every_flag(tmp_path, key_file):
    import subprocess
    import sys
    from pathlib import Path
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/accuracy_study.py', '--work-dir', str(tmp_path / 'work'), '--data-root',
         str(tmp_path / 'data'), '--key-file', key_file, '--iterations', '2', '--variants', 'shuffle:4', 'np:4',
         '--repeated', 'shuffle:4', '--seeds', '0', '1', '--results-file', str(tmp_path / 'study.json')],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / 'study.json').read_text())['rows']
    assert [(row['method'], len(row['runs'])) for row in rows] == [('none', 2), ('shuffle', 2), ('np', 1)]
