import json

from experiments.demo import run_demo
from mmseg_keyprotect.zoo import sha256_of


def test_demo_end_to_end_on_a_tiny_budget(tmp_path, key_file):
    """The main job's code path: data, two trainings, evaluation, figures, report, local zoo."""
    report = run_demo(work_dir=str(tmp_path / 'work'), data_root=str(tmp_path / 'shapes'), key_file=key_file,
                      iterations=2, num_wrong_keys=2, num_figures=1, num_train=8, num_val=4)
    baseline, protected = report['rows']
    assert 'plain/mIoU' not in baseline['metrics']
    for key in ('mIoU', 'plain/mIoU', 'wrong_key/mIoU_mean', 'wrong_key/mIoU_max'):
        assert 0 <= protected['metrics'][key] <= 100
    assert '| protected | shuffle | 4 |' in report['table']
    written = json.loads((tmp_path / 'work' / 'report.json').read_text())
    assert written['rows'][1]['metrics']['mIoU'] == protected['metrics']['mIoU']
    assert len(report['figures']) == 1 and (tmp_path / 'work' / 'report.md').is_file()
    for entry in report['zoo']:
        assert sha256_of(entry['Weights']) == entry['Metadata']['SHA256']
        assert entry['Metadata']['SHA256'][:8] in entry['Weights']
