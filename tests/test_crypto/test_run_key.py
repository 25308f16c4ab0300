import pytest

from mmseg_keyprotect.crypto import RunKey
from mmseg_keyprotect.crypto import passwords as key_module
from mmseg_keyprotect.crypto.key_files import write_legacy_key, write_password_key
from mmseg_keyprotect.errors import KeyFileError

PASSWORD = 'correct horse battery staple'


@pytest.fixture
def derivations(monkeypatch):
    """Counts scrypt derivations of password keys."""
    calls = []
    original = key_module.derive_material

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(key_module, "derive_material", counted)
    return calls


def test_loaded_once_and_made_current(key_file, other_key_file, derivations):
    first = RunKey.load(key_file)
    assert RunKey.current() is first
    second = RunKey.load(other_key_file)
    assert RunKey.current() is second
    again = RunKey.load(key_file)  # loading again only switches: nothing is read or derived again
    assert RunKey.current() is again and again.key is first.key and again.cipher('np', 4) is first.cipher('np', 4)
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


def test_a_component_with_its_own_key_file_leaves_the_run_key(key_file, other_key_file):
    run_key = RunKey.load(key_file)
    own = RunKey.for_file(other_key_file)
    assert own.source.endswith('other.key') and RunKey.current() is run_key
    assert RunKey.for_file(None) is run_key and RunKey.for_file(other_key_file) is own
