import json

from mmseg_keyprotect.zoo import sha256_of
from mmseg_keyprotect_experiments.demo import headline_table, run_demo


def test_demo_end_to_end_on_a_tiny_budget(tmp_path, key_file):
    """The main job's code path: data, two trainings, the three people's results, figures, report, zoo."""
    report = run_demo(work_dir=str(tmp_path / 'work'), data_root=str(tmp_path / 'shapes'), key_file=key_file,
                      iterations=2, num_wrong_keys=2, attack_images=2, attack_iterations=2, num_figures=1,
                      num_train=8, num_val=4)
    protected = report['protected']
    assert protected['wrong_keys']['count'] == 2 and protected['adapter']['k'] == 2
    written = json.loads((tmp_path / 'work' / 'report.json').read_text())
    assert written['protected']['authorized'] == protected['authorized']
    assert written['machine']['cores'] and written['command'].startswith('python tools/demo.py')
    assert headline_table(written) == report['table']
    assert f'{protected["authorized"]:.2f}' in report['table'] and 'Finished in' in report['summary']
    assert len(report['figures']) == 1 and (tmp_path / 'work' / 'report.md').is_file()
    for entry in report['zoo']:
        assert sha256_of(entry['Weights']) == entry['Metadata']['SHA256']
        assert entry['Metadata']['SHA256'][:8] in entry['Weights']
