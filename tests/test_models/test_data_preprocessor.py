"""On-device encryption gives the network exactly what the pipeline transform gives it."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmseg.registry import MODELS

from mmseg_keyprotect.apis import build_test_runner, build_train_runner
from mmseg_keyprotect.config import check_config, leaf_config_text, load_config, pipeline_encryption, protect_config
from mmseg_keyprotect.crypto import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.crypto.key_files import load_key
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.models import KeyProtectDataPreProcessor

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
NORMALISE = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                 seg_pad_val=255)


def packed(images, key_file, method, block_size, on_device):
    pipeline = Compose([dict(type='BlockwiseEncrypt', method=method, block_size=block_size, key_file=key_file,
                             on_device=on_device),
                        dict(type='PackSegInputs')])
    return [pipeline(dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2],
                          gt_seg_map=np.ones(image.shape[:2], np.uint8), seg_fields=['gt_seg_map']))
            for image in images]


@pytest.mark.parametrize('method,block_size', [('shuffle', 4), ('shuffle+np', 8), ('ffx+shuffle', 4)])
@pytest.mark.parametrize('training', [True, False])
def test_network_inputs_are_bit_identical_to_the_pipeline_transform(key_file, method, block_size, training):
    rng = np.random.default_rng(0)
    # Equal sizes (one batched call) and, in training, where batches are padded, mixed sizes (one call per
    # image), not all multiples of M.
    for shapes in [[(32, 40)] * 3] + ([[(32, 40), (30, 37), (16, 16)]] if training else []):
        images = [rng.integers(0, 256, shape + (3,), dtype=np.uint8) for shape in shapes]
        size = dict(size=(48, 48)) if training else {}
        reference = MODELS.build(dict(type='SegDataPreProcessor', **NORMALISE, **size))
        device = MODELS.build(dict(type='KeyProtectDataPreProcessor', method=method, block_size=block_size,
                                   key_file=key_file, **NORMALISE, **size))
        results = []
        for preprocessor, on_device in ((reference, False), (device, True)):
            items = packed(images, key_file, method, block_size, on_device)
            results.append(preprocessor(dict(inputs=[item['inputs'] for item in items],
                                             data_samples=[item['data_samples'] for item in items]), training))
        expected, got = results
        assert torch.equal(got['inputs'], expected['inputs'])
        for mine, theirs in zip(got['data_samples'], expected['data_samples']):
            assert torch.equal(mine.gt_sem_seg.data, theirs.gt_sem_seg.data)
            assert mine.padding_size == theirs.padding_size


def test_another_cipher_or_none_inside_the_context(key_file):
    device = KeyProtectDataPreProcessor(key_file=key_file, **NORMALISE)
    plain = MODELS.build(dict(type='SegDataPreProcessor', **NORMALISE))
    image = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 16, 16), dtype=np.uint8))
    wrong = SecretKey.generate().cipher('shuffle', 4)
    with device.encrypting_with(None):
        assert torch.equal(device(dict(inputs=[image]))['inputs'], plain(dict(inputs=[image]))['inputs'])
    with device.encrypting_with(wrong):
        encrypted = wrong.encrypt_tensor(image[None], 'bgr')[0]
        assert torch.equal(device(dict(inputs=[image]))['inputs'], plain(dict(inputs=[encrypted]))['inputs'])
    assert device._active is device.cipher
    assert device.cipher.fingerprint == load_key(key_file).cipher(DEFAULT_METHOD, DEFAULT_BLOCK_SIZE).fingerprint


def test_protect_config_on_device_is_consistent_and_checked():
    cfg, _ = protect_config(str(BASELINE), 'shuffle', 4, on_device=True, key_contrastive=False)
    assert cfg.model.data_preprocessor.type == 'KeyProtectDataPreProcessor'
    assert cfg.model.data_preprocessor.size == (128, 128)  # the stock settings stay
    assert all(p[-2].get('on_device') for p in [cfg.train_dataloader.dataset.pipeline,
                                                cfg.test_dataloader.dataset.pipeline])
    assert check_config(cfg) == []
    text = leaf_config_text(str(BASELINE), cfg, 'shuffle', 4, [])
    assert "type='KeyProtectDataPreProcessor'" in text and 'on_device=True' in text
    back = pipeline_encryption(cfg)
    assert back.model.data_preprocessor.type == 'SegDataPreProcessor' and check_config(back) == []


def test_who_encrypts_must_be_unambiguous():
    device, _ = protect_config(str(BASELINE), 'shuffle', 4, on_device=True, key_contrastive=False)
    pipeline, _ = protect_config(str(BASELINE), 'shuffle', 4, key_contrastive=False)
    twice = load_config(str(BASELINE))
    twice.merge_from_dict(dict(model=dict(data_preprocessor=device.model.data_preprocessor)))
    twice.train_dataloader = pipeline.train_dataloader
    twice.val_dataloader = twice.test_dataloader = pipeline.test_dataloader
    assert any('encrypted twice' in p for p in check_config(twice))
    never = pipeline_encryption(device)
    never.train_dataloader = device.train_dataloader
    assert any('leaves images plain' in p for p in check_config(never))
    other = protect_config(str(BASELINE), 'shuffle', 4, on_device=True, key_contrastive=False)[0]
    other.model.data_preprocessor.block_size = 8
    assert any('M = 8' in p for p in check_config(other))


def test_training_and_testing_with_the_device_path(tmp_path, key_file, shapes_root):
    """The hook scores plain images through the preprocessor; testing either way gives the same numbers."""
    device_cfg, _ = protect_config(str(BASELINE), 'shuffle', 4, on_device=True, num_wrong_keys=1, key_contrastive=False)
    device_config = tmp_path / 'device.py'
    device_cfg.dump(str(device_config))
    options = {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 2,
               'train_dataloader.batch_size': 2}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False,
                        f'{loader}.dataset.data_root': str(shapes_root)})
    build_train_runner(str(device_config), key_file, str(tmp_path / 'work'), cfg_options=options).train()
    checkpoint = str(tmp_path / 'work' / 'iter_2.pth')
    pipeline_config = tmp_path / 'pipeline.py'
    pipeline_encryption(load_config(str(device_config))).dump(str(pipeline_config))
    results = [build_test_runner(str(config), checkpoint, key_file, str(tmp_path / name), cfg_options=options).test()
               for name, config in (('device', device_config), ('pipeline', pipeline_config))]
    assert results[0]['mIoU'] == results[1]['mIoU']
    assert results[0]['plain/mIoU'] == results[1]['plain/mIoU']
