"""Importing the plugin leaves stock pipelines and stock checkpoints as they were."""
import subprocess
import sys

import cv2
import numpy as np
import torch

SCRIPT = r'''
import hashlib, sys, pickle
if sys.argv[1] == 'with':
    import mmseg_keyprotect  # noqa: F401
from mmseg.utils import register_all_modules
register_all_modules(init_default_scope=True)
from mmcv.transforms import Compose
from mmengine.runner import CheckpointLoader
pipeline = Compose([dict(type='LoadImageFromFile'), dict(type='Resize', scale=(40, 30), keep_ratio=True),
                    dict(type='LoadAnnotations'), dict(type='PackSegInputs')])
packed = pipeline(dict(img_path=sys.argv[2], seg_map_path=sys.argv[3], reduce_zero_label=False, seg_fields=[]))
sample = packed['data_samples']
state = CheckpointLoader.load_checkpoint(sys.argv[4], map_location='cpu')
digest = hashlib.sha256()
digest.update(packed['inputs'].numpy().tobytes())
digest.update(sample.gt_sem_seg.data.numpy().tobytes())
digest.update(repr(sorted((k, str(v)) for k, v in sample.metainfo.items())).encode())
for name, tensor in sorted(state['state_dict'].items()):
    digest.update(name.encode() + tensor.numpy().tobytes())
print(digest.hexdigest(), sorted(sample.metainfo))
'''


def test_stock_pipelines_and_checkpoints_are_unchanged_by_the_import(tmp_path):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'image.png'), rng.integers(0, 256, (45, 61, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / 'label.png'), rng.integers(0, 5, (45, 61), dtype=np.uint8))
    torch.save(dict(state_dict={'backbone.weight': torch.randn(4, 3), 'head.bias': torch.randn(4)},
                    meta=dict(epoch=1)), tmp_path / 'stock.pth')
    outputs = []
    for mode in ('without', 'with'):
        result = subprocess.run([sys.executable, '-c', SCRIPT, mode, str(tmp_path / 'image.png'),
                                 str(tmp_path / 'label.png'), str(tmp_path / 'stock.pth')],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1]
    assert 'padding_size' not in outputs[1]
