"""Writing a protected config as a short leaf of its stock config.

The leaf inherits the stock config and states only what protection adds: the
encryption step before ``PackSegInputs`` of each pipeline (built from the
base's own pipelines through ``_base_``), the plugin import and the hook. Slide-inference
sizes and the on-device data preprocessor appear only when they change.
"""
import os
import tempfile
import textwrap
from pathlib import Path
from typing import List, Optional, Union

from mmengine.config import Config

from ..errors import ConfigError
from .loading import load_config
from .pipelines import (
    CHECKPOINT_HOOK,
    CONTRASTIVE_PREPROCESSOR,
    DATALOADERS,
    DEVICE_PREPROCESSOR,
    ENCRYPT,
    HOOK,
    PACK,
    PREPROCESSOR_OPTIONS,
    SEGMENTOR_OPTIONS,
    dataset_pipelines,
    encrypt_settings,
    preprocessor_encrypts,
    transform_type,
)


def _pipeline_expression(base: str, pipeline: list, where: str) -> str:
    """``<base>[:-1] + [encrypt, pack]``, for a stock pipeline that ends with PackSegInputs."""
    if not pipeline or transform_type(pipeline[-1]) != PACK:
        raise ConfigError(f'{where} does not end with {PACK}; protect it with protect_config() instead')
    return f'{base}[:-1] + [encrypt, {base}[-1]]'


def _tta_expression(pipeline: list) -> str:
    last = pipeline[-1] if pipeline else None
    stages = last.get('transforms') if transform_type(last) == 'TestTimeAug' else None
    if not stages or [transform_type(t) for t in stages[-1]] != [PACK]:
        raise ConfigError(f'tta_pipeline does not end with a TestTimeAug whose last stage is [{PACK}]')
    return ('_base_.tta_pipeline[:-1] + [dict(\n'
            '    _base_.tta_pipeline[-1], transforms=_base_.tta_pipeline[-1].transforms[:-1] + [\n'
            '        [encrypt], _base_.tta_pipeline[-1].transforms[-1]])]')


def _dataset_override(dataset: dict, base: str, named: dict) -> str:
    """The override of one dataloader's dataset (and any it wraps) that sets protected pipelines."""
    parts = []
    if 'pipeline' in dataset:
        variable = next((name for name, pipeline in named.items() if pipeline == dataset['pipeline']), None)
        parts.append('pipeline=' + (variable or _pipeline_expression(f'{base}.pipeline', dataset['pipeline'], base)))
    if isinstance(dataset.get('dataset'), dict):
        parts.append('dataset=' + _dataset_override(dataset['dataset'], f'{base}.dataset', named))
    if dataset.get('datasets'):
        # Lists replace their base whole when configs merge: restate each wrapped dataset with its new pipeline.
        items = [f'dict({base}.datasets[{index}], {_dataset_override(inner, f"{base}.datasets[{index}]", named)[5:-1]})'
                 for index, inner in enumerate(dataset['datasets'])]
        parts.append('datasets=[\n    ' + ',\n    '.join(items) + ']')
    return 'dict(' + ', '.join(parts) + ')'


def leaf_config_text(stock: str, protected: Config, method: str, block_size: int, notes: List[str],
                     stock_cfg: Optional[Config] = None) -> str:
    """A short config that inherits ``stock`` and adds only what protection changes.

    Args:
        stock (str): how the leaf names its base: ``mmseg::...`` or a path
            relative to the leaf.
        protected (Config): the result of :func:`protect_config` on the stock
            config (read for the hook, the data preprocessor and slide sizes).
        method (str): the cipher method or chain.
        block_size (int): block side M.
        notes (list[str]): settings changed for alignment, written as comments.
        stock_cfg (Config, optional): the stock config, when ``stock`` is a
            path relative to the leaf rather than to the working directory.

    Raises:
        ConfigError: when a stock pipeline has a shape the leaf cannot express.
    """
    base = stock_cfg if stock_cfg is not None else load_config(stock)
    settings = dict(type=ENCRYPT, method=method, block_size=block_size)
    key_file = next((s['key_file'] for s in encrypt_settings(protected) if s.get('key_file')), None)
    if key_file:
        settings['key_file'] = key_file
    preprocessor = protected.model.get('data_preprocessor') or {}
    on_device = preprocessor_encrypts(preprocessor)
    if on_device:
        settings['on_device'] = True
    lines = [f'# {Path(stock).stem}, protected: block-wise {method}, M = {block_size}.',
             f'# The key is read at run time from {key_file} (a path, not the key): this file holds no secret.'
             if key_file else
             '# The key is read at run time from --key-file or $KEYPROTECT_KEY_FILE; this file holds no secret.']
    lines += [textwrap.fill(f'Changed for block alignment: {note}', 100, initial_indent='# ', subsequent_indent='#   ')
              for note in notes]
    lines += [f'_base_ = [{stock!r}]', '',
              f'custom_imports = dict(imports={list(protected.custom_imports.imports)!r}, allow_failed_imports=False)',
              f'encrypt = {_call(settings)}']
    named = {}
    for name in ('train_pipeline', 'test_pipeline'):
        if base.get(name) is not None:
            lines.append(f'{name} = {_pipeline_expression(f"_base_.{name}", base[name], name)}')
            named[name] = base[name]
    if base.get('tta_pipeline') is not None:
        lines.append(f'tta_pipeline = {_tta_expression(base.tta_pipeline)}')
    for name in DATALOADERS:
        loader = base.get(name)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            lines.append(f'{name} = dict(dataset={_dataset_override(loader.dataset, f"_base_.{name}.dataset", named)})')
    model = {}
    if notes:
        test_cfg = protected.model.test_cfg
        model['test_cfg'] = dict(crop_size=tuple(test_cfg.crop_size), stride=tuple(test_cfg.stride))
    if transform_type(preprocessor) == CONTRASTIVE_PREPROCESSOR:
        model['type'] = protected.model.type
        model.update({k: protected.model[k] for k in SEGMENTOR_OPTIONS if k in protected.model})
        model['data_preprocessor'] = dict(type=CONTRASTIVE_PREPROCESSOR, method=method, block_size=block_size,
                                          on_device=on_device)
        if key_file:
            model['data_preprocessor']['key_file'] = key_file
        model['data_preprocessor'].update({k: preprocessor[k] for k in PREPROCESSOR_OPTIONS if k in preprocessor})
    elif on_device:
        model['data_preprocessor'] = dict(type=DEVICE_PREPROCESSOR, method=method, block_size=block_size,
                                          **(dict(key_file=key_file) if key_file else {}))
    if model:
        lines.append('model = ' + _wrapped_call(model, len('model = ')))
    backend_args = ((protected.get('default_hooks') or {}).get('checkpoint') or {}).get('backend_args')
    if backend_args:
        lines.append(f'default_hooks = dict(checkpoint=dict(backend_args={_call(backend_args.to_dict())}))')
    hooks = [h.to_dict() for h in protected.custom_hooks if transform_type(h) in (HOOK, CHECKPOINT_HOOK)]
    lines.append(f'custom_hooks = [{", ".join(_call(hook) for hook in hooks)}]')
    return '\n'.join(lines) + '\n'


def _call(value) -> str:
    """``dict(key=value, ...)`` source for a flat config dict."""
    if isinstance(value, dict):
        return 'dict(' + ', '.join(f'{k}={_call(v)}' for k, v in value.items()) + ')'
    return repr(value)


def _wrapped_call(value, column: int, level: int = 1, width: int = 110) -> str:
    """:func:`_call`, with one item per line (indented by ``level``) wherever it would pass ``width``."""
    flat = _call(value)
    if not isinstance(value, dict) or column + len(flat) <= width:
        return flat
    pad = '    ' * level
    items = [f'{k}={_wrapped_call(v, len(pad) + len(k) + 1, level + 1, width)}' for k, v in value.items()]
    return 'dict(\n' + ',\n'.join(pad + item for item in items) + ')'


def write_leaf_config(stock: str, output: Union[str, Path], protected: Config, method: str, block_size: int,
                      notes: List[str], overwrite: bool = False) -> Path:
    """Write :func:`leaf_config_text` to ``output`` and check that it loads to ``protected``'s pipelines.

    ``stock`` is an ``mmseg::`` name or a path; a path is written relative to
    the leaf, so the pair can move together. The file appears only once it
    has been checked.

    Raises:
        ConfigError: the output exists (without ``overwrite``), is the stock
            config itself (the leaf inherits it: replacing it would leave a
            config that inherits itself, and lose the original), or the leaf
            does not reproduce the protected pipelines.
    """
    output = Path(output)
    if '::' not in stock and output.exists() and Path(stock).exists() and os.path.samefile(stock, output):
        raise ConfigError(f'{output} is the config being protected: the protected leaf inherits it, so it cannot '
                          'take its place (not even with --force); write the leaf to another file')
    if output.exists() and not overwrite:
        raise ConfigError(f'{output} exists (use --force to overwrite it)')
    output.parent.mkdir(parents=True, exist_ok=True)
    reference = stock if '::' in stock else os.path.relpath(Path(stock).resolve(), output.resolve().parent)
    text = leaf_config_text(reference, protected, method, block_size, notes, load_config(stock))
    with tempfile.NamedTemporaryFile('w', suffix='.py', dir=output.parent, delete=False) as handle:
        handle.write(text)
    try:
        loaded = Config.fromfile(handle.name)
        for name in DATALOADERS:
            if _pipelines(loaded.get(name)) != _pipelines(protected.get(name)):
                raise ConfigError(f'the leaf written for {stock} gives other {name} pipelines than protect_config')
        os.replace(handle.name, output)
    finally:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
    return output


def _pipelines(loader: Optional[dict]) -> list:
    if not isinstance(loader, dict):
        return []
    # MMEngine tags what a leaf inherits across packages with ``_scope_``; it names the same registry.
    pipelines = dataset_pipelines(loader.get('dataset'), 'dataset')
    return [(where, [_unscoped(t) for t in pipeline]) for where, pipeline in pipelines]


def _unscoped(value):
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_unscoped(v) for v in value]
    return value
