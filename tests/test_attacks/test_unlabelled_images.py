"""The thief with the weights and unlabelled images, on small models whose keys are known.

The models read each block with a convolution whose kernel is the block (one
output channel per block position), followed by batch norm whose running
statistics come from images encrypted with the key, as training would leave
them. The images carry a texture of period M, so that every block position has
its own mean: the statistics then identify the key, and the search must find it.
"""
import numpy as np
import pytest
import torch
from keyed_stems import keyed_stem, smooth_filters
from mmseg.models.data_preprocessor import SegDataPreProcessor
from torch import nn

from mmseg_keyprotect.attacks.key_recovery import key_agreement
from mmseg_keyprotect.attacks.unlabelled_images import (
    StatisticsOracle,
    _round_permutation,
    folded_statistics,
    hill_climb,
    normalisation_layers,
    pick_by_statistics,
    relaxed_encrypt,
    relaxed_search,
    remembered_statistics,
    unlabelled_images_attack,
)
from mmseg_keyprotect.attacks.weights_only import Stem, estimate_key_from_weights
from mmseg_keyprotect.checkpoint import fold_model_norm_statistics
from mmseg_keyprotect.crypto.ciphers import BlockCipher
from mmseg_keyprotect.crypto.keys import SecretKey


class BlockModel(nn.Module):
    """A segmentor-shaped model: one block-reading convolution, batch norm, a 1x1 head."""

    def __init__(self, block_size: int, norm: bool = True):
        super().__init__()
        length = 3 * block_size ** 2
        self.data_preprocessor = SegDataPreProcessor(mean=[127.5] * 3, std=[60.0] * 3, bgr_to_rgb=True)
        self.stem = nn.Conv2d(3, length, block_size, stride=block_size, bias=False)
        # The identity on a block in RGB (row, column, channel) order: channel i reads block position i.
        with torch.no_grad():
            self.stem.weight.zero_()
            for position in range(length):
                pixel, channel = divmod(position, 3)
                self.stem.weight[position, channel, pixel // block_size, pixel % block_size] = 1.0
        self.norm = nn.BatchNorm2d(length) if norm else nn.Identity()
        self.decode_head = nn.Conv2d(length, 2, 1)

    def extract_feat(self, inputs):
        return self.norm(self.stem(inputs))


def textured_images(count: int, block_size: int, seed: int = 0, size: int = 16) -> torch.Tensor:
    """uint8 BGR images: a texture of period M (each block position its own level, all below 127.5, so that NP
    sends it to a level no position has) plus noise."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(30, 120, 3 * block_size ** 2)
    texture = np.random.default_rng(99).permutation(levels).reshape(block_size, block_size, 3)
    tiled = np.tile(texture, (size // block_size, size // block_size, 1))
    images = np.clip(tiled[None] + rng.normal(0, 8, (count, size, size, 3)), 0, 255).astype(np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def trained_on(model: BlockModel, cipher: BlockCipher, images: torch.Tensor) -> BlockModel:
    """Set the running statistics to those of ``images`` encrypted with ``cipher``, as training would."""
    model.norm.momentum = None  # a cumulative average: after one batch, the batch's statistics
    model.train()
    with torch.no_grad():
        model.extract_feat(model.data_preprocessor(dict(inputs=list(
            cipher.encrypt_tensor(images, 'bgr').float().unbind(0))), False)['inputs'])
    return model.eval()


def random_key(method: str, block_size: int) -> BlockCipher:
    return SecretKey.generate().cipher(method, block_size)


def test_the_oracle_is_at_its_best_under_the_key():
    key = random_key('shuffle+np', 2)
    images = textured_images(8, 2)
    model = trained_on(BlockModel(2), key, images)
    oracle = StatisticsOracle(model, images.unbind(0))
    assert oracle.available
    at_key = oracle(key)
    assert at_key == pytest.approx(0.0, abs=1e-3)  # the statistics the layers stored, exactly
    assert all(oracle(random_key('shuffle+np', 2)) < at_key - 0.1 for _ in range(5))
    assert oracle(None) < at_key - 0.1
    assert oracle.evaluations == 7


def test_relaxed_encryption_with_a_permutation_and_signs_is_the_cipher():
    key = random_key('shuffle+np', 4)
    images = textured_images(2, 4, size=8)
    mixing = torch.zeros(48, 48)
    mixing[torch.arange(48), torch.as_tensor(key.source)] = 1.0
    signs = torch.as_tensor(np.where(key.xor > 0, -1.0, 1.0), dtype=torch.float32)
    relaxed = relaxed_encrypt(images, mixing, signs, 4, 'bgr')
    assert torch.equal(relaxed.round().to(torch.int16), key.encrypt_tensor(images, 'bgr').to(torch.int16))


def test_rounding_a_noisy_permutation_matrix_gives_the_permutation():
    rng = np.random.default_rng(0)
    permutation = rng.permutation(12)
    weights = rng.uniform(0, 0.3, (12, 12))
    weights[np.arange(12), permutation] += 0.6
    assert np.array_equal(_round_permutation(weights), permutation)


@pytest.mark.parametrize('seed', [0, 1])
def test_the_climb_recovers_the_key_from_a_near_one(seed):
    rng = np.random.default_rng(seed)
    key = random_key('shuffle+np', 2)
    images = textured_images(8, 2, seed)
    model = trained_on(BlockModel(2), key, images)
    source, xor = key.source.copy(), key.xor.copy()
    source[[0, 5]], source[[3, 7]] = source[[5, 0]], source[[7, 3]]
    xor[rng.choice(12, 3, replace=False)] ^= 255
    start = BlockCipher.from_map(source, xor, 2)
    found, info = hill_climb(StatisticsOracle(model, textured_images(8, 2, seed + 10).unbind(0)), start,
                             budget=600, seed=seed)
    assert key_agreement(found, key)['positions'] == 1.0
    assert info['value'] > info['start_value'] and info['accepted'] >= 5
    assert info['evaluations'] <= 600 and info['trace'][-1][1] == info['value']


def test_the_climb_keeps_to_its_budget_and_its_moves():
    key = random_key('np', 2)
    images = textured_images(4, 2)
    model = trained_on(BlockModel(2), key, images)
    start = BlockCipher.from_map(np.arange(12), np.zeros(12, np.int64), 2)
    found, info = hill_climb(StatisticsOracle(model, images.unbind(0)), start, budget=7, swaps=False)
    assert info['evaluations'] == 7
    assert np.array_equal(found.source, np.arange(12))  # flips only: no position moved
    found, _ = hill_climb(StatisticsOracle(model, images.unbind(0)), start, budget=200, swaps=False)
    assert np.array_equal(found.xor, key.xor)


def test_the_relaxed_search_finds_the_signs_by_gradient():
    key = BlockCipher.from_map(np.arange(12), np.random.default_rng(3).permutation(np.repeat([0, 255], 6)), 2)
    images = textured_images(8, 2)
    model = trained_on(BlockModel(2), key, images)
    found, info = relaxed_search(StatisticsOracle(model, images.unbind(0)), 2, steps=150)
    assert info['distance'] < info['start_distance']
    assert key_agreement(found, key)['flips'] == 1.0
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was


def test_the_attack_keeps_the_key_the_held_out_images_rate_best():
    key = random_key('shuffle+np', 2)
    model = trained_on(BlockModel(2), key, textured_images(16, 2, 5))
    result = unlabelled_images_attack(model, None, 'shuffle+np', 2, textured_images(8, 2, 6).unbind(0),
                                      textured_images(8, 2, 7).unbind(0), 'bgr', budget=800, relaxed_steps=60)
    assert result['oracle'] == 'normalisation statistics'
    assert set(result['candidates']) == {'read off the weights', 'climbed', 'relaxed, then climbed'}
    kept = result['candidates'][result['chosen']]
    assert key_agreement(kept, key)['positions'] == 1.0
    assert result['values'][result['chosen']] == max(result['values'].values())


def test_pick_by_statistics_prefers_the_key():
    key = random_key('shuffle+np', 2)
    images = textured_images(8, 2)
    model = trained_on(BlockModel(2), key, images)
    candidates = {'wrong': random_key('shuffle+np', 2), 'key': key, 'plain': BlockCipher.from_map(
        np.arange(12), np.zeros(12, np.int64), 2)}
    chosen, values = pick_by_statistics(StatisticsOracle(model, images.unbind(0)), candidates)
    assert chosen == 'key' and set(values) == set(candidates)


def test_without_running_statistics_the_thief_falls_back_to_prediction_diversity():
    model = BlockModel(2, norm=False).eval()
    assert not normalisation_layers(model)
    result = unlabelled_images_attack(model, None, 'np', 2, textured_images(4, 2).unbind(0),
                                      textured_images(4, 2, 1).unbind(0), 'bgr', budget=20, relaxed_steps=5)
    assert result['oracle'] == 'mutual information'
    assert 'relaxed, then climbed' not in result['candidates']  # no statistic to follow by gradient


def test_public_weights_give_the_signs_that_training_added():
    """A model trained from public weights: the stolen stem is the public one plus what training on encrypted
    blocks added; subtracting the public stem leaves the keyed part, read against the public template."""
    rng = np.random.default_rng(4)
    truth = BlockCipher.from_map(np.arange(48), rng.permutation(np.repeat([0, 255], 24)), 4)
    public = smooth_filters(rng, kernel=15)
    public_stem = Stem(public[:, :, 4:11, 4:11].copy(), stride=4, padding=3)
    added = keyed_stem(smooth_filters(rng, kernel=15), truth, 3)
    stolen = Stem(public_stem.weight + added, stride=4, padding=3)
    estimate = estimate_key_from_weights(stolen, 'np', 4, public_stem=public_stem)
    assert max(key_agreement(c, truth)['flips'] for c in estimate.candidates) == 1.0
    with pytest.raises(Exception, match='public stem'):
        estimate_key_from_weights(stolen, 'np', 4, public_stem=Stem(public[:, :, :5, :5].copy(), 4, 3))


def test_folded_statistics_are_guessed_back_from_the_weights():
    """Folding hides the statistics in the layer's weight and bias; where those stayed where training starts them
    (1 and 0), the thief's guess gives the statistics back, and the oracle rates every key as before."""
    key = random_key('shuffle+np', 2)
    images = textured_images(8, 2)
    model = trained_on(BlockModel(2), key, images)
    oracle = StatisticsOracle(model, images.unbind(0))
    others = [random_key('shuffle+np', 2) for _ in range(3)]
    before = [oracle(cipher) for cipher in [key, None] + others]
    assert not folded_statistics(model.norm)
    fold_model_norm_statistics(model)
    assert folded_statistics(model.norm)
    mean, variance = remembered_statistics(model.norm)
    assert not torch.equal(mean, model.norm.running_mean)
    assert [oracle(cipher) for cipher in [key, None] + others] == pytest.approx(before, rel=1e-3, abs=1e-4)
    result = unlabelled_images_attack(model, None, 'np', 2, images.unbind(0), images.unbind(0), 'bgr', budget=5,
                                      relaxed_steps=0)
    assert result['oracle'] == 'normalisation statistics, guessed from folded weights'
