"""Turn a stock MMSegmentation config into a protected one, and check alignment.

The block grid must line up with what the network sees at every stage. This
module inserts :class:`~mmseg_keyprotect.transforms.BlockwiseEncrypt` as the
last step before ``PackSegInputs`` in every pipeline (including the
dataloaders' copies and each TTA branch), makes ``PackSegInputs`` keep the
block-padding record, makes slide-inference windows start on block
boundaries, and checks an existing config for all of that.
"""
import copy
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from mmengine.config import Config

from .ciphers import check_block_size, parse_method
from .errors import ConfigError
from .transforms import PADDING_META_KEY

ENCRYPT = 'BlockwiseEncrypt'
PACK = 'PackSegInputs'
HOOK = 'KeyProtectHook'
DEVICE_PREPROCESSOR = 'KeyProtectDataPreProcessor'
PLUGIN = 'mmseg_keyprotect'
DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                     'flip_direction', 'reduce_zero_label')
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def resolve_config_path(config: Union[str, Path]) -> str:
    """A config path, with ``mmseg::<algo>/<name>.py`` mapped into the installed mmseg.

    Raises:
        ConfigError: if the file does not exist.
    """
    config = str(config)
    if config.startswith('mmseg::'):
        import mmseg
        path = Path(mmseg.__file__).parent / '.mim' / 'configs' / config[len('mmseg::'):]
    else:
        path = Path(config)
    if not path.is_file():
        raise ConfigError(f'config file {config} does not exist' + (f' ({path})' if str(path) != config else ''))
    return str(path)


def load_config(config: Union[Config, str, Path]) -> Config:
    return config if isinstance(config, Config) else Config.fromfile(resolve_config_path(config))


def transform_type(transform) -> str:
    kind = transform.get('type') if isinstance(transform, dict) else None
    return kind.__name__ if isinstance(kind, type) else str(kind).split('.')[-1]


def dataset_pipelines(dataset: dict, where: str) -> Iterator[Tuple[str, list]]:
    """Yield ``(location, pipeline)`` for a dataset config and any it wraps."""
    if not isinstance(dataset, dict):
        return
    if 'pipeline' in dataset:
        yield f'{where}.pipeline', dataset['pipeline']
    if isinstance(dataset.get('dataset'), dict):
        yield from dataset_pipelines(dataset['dataset'], f'{where}.dataset')
    for index, inner in enumerate(dataset.get('datasets') or []):
        yield from dataset_pipelines(inner, f'{where}.datasets[{index}]')


def config_pipelines(cfg: Config) -> Iterator[Tuple[str, list]]:
    """Every pipeline that a run builds: the dataloaders' and ``tta_pipeline``."""
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            yield from dataset_pipelines(loader.get('dataset'), f'{name}.dataset')
    if cfg.get('tta_pipeline') is not None:
        yield 'tta_pipeline', cfg.tta_pipeline


def _with_padding_key(pack: dict) -> dict:
    pack = copy.deepcopy(pack)
    keys = tuple(pack.get('meta_keys', DEFAULT_META_KEYS))
    if PADDING_META_KEY not in keys:
        pack['meta_keys'] = keys + (PADDING_META_KEY,)
    return pack


def protect_pipeline(pipeline: list, encrypt: dict, where: str = 'pipeline') -> list:
    """Return a copy of ``pipeline`` with ``encrypt`` right before PackSegInputs.

    Handles ``TestTimeAug`` (the transform becomes its own stage before the
    PackSegInputs stage). An existing BlockwiseEncrypt is replaced.

    Raises:
        ConfigError: if the pipeline has no PackSegInputs to anchor on.
    """
    result, anchored = [], False
    for transform in pipeline:
        kind = transform_type(transform)
        if kind == ENCRYPT:
            continue
        if kind == 'TestTimeAug':
            stages = [[t for t in stage if transform_type(t) != ENCRYPT] for stage in transform['transforms']]
            stages = [stage for stage in stages if stage]
            packs = [i for i, stage in enumerate(stages) if any(transform_type(t) == PACK for t in stage)]
            if not packs:
                raise ConfigError(f'{where}: TestTimeAug has no PackSegInputs stage to put {ENCRYPT} before')
            stages[packs[0]] = [_with_padding_key(t) if transform_type(t) == PACK else t for t in stages[packs[0]]]
            stages.insert(packs[0], [copy.deepcopy(encrypt)])
            transform = {**transform, 'transforms': stages}
            anchored = True
        elif kind == PACK:
            result.append(copy.deepcopy(encrypt))
            transform = _with_padding_key(transform)
            anchored = True
        result.append(transform)
    if not anchored:
        raise ConfigError(f'{where} has no PackSegInputs step; {ENCRYPT} must run right before it')
    return result


def _set_pipeline(dataset: dict, location: str, pipeline: list) -> None:
    node = dataset
    for part in re.findall(r'\.(\w+)(?:\[(\d+)\])?', location)[1:-1]:
        name, index = part
        node = node[name] if not index else node[name][int(index)]
    node['pipeline'] = pipeline


def _multiple_of(value, block_size: int, setting: str, notes: List[str]):
    """Round a size (int or pair) down to a multiple of M, noting any change."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    rounded = tuple(max(block_size, v // block_size * block_size) for v in pair)
    if rounded != pair:
        notes.append(f'{setting}: {tuple(pair)} -> {rounded} (slide windows must start on {block_size}-pixel '
                     'block boundaries, or a window of an encrypted image is not the encryption of that window)')
    return rounded if not isinstance(value, int) else rounded[0] if rounded[0] == rounded[1] else rounded


def protect_config(cfg: Union[Config, str, Path], method: str = 'shuffle', block_size: int = 4,
                   key_file: Optional[str] = None, num_wrong_keys: int = 2,
                   evaluate_plain: bool = True, on_device: bool = False) -> Tuple[Config, List[str]]:
    """Protect a stock config: encryption in every pipeline, aligned inference, the hook.

    Args:
        cfg (Config | str | Path): the stock config or its path
            (``mmseg::pspnet/...py`` works).
        method (str): cipher method or chain, e.g. ``'shuffle'``, ``'shuffle+np'``.
        block_size (int): block side M.
        key_file (str, optional): key file path to write into the config;
            ``None`` (recommended) reads ``$KEYPROTECT_KEY_FILE`` at run time.
        num_wrong_keys (int): random wrong keys the hook evaluates.
        evaluate_plain (bool): whether the hook evaluates plain images.
        on_device (bool): encrypt whole batches on the model's device
            (:class:`~mmseg_keyprotect.data_preprocessor.KeyProtectDataPreProcessor`);
            the pipelines then only pad to whole blocks.

    Returns:
        tuple[Config, list[str]]: the protected config and notes on every
        setting that was changed to keep blocks aligned.

    Raises:
        ConfigError: when the config cannot be protected (which setting, why).
    """
    cfg = copy.deepcopy(load_config(cfg))
    block_size = check_block_size(block_size)
    encrypt = dict(type=ENCRYPT, method='+'.join(parse_method(method)), block_size=block_size, key_file=key_file)
    if on_device:
        encrypt['on_device'] = True
    notes: List[str] = []
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            for location, pipeline in list(dataset_pipelines(loader.get('dataset'), f'{name}.dataset')):
                _set_pipeline(loader['dataset'], location, protect_pipeline(pipeline, encrypt, location))
    for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
        if cfg.get(name) is not None:
            cfg[name] = protect_pipeline(cfg[name], encrypt, name)

    preprocessor = cfg.get('model', {}).get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    if preprocessor.get('test_cfg'):
        raise ConfigError('model.data_preprocessor.test_cfg pads images at test time and then overwrites the '
                          f'block-padding record ({PADDING_META_KEY}); remove it (BlockwiseEncrypt already pads '
                          'to a multiple of the block size)')
    if on_device:
        cfg.model.data_preprocessor = dict(preprocessor, type=DEVICE_PREPROCESSOR, method=encrypt['method'],
                                           block_size=block_size, key_file=key_file)
    test_cfg = cfg.get('model', {}).get('test_cfg') or {}
    if test_cfg.get('mode') == 'slide':
        test_cfg['crop_size'] = _multiple_of(test_cfg['crop_size'], block_size, 'model.test_cfg.crop_size', notes)
        test_cfg['stride'] = _multiple_of(test_cfg['stride'], block_size, 'model.test_cfg.stride', notes)

    imports = cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False)
    if PLUGIN not in imports['imports']:
        imports['imports'] = list(imports['imports']) + [PLUGIN]
    cfg['custom_imports'] = imports
    hooks = [h for h in (cfg.get('custom_hooks') or []) if transform_type(h) != HOOK]
    cfg['custom_hooks'] = hooks + [dict(type=HOOK, num_wrong_keys=num_wrong_keys, evaluate_plain=evaluate_plain)]
    problems = check_config(cfg)
    if problems:
        raise ConfigError('the protected config is still misaligned:\n  ' + '\n  '.join(problems))
    return cfg, notes


def encrypt_settings(cfg: Config) -> List[dict]:
    """All BlockwiseEncrypt settings found in the config's pipelines."""
    found = []
    for _, pipeline in config_pipelines(cfg):
        for transform in pipeline:
            if transform_type(transform) == ENCRYPT:
                found.append(transform)
            for stage in transform.get('transforms', []) if transform_type(transform) == 'TestTimeAug' else []:
                found.extend(t for t in stage if transform_type(t) == ENCRYPT)
    return found


def check_pipeline(pipeline: list, where: str, padding_record: bool = True) -> List[str]:
    """Problems with where BlockwiseEncrypt sits in one pipeline (and, with
    ``padding_record``, whether PackSegInputs keeps the block padding)."""
    problems = []
    names = [transform_type(t) for t in pipeline]
    if 'TestTimeAug' in names:
        transform = pipeline[names.index('TestTimeAug')]
        stage_names = [[transform_type(t) for t in stage] for stage in transform['transforms']]
        flat = [ENCRYPT if ENCRYPT in stage else PACK if PACK in stage else 'other' for stage in stage_names]
        where, names = f'{where} (TestTimeAug stages)', flat
        packs = [t for stage in transform['transforms'] for t in stage if transform_type(t) == PACK]
    else:
        packs = [t for t in pipeline if transform_type(t) == PACK]
    if ENCRYPT not in names:
        return [f'{where}: no {ENCRYPT} step (images would reach the network unencrypted)']
    position = names.index(ENCRYPT)
    after = [n for n in names[position + 1:] if n != PACK]
    if after:
        problems.append(f'{where}: {after} run after {ENCRYPT}; anything that resizes, crops, flips, pads or '
                        f'changes pixel values must come before it (put it right before {PACK})')
    for pack in packs if padding_record else []:
        if PADDING_META_KEY not in tuple(pack.get('meta_keys', DEFAULT_META_KEYS)):
            problems.append(f'{where}: {PACK}.meta_keys lacks "{PADDING_META_KEY}", so block padding of images '
                            'whose size is not a multiple of the block size would not be cropped off predictions')
    return problems


def check_config(cfg: Config, padding_record: bool = True) -> List[str]:
    """Every alignment problem of a protected config, as messages (empty if fine)."""
    problems = []
    for where, pipeline in config_pipelines(cfg):
        problems += check_pipeline(pipeline, where, padding_record)
    settings = encrypt_settings(cfg)
    block_sizes = {t.get('block_size', 4) for t in settings}
    methods = {'+'.join(parse_method(t.get('method', 'shuffle'))) for t in settings}
    if len(block_sizes) > 1 or len(methods) > 1:
        problems.append(f'pipelines disagree on the cipher: methods {sorted(methods)}, block sizes '
                        f'{sorted(block_sizes)}; train and test must use the same one')
    test_cfg = cfg.get('model', {}).get('test_cfg') or {}
    if block_sizes and test_cfg.get('mode') == 'slide':
        block_size = min(block_sizes)
        for setting in ('crop_size', 'stride'):
            value = test_cfg.get(setting)
            pair = (value, value) if isinstance(value, int) else tuple(value)
            if any(v % block_size for v in pair):
                problems.append(f'model.test_cfg.{setting} = {value} is not a multiple of the block size '
                                f'{block_size}: slide windows would not start on block boundaries')
    preprocessor = cfg.get('model', {}).get('data_preprocessor') or {}
    if settings and preprocessor.get('test_cfg'):
        problems.append(f'model.data_preprocessor.test_cfg pads at test time and overwrites {PADDING_META_KEY}')
    return problems + _device_problems(settings, preprocessor)


def _device_problems(settings: List[dict], preprocessor: dict) -> List[str]:
    """Pipelines and data preprocessor must agree on who encrypts: exactly one of them."""
    on_device = {bool(t.get('on_device', False)) for t in settings}
    kind = transform_type(preprocessor) if preprocessor else 'SegDataPreProcessor'
    if kind != DEVICE_PREPROCESSOR:
        if True in on_device:
            return [f'{ENCRYPT}(on_device=True) leaves images plain, but model.data_preprocessor is {kind}: '
                    f'set its type to {DEVICE_PREPROCESSOR} with the same method and block_size']
        return []
    if not settings:
        return [f'model.data_preprocessor is {DEVICE_PREPROCESSOR}, but no pipeline has a {ENCRYPT} step '
                '(with on_device=True) to pad images to whole blocks']
    problems = []
    if False in on_device:
        problems.append(f'model.data_preprocessor ({DEVICE_PREPROCESSOR}) encrypts, and so does a pipeline\'s '
                        f'{ENCRYPT}: images would be encrypted twice; set on_device=True in every {ENCRYPT}')
    method = '+'.join(parse_method(preprocessor.get('method', 'shuffle')))
    pipeline_method = '+'.join(parse_method(settings[0].get('method', 'shuffle')))
    block_size, pipeline_block_size = preprocessor.get('block_size', 4), settings[0].get('block_size', 4)
    if (method, block_size) != (pipeline_method, pipeline_block_size):
        problems.append(f'model.data_preprocessor encrypts with {method}, M = {block_size}, but the pipelines pad '
                        f'for {pipeline_method}, M = {pipeline_block_size}')
    return problems


def pipeline_encryption(cfg: Config) -> Config:
    """A copy of a config whose pipelines encrypt, whatever it trained with.

    Inference and the protection report feed images one by one and choose
    the key per call; the network sees the same inputs either way.
    """
    cfg = copy.deepcopy(cfg)
    preprocessor = cfg.get('model', {}).get('data_preprocessor') or {}
    if transform_type(preprocessor) == DEVICE_PREPROCESSOR:
        for name in ('method', 'block_size', 'key_file', 'channel_order'):
            preprocessor.pop(name, None)
        preprocessor['type'] = 'SegDataPreProcessor'
    for _, pipeline in config_pipelines(cfg):
        for transform in pipeline:
            stages = transform.get('transforms', []) if transform_type(transform) == 'TestTimeAug' else [[transform]]
            for step in (t for stage in stages for t in stage):
                if transform_type(step) == ENCRYPT:
                    step.pop('on_device', None)
    return cfg


def format_value(value, indent: int = 0) -> str:
    """Python source for a config value, in the ``dict(key=value)`` house style."""
    pad = ' ' * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return 'dict()'
        identifiers = all(isinstance(k, str) and k.isidentifier() for k in value)
        items = [f'{k}={format_value(v, indent + 4)}' if identifiers else f'{k!r}: {format_value(v, indent + 4)}'
                 for k, v in value.items()]
        one_line = f'dict({", ".join(items)})' if identifiers else '{' + ', '.join(items) + '}'
        if len(one_line) + indent <= 100 and '\n' not in one_line:
            return one_line
        body = (',\n' + pad).join(items)
        return f'dict(\n{pad}{body})' if identifiers else '{\n' + pad + body + '}'
    if isinstance(value, (list, tuple)):
        open_, close = ('[', ']') if isinstance(value, list) else ('(', ')')
        items = [format_value(v, indent + 4) for v in value]
        if isinstance(value, tuple) and len(items) == 1:
            items[0] += ','
        one_line = open_ + ', '.join(items) + close
        if len(one_line) + indent <= 100 and '\n' not in one_line:
            return one_line
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            # Scalars: fill lines up to the width instead of one item per line.
            lines, line = [], ''
            for item in items:
                if line and len(pad) + len(line) + len(item) + 2 > 100:
                    lines.append(line.rstrip())
                    line = ''
                line += item + ', '
            lines.append(line.rstrip(', '))
            return open_ + '\n' + pad + ('\n' + pad).join(lines) + close
        return open_ + '\n' + pad + (',\n' + pad).join(items) + close
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def leaf_config_text(stock: str, protected: Config, method: str, block_size: int, notes: List[str]) -> str:
    """A short config that inherits ``stock`` and overrides only what protection changes."""
    lines = [f'# Protected variant of {stock}: block-wise {method}, M = {block_size}.',
             '# Written by tools/protect_config.py. The key is read at run time from --key-file',
             '# (or $KEYPROTECT_KEY_FILE); this file holds no secret.']
    lines += [f'# Changed for block alignment: {note}' for note in notes]
    lines += [f'_base_ = [{stock!r}]', '',
              f'custom_imports = {format_value(protected.custom_imports.to_dict())}', '']
    named = {}
    for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
        if protected.get(name) is not None:
            named[name] = _plain(protected[name])
            lines.append(f'{name} = {format_value(named[name])}')
    for name in DATALOADERS:
        loader = protected.get(name)
        if not isinstance(loader, dict):
            continue
        override = _pipelines_only(_plain(loader['dataset']))
        variable = next((v for v, p in named.items() if override == {'pipeline': p}), None)
        text = f'dict(pipeline={variable})' if variable else format_value(override, 4)
        lines.append(f'{name} = dict(dataset={text})')
    model = {}
    if notes:
        model['test_cfg'] = _plain(protected.model.test_cfg)
    preprocessor = protected.model.get('data_preprocessor') or {}
    if transform_type(preprocessor) == DEVICE_PREPROCESSOR:
        model['data_preprocessor'] = dict(type=DEVICE_PREPROCESSOR, method=preprocessor['method'],
                                          block_size=preprocessor['block_size'], key_file=preprocessor['key_file'])
    if model:
        lines.append(f'model = {format_value(model)}')
    lines.append(f'custom_hooks = {format_value(_plain(protected.custom_hooks))}')
    return '\n'.join(lines) + '\n'


def _plain(value):
    """Plain dicts, lists and tuples (ConfigDict is a dict) for source formatting."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _pipelines_only(dataset: dict) -> dict:
    """The part of a dataset config that protection changes: pipelines, and
    wrapped datasets in full (lists are replaced whole when configs merge)."""
    if 'datasets' in dataset:
        return dict(datasets=dataset['datasets'])
    out = {}
    if 'pipeline' in dataset:
        out['pipeline'] = dataset['pipeline']
    if isinstance(dataset.get('dataset'), dict):
        out['dataset'] = _pipelines_only(dataset['dataset'])
    return out
