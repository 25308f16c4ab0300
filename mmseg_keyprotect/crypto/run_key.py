"""The key of a run: read once from what the user named, then handed to every component that needs it.

Keys are loaded at the entry: the tools (``tools/train.py``, ``tools/test.py``,
``tools/infer.py``, the protection report, ...) and
:func:`~mmseg_keyprotect.apis.prepare_run_key` call :meth:`RunKey.load` with
``--key-file``, prompting for a password when the key file has one and
``$KEYPROTECT_PASSWORD`` is not set. ``BlockwiseEncrypt``, the data
preprocessors, the hooks, the locked-checkpoint backend and loader and the
inferencer only ask for it (:meth:`RunKey.current`, :meth:`RunKey.for_file`).

One place loads a key outside the entry: a process that no tool prepared
(mmseg's own ``tools/train.py`` and ``tools/test.py``) has no key when its
first component asks, and :meth:`RunKey.current` then loads the file that
``$KEYPROTECT_KEY_FILE`` names, once. Dataloader workers inherit their
transforms, ciphers included, from the main process.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.utils import ManagerMixin

from ..errors import KeyFileError
from .ciphers import BlockCipher, parse_method
from .key_files import load_key
from .keys import Key, SecretKey

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
    """The key of this run, shared in the process as MMEngine shares its ``MessageHub``.

    The current instance (MMEngine's ``get_current_instance``, the one loaded
    last) is the run's key. Each file is read once per process, so a password
    is asked for and derived once; ciphers are derived once per (method, M).

    >>> RunKey.load('my.key')                # at the entry: prompts once at most
    >>> RunKey.current().cipher('np', 4)     # in a component

    Args:
        name (str): the instance name.
        key (Key): the loaded key.
    """
    #: Every key file this process has read, by absolute path.
    _read: Dict[str, 'RunKey'] = {}

    def __init__(self, name: str, key: Key):
        super().__init__(name)
        self.key = key
        self._ciphers: Dict[Tuple[str, int], BlockCipher] = {}

    @classmethod
    def _read_file(cls, path: str, password: Optional[str] = None) -> 'RunKey':
        if path not in cls._read:
            cls._read[path] = cls(f'keyprotect:{path}',
                                  load_key(path, password=password, prompt=not _several_processes()))
        return cls._read[path]

    @classmethod
    def load(cls, key_file: Optional[str] = None, password: Optional[str] = None) -> 'RunKey':
        """Make the key the user named (see :func:`named_key_file`) the run's, reading it if this process
        has not. For the entry points (tools, runners, the inferencer); components ask :meth:`current`.

        Raises:
            KeyFileError: the file is missing or not a valid key; a password
                key in a multi-process run without ``$KEYPROTECT_PASSWORD``.
        """
        read = cls._read_file(named_key_file(key_file), password)
        if cls._instance_dict and cls.get_current_instance().key is read.key:
            return cls.get_current_instance()
        # MMEngine's current instance is the one created last: a switch of keys creates one, sharing the ciphers.
        run_key = cls.get_instance(f'{read.instance_name}#{len(cls._instance_dict)}', key=read.key)
        run_key._ciphers = read._ciphers
        return run_key

    @classmethod
    def current(cls) -> 'RunKey':
        """The run's key. In a process that no tool prepared (mmseg's own tools), the first call loads the
        file named by ``$KEYPROTECT_KEY_FILE``."""
        if not cls._instance_dict:
            return cls.load()
        return cls.get_current_instance()

    @classmethod
    def for_file(cls, key_file: Optional[str] = None) -> 'RunKey':
        """The key of a component: the run's, or, where its config names a ``key_file`` of its own, that
        file's key, without changing the run's."""
        if key_file is None:
            return cls.current()
        return cls._read_file(named_key_file(key_file))

    @classmethod
    def forget_all(cls) -> None:
        """Drop every key of this process (tests that use several keys call it between runs)."""
        cls._instance_dict.clear()
        cls._read.clear()

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
                               'tools/keygen.py, or set default_hooks.checkpoint.backend_args=None)')
