import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmseg_keyprotect.apis import (
    list_images,
    plan_outputs,
    read_image,
    read_record,
    transform_files,
    write_image,
)
from mmseg_keyprotect.crypto.key_files import load_key
from mmseg_keyprotect.crypto.verifier import matches
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
    [encrypted], failures = transform_files(cipher, 'np+ffx', plan_outputs(tmp_path / 'in', tmp_path / 'enc'))
    assert encrypted == tmp_path / 'enc' / 'sub' / 'a.png' and not failures
    record = read_record(encrypted)
    assert (record.method, record.block_size) == ('np+ffx', 4) and matches(record.verifier, cipher, 'image')
    assert cipher.fingerprint not in encrypted.read_bytes().decode('latin-1')
    [decrypted], _ = transform_files(cipher, 'np+ffx', plan_outputs(tmp_path / 'enc', tmp_path / 'dec'),
                                     decrypt=True)
    assert np.array_equal(cv2.imread(str(decrypted)), image)
    assert read_record(decrypted) is None


def write_images(folder, names, size=(8, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((*size, 3), 10 * index, np.uint8))


def test_an_output_that_is_the_input_or_inside_it_is_refused(tmp_path):
    write_images(tmp_path / 'in', ['a.png'])
    for output in (tmp_path / 'in', tmp_path / 'in' / 'enc'):
        with pytest.raises(ImageFormatError, match='lies inside it'):
            plan_outputs(tmp_path / 'in', output)
    with pytest.raises(ImageFormatError, match='is the input itself'):
        plan_outputs(tmp_path / 'in' / 'a.png', tmp_path / 'in' / 'a.png')


def test_two_inputs_with_one_output_name_are_refused_by_name(tmp_path):
    write_images(tmp_path / 'in', ['same.jpg', 'same.png'])
    with pytest.raises(ImageFormatError, match=r'same\.jpg and .*same\.png would both be written to'):
        plan_outputs(tmp_path / 'in', tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_a_dot_in_a_folder_name_does_not_make_it_a_file(tmp_path, key_file):
    write_images(tmp_path / 'in', ['a.png', 'b.png'])
    cipher = load_key(key_file).cipher('shuffle', 4)
    written, _ = transform_files(cipher, 'shuffle', plan_outputs(tmp_path / 'in', tmp_path / 'enc.v1'))
    assert sorted(p.name for p in (tmp_path / 'enc.v1').iterdir()) == ['a.png', 'b.png'] and len(written) == 2


def test_existing_outputs_are_not_overwritten_unless_asked(tmp_path, key_file):
    write_images(tmp_path / 'in', ['a.png'])
    cipher = load_key(key_file).cipher('shuffle', 4)
    transform_files(cipher, 'shuffle', plan_outputs(tmp_path / 'in', tmp_path / 'out'))
    before = read_record(tmp_path / 'out' / 'a.png')
    with pytest.raises(ImageFormatError, match='already exist; nothing was written'):
        plan_outputs(tmp_path / 'in', tmp_path / 'out')
    assert read_record(tmp_path / 'out' / 'a.png') == before
    transform_files(cipher, 'shuffle', plan_outputs(tmp_path / 'in', tmp_path / 'out', overwrite=True))
    assert read_record(tmp_path / 'out' / 'a.png') != before  # a new file, with its own verifier salt


def test_keep_going_processes_the_rest_and_lists_failures(tmp_path, key_file):
    write_images(tmp_path / 'in', ['a.png', 'c.png'])
    (tmp_path / 'in' / 'b.png').write_bytes(b'not an image')
    cipher = load_key(key_file).cipher('shuffle', 4)
    pairs = plan_outputs(tmp_path / 'in', tmp_path / 'out')
    with pytest.raises(ImageFormatError, match='b.png: not a readable image'):
        transform_files(cipher, 'shuffle', pairs)
    written, failures = transform_files(cipher, 'shuffle', pairs, keep_going=True)
    assert [p.name for p in written] == ['a.png', 'c.png'] and len(failures) == 1 and 'b.png' in failures[0]
    assert not [p for p in (tmp_path / 'out').iterdir() if p.name.startswith('.')]  # no staging files left


def test_decryption_refuses_another_key_method_or_block_size(tmp_path, key_file, other_key_file):
    write_images(tmp_path / 'in', ['a.png'])
    cipher = load_key(key_file).cipher('shuffle', 4)
    transform_files(cipher, 'shuffle', plan_outputs(tmp_path / 'in', tmp_path / 'enc'))
    for wrong, method, message in ((load_key(other_key_file).cipher('shuffle', 4), 'shuffle', 'another key'),
                                   (load_key(key_file).cipher('np', 4), 'np', 'encrypted with shuffle, M = 4'),
                                   (load_key(key_file).cipher('shuffle', 2), 'shuffle', 'not shuffle, M = 2')):
        with pytest.raises(ImageFormatError, match=message):
            transform_files(wrong, method, plan_outputs(tmp_path / 'enc', tmp_path / 'dec'), decrypt=True)
    assert not (tmp_path / 'dec').exists()


def test_unsupported_formats_get_a_clean_error(tmp_path):
    (tmp_path / 'x.exr').write_bytes(b'v/1\x01' + bytes(100))
    with pytest.raises(ImageFormatError, match='x.exr'):
        read_image(tmp_path / 'x.exr')


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(['method', 'block_size', 'verifier', 'original_size', 'x']), children, max_size=4),
    max_leaves=8).map(lambda value: json.dumps(value).encode()))
def test_any_metadata_chunk_gives_a_record_or_a_clear_error(tmp_path, text):
    """Property: whatever a client's metadata chunk holds, reading it gives a well-typed record or an
    ImageFormatError naming the file, never another exception."""
    from mmseg_keyprotect.apis import read_record
    from mmseg_keyprotect.apis.image_encryption import METADATA_KEYWORD, _png_chunk
    png = cv2.imencode('.png', np.zeros((4, 4, 3), np.uint8))[1].tobytes()
    path = tmp_path / 'crafted.png'
    path.write_bytes(png[:33] + _png_chunk(b'tEXt', METADATA_KEYWORD + b'\0' + text) + png[33:])
    try:
        record = read_record(path)
    except ImageFormatError as error:
        assert 'crafted.png' in str(error)
        return
    assert isinstance(record.method, str) and isinstance(record.block_size, int) and record.block_size > 0
    assert isinstance(record.verifier, dict)
    assert record.original_size is None or all(isinstance(v, int) and v > 0 for v in record.original_size)
