import numpy as np
import pytest
from mmcv.transforms import Compose
from mmseg.registry import TRANSFORMS

from mmseg_keyprotect.crypto import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD
from mmseg_keyprotect.crypto.key_files import load_key
from mmseg_keyprotect.errors import ImageFormatError, KeyFileError


def results_for(image, label=None):
    results = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2], seg_fields=[])
    if label is not None:
        results['gt_seg_map'] = label
        results['seg_fields'].append('gt_seg_map')
    return results


def test_encrypts_bgr_images_with_the_rgb_key(key_file):
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt', method='shuffle+np', block_size=4, key_file=key_file))
    rgb = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    out = transform(results_for(np.ascontiguousarray(rgb[..., ::-1])))
    expected = load_key(key_file).cipher('shuffle+np', 4).encrypt(rgb)
    assert np.array_equal(out['img'][..., ::-1], expected)
    assert out['padding_size'] == (0, 0, 0, 0) and out['img_shape'] == (16, 20)


def test_pads_image_and_label_to_whole_blocks(key_file):
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt', block_size=8, key_file=key_file))
    image = np.full((13, 21, 3), 7, np.uint8)
    label = np.ones((13, 21), np.uint8)
    out = transform(dict(results_for(image, label), ori_shape=(40, 60)))  # a training crop of a larger image
    assert out['img'].shape == (16, 24, 3) and out['gt_seg_map'].shape == (16, 24)
    assert out['padding_size'] == (0, 3, 0, 3) and out['pad_shape'] == (16, 24)
    assert (out['gt_seg_map'][13:] == 255).all() and (out['gt_seg_map'][:, 21:] == 255).all()
    decrypted = load_key(key_file).cipher(DEFAULT_METHOD, 8).decrypt(out['img'], 'bgr')  # the default method
    assert (decrypted[:13, :21] == 7).all() and not decrypted[13:].any()


def test_ffx_output_reaches_pack_seg_inputs_as_int16(key_file):
    pipeline = Compose([dict(type='BlockwiseEncrypt', method='ffx', key_file=key_file),
                        dict(type='PackSegInputs')])
    packed = pipeline(results_for(np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)))
    assert str(packed['inputs'].dtype) == 'torch.int16' and int(packed['inputs'].max()) > 255


def test_key_comes_from_the_environment(key_env):
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt'))
    assert transform.cipher.fingerprint == load_key(key_env).cipher(DEFAULT_METHOD, DEFAULT_BLOCK_SIZE).fingerprint


def test_repr_holds_nothing_derived_from_the_key(key_file):
    import json
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt', key_file=key_file))
    material = json.loads(open(key_file).read())['material']
    assert material not in repr(transform) and transform.cipher.fingerprint not in repr(transform)
    assert f"method='{DEFAULT_METHOD}', block_size={DEFAULT_BLOCK_SIZE}" in repr(transform)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv('KEYPROTECT_KEY_FILE', raising=False)
    with pytest.raises(KeyFileError, match='KEYPROTECT_KEY_FILE'):
        TRANSFORMS.build(dict(type='BlockwiseEncrypt'))


def test_bad_image_error_names_the_file(key_file):
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt', key_file=key_file))
    results = results_for(np.zeros((8, 8), np.uint8))
    results['img_path'] = 'some/gray.png'
    with pytest.raises(ImageFormatError, match='some/gray.png.*grayscale'):
        transform(results)


def test_labels_at_the_original_size_stay_unpadded(key_file):
    """Test pipelines load labels at the original size; mmseg scores predictions cropped back to it."""
    transform = TRANSFORMS.build(dict(type='BlockwiseEncrypt', block_size=8, key_file=key_file))
    out = transform(results_for(np.full((13, 21, 3), 7, np.uint8), np.ones((13, 21), np.uint8)))
    assert out['img'].shape == (16, 24, 3) and out['gt_seg_map'].shape == (13, 21)
    resized = dict(results_for(np.full((13, 21, 3), 7, np.uint8), np.ones((26, 42), np.uint8)), ori_shape=(26, 42))
    assert transform(resized)['gt_seg_map'].shape == (26, 42)
