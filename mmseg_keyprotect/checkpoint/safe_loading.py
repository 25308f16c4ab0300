"""Loading MMEngine checkpoints under torch >= 2.6 without turning safety off.

torch >= 2.6 loads with ``weights_only=True``, and mmengine 0.10.7 does not say
otherwise, so ``tools/test.py CONFIG CKPT`` and ``--resume`` fail on the few
non-tensor objects MMEngine writes (its message hub's ``HistoryBuffer`` and the
numpy arrays and scalars inside). Instead of ``weights_only=False`` for
everything, exactly those globals are allowlisted.
"""
import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

# The statistics MMEngine registers on HistoryBuffer, and so pickles with every message hub.
STATISTICS = ('min', 'max', 'current', 'mean')


def checkpoint_globals() -> list:
    """The mmengine and numpy globals an MMEngine checkpoint holds."""
    from mmengine.config.config import ConfigDict
    found = [ConfigDict, np.ndarray, np.dtype]
    # numpy's array and scalar reconstructors moved from numpy.core to numpy._core in 2.0.
    multiarray = getattr(np, '_core', None) or np.core
    found += [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar]
    # dtype classes (numpy.dtypes.Float64DType, ...) are pickled by class in numpy >= 1.25.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def history_buffer_attribute(owner, name: str):
    """The one ``getattr`` an MMEngine checkpoint needs, and nothing more.

    The message hub pickles ``HistoryBuffer``'s statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Allowlisting the builtin ``getattr``
    would let a checkpoint reach any attribute of any allowed object (and from
    there, code), so this stand-in is registered under its name instead, and
    resolves only the statistics MMEngine registers.
    """
    if owner not in (HistoryBuffer, CheckpointHistoryBuffer) or name not in STATISTICS:
        raise pickle.UnpicklingError(f'checkpoint asks for {owner!r}.{name}; only HistoryBuffer statistics '
                                     f'{STATISTICS} are allowed')
    return getattr(HistoryBuffer, name)


class CheckpointHistoryBuffer(HistoryBuffer):
    """What a checkpoint's ``HistoryBuffer`` is unpickled as: the buffer, minus its statistics table.

    ``HistoryBuffer.__setstate__`` copies the pickled name-to-method table into
    the table that the class shares with every buffer of the process, so a
    crafted checkpoint could make ``statistics('mean')`` return the maximum
    everywhere. The statistics are registered by code at import time; the
    pickled table is dropped, and the restored object is a plain
    ``HistoryBuffer`` again (so later checkpoints pickle it as MMEngine does).
    """

    def __setstate__(self, state):
        state = dict(state)
        state.pop('statistics_methods', None)
        self._set_default_statistics()
        self.__dict__.update(state)
        self.__class__ = HistoryBuffer


def allow_checkpoint_globals() -> None:
    """Register :func:`checkpoint_globals` with ``torch.serialization`` (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights_only default to worry about
        add(checkpoint_globals() + [(history_buffer_attribute, 'builtins.getattr'),
                                    (CheckpointHistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer')])
