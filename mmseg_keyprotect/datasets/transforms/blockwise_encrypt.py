"""The data-pipeline transform that encrypts images block-wise with a key."""
from typing import Optional, Sequence, Union

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...crypto.ciphers import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_CHANNEL_ORDER,
    DEFAULT_METHOD,
    BlockCipher,
    check_image,
    pad_to_multiple,
    parse_method,
)
from ...crypto.run_key import RunKey
from ...errors import ImageFormatError

PADDING_META_KEY = 'padding_size'


def transform_settings(transform: dict) -> dict:
    """``method`` (normalised), ``block_size``, ``channel_order`` and ``key_file`` of a BlockwiseEncrypt or
    key-aware data preprocessor config, with the defaults of what it leaves out."""
    return dict(method='+'.join(parse_method(transform.get('method', DEFAULT_METHOD))),
                block_size=transform.get('block_size', DEFAULT_BLOCK_SIZE),
                channel_order=transform.get('channel_order', DEFAULT_CHANNEL_ORDER),
                key_file=transform.get('key_file'))


def encrypt_results(results: dict, cipher: Optional[BlockCipher], channel_order: str = DEFAULT_CHANNEL_ORDER,
                    pad_val: int = 0, seg_pad_val: int = 255, block_size: Optional[int] = None) -> dict:
    """Pad ``results['img']`` (and its segmentation maps) to whole blocks and encrypt it.

    With ``cipher=None`` the image is only padded (to ``block_size``): the
    plain-image condition, on exactly the same geometry.
    """
    image = results['img']
    try:
        check_image(image, 'image', channel_order)
    except ImageFormatError as error:
        raise ImageFormatError(f'{results.get("img_path", "<array>")}: {error}') from None
    block_size = cipher.block_size if cipher is not None else block_size
    height, width = image.shape[:2]
    image = pad_to_multiple(image, block_size, pad_val)
    padded_height, padded_width = image.shape[:2]
    results['img'] = image if cipher is None else cipher.encrypt(image, channel_order)
    results['img_shape'] = results['pad_shape'] = (padded_height, padded_width)
    results[PADDING_META_KEY] = (0, padded_width - width, 0, padded_height - height)
    for key in results.get('seg_fields', []):
        # Labels that follow the image (training, after crops) are padded with it. Labels still at the
        # original size are what test pipelines load after resizing: mmseg scores predictions against them
        # on the original pixels (after cropping the padding recorded here), so they stay as they are.
        label_shape = results[key].shape[:2]
        if label_shape == (height, width) and label_shape != tuple(results.get('ori_shape', ()))[:2]:
            results[key] = pad_to_multiple(results[key], block_size, seg_pad_val)
    return results


@TRANSFORMS.register_module()
class BlockwiseEncrypt(BaseTransform):
    """Encrypt the image block-wise with a secret key (SHF, NP, FFX or a chain).

    Put it as the last step before ``PackSegInputs`` in every pipeline (train,
    val, test and each TTA branch), so it sees exactly the pixels the network
    sees, on a block grid anchored at the image's top-left corner. Images whose
    sides are not multiples of ``block_size`` are padded right/bottom first
    (image with ``pad_val``, segmentation map with ``seg_pad_val``), and the
    padding is recorded in ``padding_size`` so the segmentor crops it off its
    prediction (the plugin's ``PackSegInputs`` keeps that record).

    The key is the run's (:class:`~mmseg_keyprotect.crypto.RunKey`): the
    file given to the tool with ``--key-file``, or named by
    ``$KEYPROTECT_KEY_FILE``. Configs never hold the secret.

    Required Keys:

    - img (np.ndarray): HxWx3 uint8, channels in ``channel_order``.

    Modified Keys:

    - img: encrypted; uint8, or int16 with raw values 0..999 when the chain
      has FFX (SegDataPreProcessor converts either to float).
    - img_shape: padded shape.
    - gt_seg_map (optional): padded with ``seg_pad_val`` to match, when it
      has the image's size and not the original one (training pipelines crop
      labels with the image; test pipelines score against labels at the
      original size).

    Added Keys:

    - pad_shape (tuple): padded shape.
    - padding_size (tuple): ``(left, right, top, bottom)`` block padding.

    Args:
        method (str | Sequence[str]): ``'shuffle'``, ``'np'``, ``'ffx'``,
            ``'ffx8'`` or a chain such as ``'shuffle+np'``. Defaults to ``'shuffle+np'``.
        block_size (int): block side M in pixels. Defaults to 4.
        key_file (str, optional): a key file for this config alone. Defaults
            to None: the run's key.
        channel_order (str): channel order of ``img``; mmcv loads BGR.
            The key always refers to RGB. Defaults to ``'bgr'``.
        pad_val (int): image padding value. Defaults to 0.
        seg_pad_val (int): segmentation map padding value. Defaults to 255.
        on_device (bool): pad and record only, leaving pixels plain: the
            model's :class:`~mmseg_keyprotect.models.KeyProtectDataPreProcessor`
            encrypts the whole batch on its device, bit-identically.
            Defaults to False.
    """

    def __init__(self,
                 method: Union[str, Sequence[str]] = DEFAULT_METHOD,
                 block_size: int = DEFAULT_BLOCK_SIZE,
                 key_file: Optional[str] = None,
                 channel_order: str = DEFAULT_CHANNEL_ORDER,
                 pad_val: int = 0,
                 seg_pad_val: int = 255,
                 on_device: bool = False):
        self.on_device = on_device
        self.method = '+'.join(parse_method(method))
        self.key_file = key_file
        self.channel_order = channel_order
        self.pad_val, self.seg_pad_val = pad_val, seg_pad_val
        self.cipher: BlockCipher = RunKey.for_file(key_file).cipher(self.method, block_size)
        self.block_size = self.cipher.block_size

    def transform(self, results: dict) -> dict:
        return encrypt_results(results, None if self.on_device else self.cipher, self.channel_order, self.pad_val,
                               self.seg_pad_val, self.block_size)

    def __repr__(self) -> str:
        # Nothing derived from the key: reprs end up in logs.
        return (f'{self.__class__.__name__}(method={self.method!r}, block_size={self.block_size}, '
                f'key_file={self.key_file!r}, on_device={self.on_device})')
