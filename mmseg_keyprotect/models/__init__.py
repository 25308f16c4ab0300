from .data_preprocessor import KeyProtectDataPreProcessor

__all__ = ['KeyProtectDataPreProcessor']
