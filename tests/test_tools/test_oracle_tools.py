"""End to end, by value: the real tools run the key oracle (tests/key_oracle.py) as the protected model.

The oracle scores exactly 100 mIoU on images encrypted with the true key and far less on anything
else, so the logged metrics of training, testing, TTA and DDP say whether each condition really
used its cipher. The metrics are parsed from the tools' own log lines.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from key_oracle import MEAN, STD, expected_miou, write_oracle_dataset

from mmseg_keyprotect.crypto import load_key, write_random_key

REPO = Path(__file__).resolve().parents[2]
PROTECTED = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'
ORACLE_CONFIG = '''_base_ = [{protected!r}]
custom_imports = dict(imports=['mmseg_keyprotect', 'key_oracle'], allow_failed_imports=False)
model = dict(_delete_=True, type='KeyOracleSegmentor', key_file={key!r},
             data_preprocessor=dict(type='SegDataPreProcessor', mean={mean}, std={std}, bgr_to_rgb=True, pad_val=0,
                                    seg_pad_val=255, size=(128, 128)))
'''


def options(data_root, iterations=2):
    return ['--cfg-options', f'train_cfg.max_iters={iterations}', f'train_cfg.val_interval={iterations}',
            f'default_hooks.checkpoint.interval={iterations}', 'train_dataloader.batch_size=2',
            'custom_hooks.0.num_wrong_keys=3'] + [
        f'{split}_dataloader.{setting}' for split in ('train', 'val', 'test')
        for setting in ('num_workers=0', 'persistent_workers=False', f'dataset.data_root={data_root}')]


def run(command, root, env=None):
    result = subprocess.run([sys.executable, *map(str, command)], cwd=REPO, capture_output=True, text=True,
                            timeout=600, env={**os.environ, 'PYTHONPATH': str(REPO / 'tests'), **(env or {})})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def logged_metrics(output: str, mode: str) -> dict:
    """The metrics of the last ``Iter(val)``/``Iter(test)`` summary line of an MMEngine log."""
    [*_, line] = [line for line in output.splitlines() if f'Iter({mode})' in line and 'mIoU:' in line]
    return {name: float(value) for name, value in re.findall(r'(\S+): (-?\d+\.\d+)', line)}


@pytest.fixture(scope='module')
def oracle(tmp_path_factory):
    root = tmp_path_factory.mktemp('oracle_tools')
    key = root / 'model.key'
    write_random_key(key)
    data = write_oracle_dataset(root / 'data', num_train=4, num_val=4, size=128)
    config = root / 'oracle.py'
    config.write_text(ORACLE_CONFIG.format(protected=str(PROTECTED), key=str(key), mean=MEAN, std=STD))
    output = run(['tools/train.py', config, '--key-file', key, '--work-dir', root / 'work', *options(data)], root)
    truth = load_key(key).cipher('shuffle', 4)
    return dict(root=root, key=key, data=data, config=config, checkpoint=root / 'work' / 'iter_2.pth',
                log=output, plain=expected_miou(data, truth, None))


def test_training_logs_the_value_of_each_condition(oracle):
    metrics = logged_metrics(oracle['log'], 'val')
    assert metrics['mIoU'] == pytest.approx(100.0)
    assert metrics['plain/mIoU'] == pytest.approx(oracle['plain'], abs=0.006)
    assert metrics['wrong_key/mIoU_max'] < 50 and 0 < metrics['wrong_key/mIoU_mean'] <= metrics['wrong_key/mIoU_max']


def test_test_tool_and_tta_log_the_value_of_each_condition(oracle, tmp_path):
    for extra in ([], ['--tta']):
        output = run(['tools/test.py', oracle['config'], oracle['checkpoint'], '--key-file', oracle['key'],
                      '--work-dir', tmp_path, *extra, *options(oracle['data'])], tmp_path)
        metrics = logged_metrics(output, 'test')
        assert metrics['mIoU'] == pytest.approx(100.0), extra
        assert metrics['plain/mIoU'] < 50 and metrics['wrong_key/mIoU_max'] < 50, extra
        if not extra:  # with flips averaged the plain value is not the single-pass one, only far below
            assert metrics['plain/mIoU'] == pytest.approx(oracle['plain'], abs=0.006)


def test_ddp_on_cpu_logs_the_value_of_each_condition(oracle, tmp_path, free_port):
    """MMEngine's launcher with 2 gloo processes: the ranks share the data and the wrong keys."""
    output = run(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port}', 'tools/train.py',
                  oracle['config'], '--key-file', oracle['key'], '--work-dir', tmp_path, '--launcher', 'pytorch',
                  *options(oracle['data'])], tmp_path)
    assert (tmp_path / 'iter_2.pth').is_file()
    metrics = logged_metrics(output, 'val')
    assert metrics['mIoU'] == pytest.approx(100.0)
    assert metrics['plain/mIoU'] == pytest.approx(oracle['plain'], abs=0.006)
    assert metrics['wrong_key/mIoU_max'] < 50


def test_one_transform_line_predicts_on_the_original_pixels_with_mmseg_own_tools(tmp_path):
    """A stock-derived config plus only the BlockwiseEncrypt line, no hook, mmseg's shipped tools/test.py,
    images of 90x90 (padded to 92x92 blocks): predictions land on the original pixels, and equal those of
    the protect_config route."""
    import cv2
    import mmseg
    import numpy as np
    import torch
    from mmseg.registry import MODELS

    from mmseg_keyprotect.checkpoint import protection_record
    from mmseg_keyprotect.datasets import CLASSES, PALETTE
    key = tmp_path / 'model.key'
    truth = write_random_key(key).cipher('shuffle', 4)
    data = write_oracle_dataset(tmp_path / 'data', num_train=2, num_val=3, size=90)
    stock = tmp_path / 'stock.py'
    stock.write_text(ORACLE_CONFIG.format(protected=str(PROTECTED).replace('_shuffle-m4', ''), key=str(key),
                                          mean=MEAN, std=STD).replace("'mmseg_keyprotect', ", '') + '''
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(90, 90), keep_ratio=True),
                 dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
''')
    one_line = tmp_path / 'one_line.py'
    one_line.write_text('''_base_ = ['stock.py']
custom_imports = dict(imports=['mmseg_keyprotect', 'key_oracle'], allow_failed_imports=False)
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(90, 90), keep_ratio=True),
                 dict(type='LoadAnnotations'), dict(type='BlockwiseEncrypt', method='shuffle', block_size=4),
                 dict(type='PackSegInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
''')
    run(['tools/protect_config.py', stock, '--method', 'shuffle', '-o', tmp_path / 'leaf.py'], tmp_path)
    weights = tmp_path / 'oracle.pth'
    model = MODELS.build(dict(type='KeyOracleSegmentor', key_file=str(key)))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(keyprotect=protection_record('shuffle', truth),
                                                             dataset_meta=dict(classes=CLASSES, palette=PALETTE))),
               weights)
    mmseg_test = Path(mmseg.__file__).parent / '.mim' / 'tools' / 'test.py'
    predictions = {}
    for config in (one_line, tmp_path / 'leaf.py'):
        out = tmp_path / f'out_{config.stem}'
        output = run([mmseg_test, config, weights, '--work-dir', tmp_path / f'work_{config.stem}', '--out', out,
                      '--cfg-options', f'test_dataloader.dataset.data_root={data}', 'test_dataloader.num_workers=0',
                      'test_dataloader.persistent_workers=False'], tmp_path, env={'KEYPROTECT_KEY_FILE': str(key)})
        assert logged_metrics(output, 'test')['mIoU'] == pytest.approx(100.0), config.name
        predictions[config.stem] = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(out.glob('*.png'))]
    assert len(predictions['one_line']) == 3 and predictions['one_line'][0].shape == (90, 90)
    assert all(np.array_equal(a, b) for a, b in zip(predictions['one_line'], predictions['leaf']))
