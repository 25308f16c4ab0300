"""Alignment, proved end to end through mmseg's own inference code.

A spy segmentor decrypts whatever reaches its network (undoing the data
preprocessor's normalisation) and predicts, for every pixel, a class derived
from the decrypted plain value. If any stage misaligned the block grid (slide
windows, padding, flips, resizing after encryption), decryption would give
other pixels and the predicted map would not equal the one computed directly
from the plain image on the original pixels.
"""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import ConfigDict
from mmengine.dataset import pseudo_collate
from mmseg.models import EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS

from mmseg_keyprotect.crypto.key_files import load_key
from mmseg_keyprotect.errors import ImageFormatError

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
NUM_CLASSES = 8


@MODELS.register_module(force=True)
class DecryptingSpySegmentor(EncoderDecoder):
    """EncoderDecoder whose 'network' decrypts its input and checks it."""

    def __init__(self, key_file, method, block_size, data_preprocessor, test_cfg):
        BaseSegmentor.__init__(self, data_preprocessor=data_preprocessor)
        self.cipher = load_key(key_file).cipher(method, block_size)
        self.test_cfg = ConfigDict(test_cfg)
        self.align_corners = False
        self.out_channels = self.num_classes = NUM_CLASSES
        self.seen_shapes = []

    def encode_decode(self, inputs, batch_img_metas):
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        values = (inputs * std + mean).round()
        dtype = torch.uint8 if self.cipher.ffx_table is None else torch.int16
        plain = self.cipher.decrypt_tensor(values.to(dtype), 'rgb')
        self.seen_shapes.append(tuple(inputs.shape[-2:]))
        classes = plain[:, 0].long() // (256 // NUM_CLASSES)
        return torch.nn.functional.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float()


def expected_labels(rgb):
    return rgb[..., 0].astype(np.int64) // (256 // NUM_CLASSES)


def build_spy(key_file, method, block_size, test_cfg):
    model = MODELS.build(dict(
        type='DecryptingSpySegmentor', key_file=key_file, method=method, block_size=block_size,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=0,
                               seg_pad_val=255),
        test_cfg=test_cfg))
    return model.eval()


def pipeline_for(key_file, method, block_size, resize=None):
    steps = [dict(type='Resize', scale_factor=resize, keep_ratio=True, interpolation='nearest')] if resize else []
    return Compose(steps + [
        dict(type='BlockwiseEncrypt', method=method, block_size=block_size, key_file=key_file),
        dict(type='PackSegInputs', meta_keys=('ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                                              'flip_direction', 'padding_size'))])


def plain_image(height, width, seed=0):
    """Smooth image (so resizing is predictable), values spread over 0..255."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 1, height)[:, None, None]
    columns = np.linspace(0, 1, width)[None, :, None]
    noise = rng.integers(0, 256, (height, width, 3))
    image = np.where(rng.random((height, width, 1)) < 0.5, 255 * (rows * columns), noise)
    return image.astype(np.uint8)


def predict(model, pipeline, rgb):
    results = dict(img=np.ascontiguousarray(rgb[..., ::-1]), img_shape=rgb.shape[:2], ori_shape=rgb.shape[:2])
    with torch.no_grad():
        [sample] = model.test_step(pseudo_collate([pipeline(results)]))
    return sample.pred_sem_seg.data[0].numpy()


@pytest.mark.parametrize('method', ['shuffle', 'np+shuffle', 'shuffle+np+ffx'])
@pytest.mark.parametrize('height, width', [(64, 64), (70, 45), (33, 97)])
def test_whole_inference_sees_the_encryption_of_its_input(key_file, method, height, width):
    model = build_spy(key_file, method, 4, dict(mode='whole'))
    rgb = plain_image(height, width)
    prediction = predict(model, pipeline_for(key_file, method, 4), rgb)
    assert prediction.shape == (height, width)
    assert np.array_equal(prediction, expected_labels(rgb))


@pytest.mark.parametrize('crop, stride', [((24, 24), (16, 16)), ((32, 40), (20, 12))])
@pytest.mark.parametrize('height, width', [(70, 45), (96, 128)])
def test_slide_inference_windows_are_block_aligned(key_file, crop, stride, height, width):
    model = build_spy(key_file, 'shuffle', 4, dict(mode='slide', crop_size=crop, stride=stride))
    rgb = plain_image(height, width, seed=1)
    assert np.array_equal(predict(model, pipeline_for(key_file, 'shuffle', 4), rgb), expected_labels(rgb))
    assert len(model.seen_shapes) > 1


def test_stock_cityscapes_slide_settings_fail_without_alignment_and_pass_with_it(key_file):
    """crop 769 / stride 513 cut windows off the 4-pixel grid; protect_config makes them 768 / 512."""
    rgb = plain_image(1030, 1030, seed=2)
    pipeline = pipeline_for(key_file, 'shuffle', 4)
    stock = build_spy(key_file, 'shuffle', 4, dict(mode='slide', crop_size=(769, 769), stride=(513, 513)))
    with pytest.raises(ImageFormatError, match='769x769, not a multiple of the block size 4'):
        predict(stock, pipeline, rgb)
    aligned = build_spy(key_file, 'shuffle', 4, dict(mode='slide', crop_size=(768, 768), stride=(512, 512)))
    assert np.array_equal(predict(aligned, pipeline, rgb), expected_labels(rgb))


def test_resize_before_encryption_predicts_on_the_original_pixels(key_file):
    """Test pipelines resize first; predictions must come back on the original pixels.

    An exact 2x nearest upscale makes the bilinear resize of the logits back to
    ori_shape exact too, so any misalignment shows as a mismatch.
    """
    model = build_spy(key_file, 'shuffle', 8, dict(mode='whole'))
    rgb = plain_image(31, 45, seed=3)
    pipeline = pipeline_for(key_file, 'shuffle', 8, resize=2.0)
    prediction = predict(model, pipeline, rgb)
    assert model.seen_shapes == [(64, 96)]  # 62x90 padded to whole 8-pixel blocks
    assert np.array_equal(prediction, expected_labels(rgb))


def test_flip_tta_predicts_on_the_original_pixels(key_file):
    from mmseg.models import SegTTAModel
    rgb = plain_image(37, 50, seed=4)
    tta = Compose([dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=0., direction='horizontal'), dict(type='RandomFlip', prob=1.,
                                                                       direction='horizontal')],
        [dict(type='BlockwiseEncrypt', method='shuffle', block_size=4, key_file=key_file)],
        [dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape', 'pad_shape', 'flip',
                                               'flip_direction', 'padding_size'))]])])
    model = SegTTAModel(module=build_spy(key_file, 'shuffle', 4, dict(mode='whole'))).eval()
    packed = tta(dict(img=np.ascontiguousarray(rgb[..., ::-1]), img_path='flip.png', img_shape=rgb.shape[:2],
                      ori_shape=rgb.shape[:2]))
    batch = dict(inputs=[[x] for x in packed['inputs']], data_samples=[[s] for s in packed['data_samples']])
    with torch.no_grad():
        [sample] = model.test_step(batch)
    assert [s.flip for s in packed['data_samples']] == [False, True]
    assert np.array_equal(sample.pred_sem_seg.data[0].numpy(), expected_labels(rgb))


def test_training_batch_padding_keeps_blocks_and_labels_aligned(key_file):
    """stack_batch pads right/bottom: every image's own region still decrypts, labels stay on their pixels."""
    from mmseg.models import SegDataPreProcessor
    preprocessor = SegDataPreProcessor(mean=MEAN, std=STD, bgr_to_rgb=True, size=(48, 48), seg_pad_val=255)
    pipeline = Compose([dict(type='BlockwiseEncrypt', method='shuffle', block_size=4, key_file=key_file),
                        dict(type='PackSegInputs')])
    images = [plain_image(30, 41, seed=5), plain_image(45, 22, seed=6)]
    packed = []
    for rgb in images:
        label = expected_labels(rgb).astype(np.uint8)
        # As after RandomCrop: image and label cut from a larger original.
        packed.append(pipeline(dict(img=np.ascontiguousarray(rgb[..., ::-1]), gt_seg_map=label,
                                    seg_fields=['gt_seg_map'], img_shape=rgb.shape[:2], ori_shape=(120, 160))))
    batch = preprocessor(pseudo_collate(packed), training=True)
    cipher = load_key(key_file).cipher('shuffle', 4)
    values = (batch['inputs'] * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)).round()
    plain = cipher.decrypt_tensor(values.to(torch.uint8), 'rgb')
    for index, rgb in enumerate(images):
        height, width = rgb.shape[:2]
        region = plain[index, :, :height, :width].permute(1, 2, 0).numpy()
        assert np.array_equal(region, rgb)
        label = batch['data_samples'][index].gt_sem_seg.data[0].numpy()
        assert np.array_equal(label[:height, :width], expected_labels(rgb))
        assert (label[height:] == 255).all() and (label[:, width:] == 255).all()
