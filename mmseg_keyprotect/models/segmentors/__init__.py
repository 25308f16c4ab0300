from .key_contrastive import KeyContrastiveCascadeEncoderDecoder, KeyContrastiveEncoderDecoder

__all__ = ['KeyContrastiveCascadeEncoderDecoder', 'KeyContrastiveEncoderDecoder']
