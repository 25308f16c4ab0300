"""Every stock PSPNet, DeepLabV3+ and SegFormer config that mmseg 1.2.2 ships.

Converting all of them (protect_config, then the alignment check) is quick and
runs by default. Building each protected model and running one forward pass
on a small encrypted input on CPU takes minutes and is marked slow.
"""
from pathlib import Path

import mmseg
import numpy as np
import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS

from mmseg_keyprotect.config import check_config, protect_config
from mmseg_keyprotect.crypto import RunKey

FAMILIES = ('pspnet', 'deeplabv3plus', 'segformer')
STOCK_DIR = Path(mmseg.__file__).parent / '.mim' / 'configs'
STOCK = sorted(f'mmseg::{path.parent.name}/{path.name}' for family in FAMILIES
               for path in (STOCK_DIR / family).glob('*.py'))


def test_all_126_stock_configs_are_found():
    assert len(STOCK) == 126


def test_every_stock_config_converts_and_is_aligned():
    failures = {}
    for name in STOCK:
        cfg, _ = protect_config(name, 'shuffle', 4)
        problems = check_config(cfg)
        if problems:
            failures[name] = problems
    assert not failures


def _forward_once(name: str, key_file: str) -> tuple:
    cipher = RunKey.load(key_file).cipher('shuffle', 4)  # the run's key, which the data preprocessor takes
    cfg, _ = protect_config(name, 'shuffle', 4)
    model_cfg = cfg.model
    # No downloads: pretrained weights are not needed to prove the wiring.
    model_cfg.pretrained = None
    if model_cfg.get('backbone', {}).get('init_cfg'):
        model_cfg.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(model_cfg)).eval()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    encrypted = torch.from_numpy(cipher.encrypt(image, 'bgr')).permute(2, 0, 1)
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(ori_shape=(64, 64), img_shape=(64, 64), pad_shape=(64, 64),
                                         padding_size=(0, 0, 0, 0)))
    if model_cfg.test_cfg.get('mode') == 'slide':
        model.test_cfg.crop_size, model.test_cfg.stride = (32, 32), (24, 24)
    with torch.no_grad():
        [result] = model.test_step(dict(inputs=[encrypted], data_samples=[sample]))
    return tuple(result.pred_sem_seg.shape)


@pytest.mark.slow
@pytest.mark.parametrize('name', STOCK)
def test_every_stock_config_builds_and_runs_on_cpu(name, key_file):
    assert _forward_once(name, key_file) == (64, 64)


def test_one_config_per_family_builds_and_runs_on_cpu(key_file):
    """The default run builds and runs the smallest config of each family."""
    for name in ('mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
                 'mmseg::deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
                 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'):
        assert _forward_once(name, key_file) == (64, 64), name
