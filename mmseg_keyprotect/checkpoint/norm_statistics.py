"""Batch norm running statistics folded into the layer's own affine weight and bias, for published weights.

In eval mode a batch norm layer computes ``(x - mean) / sqrt(var + eps) * weight + bias``. The running mean and
variance are statistics of what the layer saw in training, and a protected model only saw images encrypted with
its key: a thief with the weights and a few plain images can search for a key on them. Folding them into the
affine part (``weight / sqrt(var + eps)`` and ``bias - mean * weight / sqrt(var + eps)``, with the stored mean 0
and variance ``1 - eps``) computes the same output in eval mode, keeps every key and shape of the state dict, and
leaves the statistics mixed with a weight and a bias that the thief does not know.

Training mode normalises with each batch's own statistics, so a folded checkpoint is for inference: fine-tune from
the unfolded (locked) one.
"""
from typing import Dict, List

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import KeyProtectError


def norm_epsilons(model: torch.nn.Module) -> Dict[str, float]:
    """Each batch norm layer of ``model`` that keeps running statistics, by state-dict prefix, with its ``eps``."""
    return {name: module.eps for name, module in model.named_modules()
            if isinstance(module, _BatchNorm) and module.track_running_stats}


def fold_norm_statistics(state_dict: Dict[str, torch.Tensor], epsilons: Dict[str, float]) -> List[str]:
    """Fold the running statistics of the batch norm layers named in ``epsilons`` into their weight and bias, in
    place.

    Args:
        state_dict (dict): a model's state dict (a checkpoint's ``state_dict``).
        epsilons (dict): layer prefix -> its ``eps`` (:func:`norm_epsilons`).

    Returns:
        list[str]: the layers folded. A layer whose statistics are already
        neutral (mean 0, variance ``1 - eps``) is left as it is, so folding
        twice changes nothing.

    Raises:
        KeyProtectError: a layer named in ``epsilons`` lacks its statistics in
            the state dict, or has no affine weight and bias to fold them into.
    """
    folded = []
    for prefix, eps in epsilons.items():
        names = {part: f'{prefix}.{part}' for part in ('running_mean', 'running_var', 'weight', 'bias')}
        missing = [name for name in names.values() if name not in state_dict]
        if missing:
            raise KeyProtectError(f'cannot fold the statistics of batch norm layer {prefix}: the state dict lacks '
                                  f'{", ".join(missing)} (a layer without affine weights keeps its statistics '
                                  'in the open; publish with the statistics kept)')
        mean, variance = state_dict[names['running_mean']], state_dict[names['running_var']]
        if not mean.any() and torch.allclose(variance, torch.full_like(variance, 1 - eps)):
            continue
        scale = state_dict[names['weight']] / (variance.double() + eps).sqrt()
        state_dict[names['bias']] = (state_dict[names['bias']] - mean.double() * scale).to(mean.dtype)
        state_dict[names['weight']] = scale.to(mean.dtype)
        state_dict[names['running_mean']] = torch.zeros_like(mean)
        state_dict[names['running_var']] = torch.full_like(variance, 1 - eps)
        folded.append(prefix)
    return folded


def fold_model_norm_statistics(model: torch.nn.Module) -> List[str]:
    """:func:`fold_norm_statistics` on a model in memory; returns the layers folded."""
    state = model.state_dict()
    folded = fold_norm_statistics(state, norm_epsilons(model))
    model.load_state_dict(state)
    return folded
