import io
import json
import struct

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmseg_keyprotect.checkpoint import (
    LockedCheckpointError,
    is_locked,
    load_locked_checkpoint,
    save_locked_checkpoint,
    unlock,
    write_locked,
)
from mmseg_keyprotect.checkpoint.locked import lock_to
from mmseg_keyprotect.crypto import SecretKey, load_key, write_legacy_key
from mmseg_keyprotect.errors import KeyFileError


@pytest.fixture
def state():
    torch.manual_seed(0)
    return dict(state_dict={'w': torch.randn(64, 64), 'b': torch.randn(64)}, meta=dict(iter=3))


def test_round_trip_keeps_every_tensor_and_shows_none(tmp_path, key_file, state):
    path = save_locked_checkpoint(state, tmp_path / 'm.pth', load_key(key_file))
    assert is_locked(path) and not list(tmp_path.glob('*.tmp'))  # no staging file left
    loaded = load_locked_checkpoint(path, load_key(key_file))
    assert torch.equal(loaded['state_dict']['w'], state['state_dict']['w']) and loaded['meta'] == dict(iter=3)
    data = path.read_bytes()
    assert state['state_dict']['w'][:4].numpy().tobytes() not in data  # no weight bytes in the file
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)


def test_wrong_key_damaged_truncated_and_extended_files_each_get_their_message(tmp_path, key_file, state):
    key = load_key(key_file)
    path = tmp_path / 'm.pth'
    with open(path, 'wb') as handle:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        lock_to(handle, buffer.getvalue(), key, segment_bytes=4096)  # several segments
    data = path.read_bytes()
    with pytest.raises(LockedCheckpointError, match='wrong key for .*m.pth'):
        unlock(path, SecretKey.generate())
    flipped = bytearray(data)
    flipped[-100] ^= 1
    (tmp_path / 'flipped.pth').write_bytes(bytes(flipped))
    with pytest.raises(LockedCheckpointError, match='damaged or was tampered with: segment'):
        unlock(tmp_path / 'flipped.pth', key)
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(LockedCheckpointError, match='truncated'):
        unlock(tmp_path / 'cut.pth', key)
    (tmp_path / 'long.pth').write_bytes(data + b'\0' * 10)
    with pytest.raises(LockedCheckpointError, match='after its last segment'):
        unlock(tmp_path / 'long.pth', key)
    torch.save(state, tmp_path / 'plain.pth')
    with pytest.raises(LockedCheckpointError, match='is not a locked checkpoint'):
        unlock(tmp_path / 'plain.pth', key)


def test_reordered_segments_fail_authentication(tmp_path, key_file):
    key = load_key(key_file)
    payload = bytes(range(256)) * 64  # 16 KiB: four segments of 4 KiB
    buffer = io.BytesIO()
    lock_to(buffer, payload, key, segment_bytes=4096)
    data = buffer.getvalue()
    header_end = data.index(b'}') + 1
    segments, offset = [], header_end
    while offset < len(data):
        size = int.from_bytes(data[offset:offset + 4], 'big')
        segments.append(data[offset:offset + 4 + size])
        offset += 4 + size
    assert len(segments) == 4
    (tmp_path / 'swapped.pth').write_bytes(data[:header_end] + segments[1] + segments[0] + b''.join(segments[2:]))
    with pytest.raises(LockedCheckpointError, match='segment 0 of 4 fails authentication'):
        unlock(tmp_path / 'swapped.pth', key)


def test_writes_are_atomic_and_refuse_to_overwrite_unless_asked(tmp_path, key_file):
    key = load_key(key_file)
    write_locked(tmp_path / 'm.pth', b'first', key)
    with pytest.raises(LockedCheckpointError, match='exists; nothing was written'):
        write_locked(tmp_path / 'm.pth', b'second', key, overwrite=False)
    assert unlock(tmp_path / 'm.pth', key) == b'first'
    write_locked(tmp_path / 'm.pth', b'second', key)
    assert unlock(tmp_path / 'm.pth', key) == b'second' and not list(tmp_path.glob('.*.tmp'))


def test_only_keys_with_secret_material_can_lock(tmp_path):
    legacy = write_legacy_key(tmp_path / 'l.key', 3)
    with pytest.raises(KeyFileError, match='need a random or password key file'):
        write_locked(tmp_path / 'm.pth', b'x', legacy)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(['version', 'cipher', 'segment_bytes', 'size', 'nonce_prefix', 'key_check', None]),
       value=JSON_VALUES)
def test_any_header_change_is_a_locked_checkpoint_error(tmp_path, field, value):
    """Property: whatever a header field becomes (or the whole header), unlocking raises LockedCheckpointError."""
    from mmseg_keyprotect.checkpoint.locked import MAGIC
    key = SecretKey.generate()
    path = tmp_path / 'locked.pth'
    write_locked(path, b'payload' * 10, key)
    data = path.read_bytes()
    (length,) = struct.unpack('>I', data[len(MAGIC):len(MAGIC) + 4])
    header = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + length])
    if field is None:
        header = value
    elif header.get(field) == value:
        return
    else:
        header[field] = value
    text = json.dumps(header).encode()
    path.write_bytes(MAGIC + struct.pack('>I', len(text)) + text + data[len(MAGIC) + 4 + length:])
    with pytest.raises(LockedCheckpointError):
        unlock(path, key)
