import torch

from mmseg_keyprotect.crypto import published_style as reference


def test_blocks_are_row_column_channel_and_invert():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    blocks = reference.to_blocks(images, 2)
    assert blocks.shape == (2, 2, 3, 12)
    # Block (0, 1) of image 0: rows 0-1, columns 2-3, channel fastest.
    expected = [images[0, c, r, 2 + col].item() for r in range(2) for col in range(2) for c in range(3)]
    assert blocks[0, 0, 1].tolist() == expected
    assert torch.equal(reference.from_blocks(blocks, 2), images)


def test_reference_transforms():
    images = torch.randint(0, 256, (1, 3, 4, 4)).double()
    permutation = torch.randperm(12)
    assert torch.equal(reference.shuffle(reference.shuffle(images, permutation, 2), torch.argsort(permutation), 2),
                       images)
    mask = torch.zeros(12, dtype=torch.bool)
    mask[:6] = True
    twice = reference.negative_positive(reference.negative_positive(images, mask, 2), mask, 2)
    assert torch.equal(twice, images)
    table = torch.arange(256) + 500
    out = reference.ffx(images, mask, table, 2)
    assert (reference.to_blocks(out, 2)[..., mask] >= 500).all()
