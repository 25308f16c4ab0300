"""The device check, as a user runs it, on the CPU at tiny sizes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_check_device_quick_on_the_cpu(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/check_device.py', '--device', 'cpu', '--quick', '--method', 'np',
         '--block-size', '4', '--rounds', '2', '--iterations', '1', '--models', 'PSPNet-R50', 'DeepLabV3+-R50',
         'SegFormer-B0', '--results-file', str(tmp_path / 'device.json')],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '## On-device encryption equals the pipeline path' in result.stdout
    report = json.loads((tmp_path / 'device.json').read_text())
    assert report['all_identical'] and report['machine']['gpu'] is None
    identity = {(row['method'], row['block_size']) for row in report['identity']}
    assert {('shuffle+np+ffx', 16), ('ffx8', 2), ('np', 8)} <= identity and len(identity) == 32
    assert all(row['identical'] is True for row in report['identity'])
    timings = {(row['model'], row['mode']): row for row in report['iterations_table']}
    assert len(timings) == 12 and all(row['seconds'] > 0 for row in timings.values())
    assert timings['SegFormer-B0', 'unprotected']['ratio'] == 1.0
    for (model, mode), row in timings.items():  # ratios are to the same model's unprotected run
        assert row['ratio'] == pytest.approx(row['seconds'] / timings[model, 'unprotected']['seconds'], rel=1e-6)
    # The benchmarks page renders such a file (and says "not measured yet" without one).
    from mmseg_keyprotect_experiments.results_docs import device_check
    rendered = device_check(report)
    assert 'check_device.py --device cpu --quick' in rendered and '| SegFormer-B0 | 64x64 | 2 | device |' in rendered
    assert device_check(None).startswith('Not measured yet on a GPU')
