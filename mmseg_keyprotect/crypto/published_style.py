"""The block-wise transforms written as the published code writes them: a reference, not the product's path.

Float tensors, reshape into blocks, index by the key, reshape back: easy to
check by eye against the papers. :class:`~mmseg_keyprotect.crypto.BlockCipher`
computes the same transforms as one composed map; this module is what it is
checked against (the tests) and compared with (the cipher benchmark). Images
are Nx3xHxW float tensors holding 0..255, RGB.
"""
import torch


def to_blocks(images: torch.Tensor, block_size: int) -> torch.Tensor:
    """Nx3xHxW -> N x (H/M) x (W/M) x (M*M*3), each block in (row, column, channel) order."""
    count, channels, height, width = images.shape
    blocks = images.permute(0, 2, 3, 1).reshape(count, height // block_size, block_size, width // block_size,
                                                 block_size, channels)
    return blocks.permute(0, 1, 3, 2, 4, 5).reshape(count, height // block_size, width // block_size, -1)


def from_blocks(blocks: torch.Tensor, block_size: int) -> torch.Tensor:
    count, rows, columns, _ = blocks.shape
    images = blocks.reshape(count, rows, columns, block_size, block_size, 3).permute(0, 1, 3, 2, 4, 5)
    return images.reshape(count, rows * block_size, columns * block_size, 3).permute(0, 3, 1, 2).contiguous()


def shuffle(images: torch.Tensor, permutation: torch.Tensor, block_size: int) -> torch.Tensor:
    return from_blocks(to_blocks(images, block_size)[..., permutation], block_size)


def negative_positive(images: torch.Tensor, mask: torch.Tensor, block_size: int) -> torch.Tensor:
    blocks = to_blocks(images, block_size).clone()
    blocks[..., mask] = 255 - blocks[..., mask]
    return from_blocks(blocks, block_size)


def ffx(images: torch.Tensor, mask: torch.Tensor, table: torch.Tensor, block_size: int) -> torch.Tensor:
    blocks = to_blocks(images, block_size).clone()
    blocks[..., mask] = table[blocks[..., mask].long()].to(blocks.dtype)
    return from_blocks(blocks, block_size)
