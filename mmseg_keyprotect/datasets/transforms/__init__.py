from .blockwise_encrypt import (
    DEFAULT_CHANNEL_ORDER,
    PADDING_META_KEY,
    BlockwiseEncrypt,
    encrypt_results,
    transform_settings,
)
from .formatting import PackSegInputs

__all__ = ['DEFAULT_CHANNEL_ORDER', 'PADDING_META_KEY', 'BlockwiseEncrypt', 'encrypt_results', 'transform_settings',
           'PackSegInputs']
