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
from mmseg_keyprotect.crypto.key_files import export_arrays, load_key, write_password_key, write_random_key
from mmseg_keyprotect.crypto.keys import SecretKey
from mmseg_keyprotect.errors import ImageFormatError, KeyFileError

REPO = Path(__file__).resolve().parents[2]
SEGFORMER = REPO / 'configs/segformer'
NP4 = SEGFORMER / 'segformer_mit-b0_1xb8-1k_shapes-128x128_np-m4.py'
SHF4 = SEGFORMER / 'segformer_mit-b0_1xb8-1k_shapes-128x128_shuffle-m4.py'


def run(*args, stdout=None, umask=None, env_password=None):
    env = dict(os.environ, KEYPROTECT_PASSWORD=env_password) if env_password else None
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, text=True, timeout=300, env=env,
                          stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=None if umask is None else lambda: os.umask(umask))


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


# Passwords typed on one system and pasted on another
def test_a_password_opens_its_key_in_either_unicode_form(tmp_path):
    import unicodedata
    composed = 'Pässwörd-Çafé-2026'
    decomposed = unicodedata.normalize('NFD', composed)
    assert composed != decomposed
    path = tmp_path / 'password.key'
    key = write_password_key(path, decomposed, n=2 ** 10, r=1)  # as pasted on macOS
    assert load_key(path, password=composed).fingerprint == key.fingerprint  # as typed on Linux
    assert load_key(path, password=decomposed).fingerprint == key.fingerprint
    with pytest.raises(KeyFileError, match='wrong password'):
        load_key(path, password=composed + 'x')


def test_a_key_written_before_passwords_were_normalised_still_opens(tmp_path):
    from mmseg_keyprotect.crypto.passwords import derive_material as _scrypt
    decomposed = unicodedata_nfd('Ünïcödé-pässwörd')
    document = dict(format='mmseg-keyprotect-key', version=1, kind='password',
                    kdf=dict(name='scrypt', salt='AAAAAAAAAAAAAAAAAAAAAA==', n=2 ** 10, r=1, p=1))
    document['fingerprint'] = SecretKey(_scrypt(decomposed, b'\0' * 16, 2 ** 10, 1, 1)).fingerprint
    path = tmp_path / 'old.key'
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    assert load_key(path, password=decomposed).fingerprint == document['fingerprint']


def unicodedata_nfd(text):
    import unicodedata
    return unicodedata.normalize('NFD', text)


@pytest.mark.parametrize('damage', [
    lambda d: d.update(fingerprint=('1' if d['fingerprint'][0] != '1' else '2') + d['fingerprint'][1:]),
    lambda d: d['kdf'].update(salt=d['kdf']['salt'][:-3] + ('A' if d['kdf']['salt'][-3] != 'A' else 'B') + '=='),
    lambda d: d['kdf'].update(n=2 ** 11)])
def test_a_damaged_password_key_file_is_not_called_a_wrong_password(tmp_path, damage):
    path = tmp_path / 'password.key'
    write_password_key(path, 'correct horse battery', n=2 ** 10, r=1)
    document = json.loads(path.read_text())
    damage(document)
    path.write_text(json.dumps(document))
    result = run('tools/keygen.py', '--fingerprint', path, env_password='correct horse battery')
    refused(result, 'is damaged or was edited')
    assert 'wrong password' not in result.stderr


# Exported NP masks that barely change an image, or change all of it the same way
@pytest.mark.parametrize('ones', [48, 1, 47])
def test_weak_exported_np_masks_are_refused(tmp_path, images, ones):
    arrays = export_arrays(SecretKey.generate(), 'np', 4)
    arrays['mask'] = [1] * ones + [0] * (48 - ones)
    path = tmp_path / 'weak.key'
    path.write_text(json.dumps(arrays))
    path.chmod(0o600)
    result = run('tools/encrypt_images.py', images / 'plain' / 'a.png', tmp_path / 'out.png', '--key-file', path,
                 '--method', 'np')
    refused(result, f'sets {ones} of its 48 positions')
    assert not (tmp_path / 'out.png').exists()


# Output files and the umask
@pytest.mark.parametrize('umask', [0o077, 0o022])
def test_files_derived_from_a_key_are_private_whatever_the_umask(tmp_path, images, key_file, shf_checkpoint, umask):
    encrypted, decrypted = tmp_path / 'encrypted', tmp_path / 'decrypted'
    run('tools/encrypt_images.py', images / 'plain', encrypted, '--key-file', key_file, '--pad',
        umask=umask).check_returncode()
    run('tools/encrypt_images.py', encrypted, decrypted, '--key-file', key_file, '--decrypt',
        umask=umask).check_returncode()
    key = shf_checkpoint['root'] / 'model.key'
    run('tools/lock_checkpoint.py', shf_checkpoint['root'] / 'plain.pth', tmp_path / 'locked.pth', '--key-file', key,
        umask=umask).check_returncode()
    written = list(encrypted.glob('*.png')) + list(decrypted.glob('*.png')) + [tmp_path / 'locked.pth']
    assert len(written) == 7
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o600}


def test_other_files_follow_the_umask(tmp_path):
    from mmseg_keyprotect.utils import atomic_file
    previous = os.umask(0o027)
    try:
        with atomic_file(tmp_path / 'table.json') as handle:
            handle.write(b'{}')
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / 'table.json').stat().st_mode) == 0o640


# A protected leaf written over the config it inherits
def test_protect_config_never_replaces_the_config_it_protects(tmp_path):
    config = tmp_path / 'mine.py'
    config.write_text(f"_base_ = [{str(REPO / 'configs/segformer/segformer_mit-b0_1xb8-1k_shapes-128x128.py')!r}]\n")
    original = config.read_text()
    for target in (config, tmp_path / 'link.py'):
        if target.name == 'link.py':
            target.symlink_to(config)
        result = run('tools/protect_config.py', config, '-o', target, '--force')
        refused(result, 'is the config being protected')
        assert config.read_text() == original


# Zoo entries without a hash, and downloads over plain http
def test_a_zoo_entry_without_a_hash_is_neither_verified_nor_downloaded(tmp_path):
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'weights')
    entry = dict(Name='unhashed', Config='configs/segformer/x.py', Weights=str(checkpoint),
                 Metadata={'Method': 'shuffle', 'Block Size': 4}, Results=[])
    remote = dict(entry, Name='remote', Weights='http://example.invalid/model.pth',
                  Metadata=dict(entry['Metadata'], SHA256='0' * 64))
    metafile = tmp_path / 'metafile.yaml'
    metafile.write_text(json.dumps(dict(Collections=[dict(Name='SegFormer')], Models=[entry, remote])))
    result = run('tools/zoo.py', 'verify', 'unhashed', '--metafile', metafile)
    refused(result, 'records no SHA-256')
    assert 'matches' not in result.stdout
    result = run('tools/zoo.py', 'predict', 'remote', tmp_path, '--metafile', metafile, '--search-dir', tmp_path / 'x')
    refused(result, 'only https is downloaded')


# EXIF orientation: the client's encrypted image and mmseg's loader agree
def test_client_side_encryption_turns_images_as_mmseg_loads_them(tmp_path, key_file):
    from PIL import Image
    rng = np.random.default_rng(3)
    pixels = np.repeat(np.repeat(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8), 8, 0), 8, 1)  # 48 x 80
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    photo = tmp_path / 'photo.jpg'
    Image.fromarray(pixels).save(photo, exif=exif.tobytes(), quality=95)
    as_mmseg_loads = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    assert as_mmseg_loads.shape[:2] == (80, 48)
    run('tools/encrypt_images.py', photo, tmp_path / 'photo.png', '--key-file', key_file).check_returncode()
    run('tools/encrypt_images.py', tmp_path / 'photo.png', tmp_path / 'back.png', '--key-file', key_file,
        '--decrypt').check_returncode()
    assert np.array_equal(cv2.imread(str(tmp_path / 'back.png')), as_mmseg_loads)


# Resource limits
def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path, key_file):
    png = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    header = struct.pack('>II', 20000, 20000) + png[24:29]
    crafted = png[:16] + header + struct.pack('>I', zlib.crc32(b'IHDR' + header)) + png[33:]
    path = tmp_path / 'bomb.png'
    path.write_bytes(crafted)
    result = run('tools/encrypt_images.py', path, tmp_path / 'out.png', '--key-file', key_file)
    refused(result, 'declares 20000x20000 pixels', '--max-pixels')
    assert not (tmp_path / 'out.png').exists()
    small = tmp_path / 'small.png'
    write_png(small, np.zeros((16, 16, 3), np.uint8))
    refused(run('tools/encrypt_images.py', small, tmp_path / 'out.png', '--key-file', key_file, '--max-pixels', '100'),
            'declares 16x16 pixels')
    run('tools/encrypt_images.py', small, tmp_path / 'out.png', '--key-file', key_file,
        '--max-pixels', '0').check_returncode()


def test_a_record_asking_for_a_costly_verifier_is_refused_at_once(tmp_path, images, key_file):
    encrypted = tmp_path / 'a.png'
    run('tools/encrypt_images.py', images / 'plain' / 'a.png', encrypted, '--key-file', key_file).check_returncode()
    png = encrypted.read_bytes()
    start = png.index(b'mmseg-keyprotect\0') + len(b'mmseg-keyprotect\0')
    length = struct.unpack('>I', png[start - len(b'mmseg-keyprotect\0') - 8:start - len(b'mmseg-keyprotect\0') - 4])[0]
    record = json.loads(png[start:start + length - len(b'mmseg-keyprotect\0')])
    record['verifier'].update(n=2 ** 20, r=8)
    crafted = tmp_path / 'crafted.png'
    crafted.write_bytes(with_text_chunk(cv2.imencode('.png', cv2.imread(str(encrypted)))[1].tobytes(),
                                        b'mmseg-keyprotect', json.dumps(record).encode()))
    result = run('tools/encrypt_images.py', crafted, tmp_path / 'out.png', '--key-file', key_file, '--decrypt')
    refused(result, 'more than this package writes')


def test_inference_on_an_image_too_small_for_the_network_names_it(shf_checkpoint):
    from mmengine.config import Config
    cfg = Config.fromfile(str(SHF4))
    cfg.test_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile'), dict(type='BlockwiseEncrypt',
                                            method='shuffle', block_size=4), dict(type='PackSegInputs')]
    inferencer = ProtectedInferencer(cfg, str(shf_checkpoint['root'] / 'plain.pth'),
                                     key_file=str(shf_checkpoint['root'] / 'model.key'), device='cpu')
    with pytest.raises(ImageFormatError, match='cannot run on an image of 16x16 pixels'):
        inferencer(np.zeros((16, 16, 3), np.uint8))
