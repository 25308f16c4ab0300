"""Checking that a protected config keeps the block grid aligned everywhere."""
import copy
from typing import List

from mmengine.config import Config

from ..datasets.transforms.blockwise_encrypt import PADDING_META_KEY, transform_settings
from .pipelines import (
    CONTRASTIVE_PREPROCESSOR,
    DEVICE_PREPROCESSOR,
    ENCRYPT,
    KEYED_PREPROCESSOR_ARGUMENTS,
    PACK,
    config_pipelines,
    encrypt_settings,
    preprocessor_encrypts,
    transform_type,
)


def check_pipeline(pipeline: list, where: str) -> List[str]:
    """Problems with where BlockwiseEncrypt sits in one pipeline."""
    problems = []
    names = [transform_type(t) for t in pipeline]
    if 'TestTimeAug' in names:
        transform = pipeline[names.index('TestTimeAug')]
        stage_names = [[transform_type(t) for t in stage] for stage in transform['transforms']]
        flat = [ENCRYPT if ENCRYPT in stage else PACK if PACK in stage else 'other' for stage in stage_names]
        where, names = f'{where} (TestTimeAug stages)', flat
    if ENCRYPT not in names:
        return [f'{where}: no {ENCRYPT} step (images would reach the network unencrypted)']
    position = names.index(ENCRYPT)
    after = [n for n in names[position + 1:] if n != PACK]
    if after:
        problems.append(f'{where}: {after} run after {ENCRYPT}; anything that resizes, crops, flips, pads or '
                        f'changes pixel values must come before it (put it right before {PACK})')
    return problems


def check_config(cfg: Config) -> List[str]:
    """Every alignment problem of a protected config, as messages (empty if fine)."""
    problems = []
    for where, pipeline in config_pipelines(cfg):
        problems += check_pipeline(pipeline, where)
    settings = encrypt_settings(cfg)
    resolved = [transform_settings(t) for t in settings]
    block_sizes = {t['block_size'] for t in resolved}
    methods = {t['method'] for t in resolved}
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
    keyed = kind in (DEVICE_PREPROCESSOR, CONTRASTIVE_PREPROCESSOR)
    if not preprocessor_encrypts(preprocessor):
        if True in on_device:
            return [f'{ENCRYPT}(on_device=True) leaves images plain, but model.data_preprocessor ({kind}) does not '
                    f'encrypt: set its type to {DEVICE_PREPROCESSOR} with the same method and block_size']
        if keyed and not settings:
            return [f'model.data_preprocessor is {kind}, but no pipeline has a {ENCRYPT} step']
        if not keyed:
            return []
    elif not settings:
        return [f'model.data_preprocessor is {kind}, but no pipeline has a {ENCRYPT} step '
                '(with on_device=True) to pad images to whole blocks']
    problems = []
    if preprocessor_encrypts(preprocessor) and False in on_device:
        problems.append(f'model.data_preprocessor ({kind}) encrypts, and so does a pipeline\'s '
                        f'{ENCRYPT}: images would be encrypted twice; set on_device=True in every {ENCRYPT}')
    ours, pipeline = transform_settings(preprocessor), transform_settings(settings[0])
    method, block_size = ours['method'], ours['block_size']
    pipeline_method, pipeline_block_size = pipeline['method'], pipeline['block_size']
    if (method, block_size) != (pipeline_method, pipeline_block_size):
        problems.append(f'model.data_preprocessor uses {method}, M = {block_size}, but the pipelines use '
                        f'{pipeline_method}, M = {pipeline_block_size}')
    return problems


def pipeline_encryption(cfg: Config) -> Config:
    """A copy of a config whose pipelines encrypt, whatever it trained with.

    Inference and the protection report feed images one by one and choose
    the key per call; the network sees the same inputs either way.
    """
    cfg = copy.deepcopy(cfg)
    preprocessor = cfg.get('model', {}).get('data_preprocessor') or {}
    if transform_type(preprocessor) in (DEVICE_PREPROCESSOR, CONTRASTIVE_PREPROCESSOR):
        for name in KEYED_PREPROCESSOR_ARGUMENTS:
            preprocessor.pop(name, None)
        preprocessor['type'] = 'SegDataPreProcessor'
    for _, pipeline in config_pipelines(cfg):
        for transform in pipeline:
            stages = transform.get('transforms', []) if transform_type(transform) == 'TestTimeAug' else [[transform]]
            for step in (t for stage in stages for t in stage):
                if transform_type(step) == ENCRYPT:
                    step.pop('on_device', None)
    return cfg


