"""Writing a file so that its name holds a complete file or nothing."""
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union

#: Permissions of files derived from a key or from encrypted images (key files, encrypted and decrypted images,
#: locked and published checkpoints): the owner's only, whatever the umask allows.
PRIVATE_MODE = 0o600
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process's umask (reading it means setting it, so the two steps hold a lock)."""
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: Union[str, Path], mode: int = 0o666, durable: bool = False,
                replace: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary handle to a new file beside ``path``; on success it takes the name ``path``.

    The new file has ``mode`` less the umask from its first byte (``O_EXCL``), as
    ``open`` would give it: the umask can make a file stricter, never looser than
    ``mode``. An interrupted write leaves the old file (or none) and no staging file.

    Args:
        mode (int): the loosest permissions of the written file; ``PRIVATE_MODE``
            for anything derived from a key or an encrypted image.
        durable (bool): ``fsync`` before the rename, so the file survives a power cut too.
        replace (bool): replace an existing ``path`` (a rename, which replaces a link or
            file rather than writing into it); False hard-links the new file to the name,
            which raises ``FileExistsError`` if the name exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(descriptor, mode & ~current_umask())
        with os.fdopen(descriptor, 'wb') as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if replace:
            os.replace(staging, path)
        else:
            os.link(staging, path)
    finally:
        if os.path.lexists(staging):
            os.unlink(staging)
