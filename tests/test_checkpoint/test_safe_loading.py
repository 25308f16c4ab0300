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
