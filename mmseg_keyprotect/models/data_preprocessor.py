"""Data preprocessors of protected training: encryption on the device, and key-contrastive negatives."""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

from ..crypto.ciphers import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CHANNEL_ORDER,
    DEFAULT_METHOD,
    BlockCipher,
    check_channel_order,
    parse_method,
)
from ..crypto.conditions import encrypt_batch
from ..crypto.keys import MATERIAL_BYTES, SecretKey
from ..crypto.near_keys import close_key, key_parts, near_key
from ..crypto.run_key import RunKey
from ..errors import ConfigError

#: Metainfo flag of the samples that :class:`KeyContrastiveDataPreProcessor` adds.
NEGATIVE_META_KEY = 'key_contrastive_negative'
DEFAULT_NEGATIVES = dict(random_key=0.5, near_key=0.25, plain=0.25)
#: Every kind of negative a key-contrastive preprocessor can draw (``close_key``: see
#: :func:`~mmseg_keyprotect.crypto.near_keys.close_key`).
NEGATIVE_KINDS = ('random_key', 'near_key', 'close_key', 'plain')


@MODELS.register_module()
class KeyProtectDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that first encrypts the batch block-wise on the model's device.

    Every pipeline then ends with ``BlockwiseEncrypt(on_device=True)``, which
    pads images to whole blocks and records the padding but leaves pixels
    plain; this preprocessor encrypts the uint8 images after they reach the
    device, before normalisation. The network receives exactly the inputs the
    pipeline transform would give it (``encrypt_tensor`` is bit-identical to
    the numpy cipher), so the alignment guarantees and checkpoints are the
    same. ``tools/protect_config.py --on-device`` writes such configs.

    Args:
        method (str | Sequence[str]): as ``BlockwiseEncrypt``. Defaults to ``'shuffle+np'``.
        block_size (int): as ``BlockwiseEncrypt``. Defaults to 4.
        key_file (str, optional): a key file for this config alone; default the run's key.
        channel_order (str): channel order of the packed images; mmcv loads
            BGR. Defaults to ``'bgr'``.
        **kwargs: ``SegDataPreProcessor`` arguments (mean, std, bgr_to_rgb,
            size, pad_val, seg_pad_val, ...).
    """

    #: Whether this preprocessor encrypts its inputs (the pipelines then only pad).
    encrypts_inputs = True

    def __init__(self, method: Union[str, Sequence[str]] = DEFAULT_METHOD,
                 block_size: int = DEFAULT_BLOCK_SIZE, key_file: Optional[str] = None,
                 channel_order: str = DEFAULT_CHANNEL_ORDER, **kwargs):
        super().__init__(**kwargs)
        check_channel_order(channel_order)
        self.method = '+'.join(parse_method(method))
        self.key_file = key_file
        self.channel_order = channel_order
        self.cipher: BlockCipher = RunKey.for_file(key_file).cipher(self.method, block_size)
        self.block_size = self.cipher.block_size
        self._active: Optional[BlockCipher] = self.cipher

    @contextmanager
    def encrypting_with(self, cipher: Optional[BlockCipher]) -> Iterator[None]:
        """Encrypt with another cipher (``None``: not at all) inside the block.

        The key-aware hook uses it to score plain images and wrong keys.
        """
        previous, self._active = self._active, cipher
        try:
            yield
        finally:
            self._active = previous

    def encrypt(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Encrypt a list of 3xHxW uint8 images with the active cipher (the key, or what
        :meth:`encrypting_with` chose)."""
        return encrypt_batch(list(inputs), self._active, self.channel_order)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        data['inputs'] = self.encrypt(data['inputs'])
        return super().forward(data, training)


@MODELS.register_module()
class KeyContrastiveDataPreProcessor(KeyProtectDataPreProcessor):
    """Adds, in training, negative copies of the images: the batch under a key that is not the key.

    After the batch comes one copy of each of its images (or of a share of them,
    ``negative_share``, at every ``negative_interval``-th iteration), encrypted with a fresh
    random key, with a near key (a random share of one part of the key right,
    up to ``max_near_fraction``), with a close key (the key a few moves away:
    channels reordered, a few positions swapped, a few NP bits flipped), or
    left plain, drawn with the probabilities of ``negatives``. The copies' data samples carry
    ``metainfo[NEGATIVE_META_KEY] = True``; a key-contrastive segmentor
    (:class:`~mmseg_keyprotect.models.segmentors.KeyContrastiveEncoderDecoder`)
    trains its predictions on them toward uninformative. The positives are
    exactly what :class:`KeyProtectDataPreProcessor` (``on_device=True``) or
    the pipeline (``on_device=False``) gives, and outside training this is
    that preprocessor: the key holder's path does not change.

    Random negatives come from a generator seeded by NumPy's global state,
    which MMEngine seeds with ``randomness.seed``: runs repeat.

    Args:
        on_device (bool): True: the pipelines only pad and this preprocessor
            encrypts (as :class:`KeyProtectDataPreProcessor`); False: the
            pipelines encrypt and the negatives are made from the decrypted
            batch. Defaults to True.
        negatives (dict): probabilities of ``random_key``, ``near_key``,
            ``close_key`` and ``plain`` negatives. Defaults to 0.5 / 0.25 / 0 / 0.25.
        max_near_fraction (float): the largest share of the key a near-key
            negative gets right. Defaults to 0.9.
        negative_share (float): the share of a batch's images that get a
            negative copy (drawn at random; at least two, or the whole batch
            if smaller, since batch norm needs more than one image). Less than
            1 makes training cheaper: the network's work grows by this share.
            Defaults to 1.0.
        negative_interval (int): add negatives at every n-th training
            iteration only. Defaults to 1 (every iteration).
        **kwargs: :class:`KeyProtectDataPreProcessor` arguments.
    """

    def __init__(self, on_device: bool = True, negatives: Optional[Dict[str, float]] = None,
                 max_near_fraction: float = 0.9, negative_share: float = 1.0, negative_interval: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < negative_share <= 1.0:
            raise ConfigError(f'negative_share = {negative_share!r}: expected 0 < share <= 1')
        if isinstance(negative_interval, bool) or not isinstance(negative_interval, int) or negative_interval < 1:
            raise ConfigError(f'negative_interval = {negative_interval!r}: expected an integer >= 1')
        self.negative_share, self.negative_interval = float(negative_share), negative_interval
        self._training_calls = 0
        self.on_device = bool(on_device)
        self.negatives = dict(DEFAULT_NEGATIVES if negatives is None else negatives)
        unknown = set(self.negatives) - set(NEGATIVE_KINDS)
        weights = np.array(list(self.negatives.values()), dtype=float)
        if unknown or not len(weights) or (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(f'negatives = {negatives!r}: expected non-negative probabilities of '
                              f'{list(NEGATIVE_KINDS)} with a positive sum')
        if not 0.0 <= max_near_fraction < 1.0:
            raise ConfigError(f'max_near_fraction = {max_near_fraction!r}: expected 0 <= value < 1')
        self.max_near_fraction = max_near_fraction
        self._kinds, self._kind_weights = list(self.negatives), weights / weights.sum()
        self._rng = np.random.default_rng(np.random.randint(2 ** 31))

    @property
    def encrypts_inputs(self) -> bool:
        return self.on_device

    def encrypt(self, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        return super().encrypt(inputs) if self.on_device else list(inputs)

    def forward(self, data: dict, training: bool = False) -> dict:
        if not training:
            return super().forward(data, training)
        self._training_calls += 1
        if (self._training_calls - 1) % self.negative_interval:
            return super().forward(data, training)
        data = self.cast_data(data)
        inputs, samples = list(data['inputs']), list(data['data_samples'])
        # Two at least, where the batch has two: batch norm in training needs more than one value per channel,
        # and a pooled branch (PSPNet's 1x1 pyramid level, an ASPP image pool) has one per image.
        count = max(min(2, len(inputs)), round(self.negative_share * len(inputs)))
        chosen_images = np.sort(self._rng.choice(len(inputs), count, replace=False)) if count < len(inputs) \
            else np.arange(len(inputs))
        # Off the device, the pipeline has encrypted the batch with the key: the negatives start from it.
        source = None if self.on_device else self.cipher
        kinds = self._rng.choice(len(self._kinds), len(chosen_images), p=self._kind_weights)
        negatives: List[torch.Tensor] = [None] * len(chosen_images)
        for kind_index in set(kinds.tolist()):
            chosen = np.flatnonzero(kinds == kind_index)
            encrypted = encrypt_batch([inputs[chosen_images[i]] for i in chosen],
                                      self._negative_cipher(self._kinds[kind_index]), self.channel_order, source)
            for index, image in zip(chosen, encrypted):
                negatives[index] = image
        copies = []
        for index in chosen_images:
            copy = samples[index].clone()
            copy.set_metainfo({NEGATIVE_META_KEY: True})
            copies.append(copy)
        data['inputs'] = self.encrypt(inputs) + negatives
        data['data_samples'] = samples + copies
        return SegDataPreProcessor.forward(self, data, training)

    def _negative_cipher(self, kind: str) -> Optional[BlockCipher]:
        if kind == 'plain':
            return None
        if kind == 'random_key':
            return SecretKey(self._rng.bytes(MATERIAL_BYTES)).cipher(self.method, self.block_size)
        if kind == 'close_key':
            return close_key(self.cipher, self._rng)
        part = str(self._rng.choice(key_parts(self.cipher)))
        return near_key(self.cipher, part, float(self._rng.uniform(0.0, self.max_near_fraction)), self._rng)
