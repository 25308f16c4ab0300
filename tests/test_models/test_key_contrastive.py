"""Key-contrastive training: the negatives, the loss, and an unchanged path for the key holder."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from mmseg_keyprotect.config import check_config, leaf_config_text, load_config, pipeline_encryption, protect_config
from mmseg_keyprotect.config.pipelines import KEY_CONTRASTIVE_SEGMENTORS
from mmseg_keyprotect.errors import ConfigError
from mmseg_keyprotect.models.data_preprocessor import NEGATIVE_META_KEY, KeyContrastiveDataPreProcessor
from mmseg_keyprotect.models.segmentors.key_contrastive import divergence_from_uniform

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'
NORMALISE = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                 seg_pad_val=255, size=(32, 32))


def packed_batch(key_file, on_device, count=4, size=32, method='shuffle'):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
    pipeline = Compose([dict(type='BlockwiseEncrypt', method=method, block_size=4, key_file=key_file,
                             on_device=on_device), dict(type='PackSegInputs')])
    items = [pipeline(dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2],
                           gt_seg_map=np.ones(image.shape[:2], np.uint8), seg_fields=['gt_seg_map']))
             for image in images]
    return images, dict(inputs=[i['inputs'] for i in items], data_samples=[i['data_samples'] for i in items])


@pytest.mark.parametrize('on_device', [True, False])
def test_positives_are_the_key_holders_batch_and_negatives_follow_flagged(key_file, on_device):
    np.random.seed(0)
    method = 'shuffle+np'
    contrastive = KeyContrastiveDataPreProcessor(method=method, key_file=key_file, on_device=on_device,
                                                 negatives=dict(plain=1.0), **NORMALISE)
    reference = MODELS.build(dict(type='KeyProtectDataPreProcessor', method=method, key_file=key_file, **NORMALISE)) \
        if on_device else MODELS.build(dict(type='SegDataPreProcessor', **NORMALISE))
    plain = MODELS.build(dict(type='SegDataPreProcessor', **NORMALISE))
    images, batch = packed_batch(key_file, on_device, method=method)
    expected = reference(dict(batch), True)
    got = contrastive(dict(batch), True)
    assert got['inputs'].shape[0] == 2 * len(images)
    assert torch.equal(got['inputs'][:len(images)], expected['inputs'])
    flags = [sample.metainfo.get(NEGATIVE_META_KEY, False) for sample in got['data_samples']]
    assert flags == [False] * len(images) + [True] * len(images)
    # All negatives plain here: exactly the plain images, however the positives were encrypted.
    plain_inputs = plain(dict(inputs=[torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images],
                              data_samples=[s.clone() for s in batch['data_samples']]), True)
    assert torch.equal(got['inputs'][len(images):], plain_inputs['inputs'])
    # Outside training it is the key holder's preprocessor, nothing added.
    assert torch.equal(contrastive(dict(batch), False)['inputs'], reference(dict(batch), False)['inputs'])


def test_random_and_near_key_negatives_are_other_encryptions(key_file):
    np.random.seed(0)
    images, batch = packed_batch(key_file, True, count=6)
    raw = dict(size=(32, 32), pad_val=0, seg_pad_val=255)  # no normalisation: the pixel values themselves
    for kind in ('random_key', 'near_key', 'close_key'):
        contrastive = KeyContrastiveDataPreProcessor(method='shuffle', key_file=key_file, negatives={kind: 1.0},
                                                     **raw)
        inputs = contrastive(dict(batch), True)['inputs']
        for index, image in enumerate(images):
            positive, negative = inputs[index], inputs[len(images) + index]
            # The same pixels shuffled another way: neither the key's arrangement nor the plain image.
            assert not torch.equal(negative, positive)
            assert not torch.equal(negative, torch.from_numpy(image).permute(2, 0, 1).float())
            assert torch.equal(negative.flatten().sort().values, positive.flatten().sort().values)


def test_bad_negative_settings_are_named(key_file):
    with pytest.raises(ConfigError, match='negatives'):
        KeyContrastiveDataPreProcessor(negatives=dict(wrong_key=1.0), key_file=key_file, **NORMALISE)
    with pytest.raises(ConfigError, match='max_near_fraction'):
        KeyContrastiveDataPreProcessor(max_near_fraction=1.0, key_file=key_file, **NORMALISE)


def test_divergence_from_uniform():
    assert divergence_from_uniform(torch.zeros(2, 5, 4, 4)).item() == pytest.approx(0.0, abs=1e-6)
    peaked = torch.zeros(1, 5, 2, 2)
    peaked[:, 0] = 10.0
    assert divergence_from_uniform(peaked).item() > 1.0


def small_segmentor(key_contrastive: bool):
    cfg = load_config(str(BASELINE))
    model = dict(cfg.model, data_preprocessor=None)
    if key_contrastive:
        model.update(type='KeyContrastiveEncoderDecoder', negative_weight=0.5)
    torch.manual_seed(0)
    return MODELS.build(model)


def test_the_loss_adds_the_negatives_term_and_leaves_the_key_holders_loss_and_statistics(key_file):
    np.random.seed(0)
    contrastive_pre = KeyContrastiveDataPreProcessor(key_file=key_file, **NORMALISE)
    _, batch = packed_batch(key_file, True)
    data = contrastive_pre(batch, True)
    count = len(data['inputs']) // 2
    stock, contrastive = small_segmentor(False), small_segmentor(True)
    assert isinstance(contrastive, EncoderDecoder)
    contrastive.load_state_dict(stock.state_dict())  # the same weights: a checkpoint moves either way
    stock.train()
    contrastive.train()
    torch.manual_seed(1)  # dropout and drop-path draw the same masks for the key holder's images
    expected = stock.loss(data['inputs'][:count], data['data_samples'][:count])
    torch.manual_seed(1)
    got = contrastive.loss(data['inputs'], data['data_samples'])
    assert set(got) == set(expected) | {'loss_key_contrast'}
    for name, value in expected.items():
        assert torch.allclose(got[name], value), name
    assert got['loss_key_contrast'].item() > 0
    got['loss_key_contrast'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in contrastive.backbone.parameters())
    # Batch-norm running statistics moved only by the key holder's images.
    for (name, mine), theirs in zip(contrastive.state_dict().items(), stock.state_dict().values()):
        if 'running' in name or 'num_batches' in name:
            assert torch.equal(mine, theirs), name
    # Without negatives it is the stock loss.
    plain_loss = contrastive.loss(data['inputs'][:count], data['data_samples'][:count])
    assert 'loss_key_contrast' not in plain_loss


@pytest.mark.parametrize('on_device', [False, True])
def test_protect_config_switches_segmentor_and_preprocessor(on_device):
    cfg, _ = protect_config(str(BASELINE), 'shuffle', 4, on_device=on_device,
                            key_contrastive=dict(negative_weight=0.2, negatives=dict(random_key=1.0),
                                                 negative_share=0.5, negative_interval=2))
    assert cfg.model.type == 'KeyContrastiveEncoderDecoder' and cfg.model.negative_weight == 0.2
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.type == 'KeyContrastiveDataPreProcessor' and preprocessor.on_device == on_device
    assert preprocessor.size == (128, 128) and preprocessor.negatives == dict(random_key=1.0)
    assert check_config(cfg) == []
    text = leaf_config_text(str(BASELINE), cfg, 'shuffle', 4, [])
    assert "type='KeyContrastiveEncoderDecoder'" in text and 'negative_weight=0.2' in text
    assert max(len(line) for line in text.splitlines()) <= 120
    back = pipeline_encryption(cfg)
    assert back.model.data_preprocessor.type == 'SegDataPreProcessor' and check_config(back) == []
    assert type(MODELS.build(back.model.data_preprocessor)).__name__ == 'SegDataPreProcessor'
    # The preprocessor and the pipelines must agree on the cipher either way.
    cfg.model.data_preprocessor.block_size = 8
    assert any('M = 8' in problem for problem in check_config(cfg))


def test_key_contrastive_refuses_other_segmentors():
    cfg = load_config(str(BASELINE))
    cfg.model.type = 'DepthEstimator'
    with pytest.raises(ConfigError, match='DepthEstimator'):
        protect_config(cfg, 'shuffle', 4, key_contrastive=True)
    with pytest.raises(ConfigError, match='unknown settings'):
        protect_config(str(BASELINE), 'shuffle', 4, key_contrastive=dict(weight=1.0))


def test_every_counterpart_is_registered():
    for stock, counterpart in KEY_CONTRASTIVE_SEGMENTORS.items():
        assert issubclass(MODELS.get(counterpart), MODELS.get(stock))


def test_cascade_segmentor_is_supported():
    cfg = Config.fromfile(str(REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py'))
    cfg.model.type = 'CascadeEncoderDecoder'
    cfg.model.num_stages = 1
    cfg.model.decode_head = [cfg.model.decode_head]
    protected, _ = protect_config(cfg, 'shuffle', 4, key_contrastive=True)
    assert protected.model.type == 'KeyContrastiveCascadeEncoderDecoder'


def test_the_default_setting_is_what_protect_config_writes():
    from mmseg_keyprotect.config import DEFAULT_KEY_CONTRASTIVE, DEFAULT_METHOD
    cfg, _ = protect_config(str(BASELINE))
    assert cfg.model.type == ('KeyContrastiveEncoderDecoder' if DEFAULT_KEY_CONTRASTIVE else 'EncoderDecoder')
    assert cfg.train_dataloader.dataset.pipeline[-2].method == DEFAULT_METHOD
    assert protect_config(str(BASELINE), key_contrastive=False)[0].model.type == 'EncoderDecoder'
    other = load_config(str(BASELINE))
    other.model.decode_head = dict(other.model.decode_head, type='Mask2FormerHead')
    if DEFAULT_KEY_CONTRASTIVE:
        with pytest.warns(UserWarning, match='Mask2FormerHead'):
            assert protect_config(other)[0].model.type == 'EncoderDecoder'
    with pytest.raises(ConfigError, match='Mask2FormerHead'):
        protect_config(other, key_contrastive=True)


def test_a_share_of_the_batch_and_every_nth_iteration(key_file):
    """Cheaper negatives: a quarter of an 8-image batch gets a negative copy, of the right images; with an
    interval of 2 every other training call adds none."""
    np.random.seed(0)
    contrastive = KeyContrastiveDataPreProcessor(key_file=key_file, on_device=True, negatives=dict(plain=1.0),
                                                 negative_share=0.25, negative_interval=2, **NORMALISE)
    plain = MODELS.build(dict(type='SegDataPreProcessor', **NORMALISE))
    images, batch = packed_batch(key_file, True, count=8)
    first = contrastive(dict(batch), True)
    assert first['inputs'].shape[0] == 10
    plain_inputs = plain(dict(inputs=[torch.from_numpy(i).permute(2, 0, 1).contiguous() for i in images],
                              data_samples=[s.clone() for s in batch['data_samples']]), True)['inputs']
    for negative in first['inputs'][8:]:
        assert any(torch.equal(negative, image) for image in plain_inputs)
    assert contrastive(dict(batch), True)['inputs'].shape[0] == 8  # the second call: no negatives
    assert contrastive(dict(batch), True)['inputs'].shape[0] == 10
    # Batch norm needs two images: a quarter of 2 (or of 4) is rounded up to 2, a batch of 1 gets 1.
    for count, expected in ((1, 2), (2, 4), (4, 6)):
        _, small = packed_batch(key_file, True, count=count)
        contrastive._training_calls = 0
        assert contrastive(dict(small), True)['inputs'].shape[0] == expected
    for bad in (dict(negative_share=0.0), dict(negative_share=1.5), dict(negative_interval=0)):
        with pytest.raises(ConfigError):
            KeyContrastiveDataPreProcessor(key_file=key_file, **bad, **NORMALISE)


def test_negatives_can_see_batch_norm_as_deployed(key_file):
    """With running statistics the negatives are normalised as a deployed model normalises them; either way
    the running statistics stay as the key holder's images left them."""
    cfg, _ = protect_config(str(BASELINE), 'shuffle', 4, key_file=key_file,
                            key_contrastive=dict(negative_statistics='running', negative_share=0.5))
    assert cfg.model.negative_statistics == 'running' and cfg.model.data_preprocessor.negative_share == 0.5
    text = leaf_config_text(str(BASELINE), cfg, 'shuffle', 4, [])
    assert "negative_statistics='running'" in text and 'negative_share=0.5' in text
    model = MODELS.build(cfg.model)
    model.train()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen = []
    hook = layers[0].register_forward_pre_hook(lambda module, _: seen.append(module.training))
    from mmseg_keyprotect.models.segmentors.key_contrastive import NEGATIVE_STATISTICS
    with NEGATIVE_STATISTICS['running'](model):
        model.negative_logits(torch.randn(2, 3, 32, 32))
    hook.remove()
    assert seen == [False] and all(layer.training for layer in layers)
    with pytest.raises(ValueError, match='negative_statistics'):
        MODELS.build(dict(cfg.model.to_dict(), negative_statistics='frozen'))


def test_key_contrastive_defaults_to_the_chosen_negatives_and_each_can_be_overridden():
    from mmseg_keyprotect.config import KEY_CONTRASTIVE_NEGATIVES
    cfg, _ = protect_config(str(BASELINE), 'shuffle+np', 4, key_contrastive=True)
    preprocessor = cfg.model.data_preprocessor
    for name, value in KEY_CONTRASTIVE_NEGATIVES.items():
        assert (preprocessor if name in preprocessor else cfg.model)[name] == value
    cfg, _ = protect_config(str(BASELINE), 'shuffle+np', 4, key_contrastive=dict(negative_share=0.25))
    assert cfg.model.data_preprocessor.negative_share == 0.25
