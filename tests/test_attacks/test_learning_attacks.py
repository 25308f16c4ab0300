import numpy as np
import pytest
import torch

from mmseg_keyprotect.attacks.learning_attacks import (
    BlockwiseAdapter,
    ValueTableAdapter,
    _learning_rate_factor,
    attacks_for,
    evaluation_points,
)
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.datasets import render_sample
from mmseg_keyprotect.errors import ConfigError

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]  # mmseg's ImageNet statistics, RGB


def normalise(rgb: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]
    return (tensor - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def test_adapter_starts_as_the_identity():
    inputs = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(BlockwiseAdapter(4)(inputs), inputs)
    assert sum(p.numel() for p in BlockwiseAdapter(4).parameters()) == 48 * 48 + 48  # 3M^2 in and out, M = 4


@pytest.mark.parametrize('method,block_size', [('shuffle', 4), ('np', 4), ('shuffle+np', 2), ('shuffle+np', 8)])
def test_adapter_can_represent_the_key_exactly(method, block_size):
    """The threat model's claim: SHF and NP are one affine map per block."""
    cipher = SecretKey.generate().cipher(method, block_size)
    plain = render_sample(3, 32)[0]
    adapter = BlockwiseAdapter.from_cipher(cipher, MEAN, STD)
    with torch.no_grad():
        torch.testing.assert_close(adapter(normalise(plain)), normalise(cipher.encrypt(plain)), atol=1e-4, rtol=0)


def test_no_adapter_represents_ffx():
    with pytest.raises(ConfigError, match='FFX is not affine'):
        BlockwiseAdapter.from_cipher(SecretKey.generate().cipher('ffx', 4), MEAN, STD)


def test_schedule_warms_up_then_decays_to_zero():
    factors = [_learning_rate_factor(i, 100) for i in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 and factors[-1] == pytest.approx(1 / 90)
    assert evaluation_points(300) == [75, 150, 225, 300] and evaluation_points(2) == [1, 2]


def test_value_table_adapter_starts_as_the_identity():
    plain = render_sample(4, 32)[0]
    with torch.no_grad():
        torch.testing.assert_close(ValueTableAdapter(4, MEAN, STD)(normalise(plain)), normalise(plain),
                                   atol=1e-4, rtol=0)


@pytest.mark.parametrize('method', ['ffx', 'np+ffx', 'np+ffx+shuffle'])
def test_value_table_adapter_can_represent_ffx_chains_exactly(method):
    """What the linear adapter cannot do for FFX, a value per (position, plain value) before it can."""
    size = 4
    cipher = SecretKey.generate().cipher(method, size)
    adapter = ValueTableAdapter(size, MEAN, STD)
    table = torch.zeros_like(adapter.table)
    weight, bias = torch.zeros_like(adapter.mix.weight), torch.zeros_like(adapter.mix.bias)
    for output in range(cipher.length):
        row, column, channel = output // (3 * size), output // 3 % size, output % 3
        source = int(cipher.source[output])
        source_row, source_column, source_channel = source // (3 * size), source // 3 % size, source % 3
        values = np.arange(256) ^ int(cipher.xor[output])
        if cipher.ffx_mask[output]:
            values = cipher.ffx_table[values]
        # The table gives the raw encrypted value; the affine map moves it and normalises it.
        table[(source_channel * size + source_row) * size + source_column] = torch.from_numpy(values.astype(np.float32))
        out = (channel * size + row) * size + column
        weight[out, source_channel, source_row, source_column] = 1.0 / STD[channel]
        bias[out] = -MEAN[channel] / STD[channel]
    with torch.no_grad():
        adapter.table.copy_(table)
        adapter.mix.weight.copy_(weight)
        adapter.mix.bias.copy_(bias)
        plain = render_sample(5, 32)[0]
        torch.testing.assert_close(adapter(normalise(plain)), normalise(cipher.encrypt(plain)), atol=1e-4, rtol=0)


def test_attacks_fit_the_cipher():
    assert attacks_for('shuffle+np') == ('adapter', 'fine_tune', 'scratch')
    assert attacks_for('np+ffx') == ('adapter', 'value_table', 'fine_tune', 'scratch')
    assert attacks_for('np+ffx8') == ('adapter', 'value_table', 'fine_tune', 'scratch')
