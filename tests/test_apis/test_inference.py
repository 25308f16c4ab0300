import numpy as np
import pytest
import torch
from mmseg.apis import init_model

from mmseg_keyprotect.apis import ProtectedInferencer
from mmseg_keyprotect.crypto.keys import load_key
from mmseg_keyprotect.errors import ConfigError, ImageFormatError, KeyFileError

BASELINE = 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
PROTECTED = 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """An untrained protected model saved as tools/train.py would (weights + key record)."""
    from mmseg_keyprotect.crypto.keys import write_random_key
    root = tmp_path_factory.mktemp('api')
    key = write_random_key(root / 'model.key')
    model = init_model(PROTECTED, None, device='cpu')
    record = dict(method='shuffle', block_size=4, fingerprint=key.cipher('shuffle', 4).fingerprint)
    torch.save(dict(state_dict=model.state_dict(), meta=dict(keyprotect=record)), root / 'model.pth')
    return dict(path=str(root / 'model.pth'), key=str(root / 'model.key'))


def test_predicts_on_the_original_pixels(checkpoint):
    inferencer = ProtectedInferencer(PROTECTED, checkpoint['path'], key_file=checkpoint['key'])
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    keyed, plain = inferencer([image, image]), inferencer(image, cipher='plain')
    assert keyed[0].pred_sem_seg.shape == (50, 70) and plain[0].pred_sem_seg.shape == (50, 70)
    other = load_key(checkpoint['key']).cipher('np', 4)
    assert inferencer(image, cipher=other)[0].pred_sem_seg.shape == (50, 70)


def test_wrong_key_and_unprotected_config_are_refused(checkpoint, other_key_file):
    with pytest.raises(KeyFileError, match='wrong key'):
        ProtectedInferencer(PROTECTED, checkpoint['path'], key_file=other_key_file)
    with pytest.raises(ConfigError, match='not a protected config'):
        ProtectedInferencer(BASELINE, checkpoint['path'], key_file=checkpoint['key'])


def test_encrypted_input_needs_whole_blocks(checkpoint):
    server = ProtectedInferencer(PROTECTED, checkpoint['path'], encrypted_input=True)
    assert server.cipher is None
    with pytest.raises(ImageFormatError, match='not a multiple of the block size 4'):
        server(np.zeros((10, 12, 3), np.uint8))
    assert server(np.zeros((64, 64, 3), np.int16))[0].pred_sem_seg.shape == (64, 64)
