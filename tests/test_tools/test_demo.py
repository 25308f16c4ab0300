import json
import subprocess
import sys
from pathlib import Path

from mmseg_keyprotect.zoo import sha256_of
from mmseg_keyprotect_experiments.demo import headline_table

REPO = Path(__file__).resolve().parents[2]


def test_demo_end_to_end_on_a_tiny_budget(tmp_path, key_file):
    """The main job, through its command line with every flag: data, two trainings, what the key holder, a
    stranger and both thieves get, figures, report, zoo."""
    result = subprocess.run(
        [sys.executable, 'tools/demo.py', '--work-dir', str(tmp_path / 'work'), '--data-root', str(tmp_path / 'shapes'),
         '--key-file', key_file, '--iterations', '2', '--method', 'np', '--block-size', '4', '--key-contrastive', '0.1',
         '--negatives', 'all',
         '--num-wrong-keys', '2', '--attack-images', '2', '--attack-iterations', '2', '--attack-draws', '2',
         '--weights-search-budget', '20', '--unlabelled-images', '4', '--climb-budget', '10', '--relaxed-steps', '2',
         '--unlabelled-draws', '2', '--num-figures', '1', '--num-train', '8', '--num-val', '4', '--results-file',
         str(tmp_path / 'demo.json')],
        cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((tmp_path / 'demo.json').read_text())
    protected = written['protected']
    assert protected['wrong_keys']['count'] == 2 and protected['adapter']['k'] == 2
    assert len(protected['adapter']['draws']) == 2 and protected['adapter']['draws'][0] == \
        protected['adapter']['curve'][-1][1]
    assert protected['method'] == 'np' and protected['key_contrastive'] == 0.1
    assert 0 <= protected['weights_only']['agreement']['flips'] <= 1
    thief = protected['unlabelled_images']
    assert thief['images'] == 4 and thief['budget'] == 10 and thief['relaxed_steps'] == 2
    assert len(thief['draws']) == 2 and thief['mIoU'] == sum(thief['draws']) / 2
    assert 'thief with the weights and 4 unlabelled images' in headline_table(written)
    assert written['machine']['cores'] and written['command'].startswith('python tools/demo.py')
    table = headline_table(written)
    assert table in result.stdout and 'thief with the weights, no data' in table
    assert 'mean of 2 draws of the images' in table and 'on average over 2 draws' in result.stdout
    assert f'{protected["authorized"]:.2f}' in table and 'Finished in' in result.stdout
    assert len(written['figures']) == 1 and (tmp_path / 'work' / 'report.md').is_file()
    for entry in written['zoo']:
        assert sha256_of(entry['Weights']) == entry['Metadata']['SHA256']
        assert entry['Metadata']['SHA256'][:8] in entry['Weights']
    second = subprocess.run([sys.executable, 'tools/demo.py', '--work-dir', str(tmp_path / 'work'), '--data-root',
                             str(tmp_path / 'shapes'), '--key-file', key_file, '--iterations', '2',
                             '--no-key-contrastive', '--num-wrong-keys', '0', '--attack-images', '2',
                             '--attack-iterations', '2', '--weights-search-budget', '20', '--num-figures', '1',
                             '--num-train', '8', '--num-val', '4', '--unlabelled-images', '0'],
                            cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'key-contrastive training' not in second.stdout.split('| who, with what')[1].split('|')[0]
