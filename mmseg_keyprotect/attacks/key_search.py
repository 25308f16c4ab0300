"""Judging candidate keys with the stolen model on plain, unlabelled images, and searching near an estimate.

A thief holding the model can encrypt any plain images with a candidate key
and look at what the model predicts, without labels. What to look at is not
obvious: a key-contrastive model, with batch norm on its running statistics
as deployed, predicts one class confidently under a wrong key, so confidence
and entropy favour wrong keys. Prediction diversity does not: the mutual
information between a pixel and its predicted class (the entropy of the mean
prediction minus the mean entropy of a prediction) is high only when the model
tells regions apart. :func:`oracle_values` measures all three so the report
can show which one separates the key from wrong keys; the search uses
:data:`SEARCH_ORACLE`.
"""
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..crypto.ciphers import BlockCipher
from ..crypto.conditions import encrypt_batch
from ..utils.progress import Progress
from .labelled_images import LabelledImages, predict

ORACLES = ('mutual_information', 'confidence', 'negative_entropy')
SEARCH_ORACLE = 'mutual_information'


@torch.no_grad()
def oracle_values(model, images: LabelledImages, cipher: Optional[BlockCipher],
                  batch_size: int = 8) -> Dict[str, float]:
    """Label-free statistics of the model's predictions on ``images`` encrypted with ``cipher``.

    Only the images and their geometry are used, never their labels.

    Returns:
        dict: ``mutual_information`` (nats), ``confidence`` (mean top-class
        probability) and ``negative_entropy`` (minus the mean entropy of a
        pixel's prediction).
    """
    was_training = model.training
    model.eval()
    probability_sum, entropy_sum, confidence_sum, pixels = 0.0, 0.0, 0.0, 0
    for start in range(0, len(images), batch_size):
        batch = dict(inputs=encrypt_batch(images.images[start:start + batch_size], cipher),
                     data_samples=images.samples[start:start + batch_size])
        for sample in predict(model, batch):
            logits = sample.seg_logits.data.float()
            probabilities = logits.softmax(0).flatten(1)  # C x pixels
            probability_sum = probability_sum + probabilities.sum(1)
            entropy_sum += float(-(probabilities * probabilities.clamp_min(1e-12).log()).sum())
            confidence_sum += float(probabilities.max(0).values.sum())
            pixels += probabilities.shape[1]
    model.train(was_training)
    mean = probability_sum / pixels
    mean_entropy = entropy_sum / pixels
    return dict(mutual_information=float(-(mean * mean.clamp_min(1e-12).log()).sum()) - mean_entropy,
                confidence=confidence_sum / pixels, negative_entropy=-mean_entropy)


def oracle_separation(model, images: LabelledImages, key: BlockCipher, others: Sequence[Optional[BlockCipher]]) -> Dict:
    """How well each oracle tells the key from other inputs (wrong keys, plain images): the evaluator's view.

    Returns:
        dict: per oracle, its value under the key, the largest value under the
        others, and ``separates``: whether the key scores above every other.
    """
    at_key = oracle_values(model, images, key)
    at_others = [oracle_values(model, images, other) for other in others]
    return {name: dict(key=at_key[name], others_max=max(o[name] for o in at_others),
                       separates=bool(at_key[name] > max(o[name] for o in at_others))) for name in ORACLES}


def pick_candidate(model, images: LabelledImages, candidates: Sequence[BlockCipher],
                   oracle: str = SEARCH_ORACLE) -> Tuple[int, List[float]]:
    """The candidate the oracle rates highest, and every candidate's value."""
    values = [oracle_values(model, images, candidate)[oracle] for candidate in candidates]
    return int(np.argmax(values)), values


def local_search(model, images: LabelledImages, start: BlockCipher, flips: Sequence[int] = (),
                 swaps: Sequence[Tuple[int, int]] = (), budget: int = 200, oracle: str = SEARCH_ORACLE,
                 sweeps: int = 2, log: Callable[[str], None] = lambda message: None) -> Tuple[BlockCipher, Dict]:
    """First-improvement search around ``start``: single NP flips and single position swaps.

    Moves are tried in the order given (least certain first), each kept when
    the oracle rises; the list is swept again while a sweep improved and
    evaluations are left.

    Args:
        model: the stolen segmentor.
        images (LabelledImages): plain images; their labels are never read.
        start (BlockCipher): the estimate to improve.
        flips (Sequence[int]): output positions whose XOR may change.
        swaps (Sequence[tuple]): output position pairs whose sources may swap.
        budget (int): the most oracle evaluations.
        sweeps (int): the most passes over the moves.
        log (callable): progress lines.

    Returns:
        tuple: the best cipher found and ``dict(evaluations, accepted,
        start_value, value, seconds)``.
    """
    started = time.perf_counter()
    source, xor = start.source.copy(), start.xor.astype(np.int64)
    mask, table = start.ffx_mask, start.ffx_table

    def build(source, xor):
        return BlockCipher.from_map(source, xor, start.block_size, mask, table)

    best = oracle_values(model, images, start)[oracle]
    info = dict(start_value=best, evaluations=1, accepted=0)
    moves = [('flip', i) for i in flips] + [('swap', pair) for pair in swaps]
    progress = Progress('weights-only search', budget, log)
    for _ in range(sweeps):
        improved = False
        for kind, where in moves:
            if info['evaluations'] >= budget:
                break
            trial_source, trial_xor = source.copy(), xor.copy()
            if kind == 'flip':
                trial_xor[where] = 255 - trial_xor[where]
            else:
                trial_source[[where[0], where[1]]] = trial_source[[where[1], where[0]]]
            value = oracle_values(model, images, build(trial_source, trial_xor))[oracle]
            info['evaluations'] += 1
            progress.update(info['evaluations'], f'{oracle.replace("_", " ")} {best:.4f}')
            if value > best:
                best, source, xor, improved = value, trial_source, trial_xor, True
                info['accepted'] += 1
        if not improved or info['evaluations'] >= budget:
            break
    info.update(value=best, seconds=time.perf_counter() - started)
    return build(source, xor), info
