"""A batch under a condition: the key, plain images, or another cipher.

Every room that scores a model without its key (the protection-gap hook, the
inferencer, the protection report, the attacks, the key-contrastive
negatives) makes its inputs with :func:`encrypt_batch`.

Where the pipeline has already encrypted a batch with the key, the plain
batch is obtained here and nowhere else: by decrypting it, which is exact
(every cipher is a bijection of the pixel values), so the dataloaders, their
workers and DDP need not carry a plain copy beside each encrypted image.
"""
from typing import List, Optional, Union

import torch

from .ciphers import DEFAULT_CHANNEL_ORDER, BlockCipher

#: A condition: ``'key'`` (the model's key), ``'plain'`` (no encryption) or another cipher.
Condition = Union[str, BlockCipher]
#: A 3xHxW or Nx3xHxW image tensor, or a list of them, nested as test-time augmentation nests them.
Inputs = Union[torch.Tensor, List['Inputs']]


def condition_cipher(condition: Condition, key: Optional[BlockCipher]) -> Optional[BlockCipher]:
    """The cipher of a condition (``None`` for plain images), given the model's key cipher.

    Raises:
        ValueError: for anything but ``'key'``, ``'plain'`` or a :class:`BlockCipher`.
    """
    if isinstance(condition, BlockCipher):
        return condition
    if condition == 'key':
        return key
    if condition == 'plain':
        return None
    raise ValueError(f"a condition is 'key', 'plain' or a BlockCipher, got {condition!r}")


def encrypt_batch(inputs: Inputs, cipher: Optional[BlockCipher], channel_order: str = DEFAULT_CHANNEL_ORDER,
                  encrypted_with: Optional[BlockCipher] = None) -> Inputs:
    """``inputs`` as the network would see them under ``cipher`` (``None``: plain).

    Args:
        inputs: uint8 image tensors (3xHxW or Nx3xHxW), or lists of them,
            nested as test-time augmentation nests them; the structure is kept.
        cipher (BlockCipher, optional): the cipher to apply; ``None`` leaves
            the images plain.
        channel_order (str): channel order of the tensors (mmcv loads BGR).
        encrypted_with (BlockCipher, optional): the cipher the pipeline has
            already applied to ``inputs``; they are decrypted first.
    """
    if cipher is encrypted_with:
        return inputs
    if isinstance(inputs, (list, tuple)):
        shapes = {tuple(item.shape) if isinstance(item, torch.Tensor) else None for item in inputs}
        if len(shapes) == 1 and None not in shapes and len(next(iter(shapes))) == 3:
            # Equal-sized images go through as one batch.
            return list(encrypt_batch(torch.stack(list(inputs)), cipher, channel_order, encrypted_with).unbind(0))
        return [encrypt_batch(item, cipher, channel_order, encrypted_with) for item in inputs]
    batch = inputs[None] if inputs.dim() == 3 else inputs
    if encrypted_with is not None:
        batch = encrypted_with.decrypt_tensor(batch, channel_order)
    if cipher is not None:
        batch = cipher.encrypt_tensor(batch, channel_order)
    return batch[0] if inputs.dim() == 3 else batch
