from .blockwise_encrypt import (
    PADDING_META_KEY,
    BlockwiseEncrypt,
    encrypt_results,
    transform_settings,
)
from .formatting import PackSegInputs

__all__ = ['PADDING_META_KEY', 'BlockwiseEncrypt', 'encrypt_results', 'transform_settings',
           'PackSegInputs']
