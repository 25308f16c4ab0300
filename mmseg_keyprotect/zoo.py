"""The model zoo: publish checkpoints by mmseg's convention, list and verify entries.

Entries live in ``configs/<algo>/metafile.yaml`` in the OpenMMLab metafile
format, with the protection numbers under ``Results.Metrics`` and the key
fingerprint under ``Metadata``. A checkpoint is named
``<config stem>_<YYYYMMDD_HHMMSS>-<first 8 hex of its sha256>.pth``.
"""
import copy
import hashlib
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
import yaml

from .checkpoint import is_locked, save_locked_checkpoint
from .checkpoint.locked import plain_dict
from .checkpoint.mmengine_io import load_from_local
from .checkpoint.norm_statistics import fold_norm_statistics, norm_epsilons
from .config.loading import load_config, plugin_config_dir
from .crypto.run_key import RunKey
from .errors import KeyProtectError
from .utils.atomic_file import PRIVATE_MODE, atomic_file

# What a deployed checkpoint does not need: training state only.
TRAINING_STATE = ('optimizer', 'message_hub', 'param_schedulers')


def sha256_of(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def config_norm_epsilons(config: Union[str, Path]) -> Dict[str, float]:
    """The batch norm layers of the model a config builds, with their ``eps`` (what folding their statistics
    needs)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS  # lazily: it imports every model mmseg has
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(load_config(config).model)
    # Only the layers count: the stock preprocessor builds without the key that an encrypting one asks for.
    model_cfg['data_preprocessor'] = dict(type='SegDataPreProcessor')
    return norm_epsilons(MODELS.build(model_cfg))


def publish_checkpoint(checkpoint: Union[str, Path], config_stem: str, out_dir: Union[str, Path],
                       key_file: Optional[str] = None, fold_norm_layers: Optional[Dict[str, float]] = None) -> Path:
    """Drop training state, save, and rename to ``<stem>_<time>-<sha256[:8]>.pth``.

    The key record (``meta['keyprotect']``) and dataset meta are kept. A
    locked checkpoint is unlocked in memory with ``key_file`` (default the
    run's key) and published locked again; the zoo's sha256 is
    over the published file, so ``tools/zoo.py verify`` needs no key.
    With ``fold_norm_layers`` (layer -> eps, :func:`config_norm_epsilons`),
    the running statistics of those batch norm layers are folded into their weights
    (:func:`~mmseg_keyprotect.checkpoint.fold_norm_statistics`): the same
    predictions, without the statistics a thief with the weights searches
    the key on.
    """
    locked = is_locked(checkpoint)
    run_key = (RunKey.current() if key_file is None else RunKey.load(key_file)) if locked else None
    state = plain_dict(load_from_local(str(checkpoint), map_location='cpu'))
    for key in TRAINING_STATE:
        state.pop(key, None)
    if fold_norm_layers:
        if 'state_dict' not in state:
            raise KeyProtectError(f'{checkpoint}: no state_dict to fold the batch norm statistics of')
        fold_norm_statistics(state['state_dict'], fold_norm_layers)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f'{config_stem}.publishing.pth'
    if locked:
        save_locked_checkpoint(state, staging, run_key.key)
    else:  # a protected model's weights give its key away to whoever attacks them: private until shared on purpose
        with atomic_file(staging, mode=PRIVATE_MODE) as handle:
            torch.save(state, handle)
    final = out_dir / f'{config_stem}_{time.strftime("%Y%m%d_%H%M%S")}-{sha256_of(staging)[:8]}.pth'
    staging.rename(final)
    return final


def metafiles(root: Union[str, Path, None] = None, extra: Sequence[Union[str, Path]] = ()) -> List[Path]:
    """The committed metafiles (``configs/<algo>/metafile.yaml``), then ``extra`` ones that exist (a local zoo,
    such as the one the demo writes for the checkpoints it trained)."""
    root = plugin_config_dir() if root is None else Path(root)
    return sorted(root.glob('*/metafile.yaml')) + [Path(p) for p in extra if Path(p).is_file()]


METHOD_CITATION = """@article{ito2021protecting,
  title={Protecting Semantic Segmentation Models by Using Block-wise Image Encryption with Secret Key from
         Unauthorized Access},
  author={Ito, Hiroki and AprilPyone, MaungMaung and Kiya, Hitoshi},
  journal={arXiv preprint arXiv:2107.09362},
  year={2021}
}"""
#: Collection -> (paper, link, BibTeX) of the architecture the stock configs implement.
ARCHITECTURES = {
    'PSPNet': ('Pyramid Scene Parsing Network', 'https://arxiv.org/abs/1612.01105', """@inproceedings{zhao2017pspnet,
  title={Pyramid Scene Parsing Network},
  author={Zhao, Hengshuang and Shi, Jianping and Qi, Xiaojuan and Wang, Xiaogang and Jia, Jiaya},
  booktitle={CVPR},
  year={2017}
}"""),
    'DeepLabV3+': ('Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation',
                   'https://arxiv.org/abs/1802.02611', """@inproceedings{deeplabv3plus2018,
  title={Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation},
  author={Chen, Liang-Chieh and Zhu, Yukun and Papandreou, George and Schroff, Florian and Adam, Hartwig},
  booktitle={ECCV},
  year={2018}
}"""),
    'SegFormer': ('SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers',
                  'https://arxiv.org/abs/2105.15203', """@article{xie2021segformer,
  title={SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers},
  author={Xie, Enze and Wang, Wenhai and Yu, Zhiding and Anandkumar, Anima and Alvarez, Jose M and Luo, Ping},
  journal={arXiv preprint arXiv:2105.15203},
  year={2021}
}"""),
}


def write_readme(metafile: Union[str, Path]) -> Path:
    """``README.md`` beside a metafile, in mmseg's shape: introduction, results table, citation."""
    metafile = Path(metafile)
    document = yaml.safe_load(metafile.read_text())
    collection = document['Collections'][0]['Name']
    paper, link, citation = ARCHITECTURES.get(collection, (collection, None, None))
    title = f'[{paper}]({link})' if link else paper
    text = f"""# {collection}, protected

> {title}, trained only on images encrypted block-wise with a secret key (Ito, AprilPyone and Kiya,
> [arXiv 2107.09362](https://arxiv.org/abs/2107.09362)).

## Introduction

Protected variants of the stock mmseg {collection} configs, written by `tools/protect_config.py`: each is a
short leaf that inherits its stock config and adds block-wise encryption to every pipeline. With the key
the model segments as trained; with plain images or another key it should not.

## Results and models

A row carries numbers only with the published checkpoint they were measured on. mIoU is with the key;
plain and wrong-key mIoU are what an unauthorized user gets.

{markdown_table(document['Models'])}

**Weights.** No checkpoint is published for a row marked "not trained yet": train one with
`python tools/train.py <config> --key-file my.key` (after `python tools/keygen.py my.key`). The Shapes
demo rows are trained by `python tools/demo.py`, which writes them, with their numbers, to
`work_dirs/demo/metafile.yaml` (`python tools/zoo.py list` shows both).

Regenerate this page with `python tools/zoo.py readme`.

## Citation

```bibtex
{METHOD_CITATION}
```
"""
    if citation:
        text += f'\n```bibtex\n{citation}\n```\n'
    path = metafile.with_name('README.md')
    path.write_text(text)
    return path


def config_path(entry: Dict) -> str:
    """The entry's config file: metafiles name it as ``configs/<algo>/<name>.py``."""
    path = Path(entry['Config'])
    if path.is_absolute() or path.is_file():
        return str(path)
    return str(plugin_config_dir().joinpath(*path.parts[1:] if path.parts[0] == 'configs' else path.parts))


def write_metafile(path: Union[str, Path], collection: str, models: List[Dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = dict(Collections=[dict(Name=collection)], Models=models)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def load_entries(root: Union[str, Path, None] = None, extra: Sequence[Union[str, Path]] = ()) -> List[Dict]:
    entries = []
    for path in metafiles(root, extra):
        document = yaml.safe_load(path.read_text()) or {}
        for model in document.get('Models', []):
            entries.append({**model, 'Metafile': str(path)})
    return entries


def find_entry(name: str, root: Union[str, Path, None] = None, extra: Sequence[Union[str, Path]] = ()) -> Dict:
    """The entry called ``name``; an ``extra`` (local) metafile wins, as it describes the
    checkpoints this machine made."""
    for entry in reversed(load_entries(root, extra)):
        if entry['Name'] == name:
            return entry
    raise KeyProtectError(f'no zoo entry named {name!r}; `python tools/zoo.py list` shows them')


def locate_checkpoint(entry: Dict, search_dirs: Optional[List[Union[str, Path]]] = None,
                      download_dir: Union[str, Path] = 'checkpoints') -> Path:
    """A local path for the entry's weights: as given, in ``search_dirs``, or downloaded."""
    weights = entry.get('Weights')
    if not weights:
        raise KeyProtectError(f'zoo entry {entry["Name"]} has no checkpoint yet ({entry.get("Status", "")})')
    candidates = [Path(weights)] + [Path(d) / Path(weights).name for d in (search_dirs or [])]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if weights.startswith('http://'):
        raise KeyProtectError(f'zoo entry {entry["Name"]} names {weights}: plain http lets anyone on the way '
                              'replace the file; only https is downloaded (or put the file in a --search-dir)')
    if weights.startswith('https://'):
        expected = recorded_sha256(entry)
        target = Path(download_dir) / Path(weights).name
        target.parent.mkdir(parents=True, exist_ok=True)
        # The download keeps a staging name until its hash matches: a wrong file never takes the entry's name.
        digest = hashlib.sha256()
        with atomic_file(target) as handle, urllib.request.urlopen(weights) as response:
            for chunk in iter(lambda: response.read(2 ** 20), b''):
                digest.update(chunk)
                handle.write(chunk)
            actual = digest.hexdigest()
            if actual != expected:
                raise KeyProtectError(f'{weights}: sha256 {actual} does not match zoo entry {entry["Name"]} '
                                      f'({expected}); the download was discarded')
        return target
    raise KeyProtectError(f'checkpoint {weights} of zoo entry {entry["Name"]} not found '
                          f'(looked in {", ".join(str(c.parent) for c in candidates)})')


def recorded_sha256(entry: Dict) -> str:
    """The entry's SHA-256.

    Raises:
        KeyProtectError: the entry records none: nothing could tell its file from another.
    """
    expected = (entry.get('Metadata') or {}).get('SHA256')
    if not isinstance(expected, str) or len(expected) != 64:
        raise KeyProtectError(f'zoo entry {entry["Name"]} records no SHA-256 (Metadata.SHA256): its checkpoint '
                              'cannot be verified, and is neither verified nor downloaded')
    return expected.lower()


def verify_checkpoint(path: Union[str, Path], entry: Dict) -> str:
    """Check the file's sha256 against the entry.

    Raises:
        KeyProtectError: the entry records no sha256, or the file's differs.
    """
    expected = recorded_sha256(entry)
    actual = sha256_of(path)
    if actual != expected:
        raise KeyProtectError(f'{path}: sha256 {actual} does not match zoo entry {entry["Name"]} ({expected}); '
                              'the file is corrupted or not this model')
    return actual


TABLE_METRICS = ('Unprotected mIoU', 'mIoU', 'Plain mIoU', 'Wrong-key mIoU mean', 'Wrong-key mIoU max')


def markdown_table(entries: List[Dict]) -> str:
    """The mmseg-style README table of a collection's entries."""
    header = ['Config', 'Dataset', 'Method', 'M', *TABLE_METRICS, 'Key fingerprint', 'SHA256', 'Status']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * (7 + len(TABLE_METRICS))]
    for entry in entries:
        meta = entry.get('Metadata', {})
        result = (entry.get('Results') or [{}])[0]
        metrics = result.get('Metrics') or {}
        cells = [f'[{entry["Name"]}]({Path(entry["Config"]).name})', result.get('Dataset', '-'),
                 str(meta.get('Method') or '-'), str(meta.get('Block Size') or '-')]
        cells += ['-' if metrics.get(name) is None else f'{metrics[name]:.2f}' for name in TABLE_METRICS]
        cells += [meta.get('Key Fingerprint') or '-', (meta.get('SHA256') or '-')[:16],
                  entry.get('Status', 'trained')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
