import pytest

from mmseg_keyprotect.utils import atomic_file


def test_a_failed_write_leaves_the_old_file_and_no_staging_file(tmp_path):
    target = tmp_path / 'out.bin'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b'half of the new')
            raise RuntimeError('interrupted')
    assert target.read_bytes() == b'old' and [p.name for p in tmp_path.iterdir()] == ['out.bin']
    with atomic_file(target, mode=0o600, durable=True) as handle:
        handle.write(b'new')
    assert target.read_bytes() == b'new' and (target.stat().st_mode & 0o777) == 0o600
