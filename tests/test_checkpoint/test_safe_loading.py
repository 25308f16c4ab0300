import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer


def test_mmengine_checkpoint_objects_load_with_weights_only():
    buffer = HistoryBuffer()
    buffer.update(0.5)
    checkpoint = dict(meta=dict(seed=0, dataset_meta=dict(classes=('a', 'b'))),
                      message_hub=dict(log_scalars={'train/loss': buffer}, runtime_info=dict(iter=np.int64(3))),
                      state_dict={'w': torch.ones(2)}, array=np.arange(3, dtype=np.float32))
    stream = io.BytesIO()
    torch.save(checkpoint, stream)
    stream.seek(0)
    loaded = torch.load(stream, weights_only=True)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5
    assert np.array_equal(loaded['array'], np.arange(3, dtype=np.float32))


class _Evil:
    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


def test_builtin_getattr_is_not_allowed_beyond_history_buffer():
    stream = io.BytesIO()
    torch.save({'x': _Evil()}, stream)
    stream.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        torch.load(stream, weights_only=True)


def crafted_buffer():
    """What a crafted checkpoint pickles: a message-hub buffer whose statistics table maps 'mean' to max."""
    buffer = HistoryBuffer()
    buffer.update(1.0)
    buffer._statistics_methods = {'mean': HistoryBuffer.max}  # pickled by __getstate__ as the table
    return buffer


class _Getattr:
    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return getattr, (HistoryBuffer, self.name)


def test_a_crafted_checkpoint_cannot_change_statistics_for_the_process():
    stream = io.BytesIO()
    torch.save({'message_hub': crafted_buffer()}, stream)
    stream.seek(0)
    loaded = torch.load(stream, weights_only=True)
    assert loaded['message_hub'].current() == 1.0 and type(loaded['message_hub']) is HistoryBuffer
    probe = HistoryBuffer([1.0, 3.0], [1, 1])
    assert probe.statistics('mean') == 2.0 and probe.statistics('max') == 3.0


def test_only_statistics_names_resolve():
    stream = io.BytesIO()
    torch.save({'x': _Getattr('register_statistics')}, stream)
    stream.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        torch.load(stream, weights_only=True)
