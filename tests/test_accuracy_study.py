import json

import pytest

from mmseg_keyprotect.accuracy_study import parse_variant, run_accuracy_study, variant_config, variant_stem
from mmseg_keyprotect.errors import ConfigError
from mmseg_keyprotect.protect import check_config, encrypt_settings, load_config


def test_study_on_a_tiny_budget(tmp_path, key_file):
    report = run_accuracy_study(str(tmp_path / 'work'), str(tmp_path / 'shapes'), key_file, iterations=2,
                                variants=[('shuffle', 4), ('shuffle', 16)], repeated=[('shuffle', 4)], seeds=(0, 1),
                                num_train=8, num_val=4)
    baseline, repeated, single = report['rows']
    assert (baseline['method'], len(baseline['runs'])) == ('none', 2)
    assert (repeated['block_size'], len(repeated['runs'])) == (4, 2)
    assert (single['block_size'], len(single['runs']), single['std']) == (16, 1, None)
    assert repeated['gap'] == pytest.approx(repeated['mean'] - baseline['mean'])
    assert all(0 <= run['mIoU'] <= 100 for row in report['rows'] for run in row['runs'].values())
    assert (tmp_path / 'work' / 'baseline_seed1' / 'iter_2.pth').is_file()
    written = json.loads((tmp_path / 'work' / 'accuracy_study.json').read_text())
    assert written['rows'][1]['runs']['1']['mIoU'] == repeated['runs'][1]['mIoU']
    assert (tmp_path / 'work' / 'accuracy_study.png').is_file()
    assert '| shuffle | 16 | 1 |' in report['table']


def test_variant_configs_come_from_the_baseline(tmp_path):
    written = variant_config('shuffle', 16, tmp_path)
    assert written.parent == tmp_path / 'configs' and written.stem == variant_stem('shuffle', 16)
    cfg = load_config(str(written))
    assert check_config(cfg) == [] and encrypt_settings(cfg)[0]['block_size'] == 16
    assert variant_config('shuffle', 4, tmp_path).parent.name == 'segformer'  # the committed one


def test_variants_are_parsed():
    assert parse_variant('shuffle+np:8') == ('shuffle+np', 8)
    with pytest.raises(ConfigError, match='METHOD:M'):
        parse_variant('shuffle')
