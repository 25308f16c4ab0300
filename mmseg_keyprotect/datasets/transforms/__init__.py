from .blockwise_encrypt import PADDING_META_KEY, BlockwiseEncrypt, encrypt_results
from .formatting import PackSegInputs

__all__ = ['PADDING_META_KEY', 'BlockwiseEncrypt', 'encrypt_results', 'PackSegInputs']
