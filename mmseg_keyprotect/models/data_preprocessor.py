"""Encryption of whole batches on the model's device, for training where the CPU pipeline is the bottleneck."""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Union

import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

from ..crypto.ciphers import BlockCipher, check_channel_order, parse_method
from ..crypto.keys import load_key


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
        method (str | Sequence[str]): as ``BlockwiseEncrypt``. Defaults to ``'shuffle'``.
        block_size (int): as ``BlockwiseEncrypt``. Defaults to 4.
        key_file (str, optional): key file; default ``$KEYPROTECT_KEY_FILE``.
        channel_order (str): channel order of the packed images; mmcv loads
            BGR. Defaults to ``'bgr'``.
        **kwargs: ``SegDataPreProcessor`` arguments (mean, std, bgr_to_rgb,
            size, pad_val, seg_pad_val, ...).
    """

    def __init__(self, method: Union[str, Sequence[str]] = 'shuffle', block_size: int = 4,
                 key_file: Optional[str] = None, channel_order: str = 'bgr', **kwargs):
        super().__init__(**kwargs)
        check_channel_order(channel_order)
        self.method = '+'.join(parse_method(method))
        self.key_file = key_file
        self.channel_order = channel_order
        self.cipher: BlockCipher = load_key(key_file).cipher(self.method, block_size)
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
        """Encrypt a list of 3xHxW uint8 images; equal sizes go through as one batch."""
        if self._active is None:
            return list(inputs)
        if len({tuple(image.shape) for image in inputs}) == 1:
            return list(self._active.encrypt_tensor(torch.stack(list(inputs)), self.channel_order).unbind(0))
        return [self._active.encrypt_tensor(image[None], self.channel_order)[0] for image in inputs]

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        data['inputs'] = self.encrypt(data['inputs'])
        return super().forward(data, training)
