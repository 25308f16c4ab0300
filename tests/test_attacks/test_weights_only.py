"""The weights-only attack on stems built from a known key: exact recovery where the weights carry the key,
and a low structure score (not a false success) where they do not."""
import numpy as np
import pytest
import torch
from keyed_stems import keyed_stem, smooth_filters
from torch import nn

from mmseg_keyprotect.attacks.key_recovery import key_agreement
from mmseg_keyprotect.attacks.weights_only import Stem, estimate_key_from_weights, model_stem
from mmseg_keyprotect.crypto.ciphers import BlockCipher
from mmseg_keyprotect.crypto.keys import SecretKey


def best_agreement(estimate, truth):
    return max((key_agreement(candidate, truth) for candidate in estimate.candidates), key=lambda a: a['positions'])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_np_mask_read_off_the_stem_exactly(seed):
    rng = np.random.default_rng(seed)
    truth = BlockCipher.from_map(np.arange(48), rng.permutation(np.repeat([0, 255], 24)), 4)
    stem = Stem(keyed_stem(smooth_filters(rng, kernel=15), truth, 3), stride=4, padding=3)
    estimate = estimate_key_from_weights(stem, 'np', 4)
    assert len(estimate.candidates) == 2  # the estimate and its complement
    assert best_agreement(estimate, truth)['flips'] == 1.0
    assert estimate.structure > 0.5


@pytest.mark.parametrize('method', ['shuffle', 'shuffle+np'])
@pytest.mark.parametrize('seed', [0, 1])
def test_shuffle_placed_far_above_chance_from_the_stem(method, seed):
    """Shuffles are only partly identified by filter smoothness: pixels are placed at three times chance or
    better (chance: 1 in 16), which the search on unlabelled images then refines on a real model."""
    rng = np.random.default_rng(seed)
    xor = rng.permutation(np.repeat([0, 255], 24)) if 'np' in method else np.zeros(48, np.int64)
    truth = BlockCipher.from_map(rng.permutation(48), xor, 4)
    stem = Stem(keyed_stem(smooth_filters(rng, kernel=15), truth, 3), stride=4, padding=3)
    estimate = estimate_key_from_weights(stem, method, 4)
    assert key_agreement(estimate.candidates[0], truth)['pixels'] >= 3 / 16


def test_plain_stem_reports_no_structure_instead_of_a_key():
    """A model trained on plain images: the estimate is no key at all, far from the (random) key asked about."""
    rng = np.random.default_rng(7)
    truth = SecretKey.generate().cipher('np', 4)
    estimate = estimate_key_from_weights(Stem(smooth_filters(rng), 4, 3), 'np', 4)
    assert estimate.structure < 0.1
    assert best_agreement(estimate, truth)['flips'] <= 0.75


def test_ffx_positions_found_from_filter_energy():
    """FFX inputs (values up to 999) leave smaller filters behind: the weaker half of the positions is the mask."""
    rng = np.random.default_rng(2)
    truth = SecretKey.generate().cipher('np+ffx', 4)
    stolen = keyed_stem(smooth_filters(rng, kernel=15), truth, 3)
    weak = np.tile(truth.ffx_mask.reshape(4, 4, 3).transpose(2, 0, 1), (1, 2, 2))[:, 1:, 1:]
    stolen = stolen * np.where(weak, 0.2, 1.0)[None]
    estimate = estimate_key_from_weights(Stem(stolen, 4, 3), 'np+ffx', 4)
    assert np.array_equal(estimate.candidates[0].ffx_mask, truth.ffx_mask)
    flips = np.mean([(c.xor == truth.xor)[~truth.ffx_mask].mean() for c in estimate.candidates[:1]])
    assert flips in (0.0, 1.0)  # the positions outside the table: exact, up to the global complement


def test_unaligned_stride_uses_every_phase():
    """A ResNet-like stem at stride 2 under M = 4 has four output phases; the attack runs and says so."""
    rng = np.random.default_rng(0)
    estimate = estimate_key_from_weights(Stem(smooth_filters(rng, kernel=3), 2, 1), 'np', 4)
    assert estimate.phases == 4
    assert len(estimate.candidates) == 2


def test_model_stem_puts_channels_in_key_order():
    class Preprocessor(nn.Module):
        channel_conversion = False

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.data_preprocessor = Preprocessor()
            self.conv = nn.Conv2d(3, 8, 7, stride=4, padding=3)

    model = Model()
    weight = model.conv.weight.detach().numpy()
    # BGR images reach the network unswapped: its channel 0 is blue, the key's channel 2.
    assert np.array_equal(model_stem(model, 'bgr').weight, weight[:, ::-1])
    model.data_preprocessor.channel_conversion = True
    assert np.array_equal(model_stem(model, 'bgr').weight, weight)
    model.conv = nn.Conv2d(3, 8, 3, dilation=2)
    assert model_stem(model) is None
    with torch.no_grad():
        assert model_stem(nn.Sequential(nn.Linear(3, 3))) is None
