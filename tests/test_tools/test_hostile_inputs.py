"""Hostile and careless inputs, reproduced from the outside (command lines and public API): each gets a clear
error naming the problem, or the right result, and loses nothing."""
import json
import os
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmseg.apis import init_model

from mmseg_keyprotect.apis import ProtectedInferencer, read_record
from mmseg_keyprotect.checkpoint import (
    LockedCheckpointError,
    load_locked_checkpoint,
    protection_record,
    save_locked_checkpoint,
)
from mmseg_keyprotect.checkpoint.locked import MAGIC
from mmseg_keyprotect.crypto.keys import SecretKey, export_arrays, load_key, write_random_key
from mmseg_keyprotect.errors import ImageFormatError, KeyFileError

REPO = Path(__file__).resolve().parents[2]
SEGFORMER = REPO / 'configs/segformer'
NP4 = SEGFORMER / 'segformer_mit-b0_1xb8-1k_shapes-128x128_np-m4.py'
SHF4 = SEGFORMER / 'segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'


def run(*args, stdout=None):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, text=True, timeout=300,
                          stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE)


def refused(result, *fragments):
    assert result.returncode != 0, result.stdout
    assert 'Traceback' not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def write_png(path, image):
    cv2.imwrite(str(path), image[..., ::-1])
    return path


def with_text_chunk(png: bytes, keyword: bytes, text: bytes) -> bytes:
    """A PNG with a tEXt chunk inserted after IHDR, as a crafted client image would carry it."""
    body = keyword + b'\0' + text
    chunk = struct.pack('>I', len(body)) + b'tEXt' + body + struct.pack('>I', zlib.crc32(b'tEXt' + body))
    return png[:33] + chunk + png[33:]


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp('hostile')
    rng = np.random.default_rng(0)
    plain = root / 'plain'
    plain.mkdir()
    for name, shape in (('a', (8, 8, 3)), ('b', (10, 14, 3)), ('c', (12, 8, 3))):
        write_png(plain / f'{name}.png', rng.integers(0, 256, shape, dtype=np.uint8))
    return root


@pytest.fixture(scope='module')
def shf_checkpoint(tmp_path_factory):
    """An untrained SHF M = 4 model saved as tools/train.py would, plain and locked."""
    root = tmp_path_factory.mktemp('shf')
    key = write_random_key(root / 'model.key')
    model = init_model(str(SHF4), None, device='cpu')
    state = dict(state_dict=model.state_dict(), meta=dict(keyprotect=protection_record('shuffle',
                                                                                        key.cipher('shuffle', 4))))
    torch.save(state, root / 'plain.pth')
    save_locked_checkpoint(state, root / 'locked.pth', key)
    return dict(root=root, key=key, state=state)


# 1, 11: the key-less server
def test_key_less_server_compares_the_checkpoint_with_the_config(shf_checkpoint):
    with pytest.raises(KeyFileError, match='trained with shuffle with M = 4, but the config encrypts with np'):
        ProtectedInferencer(str(NP4), str(shf_checkpoint['root'] / 'plain.pth'), encrypted_input=True, device='cpu')


def test_key_less_server_given_a_locked_checkpoint_asks_for_an_unlocked_copy(shf_checkpoint):
    with pytest.raises(LockedCheckpointError, match='serve an unlocked copy'):
        ProtectedInferencer(str(SHF4), str(shf_checkpoint['root'] / 'locked.pth'), encrypted_input=True,
                            device='cpu')


def test_a_flipped_key_check_is_reported_as_damage_not_as_a_wrong_key(shf_checkpoint, tmp_path):
    data = bytearray((shf_checkpoint['root'] / 'locked.pth').read_bytes())
    where = data.index(b'"key_check": "') + len(b'"key_check": "')
    data[where] = ord('0') if data[where] != ord('0') else ord('1')
    (tmp_path / 'flipped.pth').write_bytes(bytes(data))
    with pytest.raises(LockedCheckpointError, match='key check in its header is damaged'):
        load_locked_checkpoint(tmp_path / 'flipped.pth', shf_checkpoint['key'])
    with pytest.raises(LockedCheckpointError, match='wrong key'):
        load_locked_checkpoint(shf_checkpoint['root'] / 'locked.pth', SecretKey.generate())


# 5: a record emptied by hand
def test_an_emptied_record_is_damage_not_a_wrong_key(shf_checkpoint, tmp_path):
    state = dict(shf_checkpoint['state'], meta=dict(keyprotect={}))
    torch.save(state, tmp_path / 'emptied.pth')
    key_file = tmp_path / 'model.key'
    key_file.write_text(json.dumps(export_arrays(shf_checkpoint['key'], 'shuffle', 4)))
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match='damaged mmseg-keyprotect record'):
        ProtectedInferencer(str(SHF4), str(tmp_path / 'emptied.pth'), key_file=str(key_file), device='cpu')


# 6: locked headers crafted within and beyond reason
@pytest.mark.parametrize('change', [dict(segment_bytes=0), dict(size='Infinity'), dict(size=-1),
                                    dict(nonce_prefix='00'), dict(segment_bytes=2 ** 40), 'nested'])
def test_crafted_locked_headers_are_damage(shf_checkpoint, tmp_path, change):
    data = (shf_checkpoint['root'] / 'locked.pth').read_bytes()
    (length,) = struct.unpack('>I', data[len(MAGIC):len(MAGIC) + 4])
    header = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + length])
    if change == 'nested':
        text = '[' * 100000 + ']' * 100000
    else:
        header.update(change)
        text = json.dumps(header).replace('"Infinity"', 'Infinity')
    crafted = MAGIC + struct.pack('>I', len(text)) + text.encode() + data[len(MAGIC) + 4 + length:]
    (tmp_path / 'crafted.pth').write_bytes(crafted)
    with pytest.raises(LockedCheckpointError, match='header of this locked checkpoint is damaged'):
        load_locked_checkpoint(tmp_path / 'crafted.pth', shf_checkpoint['key'])


def test_lock_checkpoint_refuses_folders_and_junk(tmp_path, key_file):
    (tmp_path / 'junk.pth').write_bytes(os.urandom(300))
    refused(run('tools/lock_checkpoint.py', tmp_path, tmp_path / 'out.pth', '--key-file', key_file), 'is not a file')
    refused(run('tools/lock_checkpoint.py', tmp_path / 'junk.pth', tmp_path / 'out.pth', '--key-file', key_file),
            'junk.pth is not a checkpoint torch can read')
    assert not (tmp_path / 'out.pth').exists()


# 6: key files
@pytest.mark.parametrize('text, message', [
    ('{"format": "mmseg-keyprotect-key", "version": 1, "kind": "legacy", "seed": ' + '9' * 5000 + '}',
     'not a mmseg-keyprotect key file'),
    ('[' * 100000 + ']' * 100000, 'not a mmseg-keyprotect key file')])
def test_key_files_with_huge_numbers_or_deep_nesting(tmp_path, text, message):
    path = tmp_path / 'hostile.key'
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=message):
        load_key(path)


def test_an_unreadable_key_file(tmp_path, key_file, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr('builtins.open', denied)  # root reads any file: deny as a user's system would
    with pytest.raises(KeyFileError, match='cannot be read: Permission denied'):
        load_key(key_file)


def test_scrypt_parameters_at_the_accepted_limit_derive(tmp_path):
    """n = 2^20 and r = 8 (1 GiB) is the largest setting accepted; it runs instead of tripping OpenSSL."""
    document = dict(format='mmseg-keyprotect-key', version=1, kind='password', fingerprint='0' * 16,
                    kdf=dict(name='scrypt', salt='AAAAAAAAAAAAAAAAAAAAAA==', n=2 ** 20, r=8, p=1))
    path = tmp_path / 'large.key'
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match='wrong password'):
        load_key(path, password='not the password at all')


# 7: keys that leave images unchanged
@pytest.mark.parametrize('method', ['np', 'shuffle'])
def test_identity_array_keys_are_refused(tmp_path, method, images):
    arrays = export_arrays(SecretKey.generate(), method, 4)
    arrays['mask' if method == 'np' else 'permutation'] = [0] * 48 if method == 'np' else list(range(48))
    path = tmp_path / 'identity.key'
    path.write_text(json.dumps(arrays))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match='leaves every block as it is'):
        load_key(path)


# 2, 3, 4, 8, 9, 10: client-side encryption
def test_client_side_encryption_refuses_careless_and_hostile_files(tmp_path, images, key_file):
    plain, encrypted = images / 'plain', tmp_path / 'encrypted'
    run('tools/encrypt_images.py', plain, encrypted, '--key-file', key_file, '--pad').check_returncode()
    # 9: --pad, then --decrypt, gives back the original size.
    run('tools/encrypt_images.py', encrypted, tmp_path / 'decrypted', '--key-file', key_file,
        '--decrypt').check_returncode()
    for name in ('a', 'b', 'c'):
        original = cv2.imread(str(plain / f'{name}.png'))
        assert np.array_equal(cv2.imread(str(tmp_path / 'decrypted' / f'{name}.png')), original)
    # 8: encrypting an encrypted image again.
    refused(run('tools/encrypt_images.py', encrypted / 'a.png', tmp_path / 'twice.png', '--key-file', key_file),
            'a.png is already encrypted')
    # 2: decrypting a file that carries no record (never encrypted, or stripped): nothing written.
    for name in ('a.png', 'a.jpg'):
        cv2.imwrite(str(tmp_path / name), cv2.imread(str(plain / 'a.png')))
        refused(run('tools/encrypt_images.py', tmp_path / name, tmp_path / f'out-{name}.png', '--key-file', key_file,
                    '--decrypt'), 'carries no mmseg-keyprotect record')
        assert not (tmp_path / f'out-{name}.png').exists()
    # 3: a record chunk of deeply nested JSON.
    hostile = tmp_path / 'nested.png'
    hostile.write_bytes(with_text_chunk(cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes(),
                                        b'mmseg-keyprotect', b'[' * 4000))
    refused(run('tools/encrypt_images.py', hostile, tmp_path / 'nested-out.png', '--key-file', key_file,
                '--decrypt'), 'damaged mmseg-keyprotect metadata')
    with pytest.raises(ImageFormatError, match='damaged'):
        read_record(hostile)
    # 10: a bad image in the middle of a folder stops the run before any file is written.
    folder = tmp_path / 'mixed'
    folder.mkdir()
    for name in ('a', 'c'):
        write_png(folder / f'{name}.png', cv2.imread(str(plain / 'a.png'))[..., ::-1])
    cv2.imwrite(str(folder / 'b.png'), np.zeros((8, 8), np.uint8))  # grayscale
    refused(run('tools/encrypt_images.py', folder, tmp_path / 'mixed-out', '--key-file', key_file),
            'b.png', 'grayscale')
    assert not list(tmp_path.glob('mixed-out/*.png'))


def test_searchable_keys_print_no_hash_of_themselves(tmp_path, images):
    """4: the fingerprint line of an NP M = 2 array key used to give its mask away after a few hundred guesses."""
    arrays = tmp_path / 'arrays.key'
    arrays.write_text(json.dumps(export_arrays(SecretKey.generate(), 'np', 2)))
    arrays.chmod(0o600)
    cipher_hash = load_key(arrays).cipher('np', 2).fingerprint
    result = run('tools/encrypt_images.py', images / 'plain' / 'a.png', tmp_path / 'a.png', '--key-file', arrays,
                 '--method', 'np', '--block-size', '2')
    result.check_returncode()
    assert 'not shown' in result.stdout and cipher_hash not in result.stdout + result.stderr
    shown = run('tools/keygen.py', '--fingerprint', arrays)
    assert 'not shown' in shown.stdout and cipher_hash not in shown.stdout


def test_exported_arrays_never_sit_in_a_readable_file(tmp_path, key_file):
    """12: `keygen.py --export K > file`, the documented usage, leaves the arrays private."""
    target = tmp_path / 'arrays.json'
    with open(target, 'w') as handle:
        os.chmod(target, 0o644)
        result = run('tools/keygen.py', '--export', key_file, stdout=handle)
    assert result.returncode == 0 and 'mode 600' in result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())['format'] == 'mmseg-keyprotect-arrays'
    run('tools/keygen.py', '--export', key_file, tmp_path / 'named.json').check_returncode()
    assert stat.S_IMODE((tmp_path / 'named.json').stat().st_mode) == 0o600
