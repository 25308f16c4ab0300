"""The benchmark and data command lines, every flag, at tiny sizes (the numbers of such runs mean nothing)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'


def run(*args):
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def test_generate_shapes_tool(tmp_path):
    run('tools/generate_shapes.py', '--root', tmp_path / 'shapes', '--num-train', 2, '--num-val', 1, '--size', 32,
        '--seed', 3)
    assert len(list((tmp_path / 'shapes' / 'img_dir' / 'train').iterdir())) == 2
    assert len(list((tmp_path / 'shapes' / 'ann_dir' / 'val').iterdir())) == 1


def test_cipher_and_checkpoint_benchmarks(tmp_path):
    run('tools/analysis_tools/benchmark_ciphers.py', '--size', 32, '--block-sizes', 4, '--methods', 'np', 'ffx8',
        '--repeats', 2, '--batch-size', 2, '--device', 'cpu', '--results-file', tmp_path / 'ciphers.json')
    ciphers = json.loads((tmp_path / 'ciphers.json').read_text())
    assert [(r['method'], r['block_size']) for r in ciphers['rows']] == [('np', 4), ('ffx8', 4)]
    run('tools/analysis_tools/benchmark_checkpoints.py', '--megabytes', 1, '--repeats', 1, '--results-file',
        tmp_path / 'checkpoints.json')
    assert json.loads((tmp_path / 'checkpoints.json').read_text())['command']


def test_training_benchmark_with_cheaper_negatives(tmp_path, key_file, shapes_root):
    run('tools/analysis_tools/benchmark_training.py', BASELINE, '--key-file', key_file, '--method', 'np',
        '--block-size', 4, '--iterations', 2, '--rounds', 2, '--on-device', '--key-contrastive', '0.1',
        '--negatives', 'share0.25', 'interval2+running', '--results-file', tmp_path / 'training.json',
        '--cfg-options', 'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', f'train_dataloader.dataset.data_root={shapes_root}')
    result = json.loads((tmp_path / 'training.json').read_text())
    assert set(result['negatives_ratios']) == {'share0.25', 'interval2+running'}
    assert all(len(values) == 2 for values in result['times'].values()) and len(result['times']) == 5


def test_training_benchmark_refuses_rounds_that_split_an_interval(key_file):
    """Rounds of 3 iterations with negatives every 2nd would hold 1 or 2 negative iterations: unequal rounds."""
    result = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark_training.py', str(BASELINE), '--key-file',
                             key_file, '--key-contrastive', '--negatives', 'interval2', '--iterations', '3'],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert "--iterations 3 with negatives 'interval2'" in result.stderr and 'multiple of 2' in result.stderr
