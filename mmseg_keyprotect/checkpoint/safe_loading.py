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


def checkpoint_globals() -> list:
    """The mmengine and numpy globals an MMEngine checkpoint holds."""
    from mmengine.config.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer
    found = [HistoryBuffer, ConfigDict, np.ndarray, np.dtype]
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
    there, code), so this stand-in is registered under its name instead.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if owner is not HistoryBuffer or name.startswith('_') or not callable(getattr(HistoryBuffer, name, None)):
        raise pickle.UnpicklingError(f'checkpoint asks for {owner!r}.{name}; only HistoryBuffer statistics are allowed')
    return getattr(HistoryBuffer, name)


def allow_checkpoint_globals() -> None:
    """Register :func:`checkpoint_globals` with ``torch.serialization`` (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 has no weights_only default to worry about
        add(checkpoint_globals() + [(history_buffer_attribute, 'builtins.getattr')])
