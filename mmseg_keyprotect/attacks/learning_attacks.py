"""Attacks that learn from k labelled plain images: adapter, fine-tuning, and the from-scratch floor.

A thief holds the protected weights and k labelled plain images. Three ways
to turn them into a working segmenter, each trained with the same budget:

``adapter``
    A block-wise linear layer (kernel = stride = M, 3M^2 channels in and out)
    in front of the frozen stolen model. SHF and NP act on each block as one
    affine map, so this layer can represent the key exactly; it starts as the
    identity (the model on plain images) and learns the rest.
``value_table``
    The adapter behind a learned value per block position and plain value
    (3M^2 x 256 entries), which can represent FFX's table as the linear map
    represents the shuffle and NP: the informed attacker of FFX chains.
``fine_tune``
    All weights of the stolen model, trained on plain images.
``scratch``
    The same architecture from its initial weights: what k images buy with
    nothing stolen. An attack is worth something only above this floor.
"""
import copy
import logging
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from torch import nn

from ..crypto.ciphers import FFX_METHODS, BlockCipher
from ..errors import ConfigError
from ..utils.progress import Progress
from .labelled_images import LabelledImages, score

ATTACKS = ('adapter', 'value_table', 'fine_tune', 'scratch')
# The table's entries are in normalised units and must travel up to ~15 (FFX outputs reach 999): a larger step.
VALUE_TABLE_LEARNING_RATE = 0.05


def attacks_for(method: str) -> Tuple[str, ...]:
    """The attacks that fit a cipher: the value-table adapter only where FFX is in the chain."""
    return tuple(a for a in ATTACKS if a != 'value_table' or set(FFX_METHODS) & set(method.split('+')))


class BlockwiseAdapter(nn.Module):
    """A learnable affine map applied to every M x M block of a normalised image.

    Args:
        block_size (int): M.
        channels (int): image channels. Defaults to 3.
    """

    def __init__(self, block_size: int, channels: int = 3):
        super().__init__()
        self.block_size = block_size
        self.mix = nn.Conv2d(channels, channels * block_size ** 2, block_size, stride=block_size)
        self.unfold = nn.PixelShuffle(block_size)
        self.reset_to_identity()

    def reset_to_identity(self) -> None:
        """Output = input: the attack starts from the model on plain images."""
        size = self.block_size
        weight = torch.zeros_like(self.mix.weight)
        for channel in range(self.mix.in_channels):
            for row in range(size):
                for column in range(size):
                    weight[(channel * size + row) * size + column, channel, row, column] = 1.0
        with torch.no_grad():
            self.mix.weight.copy_(weight)
            self.mix.bias.zero_()

    @classmethod
    def from_cipher(cls, cipher: BlockCipher, mean: Sequence[float], std: Sequence[float]) -> 'BlockwiseAdapter':
        """The adapter that encrypts exactly: normalised plain RGB in, normalised encrypted RGB out.

        Exists for SHF, NP and their chains (affine per block); FFX is a
        lookup table, which no affine map represents.
        """
        if cipher.ffx_table is not None:
            raise ConfigError('FFX is not affine: no adapter represents it exactly')
        size = cipher.block_size
        adapter = cls(size)
        weight = torch.zeros_like(adapter.mix.weight)
        bias = torch.zeros_like(adapter.mix.bias)
        for output in range(cipher.length):
            row, column, channel = output // (3 * size), output // 3 % size, output % 3
            source = int(cipher.source[output])
            source_row, source_column, source_channel = source // (3 * size), source // 3 % size, source % 3
            out = (channel * size + row) * size + column
            sign = -1.0 if cipher.xor[output] else 1.0
            # encrypted = sign * plain + (255 if flipped), with plain = x * std + mean on both sides.
            weight[out, source_channel, source_row, source_column] = sign * std[source_channel] / std[channel]
            offset = 255.0 if cipher.xor[output] else 0.0
            bias[out] = (offset + sign * mean[source_channel] - mean[channel]) / std[channel]
        with torch.no_grad():
            adapter.mix.weight.copy_(weight)
            adapter.mix.bias.copy_(bias)
        return adapter

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.unfold(self.mix(inputs))


class ValueTableAdapter(BlockwiseAdapter):
    """A learnable value for every (block position, plain value), then the block-wise affine map.

    Starts as the identity. Plain values are read back from the normalised
    input, so it sits where :class:`BlockwiseAdapter` does.

    Args:
        block_size (int): M.
        mean (Sequence[float]), std (Sequence[float]): the model's
            normalisation, RGB.
    """

    def __init__(self, block_size: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__(block_size)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        identity = (torch.arange(256.0).view(1, 256) - self.mean.view(3, 1)) / self.std.view(3, 1)
        self.table = nn.Parameter(identity.repeat_interleave(block_size ** 2, dim=0))  # (3 * M * M, 256)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        _, channels, height, width = inputs.shape
        size = self.block_size
        values = (inputs * self.std + self.mean).round().clamp(0, 255).long()
        rows = torch.arange(height, device=inputs.device) % size
        columns = torch.arange(width, device=inputs.device) % size
        position = (torch.arange(channels, device=inputs.device).view(-1, 1, 1) * size * size
                    + rows.view(1, -1, 1) * size + columns.view(1, 1, -1))
        return super().forward(self.table.reshape(-1)[position * 256 + values])


def _quietly(function, *args):
    """Call ``function`` with MMEngine's logger at WARNING (the optimizer builder logs every parameter)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return function(*args)
    finally:
        logger.setLevel(level)


def _flipped(sample):
    sample = sample.clone()
    sample.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data.flip(-1))
    return sample


def _learning_rate_factor(iteration: int, iterations: int) -> float:
    """Linear warm-up over the first 10%, then linear decay to zero."""
    warmup = max(1, iterations // 10)
    if iteration < warmup:
        return (iteration + 1) / warmup
    return max(0.0, (iterations - iteration) / max(1, iterations - warmup))


def _adapter_and_optimizer(attack: str, model, block_size: int, learning_rate: Optional[float]):
    """An adapter before the frozen ``model``, its optimizer and learning rate (default 1e-3)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    learning_rate = learning_rate or 1e-3
    if attack == 'adapter':
        adapter = BlockwiseAdapter(block_size)
        groups = [dict(params=list(adapter.parameters()))]
    else:
        preprocessor = model.data_preprocessor
        adapter = ValueTableAdapter(block_size, preprocessor.mean.flatten().tolist(),
                                    preprocessor.std.flatten().tolist())
        groups = [dict(params=list(adapter.mix.parameters())),
                  dict(params=[adapter.table], lr=VALUE_TABLE_LEARNING_RATE)]
    adapter.to(next(model.parameters()).device)
    return adapter, torch.optim.AdamW(groups, lr=learning_rate, weight_decay=0.0), learning_rate


def _model_and_optimizer(attack: str, stolen_model, model_cfg: dict, optim_wrapper_cfg: dict,
                         learning_rate: Optional[float]):
    """The model the attack trains (a copy of the stolen one, or a fresh one), its optimizer and learning rate
    (default: the config's for ``scratch``, a tenth of it for ``fine_tune``)."""
    if attack == 'fine_tune':
        model = copy.deepcopy(stolen_model)
    else:
        model = MODELS.build(copy.deepcopy(model_cfg))
        model.init_weights()
        model.dataset_meta = stolen_model.dataset_meta
        model.to(next(stolen_model.parameters()).device)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    optim_cfg = copy.deepcopy(optim_wrapper_cfg)
    optim_cfg.setdefault('optimizer', {})
    configured = optim_cfg['optimizer'].get('lr', 1e-3)
    learning_rate = learning_rate or (configured / 10 if attack == 'fine_tune' else configured)
    optim_cfg['optimizer']['lr'] = learning_rate
    return model, _quietly(build_optim_wrapper, model, optim_cfg).optimizer, learning_rate


def _training_batch(train_data: LabelledImages, batch_size: int, rng: np.random.Generator) -> dict:
    """``batch_size`` images drawn without replacement, each flipped left-right with probability 1/2."""
    chosen = rng.choice(len(train_data), batch_size, replace=False)
    flips = rng.random(batch_size) < 0.5
    images = [train_data.images[i].flip(-1) if flip else train_data.images[i] for i, flip in zip(chosen, flips)]
    samples = [_flipped(train_data.samples[i]) if flip else train_data.samples[i].clone()
               for i, flip in zip(chosen, flips)]
    return dict(inputs=images, data_samples=samples)


def train_attack(attack: str, stolen_model, model_cfg: dict, optim_wrapper_cfg: dict, train_data: LabelledImages,
                 eval_data: LabelledImages, iterations: int, eval_points: Sequence[int], block_size: int,
                 learning_rate: Optional[float] = None, batch_size: int = 8, seed: int = 0,
                 log: Callable[[str], None] = print, keep_trained: bool = False) -> Dict:
    """Train one attack on ``train_data`` and score it on ``eval_data`` (plain images) along the way.

    Args:
        attack (str): ``'adapter'``, ``'fine_tune'`` or ``'scratch'``.
        stolen_model: the protected segmentor (left unchanged).
        model_cfg (dict): ``cfg.model``, to build the from-scratch model.
        optim_wrapper_cfg (dict): the config's optimizer (``fine_tune`` and
            ``scratch``; the adapter uses AdamW).
        iterations (int): training iterations.
        eval_points (Sequence[int]): iterations after which to score.
        learning_rate (float, optional): default 1e-3 for the adapter, the
            config's rate for ``scratch`` and a tenth of it for ``fine_tune``.
        keep_trained (bool): also return what was trained, under ``trained``
            (the adapter, or the attacked model), to predict with.

    Returns:
        dict: ``curve`` ([iteration, mIoU] pairs, iteration 0 included),
        ``seconds``, ``trained_parameters``, ``learning_rate``.
    """
    if attack not in ATTACKS:
        raise ConfigError(f'unknown attack {attack!r}; expected one of {ATTACKS}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if attack in ('adapter', 'value_table'):
        model = stolen_model
        adapter, optimizer, learning_rate = _adapter_and_optimizer(attack, model, block_size, learning_rate)
        trained = list(adapter.parameters())
    else:
        adapter = None
        model, optimizer, learning_rate = _model_and_optimizer(attack, stolen_model, model_cfg, optim_wrapper_cfg,
                                                               learning_rate)
        trained = [p for p in model.parameters() if p.requires_grad]
    base_rates = [group['lr'] for group in optimizer.param_groups]
    curve = [[0, score(model, eval_data, adapter=adapter)]]
    started = time.perf_counter()
    batch_size = min(batch_size, len(train_data))
    progress = Progress(f'{attack}, k = {len(train_data)}', iterations, log)
    for iteration in range(iterations):
        # Frozen model: eval mode keeps its normalisation statistics; the others train as usual.
        model.train(adapter is None)
        factor = _learning_rate_factor(iteration, iterations)
        for group, base in zip(optimizer.param_groups, base_rates):
            group['lr'] = base * factor
        data = model.data_preprocessor(_training_batch(train_data, batch_size, rng), True)
        inputs = data['inputs'] if adapter is None else adapter(data['inputs'])
        loss, _ = model.parse_losses(model.loss(inputs, data['data_samples']))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if iteration + 1 in eval_points:
            curve.append([iteration + 1, score(model, eval_data, adapter=adapter)])
            progress.update(iteration + 1, f'loss {loss.item():.3f}, mIoU {curve[-1][1]:.2f}', force=True)
    if adapter is not None:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    result = dict(attack=attack, k=len(train_data), curve=curve, seconds=time.perf_counter() - started,
                  trained_parameters=int(sum(p.numel() for p in trained)), learning_rate=learning_rate,
                  iterations=iterations, batch_size=batch_size)
    if keep_trained:
        result['trained'] = adapter if adapter is not None else model
    return result


def evaluation_points(iterations: int, count: int = 4) -> List[int]:
    """``count`` evenly spaced iterations ending at ``iterations``."""
    return sorted({max(1, round(iterations * (i + 1) / count)) for i in range(count)})
