"""The thief with the weights and a few unlabelled images: what the normalisation layers remember, as a key oracle.

Batch norm layers keep the running mean and variance of their inputs over the
training images, which a protected model only ever saw encrypted with the key.
Encrypt a few plain, unlabelled images of the domain with a candidate key, run
them, and compare the batch statistics each layer sees with the stored ones:
the closer they are, the more the candidate acts like the key. No label is
needed. A key that is only partly right (most NP signs right, many shuffle
positions wrong) already comes close, so a search that climbs this oracle ends
on a key that works even where it never finds the key itself.

The attack, :func:`unlabelled_images_attack`:

1. starts from the key read off the first convolution
   (:func:`~.weights_only.estimate_key_from_weights`);
2. climbs from there (:func:`hill_climb`): single NP flips and single
   position swaps, each kept when the oracle rises;
3. fits a relaxed key by gradient on the same statistic
   (:func:`relaxed_search`: a soft permutation and soft signs), rounds it and
   climbs again;
4. picks among its candidates with the oracle on other unlabelled images
   (:func:`pick_by_statistics`), so the choice uses no label either.

The oracle needs the weights (running statistics are part of them): a model
served behind an API, its weights kept private, does not expose it. Where the
statistics were folded into the layers' weights and biases (published
checkpoints, :mod:`~mmseg_keyprotect.checkpoint.norm_statistics`), the thief
guesses them back from those (:func:`remembered_statistics`). A model without
batch norm leaves prediction diversity as the oracle.
"""
import time
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from ..crypto.ciphers import DEFAULT_CHANNEL_ORDER, FFX_METHODS, BlockCipher, parse_method
from ..crypto.conditions import encrypt_batch
from ..errors import KeyProtectError
from ..utils.progress import Progress
from .weights_only import Stem, estimate_key_from_weights

#: Oracle evaluations of each climb. Each one is a forward pass over the thief's unlabelled images.
CLIMB_BUDGET = 3600
#: Gradient steps of the relaxed search.
RELAXED_STEPS = 300
#: Unlabelled images the thief searches with, then the larger count the report also tries.
UNLABELLED_COUNTS = (8, 16)
#: Other unlabelled images that pick among the candidates.
HOLDOUT_IMAGES = 16


def normalisation_layers(model: torch.nn.Module) -> List[_BatchNorm]:
    """The batch norm layers of ``model`` that keep running statistics (the oracle's memory)."""
    return [m for m in model.modules()
            if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_mean is not None]


def folded_statistics(layer: _BatchNorm) -> bool:
    """Whether the layer's running statistics were folded into its weight and bias (mean 0, variance ``1 - eps``,
    as :func:`~mmseg_keyprotect.checkpoint.fold_norm_statistics` leaves them)."""
    variance = layer.running_var
    return (layer.weight is not None and not layer.running_mean.any()
            and torch.allclose(variance, torch.full_like(variance, 1 - layer.eps)))


def remembered_statistics(layer: _BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """The mean and variance (``eps`` included) of the layer's inputs in training, as a thief reads them.

    Stored ones are read as they are. Folded ones are guessed: the layer computes ``a * x + c`` with
    ``a = weight / std`` and ``c = bias - mean * a``, which give the mean and the std back if the trained weight
    and bias are taken to be where training started them (1 and 0).
    """
    if not folded_statistics(layer):
        return layer.running_mean, layer.running_var + layer.eps
    scale = layer.weight.detach()
    scale = torch.where(scale.abs() < 1e-6, torch.full_like(scale, 1e-6), scale)
    return -layer.bias.detach() / scale, scale.abs().reciprocal() ** 2


def _log_nothing(message: str) -> None:
    pass


class StatisticsOracle:
    """Rates candidate keys by how well the statistics of unlabelled images, encrypted with them, match the model's
    running statistics.

    The value is minus the mean, over layers and channels, of the squared 2-Wasserstein distance between the
    Gaussian of a channel's batch statistics and its running one, in units of the running variance: 0 is a perfect
    match, and higher is better, as for the other oracles. Unlike a divergence it stays finite when a channel's
    batch variance vanishes, which the relaxed search passes through when a soft sign changes.

    Args:
        model: the stolen segmentor (an mmseg ``EncoderDecoder``), in eval mode.
        images (Sequence[torch.Tensor]): plain uint8 3xHxW images, channels as
            the pipeline stores them, padded to whole blocks (each is cut to the
            smallest height and width among them, from the top left, which keeps
            the blocks); never labelled.
        channel_order (str): that channel order (mmcv loads BGR).
    """

    def __init__(self, model, images: Sequence[torch.Tensor], channel_order: str = DEFAULT_CHANNEL_ORDER):
        self.model = model
        self.layers = normalisation_layers(model)
        self.channel_order = channel_order
        images = list(images)
        if not images:
            raise KeyProtectError('the statistics oracle needs at least one unlabelled image')
        height, width = min(i.shape[-2] for i in images), min(i.shape[-1] for i in images)
        self.images = torch.stack([image[..., :height, :width] for image in images])
        self.evaluations = 0

    @property
    def available(self) -> bool:
        """Whether the model keeps any running statistics."""
        return bool(self.layers)

    def __call__(self, cipher: Optional[BlockCipher]) -> float:
        inputs = encrypt_batch(self.images, cipher, self.channel_order)
        with torch.no_grad():
            return -float(self.distance(inputs))

    def distance(self, inputs: torch.Tensor) -> torch.Tensor:
        """The mean distance for a batch of images (Nx3xHxW, the pipeline's channels and value range, any dtype;
        differentiable when they are)."""
        self.evaluations += 1
        seen: List[torch.Tensor] = []

        def record(target_mean, target_variance, module, arguments):
            x = arguments[0]
            dims = [0] + list(range(2, x.dim()))
            mean, deviation = x.mean(dims), (x.var(dims, unbiased=False) + module.eps).sqrt()
            seen.append((((mean - target_mean) ** 2 + (deviation - target_variance.sqrt()) ** 2)
                         / target_variance).mean())

        handles = [layer.register_forward_pre_hook(partial(record, *remembered_statistics(layer)))
                   for layer in self.layers]
        try:
            self.forward(inputs)
        finally:
            for handle in handles:
                handle.remove()
        return torch.stack(seen).mean()

    def forward(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """The logits of the decode head and of any auxiliary heads (whose layers keep statistics too)."""
        model = self.model
        data = model.data_preprocessor(dict(inputs=list(inputs.float().unbind(0))), False)
        features = model.extract_feat(data['inputs'])
        outputs = [model.decode_head.forward(features)]
        auxiliary = getattr(model, 'auxiliary_head', None)
        for head in (auxiliary if isinstance(auxiliary, torch.nn.ModuleList) else [auxiliary]):
            if head is not None:
                outputs.append(head.forward(features))
        return outputs


def hill_climb(oracle: Callable[[BlockCipher], float], start: BlockCipher, budget: int = CLIMB_BUDGET,
               flips: bool = True, swaps: bool = True, seed: int = 0,
               log: Callable[[str], None] = _log_nothing, what: str = 'climb') -> Tuple[BlockCipher, Dict]:
    """First-improvement climb from ``start`` over single NP flips and single position swaps.

    A sweep tries every flip, then every swap, each in a random order; a move
    is kept when the oracle rises. Sweeps repeat while one improved and
    evaluations are left. Flips come first: a wrong sign costs a model more
    than a wrong position. Where both moves apply, a swap that does not help
    is tried again with both positions' signs changed, since a source placed
    right under a wrong sign can look no better than before.

    Args:
        oracle (callable): a candidate cipher -> value, higher is better.
        start (BlockCipher): where the climb starts (its FFX part is kept).
        budget (int): the most oracle evaluations, the start's included.
        flips, swaps (bool): which moves to try.
        seed (int): seed of the move order.
        log (callable): progress lines.

    Returns:
        tuple: the best cipher and ``dict(evaluations, accepted, start_value,
        value, seconds, trace)``, ``trace`` holding ``[evaluations, value]``
        at each accepted move.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    source, xor = start.source.copy(), start.xor.astype(np.int64)
    length = len(source)

    def build(source, xor):
        return BlockCipher.from_map(source, xor, start.block_size, start.ffx_mask, start.ffx_table)

    best = oracle(start)
    info = dict(start_value=best, evaluations=1, accepted=0, trace=[[1, best]])
    progress = Progress(what, budget, log)
    pairs = np.stack(np.triu_indices(length, 1), 1)
    while info['evaluations'] < budget:
        moves = ([('flip', int(i)) for i in rng.permutation(length)] if flips else []) + \
                ([('swap', tuple(pairs[i])) for i in rng.permutation(len(pairs))] if swaps else [])
        improved = False
        for kind, where in moves:
            if info['evaluations'] >= budget:
                break
            trials = [(source.copy(), xor.copy())]
            if kind == 'flip':
                trials[0][1][where] ^= 255
            else:
                trials[0][0][[where[0], where[1]]] = trials[0][0][[where[1], where[0]]]
                if flips:
                    trials.append((trials[0][0], trials[0][1].copy()))
                    trials[1][1][[where[0], where[1]]] ^= 255
            for trial_source, trial_xor in trials:
                if info['evaluations'] >= budget:
                    break
                value = oracle(build(trial_source, trial_xor))
                info['evaluations'] += 1
                progress.update(info['evaluations'], f'oracle {best:.4f}')
                if value > best:
                    best, source, xor, improved = value, trial_source, trial_xor, True
                    info['accepted'] += 1
                    info['trace'].append([info['evaluations'], best])
                    break
        if not improved:
            break
    info.update(value=best, seconds=time.perf_counter() - started)
    return build(source, xor), info


def _sinkhorn(logits: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    for _ in range(iterations):
        logits = logits - logits.logsumexp(1, keepdim=True)
        logits = logits - logits.logsumexp(0, keepdim=True)
    return logits.exp()


def relaxed_encrypt(images: torch.Tensor, mixing: torch.Tensor, signs: torch.Tensor, block_size: int,
                    channel_order: str = DEFAULT_CHANNEL_ORDER) -> torch.Tensor:
    """A soft SHF+NP encryption: ``out[i] = signs[i] * sum_j mixing[i, j] * (in[j] - 127.5) + 127.5`` in every block.

    With a permutation matrix and +-1 signs this is the cipher exactly (NP maps ``v`` to ``255 - v``, a sign change
    about 127.5).

    Args:
        images (torch.Tensor): Nx3xHxW, channels in ``channel_order``, H and W multiples of ``block_size``.
        mixing (torch.Tensor): LxL, row i holding the weights of output position i's sources.
        signs (torch.Tensor): L values in [-1, 1].
    """
    n, _, height, width = images.shape
    m = block_size
    rgb = images.float() if channel_order == 'rgb' else images.float().flip(1)
    blocks = (rgb - 127.5).reshape(n, 3, height // m, m, width // m, m).permute(0, 2, 4, 3, 5, 1)
    blocks = blocks.reshape(n, height // m, width // m, 3 * m * m)
    mixed = blocks @ mixing.T * signs + 127.5
    out = mixed.reshape(n, height // m, width // m, m, m, 3).permute(0, 5, 1, 3, 2, 4).reshape(n, 3, height, width)
    return out if channel_order == 'rgb' else out.flip(1)


def relaxed_search(oracle: StatisticsOracle, block_size: int, steps: int = RELAXED_STEPS, learning_rate: float = 0.1,
                   final_temperature: float = 0.05, seed: int = 0,
                   log: Callable[[str], None] = _log_nothing) -> Tuple[BlockCipher, Dict]:
    """Fit a soft permutation (Sinkhorn-normalised logits) and soft signs (tanh) by gradient descent on the
    statistics distance, from no key at all, then round them to a key (each output takes its heaviest source not
    yet taken, the heaviest first; each sign its own sign).

    The temperature falls from 1 to ``final_temperature`` along the steps, so the soft key ends close to one that
    rounds without loss. Only for SHF and NP chains: an FFX table has no useful gradient.

    Returns:
        tuple: the rounded cipher and ``dict(steps, start_distance, distance, seconds)``.
    """
    started = time.perf_counter()
    length = 3 * block_size ** 2
    device = next(oracle.model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    permutation_logits = (0.1 * torch.randn(length, length, generator=generator)).to(device).requires_grad_(True)
    sign_logits = (0.1 * torch.randn(length, generator=generator)).to(device).requires_grad_(True)
    optimiser = torch.optim.Adam([permutation_logits, sign_logits], lr=learning_rate)
    frozen = [p.requires_grad for p in oracle.model.parameters()]
    for p in oracle.model.parameters():
        p.requires_grad_(False)
    progress = Progress('relaxed search', steps, log)
    info = dict(steps=steps)
    images = oracle.images.to(device)
    try:
        for step in range(steps):
            temperature = final_temperature ** (step / max(1, steps - 1))
            mixing = _sinkhorn(permutation_logits / temperature)
            signs = torch.tanh(sign_logits / temperature)
            loss = oracle.distance(relaxed_encrypt(images, mixing, signs, block_size, oracle.channel_order))
            info.setdefault('start_distance', float(loss.detach()))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            progress.update(step + 1, f'distance {float(loss.detach()):.4f}')
    finally:
        for p, flag in zip(oracle.model.parameters(), frozen):
            p.requires_grad_(flag)
    info['distance'] = float(loss.detach())
    with torch.no_grad():
        weights = _sinkhorn(permutation_logits / final_temperature).cpu().numpy()
        xor = np.where(sign_logits.cpu().numpy() >= 0, 0, 255).astype(np.int64)
    info['seconds'] = time.perf_counter() - started
    return BlockCipher.from_map(_round_permutation(weights), xor, block_size), info


def _round_permutation(weights: np.ndarray) -> np.ndarray:
    """A permutation from a doubly stochastic matrix: the heaviest entries first, one per row and column."""
    length = len(weights)
    source = np.full(length, -1)
    taken = np.zeros(length, bool)
    for flat in np.argsort(-weights, axis=None):
        row, column = divmod(int(flat), length)
        if source[row] < 0 and not taken[column]:
            source[row], taken[column] = column, True
    return source


def pick_by_statistics(oracle: Callable[[BlockCipher], float], candidates: Dict[str, BlockCipher]) -> Tuple[str, Dict]:
    """The candidate the oracle rates highest (on images the search did not use), and every candidate's value."""
    values = {name: oracle(cipher) for name, cipher in candidates.items()}
    return max(values, key=values.get), values


def unlabelled_images_attack(model, stem: Optional[Stem], method: str, block_size: int,
                             images: Sequence[torch.Tensor], holdout: Sequence[torch.Tensor],
                             channel_order: str = DEFAULT_CHANNEL_ORDER, budget: int = CLIMB_BUDGET,
                             relaxed_steps: int = RELAXED_STEPS, public_stem: Optional[Stem] = None, seed: int = 0,
                             log: Callable[[str], None] = _log_nothing) -> Dict:
    """The thief with the weights and unlabelled images, from start to the key it keeps.

    Args:
        model: the stolen segmentor, in eval mode.
        stem (Stem, optional): its first convolution (None: the search starts
            from the identity key).
        method (str), block_size (int): the cipher and M (public: in the config).
        images: the unlabelled plain images the search climbs on.
        holdout: other unlabelled plain images that pick among the candidates.
        budget (int): oracle evaluations of each climb.
        relaxed_steps (int): gradient steps of the relaxed search (0: none).
        public_stem (Stem, optional): the first convolution of the public
            weights the model was trained from, when the config names them.
        seed (int): seed of every random choice.
        log (callable): progress lines.

    Returns:
        dict: ``candidates`` (name -> cipher), ``chosen`` (the name the
        held-out images picked), ``oracle`` (which statistic was climbed),
        ``values`` (each candidate's held-out value), ``seconds`` and
        ``steps`` (what each step cost).
    """
    started = time.perf_counter()
    names = parse_method(method)
    search_oracle = StatisticsOracle(model, images, channel_order)
    pick_oracle = StatisticsOracle(model, holdout, channel_order)
    oracle_name = 'normalisation statistics'
    if any(folded_statistics(layer) for layer in search_oracle.layers):
        oracle_name += ', guessed from folded weights'
    if not search_oracle.available:
        oracle_name = 'mutual information'
        search_oracle = _DiversityOracle(model, images, channel_order)
        pick_oracle = _DiversityOracle(model, holdout, channel_order)
    candidates: Dict[str, BlockCipher] = {}
    steps: Dict[str, Dict] = {}
    if stem is not None:
        estimate = estimate_key_from_weights(stem, method, block_size, seed=seed, public_stem=public_stem)
        index = int(np.argmax([search_oracle(c) for c in estimate.candidates]))
        candidates['read off the weights'] = estimate.candidates[index]
    else:
        candidates['read off the weights'] = BlockCipher.from_map(
            np.arange(3 * block_size ** 2), np.zeros(3 * block_size ** 2, np.int64), block_size)
    flips, swaps = 'np' in names, 'shuffle' in names
    if flips or swaps:
        log(f'climbing the {oracle_name} from the key read off the weights, {budget} evaluations')
        candidates['climbed'], steps['climbed'] = hill_climb(
            search_oracle, candidates['read off the weights'], budget, flips, swaps, seed, log, 'climb')
        if relaxed_steps and not any(name in FFX_METHODS for name in names) and oracle_name != 'mutual information':
            log(f'relaxed search: {relaxed_steps} gradient steps on a soft permutation and soft signs')
            relaxed, steps['relaxed'] = relaxed_search(search_oracle, block_size, relaxed_steps, seed=seed, log=log)
            if not swaps:
                relaxed = BlockCipher.from_map(np.arange(relaxed.length), relaxed.xor, block_size)
            if not flips:
                relaxed = BlockCipher.from_map(relaxed.source, np.zeros(relaxed.length, np.int64), block_size)
            log(f'climbing from the relaxed key, {budget} evaluations')
            candidates['relaxed, then climbed'], steps['relaxed, then climbed'] = hill_climb(
                search_oracle, relaxed, budget, flips, swaps, seed + 1, log, 'climb from the relaxed key')
    chosen, values = pick_by_statistics(pick_oracle, candidates)
    return dict(candidates=candidates, chosen=chosen, oracle=oracle_name, values=values, steps=steps,
                evaluations=search_oracle.evaluations + pick_oracle.evaluations,
                seconds=time.perf_counter() - started)


class _DiversityOracle:
    """Prediction diversity (mutual information between pixels and predicted classes) on unlabelled images: the
    oracle left when a model keeps no running statistics."""

    def __init__(self, model, images: Sequence[torch.Tensor], channel_order: str = DEFAULT_CHANNEL_ORDER):
        self.statistics = StatisticsOracle(model, images, channel_order)
        self.evaluations = 0

    def __call__(self, cipher: Optional[BlockCipher]) -> float:
        self.evaluations += 1
        oracle = self.statistics
        inputs = encrypt_batch(oracle.images, cipher, oracle.channel_order)
        with torch.no_grad():
            logits = oracle.forward(inputs)[0].float()
        probabilities = F.softmax(logits, 1).transpose(0, 1).flatten(1)  # classes x pixels
        mean = probabilities.mean(1)
        entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(0).mean()
        return float(-(mean * mean.clamp_min(1e-12).log()).sum() - entropy)
