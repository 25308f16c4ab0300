from .data_preprocessor import KeyContrastiveDataPreProcessor, KeyProtectDataPreProcessor
from .segmentors import KeyContrastiveCascadeEncoderDecoder, KeyContrastiveEncoderDecoder

__all__ = [
    'KeyContrastiveCascadeEncoderDecoder', 'KeyContrastiveDataPreProcessor', 'KeyContrastiveEncoderDecoder',
    'KeyProtectDataPreProcessor'
]
