"""One function makes every batch under a condition: the key, plain images, another cipher."""
import numpy as np
import pytest
import torch

from mmseg_keyprotect.crypto import SecretKey
from mmseg_keyprotect.crypto.conditions import condition_cipher, encrypt_batch


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [torch.from_numpy(rng.integers(0, 256, (3, 8, 12), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize('method', ['shuffle+np', 'np+ffx'])
def test_each_image_is_what_the_numpy_cipher_gives(images, method):
    cipher = SecretKey.generate().cipher(method, 4)
    encrypted = encrypt_batch(images, cipher, 'bgr')
    for image, out in zip(images, encrypted):
        expected = cipher.encrypt(image.permute(1, 2, 0).numpy(), 'bgr')
        assert np.array_equal(out.permute(1, 2, 0).numpy(), expected)


def test_an_encrypted_batch_is_decrypted_exactly_before_another_condition(images):
    key, other = (SecretKey.generate().cipher('np+ffx', 4) for _ in range(2))
    encrypted = encrypt_batch(images, key)
    assert all(torch.equal(a, b) for a, b in zip(encrypt_batch(encrypted, None, encrypted_with=key), images))
    again = encrypt_batch(encrypted, other, encrypted_with=key)
    assert all(torch.equal(a, b) for a, b in zip(again, encrypt_batch(images, other)))
    assert encrypt_batch(encrypted, key, encrypted_with=key) is encrypted  # the same condition: untouched


def test_structure_is_kept_for_tta_batches_and_sizes_that_differ(images):
    cipher = SecretKey.generate().cipher('shuffle', 4)
    mixed = [images[0], images[1][:, :4, :8]]
    nested = [mixed, [images[2]]]
    out = encrypt_batch(nested, cipher)
    assert [[tuple(t.shape) for t in group] for group in out] == [[(3, 8, 12), (3, 4, 8)], [(3, 8, 12)]]
    assert torch.equal(out[1][0], encrypt_batch(images[2], cipher))
    assert torch.equal(encrypt_batch(torch.stack(images), cipher)[1], encrypt_batch(images[1], cipher))


def test_conditions_name_a_cipher_or_plain():
    key, other = (SecretKey.generate().cipher('np', 4) for _ in range(2))
    assert condition_cipher('key', key) is key and condition_cipher('plain', key) is None
    assert condition_cipher(other, key) is other
    with pytest.raises(ValueError, match="'key', 'plain' or a BlockCipher"):
        condition_cipher('wrong', key)
