"""A regular (non-editable) install works from outside the checkout, and the code passes the lint."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data', 'build', '*.egg-info', '__pycache__', '*.pth')

CHECK_INSTALLED = r'''
import sys, warnings
warnings.filterwarnings('ignore')
import mmseg_keyprotect
from mmseg_keyprotect.config import load_config, plugin_config_dir, protect_config
from mmseg_keyprotect.zoo import config_path, load_entries
assert mmseg_keyprotect.__file__.startswith(sys.argv[1]), mmseg_keyprotect.__file__
configs = plugin_config_dir()
assert str(configs).startswith(sys.argv[1]) and configs.name == 'configs' and configs.parent.name == '.mim', configs
demo = load_config('mmseg_keyprotect::segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py')
assert demo.train_dataloader.dataset.pipeline[-2]['type'] == 'BlockwiseEncrypt'
entries = load_entries()
assert entries and all(load_config(config_path(e)) for e in entries)
cfg, notes = protect_config('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', 'shuffle', 4)
assert cfg.test_dataloader.dataset.pipeline[-2]['type'] == 'BlockwiseEncrypt'
print('installed package OK:', len(entries), 'zoo entries')
'''


def test_wheel_install_finds_its_configs_from_outside_the_checkout(tmp_path):
    source = tmp_path / 'source'
    shutil.copytree(REPO, source, ignore=IGNORED)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '-q', '-w',
                    str(tmp_path / 'wheel'), str(source)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / 'wheel').glob('mmseg_keyprotect-*.whl')
    # The product only: no experiments, and none of the tools that run them.
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [n for n in names if 'experiments' in n or n.endswith(('/demo.py', '/protection_frontier.py'))]
    assert any(n.endswith('.mim/tools/infer.py') for n in names)
    site = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run([sys.executable, '-c', CHECK_INSTALLED, str(site)], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'installed package OK' in result.stdout


def test_code_passes_the_lint():
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', str(REPO)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]


def test_installing_into_an_environment_with_the_stack_changes_none_of_it(tmp_path):
    """The GPU route: `pip install .` into an environment that already has torch, mmcv, mmengine and mmseg
    (this one, as `mim` would have made it) installs this package and nothing of the stack."""
    source = tmp_path / 'source'
    shutil.copytree(REPO, source, ignore=IGNORED)
    report = tmp_path / 'report.json'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-build-isolation', '--quiet',
                    '--report', str(report), str(source)], check=True, capture_output=True, timeout=600)
    import json
    planned = {item['metadata']['name'].lower() for item in json.loads(report.read_text())['install']}
    assert 'mmseg-keyprotect' in planned
    assert not planned & {'torch', 'mmcv', 'mmcv-lite', 'mmengine', 'mmsegmentation', 'numpy', 'opencv-python'}
