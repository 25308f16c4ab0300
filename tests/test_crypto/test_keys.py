import base64
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto.ciphers import block_length
from mmseg_keyprotect.crypto.key_files import (
    FORMAT_VERSION,
    export_arrays,
    load_key,
    write_legacy_key,
    write_password_key,
    write_random_key,
)
from mmseg_keyprotect.crypto.keys import ArrayKey, KeyStream, LegacyKey, SecretKey
from mmseg_keyprotect.errors import KeyFileError

DATA = Path(__file__).parents[1] / 'data'
FAST_SCRYPT = dict(n=2**10, r=8, p=1)


def test_random_key_file_is_private_and_versioned(tmp_path):
    key = write_random_key(tmp_path / 'a.key')
    assert stat.S_IMODE(os.stat(tmp_path / 'a.key').st_mode) == 0o600
    document = json.loads((tmp_path / 'a.key').read_text())
    assert document['version'] == FORMAT_VERSION and document['kind'] == 'random'
    assert load_key(tmp_path / 'a.key').fingerprint == key.fingerprint
    assert len(base64.b64decode(document['material'])) == 32


def test_two_keys_differ_and_repr_hides_material(tmp_path):
    a, b = write_random_key(tmp_path / 'a.key'), write_random_key(tmp_path / 'b.key')
    assert a.fingerprint != b.fingerprint
    material = json.loads((tmp_path / 'a.key').read_text())['material']
    assert material not in repr(a)


def test_refuses_to_overwrite(tmp_path):
    write_random_key(tmp_path / 'a.key')
    with pytest.raises(KeyFileError, match='refusing to overwrite'):
        write_random_key(tmp_path / 'a.key')


def test_test_vectors_hold():
    """The committed key must give the committed arrays: derivation is platform independent."""
    key = load_key(DATA / 'test_vector_key.json', warn_permissions=False)
    vectors = json.loads((DATA / 'test_vectors.json').read_text())
    assert key.fingerprint == vectors['key_fingerprint']
    for case in vectors['cases']:
        method = '+'.join(step['method'] for step in case.get('steps', [case]))
        assert export_arrays(key, method, case['block_size']) == case


def test_subkeys_differ_by_method_block_size_and_position():
    key = SecretKey(bytes(range(32)))
    a = key.cipher('shuffle+shuffle', 4).steps
    assert not np.array_equal(a[0].permutation, a[1].permutation)
    assert not np.array_equal(key.cipher('np', 4).steps[0].mask, key.cipher('ffx', 4).steps[0].mask)
    assert key.cipher('shuffle', 4).fingerprint != key.cipher('shuffle', 8).fingerprint


@pytest.mark.parametrize('block_size', [1, 2, 3, 4, 5, 16])
def test_masks_have_exactly_half_ones(block_size):
    key = SecretKey.generate()
    for method in ('np', 'ffx', 'ffx8'):
        assert key.cipher(method, block_size).steps[0].mask.sum() == block_length(block_size) // 2


def test_key_stream_is_uniform_enough():
    stream = KeyStream(b'k' * 32, 'label')
    draws = np.array([stream.below(6) for _ in range(6000)])
    counts = np.bincount(draws, minlength=6)
    assert counts.min() > 850 and counts.max() < 1150


def test_permutation_positions_are_uniform():
    """Fisher-Yates without bias: each value lands in position 0 about equally often."""
    firsts = [KeyStream(bytes([i % 256, i // 256]) * 16, 'p').permutation(4)[0] for i in range(2000)]
    counts = np.bincount(firsts, minlength=4)
    assert counts.min() > 400 and counts.max() < 600


def test_password_key_round_trip(tmp_path, monkeypatch):
    written = write_password_key(tmp_path / 'p.key', 'correct horse battery', **FAST_SCRYPT)
    document = json.loads((tmp_path / 'p.key').read_text())
    assert 'material' not in document and 'correct horse' not in (tmp_path / 'p.key').read_text()
    assert load_key(tmp_path / 'p.key', password='correct horse battery').fingerprint == written.fingerprint
    monkeypatch.setenv('KEYPROTECT_PASSWORD', 'correct horse battery')
    assert load_key(tmp_path / 'p.key').fingerprint == written.fingerprint
    with pytest.raises(KeyFileError, match='wrong password'):
        load_key(tmp_path / 'p.key', password='wrong')


def test_password_keys_are_salted(tmp_path):
    a = write_password_key(tmp_path / 'a.key', 'same password', **FAST_SCRYPT)
    b = write_password_key(tmp_path / 'b.key', 'same password', **FAST_SCRYPT)
    assert a.fingerprint != b.fingerprint


def test_password_key_without_password_is_a_clear_error(tmp_path, monkeypatch):
    write_password_key(tmp_path / 'p.key', 'pw', min_length=1, **FAST_SCRYPT)  # short: the override for tests
    monkeypatch.delenv('KEYPROTECT_PASSWORD', raising=False)
    with pytest.raises(KeyFileError, match='KEYPROTECT_PASSWORD'):
        load_key(tmp_path / 'p.key')


def test_legacy_key_reproduces_published_code(tmp_path):
    """Published code: torch.manual_seed(seed); randperm(L); mask = perm > L / 2."""
    with pytest.warns(UserWarning, match='legacy'):
        key = load_key(write_legacy_key(tmp_path / 'l.key', 7, 'password').source)
    torch.manual_seed(7)
    expected = torch.randperm(48).numpy()
    assert np.array_equal(key.cipher('shuffle', 4).steps[0].permutation, expected)
    assert np.array_equal(key.cipher('np', 4).steps[0].mask, expected > 24)
    import pyffx
    codec = pyffx.Integer(b'password', length=3)
    assert key.cipher('ffx', 4).steps[0].table.tolist() == [codec.encrypt(v) for v in range(256)]


def test_exported_arrays_load_back_as_the_same_cipher(tmp_path, key_file):
    key = load_key(key_file)
    for method in ('shuffle', 'np', 'ffx', 'ffx8', 'np+shuffle'):
        path = tmp_path / f'{method}.json'
        path.write_text(json.dumps(export_arrays(key, method, 4)))
        path.chmod(0o600)
        loaded = load_key(path)
        assert isinstance(loaded, ArrayKey)
        assert loaded.cipher(method, 4).fingerprint == key.cipher(method, 4).fingerprint
    with pytest.raises(KeyFileError, match='block size 4, not 8'):
        loaded.cipher('np+shuffle', 8)
    with pytest.raises(KeyFileError, match='chain np\\+shuffle'):
        loaded.cipher('shuffle', 4)


def test_exported_arrays_are_validated(tmp_path):
    document = dict(format='mmseg-keyprotect-arrays', version=1, block_size=2, method='shuffle',
                    permutation=[0] * 12)
    (tmp_path / 'bad.json').write_text(json.dumps(document))
    (tmp_path / 'bad.json').chmod(0o600)
    with pytest.raises(KeyFileError, match='not a permutation'):
        load_key(tmp_path / 'bad.json')
    document = dict(format='mmseg-keyprotect-arrays', version=1, block_size=1, method='ffx8', mask=[1, 0, 1],
                    ffx_table=list(range(744, 1000)))
    (tmp_path / 'bad.json').write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match='ffx8.*above 255'):
        load_key(tmp_path / 'bad.json')


@pytest.mark.parametrize('content, message', [
    ('', 'truncated or not JSON'),
    ('{"format": "mmseg-keyprotect-key", "version": 1, "kind": "random", "mat', 'truncated or not JSON'),
    ('{"hello": 1}', 'not a mmseg-keyprotect key file'),
    ('{"format": "mmseg-keyprotect-key", "version": 99, "kind": "random"}', 'version 99'),
    ('{"format": "mmseg-keyprotect-key", "version": 1, "kind": "random"}', 'lacks the field "material"'),
    ('{"format": "mmseg-keyprotect-key", "version": 1, "kind": "random", "material": "!!"}', 'base64'),
    ('{"format": "mmseg-keyprotect-key", "version": 1, "kind": "magic"}', 'unknown key kind'),
])
def test_bad_key_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / 'bad.key'
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message) as error:
        load_key(path)
    assert str(path) in str(error.value)


def test_binary_and_missing_key_files(tmp_path, monkeypatch):
    (tmp_path / 'bin.key').write_bytes(b'\xff\xfe\x00\x81')
    with pytest.raises(KeyFileError, match='binary'):
        load_key(tmp_path / 'bin.key', warn_permissions=False)
    with pytest.raises(KeyFileError, match='does not exist'):
        load_key(tmp_path / 'missing.key')
    monkeypatch.delenv('KEYPROTECT_KEY_FILE', raising=False)
    with pytest.raises(KeyFileError, match='KEYPROTECT_KEY_FILE'):
        RunKey.load()


def test_corrupted_material_is_detected(tmp_path):
    write_random_key(tmp_path / 'a.key')
    document = json.loads((tmp_path / 'a.key').read_text())
    document['fingerprint'] = '0' * 16
    (tmp_path / 'a.key').write_text(json.dumps(document))
    with pytest.raises(KeyFileError, match='corrupted'):
        load_key(tmp_path / 'a.key')


def test_loose_permissions_warn(tmp_path):
    write_random_key(tmp_path / 'a.key')
    (tmp_path / 'a.key').chmod(0o644)
    with pytest.warns(UserWarning, match='chmod 600'):
        load_key(tmp_path / 'a.key')


def test_legacy_key_is_not_secret_key():
    assert LegacyKey(1).fingerprint != LegacyKey(2).fingerprint


def test_key_files_are_private_from_the_first_byte_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        write_random_key(tmp_path / 'a.key')
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / 'a.key').stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ['a.key']  # no staging file left behind


def test_key_files_are_never_written_through_a_link(tmp_path):
    (tmp_path / 'out.key').symlink_to(tmp_path / 'elsewhere.txt')
    for overwrite in (False, True):
        with pytest.raises(KeyFileError, match='symbolic link'):
            write_random_key(tmp_path / 'out.key', overwrite=overwrite)
    assert not (tmp_path / 'elsewhere.txt').exists()


def test_overwriting_replaces_the_file_instead_of_writing_into_it(tmp_path):
    target = tmp_path / 'k.key'
    first = write_random_key(target)
    with pytest.raises(KeyFileError, match='refusing to overwrite'):
        write_random_key(target)
    assert load_key(target).fingerprint == first.fingerprint
    inode = target.stat().st_ino
    other_name = tmp_path / 'hard-link-held-by-someone-else'
    os.link(target, other_name)
    second = write_random_key(target, overwrite=True)
    assert target.stat().st_ino != inode and load_key(target).fingerprint == second.fingerprint
    assert load_key(other_name).fingerprint == first.fingerprint  # the old file was not written into


def test_oversized_key_files_are_refused_unread(tmp_path):
    path = tmp_path / 'big.key'
    path.write_bytes(b' ' * (5 * 2**20))
    with pytest.raises(KeyFileError, match='not a key file'):
        load_key(path)


def test_short_passwords_are_refused(tmp_path):
    with pytest.raises(KeyFileError, match='1 characters; at least 12'):
        write_password_key(tmp_path / 'p.key', 'x', **FAST_SCRYPT)
    assert not (tmp_path / 'p.key').exists()


def test_legacy_keys_never_read_the_password_variable(tmp_path, monkeypatch):
    """A user's real password (KEYPROTECT_PASSWORD) must not end up in a legacy key file in plain text."""
    import subprocess
    import sys
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, KEYPROTECT_PASSWORD='my real password')
    subprocess.run([sys.executable, 'tools/keygen.py', str(tmp_path / 'l.key'), '--legacy-seed', '3'], cwd=repo,
                   env=env, check=True, capture_output=True)
    document = json.loads((tmp_path / 'l.key').read_text())
    assert document['password'] == 'password' and 'my real password' not in json.dumps(document)
    assert 'published-code key' in document['note']
