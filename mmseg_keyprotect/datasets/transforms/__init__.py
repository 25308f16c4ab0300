from .blockwise_encrypt import PADDING_META_KEY, BlockwiseEncrypt, encrypt_results

__all__ = ['PADDING_META_KEY', 'BlockwiseEncrypt', 'encrypt_results']
