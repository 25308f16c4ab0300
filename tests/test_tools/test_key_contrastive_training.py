"""Key-contrastive training through the real tools: one option to write the config, the extra loss in the log,
single process and MMEngine's DDP launcher on CPU."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'


def run(command):
    result = subprocess.run([sys.executable, *map(str, command)], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def options(data_root):
    return ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2',
            'custom_hooks.0.num_wrong_keys=1'] + [
        f'{split}_dataloader.{setting}' for split in ('train', 'val', 'test')
        for setting in ('num_workers=0', 'persistent_workers=False', f'dataset.data_root={data_root}')]


def contrastive_losses(output):
    return [float(v) for v in re.findall(r'loss_key_contrast: (\d+\.\d+)', output)]


@pytest.mark.parametrize('on_device', [False, True])
def test_train_tool_logs_the_key_contrastive_loss(tmp_path, key_file, shapes_root, on_device):
    """Also with the cheaper settings: negatives for half of each batch, seen with running statistics."""
    config = tmp_path / 'contrastive.py'
    run(['tools/protect_config.py', BASELINE, '--key-contrastive', '0.5', *(['--on-device'] if on_device else []),
         '--negative-share', '0.5', '--negative-interval', '1', '--negative-statistics', 'running', '-o', config])
    text = config.read_text()
    assert 'negative_weight=0.5' in text and 'negative_share=0.5' in text and "negative_statistics='running'" in text
    output = run(['tools/train.py', config, '--key-file', key_file, '--work-dir', tmp_path / 'work',
                  *options(shapes_root)])
    losses = contrastive_losses(output)
    assert len(losses) == 2 and all(value > 0 for value in losses), output[-2000:]
    # The key holder's evaluation is the usual one: tests run the stock segmentor's prediction.
    assert re.search(r'Iter\(val\).*mIoU: \d+\.\d+.*plain/mIoU', output)


def test_ddp_trains_key_contrastively(tmp_path, key_file, shapes_root, free_port):
    config = tmp_path / 'contrastive.py'
    run(['tools/protect_config.py', BASELINE, '--key-contrastive', '-o', config])
    output = run(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={free_port}', 'tools/train.py',
                  config, '--key-file', key_file, '--work-dir', tmp_path / 'work', '--launcher', 'pytorch',
                  *options(shapes_root)])
    assert 'Distributed training: True' in output and 'GPU number: 2' in output
    assert len(contrastive_losses(output)) == 2
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


def test_cheaper_negatives_need_key_contrastive_training(tmp_path):
    result = subprocess.run([sys.executable, 'tools/protect_config.py', str(BASELINE), '--no-key-contrastive',
                             '--negative-share', '0.25', '-o', str(tmp_path / 'x.py')], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0 and '--negative-share' in result.stderr and not (tmp_path / 'x.py').exists()
