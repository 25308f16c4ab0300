import cv2
import numpy as np
import pytest

from mmseg_keyprotect.apis import list_images, read_image, transform_files, write_image
from mmseg_keyprotect.crypto.keys import load_key
from mmseg_keyprotect.errors import ImageFormatError


def test_write_image_picks_8_or_16_bits(tmp_path):
    assert cv2.imread(str(write_image(tmp_path / 'a', np.full((4, 4, 3), 200, np.int16))), -1).dtype == np.uint8
    wide = np.full((4, 4, 3), 999, np.int16)
    path = write_image(tmp_path / 'b.png', wide)
    assert np.array_equal(read_image(path, encrypted=True), wide)


@pytest.mark.parametrize('array, message', [
    (np.zeros((4, 4), np.uint8), 'grayscale'),
    (np.zeros((4, 4, 4), np.uint8), 'RGBA'),
    (np.zeros((4, 4, 3), np.uint16), 'uint16 image; expected 8-bit'),
])
def test_read_image_names_file_and_problem(tmp_path, array, message):
    path = tmp_path / 'x.png'
    cv2.imwrite(str(path), array)
    with pytest.raises(ImageFormatError, match=message) as error:
        read_image(path)
    assert str(path) in str(error.value)


def test_unreadable_and_missing(tmp_path):
    (tmp_path / 'junk.png').write_bytes(b'not an image')
    with pytest.raises(ImageFormatError, match='not a readable image'):
        read_image(tmp_path / 'junk.png')
    with pytest.raises(ImageFormatError, match='no such file'):
        read_image(tmp_path / 'missing.png')
    with pytest.raises(ImageFormatError, match='no such file or folder'):
        list_images(tmp_path / 'missing-folder')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ImageFormatError, match='no images'):
        list_images(tmp_path / 'empty')


def test_folder_round_trip_keeps_structure(tmp_path, key_file):
    (tmp_path / 'in' / 'sub').mkdir(parents=True)
    image = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'in' / 'sub' / 'a.png'), image)
    cipher = load_key(key_file).cipher('np+ffx', 4)
    root, files = list_images(tmp_path / 'in')
    [encrypted] = transform_files(cipher, files, root, tmp_path / 'enc')
    assert encrypted == tmp_path / 'enc' / 'sub' / 'a.png'
    root, files = list_images(tmp_path / 'enc')
    [decrypted] = transform_files(cipher, files, root, tmp_path / 'dec', decrypt=True)
    assert np.array_equal(cv2.imread(str(decrypted)), image)
