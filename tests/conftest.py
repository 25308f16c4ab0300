import socket

import pytest

# Importing the plugin registers its components; tests must fail, not skip, without the stack.
from mmseg.utils import register_all_modules

import mmseg_keyprotect  # noqa: F401
from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto.key_files import write_random_key

# Tests build pipelines with mmcv's Compose, which looks types up in the default scope.
register_all_modules(init_default_scope=True)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long, thorough tests (run with -m slow)')


@pytest.fixture(autouse=True)
def fresh_run_key():
    """Each test is its own run: no key loaded by an earlier test stays current."""
    RunKey.forget_all()
    yield
    RunKey.forget_all()


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / 'model.key'
    write_random_key(path)
    return str(path)


@pytest.fixture
def other_key_file(tmp_path):
    path = tmp_path / 'other.key'
    write_random_key(path)
    return str(path)


@pytest.fixture
def key_env(key_file, monkeypatch):
    monkeypatch.setenv('KEYPROTECT_KEY_FILE', key_file)
    return key_file


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    from mmseg_keyprotect.datasets import generate_shapes
    return generate_shapes(tmp_path_factory.mktemp('shapes'), num_train=16, num_val=6, size=64, seed=1)


@pytest.fixture
def free_port():
    """A port nothing listens on now, for ``torch.distributed.run --master_port`` (a fixed one can be taken)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]
