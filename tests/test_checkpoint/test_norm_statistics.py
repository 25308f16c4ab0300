import pytest
import torch
from torch import nn

from mmseg_keyprotect.checkpoint import fold_model_norm_statistics, fold_norm_statistics, norm_epsilons
from mmseg_keyprotect.errors import KeyProtectError


def trained_model(seed: int = 0) -> nn.Sequential:
    """Conv, batch norm (with a non-default eps), ReLU, conv, batch norm: statistics and affine parts as training
    leaves them."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, eps=1e-3), nn.ReLU(), nn.Conv2d(8, 4, 1),
                          nn.BatchNorm2d(4))
    with torch.no_grad():
        for layer in (model[1], model[4]):
            layer.running_mean.uniform_(-3, 3)
            layer.running_var.uniform_(0.1, 9)
            layer.weight.uniform_(0.5, 2)
            layer.bias.uniform_(-1, 1)
    return model.eval()


def test_folding_keeps_the_predictions_and_hides_the_statistics():
    model = trained_model()
    images = torch.randn(2, 3, 12, 12) * 40
    before = model(images)
    stored = model[1].running_mean.clone()
    assert fold_model_norm_statistics(model) == ['1', '4']
    torch.testing.assert_close(model(images), before, rtol=1e-5, atol=1e-4)
    for layer in (model[1], model[4]):
        assert not layer.running_mean.any()
        torch.testing.assert_close(layer.running_var, torch.full_like(layer.running_var, 1 - layer.eps))
    assert not torch.allclose(model[1].bias, torch.zeros(8)) and stored.abs().sum() > 0


def test_folding_twice_changes_nothing():
    model = trained_model()
    fold_model_norm_statistics(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert fold_model_norm_statistics(model) == []
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_epsilons_are_read_per_layer():
    assert norm_epsilons(trained_model()) == {'1': 1e-3, '4': 1e-5}


def test_a_layer_without_affine_weights_is_refused_by_name():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, affine=False))
    with pytest.raises(KeyProtectError, match=r'batch norm layer 1: the state dict lacks 1\.weight, 1\.bias'):
        fold_norm_statistics(model.state_dict(), norm_epsilons(model))
