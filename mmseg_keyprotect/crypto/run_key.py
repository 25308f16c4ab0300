"""The key of a run: read once from what the user named, then handed to every component that needs it.

The tools (``tools/train.py``, ``tools/test.py``, ``tools/infer.py``, the
protection report, ...) load it from ``--key-file``, else from the file named
by ``$KEYPROTECT_KEY_FILE``, prompting for a password when the key file has
one and ``$KEYPROTECT_PASSWORD`` is not set. ``BlockwiseEncrypt``, the data
preprocessors, ``KeyProtectHook``, the locked-checkpoint backend and loader
and the inferencer take their key from :meth:`RunKey.current`; none of them
reads a key file or the environment. A process that no tool prepared (mmseg's
own ``tools/train.py`` with ``$KEYPROTECT_KEY_FILE``) loads the key on first
use, once. Dataloader workers inherit their transforms, ciphers included,
from the main process.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.utils import ManagerMixin

from ..errors import KeyFileError
from .ciphers import BlockCipher, parse_method
from .keys import Key, SecretKey, load_key

#: The one place a user's choice of key file is read from the environment (mmseg's own tools have no flag).
KEY_FILE_ENV = 'KEYPROTECT_KEY_FILE'


def named_key_file(key_file: Optional[str] = None) -> str:
    """The key file the user named: ``key_file``, else ``$KEYPROTECT_KEY_FILE``, as an absolute path.

    Raises:
        KeyFileError: when neither names one.
    """
    if key_file is None:
        key_file = os.environ.get(KEY_FILE_ENV)
        if not key_file:
            raise KeyFileError(f'no key file given (--key-file), and the environment variable {KEY_FILE_ENV} '
                               'is not set')
    return osp.abspath(osp.expanduser(str(key_file)))


def _several_processes() -> bool:
    """Whether this process is one of several ranks (torchrun, slurm): none of them can prompt."""
    return int(os.environ.get('WORLD_SIZE', '1')) > 1


class RunKey(ManagerMixin):
    """The key of this run, loaded once per process and shared, as MMEngine shares its ``MessageHub``.

    One instance per key file; the one loaded last is current. Ciphers are
    derived once per (method, M) and kept.

    >>> run_key = RunKey.load('my.key')      # in a tool: prompts once at most
    >>> RunKey.current().cipher('np', 4)     # in a component

    Args:
        name (str): the instance name (``keyprotect:<absolute path>``).
        key (Key): the loaded key.
    """
    _current: Optional[str] = None

    def __init__(self, name: str, key: Key):
        super().__init__(name)
        self.key = key
        self._ciphers: Dict[Tuple[str, int], BlockCipher] = {}

    @classmethod
    def load(cls, key_file: Optional[str] = None, password: Optional[str] = None) -> 'RunKey':
        """Load the key the user named (see :func:`named_key_file`), or return it if this process has it,
        and make it current.

        Raises:
            KeyFileError: the file is missing or not a valid key; a password
                key in a multi-process run without ``$KEYPROTECT_PASSWORD``.
        """
        path = named_key_file(key_file)
        name = f'keyprotect:{path}'
        if not cls.check_instance_created(name):
            cls.get_instance(name, key=load_key(path, password=password, prompt=not _several_processes()))
        cls._current = name
        return cls.get_instance(name)

    @classmethod
    def current(cls, key_file: Optional[str] = None) -> 'RunKey':
        """The run's key: the one loaded last in this process, or, if none was, the one the user named
        through ``$KEYPROTECT_KEY_FILE`` (loaded now, once). A component whose config names its own
        ``key_file`` gets that file's key."""
        if key_file is not None or cls._current is None or not cls.check_instance_created(cls._current):
            return cls.load(key_file)
        return cls.get_instance(cls._current)

    @classmethod
    def forget(cls, run_key: 'RunKey') -> None:
        """Drop one loaded key (a temporary one); if it was current, none is until the next load."""
        cls._instance_dict.pop(run_key.instance_name, None)
        if cls._current == run_key.instance_name:
            cls._current = None

    @classmethod
    def forget_all(cls) -> None:
        """Drop every loaded key of this process (tests that use several keys call it between runs)."""
        cls._instance_dict.clear()
        cls._current = None

    @property
    def source(self) -> str:
        """Where the key came from (a file path); never the key."""
        return self.key.source

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def cipher(self, method: Union[str, Sequence[str]], block_size: int) -> BlockCipher:
        """The cipher of ``method`` at block size M, derived once."""
        name = '+'.join(parse_method(method))
        cached = self._ciphers.get((name, block_size))
        if cached is None:
            cached = self._ciphers[name, block_size] = self.key.cipher(name, block_size)
        return cached

    def require_lockable(self, why: str = 'checkpoints are written locked') -> None:
        """Raise :class:`KeyFileError` unless the key has secret material to lock checkpoints with."""
        if not isinstance(self.key, SecretKey):
            raise KeyFileError(f'{self.source}: {why}, which needs a random or password key file; legacy and '
                               'exported-array keys have no secret material to lock with (make one with '
                               'tools/keygen.py, or set KeyProtectHook lock_checkpoints=False)')
