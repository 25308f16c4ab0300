"""Property-based tests: a mutated key file gives a KeyFileError naming it, or a working key; never a traceback."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmseg_keyprotect.crypto.key_files import (
    export_arrays,
    load_key,
    write_legacy_key,
    write_password_key,
    write_random_key,
)
from mmseg_keyprotect.errors import KeyFileError, KeyProtectError

FAST_SCRYPT = dict(n=2 ** 4, r=1, p=1)
PASSWORD = 'a password of some length'
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8)


def valid_documents(tmp_path):
    """One valid file of each kind, as JSON documents."""
    write_random_key(tmp_path / 'random.key')
    write_password_key(tmp_path / 'password.key', PASSWORD, **FAST_SCRYPT)
    write_legacy_key(tmp_path / 'legacy.key', 7)
    arrays = export_arrays(load_key(tmp_path / 'random.key'), 'shuffle+np', 2)
    documents = {name: json.loads((tmp_path / f'{name}.key').read_text()) for name in ('random', 'password', 'legacy')}
    documents['arrays'] = arrays
    return documents


def write_private(path, text):
    path.write_text(text)
    path.chmod(0o600)


def paths_of(document, prefix=()):
    """Every key path into a JSON document."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_of(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document[:3]):
            found += paths_of(value, prefix + (index,))
    return found


def use(path):
    """Load the key file and use it as a model would; only the plugin's own errors may come out."""
    try:
        key = load_key(path, password=PASSWORD, warn_permissions=False)
    except KeyFileError as error:
        assert str(path) in str(error)
        return
    try:
        methods = getattr(key, 'methods', ('shuffle', 'np'))
        cipher = key.cipher('+'.join(methods), getattr(key, 'block_size', 2))
        image = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
        assert np.array_equal(cipher.decrypt(cipher.encrypt(image)), image)
    except KeyProtectError:
        pass


@pytest.fixture(scope='module')
def documents(tmp_path_factory):
    return valid_documents(tmp_path_factory.mktemp('valid'))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_replaced_or_deleted_field_never_gives_a_traceback(tmp_path, documents, data):
    kind = data.draw(st.sampled_from(sorted(documents)))
    document = json.loads(json.dumps(documents[kind]))
    where = data.draw(st.sampled_from(paths_of(document)))
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(JSON_VALUES)
    path = tmp_path / 'mutated.key'
    write_private(path, json.dumps(document))
    use(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_or_corrupted_bytes_never_give_a_traceback(tmp_path, documents, data):
    raw = json.dumps(documents[data.draw(st.sampled_from(sorted(documents)))]).encode()
    cut = data.draw(st.integers(0, len(raw)))
    garbage = data.draw(st.binary(max_size=16))
    path = tmp_path / 'corrupted.key'
    path.write_bytes(raw[:cut] + garbage + raw[cut + len(garbage):])
    use(path)


@pytest.mark.parametrize('field, value, message', [
    ('fingerprint', 'é' * 16, '"fingerprint" must be 16 lowercase hex digits'),
    ('fingerprint', 12345, '"fingerprint" must be 16 lowercase hex digits'),
    ('kdf', {'name': 'scrypt', 'salt': 'AAAAAAAAAAA=', 'n': 1000, 'r': 8, 'p': 1}, '"kdf.n" must be a power of two'),
    ('kdf', {'name': 'scrypt', 'n': 16, 'r': 8, 'p': 1}, 'lacks the field "salt"'),
])
def test_reported_malformed_password_files(tmp_path, documents, field, value, message):
    document = dict(documents['password'], **{field: value})
    if field == 'kdf' and 'salt' not in value:
        document['kdf'] = value
    write_private(tmp_path / 'k.key', json.dumps(document))
    with pytest.raises(KeyFileError, match=message):
        load_key(tmp_path / 'k.key', password=PASSWORD)


@pytest.mark.parametrize('seed, message', [('42', 'must be an integer'), (2 ** 64, 'must be an integer from 0')])
def test_reported_malformed_legacy_seeds(tmp_path, documents, seed, message):
    write_private(tmp_path / 'k.key', json.dumps(dict(documents['legacy'], seed=seed)))
    with pytest.raises(KeyFileError, match=message):
        load_key(tmp_path / 'k.key')


def test_array_steps_that_are_strings_and_huge_block_sizes(tmp_path, documents):
    write_private(tmp_path / 'k.key', json.dumps(dict(documents['arrays'], steps=['shuffle', 'np'])))
    with pytest.raises(KeyFileError, match='"steps" must be a non-empty list of objects'):
        load_key(tmp_path / 'k.key')
    write_private(tmp_path / 'k.key', json.dumps(dict(documents['arrays'], block_size=1000)))
    with pytest.raises(KeyFileError, match='"block_size" must be an integer from 1 to 64'):
        load_key(tmp_path / 'k.key')
    with pytest.raises(KeyProtectError, match='larger than 64'):
        write_random_key(tmp_path / 'r.key').cipher('shuffle', 1000)
