import re
from pathlib import Path

import pytest
import torch
import yaml

from mmseg_keyprotect.config import plugin_config_dir
from mmseg_keyprotect.errors import KeyProtectError
from mmseg_keyprotect.zoo import (
    config_path,
    load_entries,
    markdown_table,
    metafiles,
    publish_checkpoint,
    sha256_of,
    verify_checkpoint,
)


def test_publish_names_by_convention_and_drops_training_state(tmp_path):
    source = tmp_path / 'iter_4.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, optimizer={'x': 1}, meta=dict(keyprotect=dict(fingerprint='f'))),
               source)
    published = publish_checkpoint(source, 'pspnet_r50-d8_4xb4-20k_voc12aug-512x512_shuffle-np-m4', tmp_path / 'out')
    assert re.fullmatch(r'pspnet_r50-d8_4xb4-20k_voc12aug-512x512_shuffle-np-m4_\d{8}_\d{6}-[0-9a-f]{8}\.pth',
                        published.name)
    assert published.name.endswith(f'-{sha256_of(published)[:8]}.pth')
    state = torch.load(published)
    assert 'optimizer' not in state and state['meta']['keyprotect'] == dict(fingerprint='f')


def test_publish_folds_the_statistics_of_the_layers_named(tmp_path):
    source = tmp_path / 'iter_4.pth'
    layer = {'bn.running_mean': torch.full((2,), 3.0), 'bn.running_var': torch.full((2,), 4.0 - 1e-5),
             'bn.weight': torch.ones(2), 'bn.bias': torch.zeros(2)}
    torch.save(dict(state_dict=dict(layer), meta={}), source)
    state = torch.load(publish_checkpoint(source, 'model', tmp_path / 'out', fold_norm_layers={'bn': 1e-5}))
    folded = state['state_dict']
    assert not folded['bn.running_mean'].any() and torch.allclose(folded['bn.weight'], torch.full((2,), 0.5))
    assert torch.allclose(folded['bn.bias'], torch.full((2,), -1.5))
    kept = torch.load(publish_checkpoint(source, 'model', tmp_path / 'kept'))['state_dict']
    assert torch.equal(kept['bn.running_mean'], layer['bn.running_mean'])
    torch.save(dict(meta={}), source)
    with pytest.raises(KeyProtectError, match='no state_dict to fold'):
        publish_checkpoint(source, 'model', tmp_path / 'out', fold_norm_layers={'bn': 1e-5})


def test_verify_rejects_a_changed_file(tmp_path):
    path = tmp_path / 'model.pth'
    path.write_bytes(b'weights')
    entry = dict(Name='m', Metadata=dict(SHA256=sha256_of(path)))
    assert verify_checkpoint(path, entry) == sha256_of(path)
    path.write_bytes(b'tampered')
    with pytest.raises(KeyProtectError, match='does not match zoo entry m'):
        verify_checkpoint(path, entry)


def test_committed_zoo_is_consistent():
    entries = [e for e in load_entries() if 'configs' in e['Metafile']]
    committed = sorted(plugin_config_dir().glob('*/*.py'))
    # The zoo lists exactly the committed configs.
    assert sorted(Path(config_path(e)).resolve() for e in entries) == [p.resolve() for p in committed]
    for entry in entries:
        metrics = entry['Results'][0]['Metrics']
        # No number without a checkpoint it was measured on.
        assert bool(metrics) == bool(entry.get('Weights')), entry['Name']
    for metafile in metafiles():
        if metafile.parent.parent == plugin_config_dir():
            document = yaml.safe_load(metafile.read_text())
            readme = (metafile.parent / 'README.md').read_text()
            assert markdown_table(document['Models']) in readme, f'{metafile.parent}/README.md is stale'
