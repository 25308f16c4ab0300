"""Where the pipelines of a config are, and what they hold."""
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from ..datasets.transforms.blockwise_encrypt import transform_settings
from ..models.data_preprocessor import KeyContrastiveDataPreProcessor, KeyProtectDataPreProcessor
from ..models.segmentors.key_contrastive import KeyContrastiveEncoderDecoder
from ..utils.signatures import own_arguments

ENCRYPT = 'BlockwiseEncrypt'
PACK = 'PackSegInputs'
HOOK = 'KeyProtectHook'
CHECKPOINT_HOOK = 'CheckpointKeyHook'
DEVICE_PREPROCESSOR = 'KeyProtectDataPreProcessor'
CONTRASTIVE_PREPROCESSOR = 'KeyContrastiveDataPreProcessor'
#: Stock segmentor type -> its key-contrastive counterpart (``mmseg_keyprotect.models.segmentors``).
KEY_CONTRASTIVE_SEGMENTORS = {
    'EncoderDecoder': 'KeyContrastiveEncoderDecoder',
    'CascadeEncoderDecoder': 'KeyContrastiveCascadeEncoderDecoder',
}
#: Settings of key-contrastive training, read from the signatures that take them: the segmentor's, then the
#: data preprocessor's (``on_device`` is a setting of protection, not of the training).
SEGMENTOR_OPTIONS = tuple(own_arguments(KeyContrastiveEncoderDecoder))
PREPROCESSOR_OPTIONS = tuple(name for name in own_arguments(KeyContrastiveDataPreProcessor) if name != 'on_device')
KEY_CONTRASTIVE_OPTIONS = SEGMENTOR_OPTIONS + PREPROCESSOR_OPTIONS
#: Every argument a key-aware data preprocessor adds to ``SegDataPreProcessor``.
KEYED_PREPROCESSOR_ARGUMENTS = (*own_arguments(KeyProtectDataPreProcessor),
                                *own_arguments(KeyContrastiveDataPreProcessor))
PLUGIN = 'mmseg_keyprotect'
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


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


def preprocessor_encrypts(preprocessor: dict) -> bool:
    """Whether a data preprocessor config encrypts its inputs (the on-device path)."""
    kind = transform_type(preprocessor) if preprocessor else ''
    return kind == DEVICE_PREPROCESSOR or (kind == CONTRASTIVE_PREPROCESSOR and preprocessor.get('on_device', True))


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




def protection_settings(cfg: Config) -> Optional[dict]:
    """The cipher settings of a protected config (see ``transform_settings``), or None where nothing encrypts."""
    settings = encrypt_settings(cfg)
    return transform_settings(settings[0]) if settings else None
