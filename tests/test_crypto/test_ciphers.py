import numpy as np
import pytest
import torch

from mmseg_keyprotect.crypto import published_style as reference
from mmseg_keyprotect.crypto.ciphers import (
    FFX,
    BlockCipher,
    NegativePositive,
    Shuffle,
    ffx_table,
    pad_to_multiple,
    parse_method,
)
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.errors import ImageFormatError, KeyProtectError

CHAINS = ['shuffle', 'np', 'ffx', 'ffx8', 'shuffle+np', 'np+shuffle', 'np+ffx', 'shuffle+np+ffx', 'np+ffx+shuffle',
          'np+ffx8+shuffle', 'shuffle+shuffle']
KEY = SecretKey(bytes(range(32)))


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def reference_encrypt(cipher: BlockCipher, image: np.ndarray) -> np.ndarray:
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].double()
    for step in cipher.steps:
        if isinstance(step, Shuffle):
            batch = reference.shuffle(batch, torch.from_numpy(step.permutation), cipher.block_size)
        elif isinstance(step, NegativePositive):
            batch = reference.negative_positive(batch, torch.from_numpy(step.mask), cipher.block_size)
        else:
            batch = reference.ffx(batch, torch.from_numpy(step.mask), torch.from_numpy(step.table.astype(np.int64)),
                                  cipher.block_size)
    return batch[0].permute(1, 2, 0).numpy().astype(np.int64)


@pytest.mark.parametrize('method', CHAINS)
@pytest.mark.parametrize('block_size', [1, 2, 3, 4, 8, 16])
def test_matches_reference_and_round_trips(method, block_size):
    cipher = KEY.cipher(method, block_size)
    for height, width in [(block_size, block_size), (2 * block_size, 5 * block_size), (48, 96)]:
        if height % block_size or width % block_size:
            continue
        image = random_image(height, width, seed=height * width)
        encrypted = cipher.encrypt(image)
        assert encrypted.dtype == cipher.output_dtype
        assert np.array_equal(encrypted.astype(np.int64), reference_encrypt(cipher, image))
        assert np.array_equal(cipher.decrypt(encrypted), image)


def test_block_semantics_by_hand():
    """b'[i] = b[K[i]] with (row, column, channel) order, RGB, in every block."""
    permutation = np.arange(12)[::-1].copy()
    cipher = BlockCipher([Shuffle(permutation)], 2)
    image = random_image(4, 4)
    encrypted = cipher.encrypt(image)
    for top in (0, 2):
        for left in (0, 2):
            block = image[top:top + 2, left:left + 2].reshape(-1)
            assert np.array_equal(encrypted[top:top + 2, left:left + 2].reshape(-1), block[permutation])
    mask = np.array([1, 0] * 6, bool)
    negative = BlockCipher([NegativePositive(mask)], 2).encrypt(image)
    block = image[:2, :2].reshape(-1)
    assert np.array_equal(negative[:2, :2].reshape(-1), np.where(mask, 255 - block, block))


def test_ffx_table_is_pyffx():
    import pyffx
    codec = pyffx.Integer(b'secret', length=3)
    table = ffx_table(b'secret')
    assert table.tolist() == [codec.encrypt(value) for value in range(256)]
    assert table.dtype == np.int16 and table.max() <= 999 and len(set(table.tolist())) == 256


def test_ffx_output_keeps_raw_values():
    cipher = KEY.cipher('ffx', 4)
    encrypted = cipher.encrypt(random_image(64, 64))
    assert encrypted.dtype == np.int16 and encrypted.max() > 255 and encrypted.max() <= 999


def test_ffx8_puts_the_ffx_outputs_back_onto_0_to_255_in_their_order():
    ffx, ffx8 = (KEY.cipher(method, 4).ffx_table for method in ('ffx', 'ffx8'))
    assert sorted(ffx8.tolist()) == list(range(256))
    np.testing.assert_array_equal(np.argsort(ffx8), np.argsort(ffx))
    encrypted = KEY.cipher('ffx8', 4).encrypt(random_image(64, 64))
    assert encrypted.dtype == np.int16 and 0 <= encrypted.min() and encrypted.max() <= 255


@pytest.mark.parametrize('method', CHAINS)
def test_bgr_storage_means_the_same_rgb_key(method):
    cipher = KEY.cipher(method, 4)
    image = random_image(16, 24)
    from_bgr = cipher.encrypt(np.ascontiguousarray(image[..., ::-1]), 'bgr')[..., ::-1]
    assert np.array_equal(from_bgr, cipher.encrypt(image))
    assert np.array_equal(cipher.decrypt(np.ascontiguousarray(from_bgr[..., ::-1]), 'bgr'), image[..., ::-1])


@pytest.mark.parametrize('method', CHAINS)
def test_torch_front_end_is_bit_identical(method):
    cipher = KEY.cipher(method, 4)
    images = np.stack([random_image(16, 32, seed) for seed in range(3)])
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    encrypted = cipher.encrypt_tensor(batch, 'bgr')
    for index in range(3):
        expected = cipher.encrypt(images[index], 'bgr')
        assert np.array_equal(encrypted[index].permute(1, 2, 0).numpy(), expected)
    assert torch.equal(cipher.decrypt_tensor(encrypted, 'bgr'), batch)


def test_wrong_key_does_not_decrypt():
    image = random_image(32, 32)
    encrypted = KEY.cipher('shuffle+np', 4).encrypt(image)
    wrong = SecretKey.generate().cipher('shuffle+np', 4).decrypt(encrypted)
    assert (wrong != image).mean() > 0.5


def test_ffx_decrypt_rejects_foreign_values():
    cipher = KEY.cipher('ffx', 2)
    unused = sorted(set(range(1000)) - set(cipher.ffx_table.tolist()))[0]
    encrypted = np.full((2, 2, 3), unused, np.int16)
    with pytest.raises(ImageFormatError, match='never produces'):
        cipher.decrypt(encrypted)


@pytest.mark.parametrize('image, message', [
    (np.zeros((8, 8), np.uint8), 'grayscale'),
    (np.zeros((8, 8, 1), np.uint8), 'grayscale'),
    (np.zeros((8, 8, 4), np.uint8), 'RGBA'),
    (np.zeros((8, 8, 3), np.uint16), 'uint16'),
    (np.zeros((8, 8, 3), np.float32), 'float32'),
    (np.zeros((6, 8, 3), np.uint8), 'not a multiple of the block size 4'),
    ([[1, 2, 3]], 'numpy array'),
])
def test_bad_images_name_the_problem(image, message):
    with pytest.raises(ImageFormatError, match=message):
        KEY.cipher('shuffle', 4).encrypt(image)


@pytest.mark.parametrize('method, message', [
    ('rot13', 'unknown method'), ('', 'empty'), ('shuffle+', 'empty'), ('ffx+np', 'only "shuffle" may follow'),
    ('ffx+ffx', 'only "shuffle" may follow'), ('ffx8+np', 'only "shuffle" may follow "ffx8"')])
def test_bad_methods(method, message):
    with pytest.raises(KeyProtectError, match=message):
        parse_method(method)


@pytest.mark.parametrize('block_size', [0, -4, 2.5, '4', True])
def test_bad_block_sizes(block_size):
    with pytest.raises(KeyProtectError, match='block_size must be a positive integer'):
        KEY.cipher('shuffle', block_size)


def test_explicit_steps_are_checked():
    with pytest.raises(KeyProtectError, match='48 integers'):
        Shuffle.checked(np.arange(47), 48)
    with pytest.raises(KeyProtectError, match='only 0 and 1'):
        NegativePositive.checked(np.full(12, 2), 12)
    with pytest.raises(KeyProtectError, match='256 distinct'):
        FFX.checked(np.zeros(12, int), np.zeros(256, int), 12)


def test_fingerprint_identifies_the_transform():
    assert KEY.cipher('shuffle', 4).fingerprint == KEY.cipher('shuffle', 4).fingerprint
    assert KEY.cipher('shuffle', 4).fingerprint != SecretKey.generate().cipher('shuffle', 4).fingerprint
    assert KEY.cipher('np', 4).fingerprint != KEY.cipher('shuffle', 4).fingerprint


def test_pad_to_multiple():
    padded = pad_to_multiple(np.ones((5, 7, 3), np.uint8), 4, 0)
    assert padded.shape == (8, 8, 3) and padded[:5, :7].all() and not padded[5:].any() and not padded[:, 7:].any()
    label = np.ones((8, 8), np.uint8)
    assert pad_to_multiple(label, 4, 255) is label


def test_huge_images_are_refused_before_any_work():
    from mmseg_keyprotect.crypto.ciphers import check_image
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), (40000, 8, 3), (0, 0, 1))  # no memory behind it
    with pytest.raises(ImageFormatError, match='sides above 32768 pixels are refused'):
        check_image(huge)
