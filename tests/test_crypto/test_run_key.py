import pytest

from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto import keys as key_module
from mmseg_keyprotect.crypto.keys import write_legacy_key, write_password_key
from mmseg_keyprotect.errors import KeyFileError

PASSWORD = 'correct horse battery staple'


@pytest.fixture
def derivations(monkeypatch):
    """Counts scrypt derivations of password keys."""
    calls = []
    original = key_module._scrypt

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(key_module, '_scrypt', counted)
    return calls


def test_loaded_once_and_made_current(key_file, other_key_file, derivations):
    first = RunKey.load(key_file)
    assert RunKey.current() is first
    second = RunKey.load(other_key_file)
    assert RunKey.current() is second
    assert RunKey.load(key_file) is first and RunKey.current() is first  # loading again only switches
    assert first.cipher('np', 4) is first.cipher('np', 4)  # sub-keys derived once


def test_current_reads_the_environment_only_when_no_tool_loaded_a_key(key_file, other_key_file, monkeypatch):
    monkeypatch.setenv('KEYPROTECT_KEY_FILE', other_key_file)
    assert RunKey.current().source.endswith('other.key')
    RunKey.forget_all()
    RunKey.load(key_file)
    assert RunKey.current().source.endswith('model.key')  # the tool's choice, whatever the environment says
    monkeypatch.delenv('KEYPROTECT_KEY_FILE')
    RunKey.forget_all()
    with pytest.raises(KeyFileError, match='KEYPROTECT_KEY_FILE'):
        RunKey.current()


def test_a_password_is_derived_once_per_process(tmp_path, monkeypatch, derivations):
    path = tmp_path / 'password.key'
    write_password_key(path, PASSWORD)
    derivations.clear()
    monkeypatch.setenv('KEYPROTECT_PASSWORD', PASSWORD)
    for _ in range(5):
        RunKey.load(str(path)).cipher('shuffle+np', 4)
        RunKey.current()
    assert len(derivations) == 1


def test_ranks_of_a_multi_process_run_never_prompt(tmp_path, monkeypatch):
    path = tmp_path / 'password.key'
    write_password_key(path, PASSWORD)
    monkeypatch.delenv('KEYPROTECT_PASSWORD', raising=False)
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setattr('getpass.getpass', lambda *_: pytest.fail('a rank prompted for the password'))
    with pytest.raises(KeyFileError, match='several processes.*KEYPROTECT_PASSWORD'):
        RunKey.load(str(path))


def test_keys_without_secret_material_cannot_lock(tmp_path, key_file):
    RunKey.load(key_file).require_lockable()
    write_legacy_key(tmp_path / 'legacy.key', 7)
    with pytest.warns(UserWarning, match='legacy'):
        legacy = RunKey.load(str(tmp_path / 'legacy.key'))
    with pytest.raises(KeyFileError, match='legacy.key.*random or password key file'):
        legacy.require_lockable()
