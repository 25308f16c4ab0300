"""Turn a stock MMSegmentation config into a protected one.

The block grid must line up with what the network sees at every stage:
:class:`~mmseg_keyprotect.datasets.transforms.BlockwiseEncrypt` goes last
before ``PackSegInputs`` in every pipeline (including the dataloaders' copies
and each TTA branch), and slide-inference windows start on block boundaries.
"""
import copy
import re
import warnings
from pathlib import Path
from typing import List, Optional, Tuple, Union

from mmengine.config import Config

from ..checkpoint.mmengine_io import LOCKED_BACKEND_ARGS
from ..crypto.ciphers import DEFAULT_BLOCK_SIZE, DEFAULT_METHOD, check_block_size, enumerable_warning, parse_method
from ..datasets.transforms.blockwise_encrypt import PADDING_META_KEY
from ..errors import ConfigError
from ..models.segmentors.key_contrastive import KeyContrastiveEncoderDecoder
from ..utils.signatures import own_arguments
from .check import check_config
from .loading import load_config
from .pipelines import (
    CHECKPOINT_HOOK,
    CONTRASTIVE_PREPROCESSOR,
    DATALOADERS,
    DEVICE_PREPROCESSOR,
    ENCRYPT,
    HOOK,
    KEY_CONTRASTIVE_OPTIONS,
    KEY_CONTRASTIVE_SEGMENTORS,
    PACK,
    PLUGIN,
    PREPROCESSOR_OPTIONS,
    dataset_pipelines,
    transform_type,
)

#: Weight of the key-contrastive loss that ``key_contrastive=True`` uses: the segmentor's default.
KEY_CONTRASTIVE_WEIGHT = own_arguments(KeyContrastiveEncoderDecoder)['negative_weight']
#: Whether a protected model is trained key-contrastively where its segmentor allows, chosen by the
#: protection frontier study (docs/en/protection_frontier.md) with the default method and block size.
DEFAULT_KEY_CONTRASTIVE = True
#: The negatives key-contrastive training draws unless told otherwise, chosen by the same study against the
#: thieves with the weights: a negative for every image of each batch (settings of KeyContrastiveDataPreProcessor).
KEY_CONTRASTIVE_NEGATIVES = dict(negative_share=1.0)
# Heads whose forward gives no per-pixel class scores to train toward uniform.
NO_PIXEL_SCORES_HEADS = ('MaskFormerHead', 'Mask2FormerHead')


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
            stages.insert(packs[0], [copy.deepcopy(encrypt)])
            transform = {**transform, 'transforms': stages}
            anchored = True
        elif kind == PACK:
            result.append(copy.deepcopy(encrypt))
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


def protect_config(cfg: Union[Config, str, Path], method: str = DEFAULT_METHOD, block_size: int = DEFAULT_BLOCK_SIZE,
                   key_file: Optional[str] = None, num_wrong_keys: Optional[int] = None,
                   evaluate_plain: Optional[bool] = None, on_device: bool = False,
                   key_contrastive: Union[bool, dict, None] = None) -> Tuple[Config, List[str]]:
    """Protect a stock config: encryption in every pipeline, aligned inference, the hook.

    Args:
        cfg (Config | str | Path): the stock config or its path
            (``mmseg::pspnet/...py`` works).
        method (str): cipher method or chain, e.g. ``'shuffle'``, ``'shuffle+np'``.
        block_size (int): block side M.
        key_file (str, optional): key file path to write into the config;
            ``None`` (recommended) reads ``$KEYPROTECT_KEY_FILE`` at run time.
        num_wrong_keys (int, optional): random wrong keys the hook evaluates
            (default: the hook's).
        evaluate_plain (bool, optional): whether the hook evaluates plain
            images (default: the hook's).
        on_device (bool): encrypt whole batches on the model's device
            (:class:`~mmseg_keyprotect.models.KeyProtectDataPreProcessor`);
            the pipelines then only pad to whole blocks.
        key_contrastive (bool | dict, optional): also train the model to fail
            without the key: ``True`` for the defaults (weight
            ``KEY_CONTRASTIVE_WEIGHT``, negatives ``KEY_CONTRASTIVE_NEGATIVES``),
            or a dict that overrides any of them:
            ``negative_weight`` / ``negative_statistics`` (the segmentor's) and
            ``negatives`` / ``max_near_fraction`` / ``negative_share`` /
            ``negative_interval`` (the
            :class:`~mmseg_keyprotect.models.KeyContrastiveDataPreProcessor`'s);
            ``False`` for ordinary protected training. ``None`` (default)
            follows ``DEFAULT_KEY_CONTRASTIVE`` where the segmentor supports
            it, and warns and trains ordinarily where it does not.

    Returns:
        tuple[Config, list[str]]: the protected config and notes on every
        setting that was changed to keep blocks aligned.

    Raises:
        ConfigError: when the config cannot be protected (which setting, why).
    """
    cfg = copy.deepcopy(load_config(cfg))
    block_size = check_block_size(block_size)
    encrypt = dict(type=ENCRYPT, method='+'.join(parse_method(method)), block_size=block_size)
    if key_file is not None:
        encrypt['key_file'] = key_file
    if on_device:
        encrypt['on_device'] = True
    notes: List[str] = []
    _protect_pipelines(cfg, encrypt)
    preprocessor = cfg.get('model', {}).get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    if preprocessor.get('test_cfg'):
        raise ConfigError('model.data_preprocessor.test_cfg pads images at test time and then overwrites the '
                          f'block-padding record ({PADDING_META_KEY}); remove it (BlockwiseEncrypt already pads '
                          'to a multiple of the block size)')
    if on_device:
        cfg.model.data_preprocessor = dict(preprocessor, type=DEVICE_PREPROCESSOR, method=encrypt['method'],
                                           block_size=block_size)
        if key_file is not None:
            cfg.model.data_preprocessor['key_file'] = key_file
    if key_contrastive is None:
        unsupported = _key_contrastive_problem(cfg) if DEFAULT_KEY_CONTRASTIVE else None
        if unsupported:
            warnings.warn(f'{unsupported}: this config is protected without the default key-contrastive training',
                          stacklevel=2)
        key_contrastive = DEFAULT_KEY_CONTRASTIVE and not unsupported
    if key_contrastive:
        _make_key_contrastive(cfg, {} if key_contrastive is True else dict(key_contrastive), encrypt, on_device)
    test_cfg = cfg.get('model', {}).get('test_cfg') or {}
    if test_cfg.get('mode') == 'slide':
        test_cfg['crop_size'] = _multiple_of(test_cfg['crop_size'], block_size, 'model.test_cfg.crop_size', notes)
        test_cfg['stride'] = _multiple_of(test_cfg['stride'], block_size, 'model.test_cfg.stride', notes)

    hook_settings = dict(num_wrong_keys=num_wrong_keys, evaluate_plain=evaluate_plain)
    _add_plugin_and_hooks(cfg, dict(type=HOOK, **{k: v for k, v in hook_settings.items() if v is not None}))
    warning = enumerable_warning(encrypt['method'], block_size)
    if warning:
        warnings.warn(warning, stacklevel=2)
    problems = check_config(cfg)
    if problems:
        raise ConfigError('the protected config is still misaligned:\n  ' + '\n  '.join(problems))
    return cfg, notes


def _protect_pipelines(cfg: Config, encrypt: dict) -> None:
    """``encrypt`` right before PackSegInputs in every pipeline: the dataloaders' and the named ones."""
    for name in DATALOADERS:
        loader = cfg.get(name)
        if isinstance(loader, dict):
            for location, pipeline in list(dataset_pipelines(loader.get('dataset'), f'{name}.dataset')):
                _set_pipeline(loader['dataset'], location, protect_pipeline(pipeline, encrypt, location))
    for name in ('train_pipeline', 'test_pipeline', 'tta_pipeline'):
        if cfg.get(name) is not None:
            cfg[name] = protect_pipeline(cfg[name], encrypt, name)


def _add_plugin_and_hooks(cfg: Config, hook: dict) -> None:
    """The plugin import, ``hook``, the checkpoint key hook and checkpoints written locked under the key."""
    imports = cfg.get('custom_imports') or dict(imports=[], allow_failed_imports=False)
    if PLUGIN not in imports['imports']:
        imports['imports'] = list(imports['imports']) + [PLUGIN]
    cfg['custom_imports'] = imports
    hooks = [h for h in (cfg.get('custom_hooks') or []) if transform_type(h) not in (HOOK, CHECKPOINT_HOOK)]
    cfg['custom_hooks'] = hooks + [hook, dict(type=CHECKPOINT_HOOK)]
    default_hooks = cfg.get('default_hooks') or {}
    if default_hooks.get('checkpoint') is not None:
        default_hooks['checkpoint']['backend_args'] = dict(LOCKED_BACKEND_ARGS)


def _key_contrastive_problem(cfg: Config) -> Optional[str]:
    """Why this model cannot be trained key-contrastively, or None."""
    kind = transform_type(cfg.model)
    if kind not in KEY_CONTRASTIVE_SEGMENTORS and kind not in KEY_CONTRASTIVE_SEGMENTORS.values():
        return f'model.type is {kind}; key-contrastive training supports {sorted(KEY_CONTRASTIVE_SEGMENTORS)}'
    heads = cfg.model.get('decode_head')
    for head in heads if isinstance(heads, (list, tuple)) else [heads]:
        if isinstance(head, dict) and transform_type(head) in NO_PIXEL_SCORES_HEADS:
            return f'model.decode_head is {transform_type(head)}, which gives no per-pixel class scores'
    return None


def _make_key_contrastive(cfg: Config, options: dict, encrypt: dict, on_device: bool) -> None:
    """Swap in the key-contrastive segmentor and data preprocessor."""
    options = {**KEY_CONTRASTIVE_NEGATIVES, **options}
    unknown = set(options) - set(KEY_CONTRASTIVE_OPTIONS)
    if unknown:
        raise ConfigError(f'key_contrastive: unknown settings {sorted(unknown)}; expected '
                          f'{", ".join(KEY_CONTRASTIVE_OPTIONS)}')
    problem = _key_contrastive_problem(cfg)
    if problem:
        raise ConfigError(f'key_contrastive: {problem}')
    kind = transform_type(cfg.model)
    cfg.model['type'] = KEY_CONTRASTIVE_SEGMENTORS.get(kind, kind)
    cfg.model['negative_weight'] = float(options.get('negative_weight', KEY_CONTRASTIVE_WEIGHT))
    if 'negative_statistics' in options:
        cfg.model['negative_statistics'] = options['negative_statistics']
    preprocessor = dict(cfg.model.get('data_preprocessor') or {}, type=CONTRASTIVE_PREPROCESSOR,
                        method=encrypt['method'], block_size=encrypt['block_size'], on_device=on_device)
    preprocessor.update({k: options[k] for k in PREPROCESSOR_OPTIONS if k in options})
    if 'key_file' in encrypt:
        preprocessor['key_file'] = encrypt['key_file']
    cfg.model['data_preprocessor'] = preprocessor
