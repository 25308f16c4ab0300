"""Writing a file so that its name holds a complete file or nothing."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union


@contextmanager
def atomic_file(path: Union[str, Path], mode: int = 0o644, durable: bool = False,
                replace: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary handle to a new file beside ``path``; on success it takes the name ``path``.

    The new file is created with ``mode`` from its first byte (``O_EXCL``, whatever
    the umask). An interrupted write leaves the old file (or none) and no staging file.

    Args:
        mode (int): permissions of the written file.
        durable (bool): ``fsync`` before the rename, so the file survives a power cut too.
        replace (bool): replace an existing ``path`` (a rename, which replaces a link or
            file rather than writing into it); False hard-links the new file to the name,
            which raises ``FileExistsError`` if the name exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
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
