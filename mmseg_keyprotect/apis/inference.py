"""Key-aware inference: a protected model, its key, and images in; masks out.

>>> inferencer = ProtectedInferencer('configs/...py', 'model.pth', key_file='my.key')
>>> [result] = inferencer(['image.png'])
>>> result.pred_sem_seg.data  # 1xHxW class indices on the original pixels

With ``encrypted_input=True`` the inferencer holds no key: it takes images
that the client already encrypted (``tools/encrypt_images.py``) at the
model's input size, and runs them as they are.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
from mmseg.apis import init_model
from mmseg.registry import TRANSFORMS

from ..checkpoint.record import CHECKPOINT_META_KEY, check_checkpoint_key
from ..config.check import pipeline_encryption
from ..config.loading import load_config
from ..config.pipelines import DEFAULT_META_KEYS, ENCRYPT, PACK, encrypt_settings, transform_type
from ..crypto.ciphers import FFX_DOMAIN, BlockCipher, parse_method
from ..crypto.keys import load_key
from ..datasets.transforms.blockwise_encrypt import PADDING_META_KEY, encrypt_results
from ..errors import ConfigError, ImageFormatError
from .image_encryption import read_image

ImageInput = Union[str, Path, np.ndarray]
# Steps of a test pipeline that the inferencer replaces with its own.
_REPLACED = ('LoadImageFromFile', 'LoadImageFromNDArray', 'LoadAnnotations', ENCRYPT, PACK)


class ProtectedInferencer:
    """Run a protected checkpoint on images with its key.

    Args:
        config (str | Config): the protected config (its test pipeline says how
            images are resized; its BlockwiseEncrypt says method and M).
        checkpoint (str): checkpoint file; its key fingerprint must match.
        key_file (str, optional): the key; default ``$KEYPROTECT_KEY_FILE``.
            Not used with ``encrypted_input``.
        device (str): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ...
        encrypted_input (bool): images arrive encrypted; no key is loaded.

    Raises:
        ConfigError: the config has no BlockwiseEncrypt step.
        KeyFileError: the key does not match the checkpoint.
    """

    def __init__(self, config: Union[str, Config], checkpoint: str, key_file: Optional[str] = None,
                 device: str = 'cpu', encrypted_input: bool = False):
        # A model trained with on-device encryption sees the same inputs when the inferencer encrypts.
        cfg = pipeline_encryption(load_config(config))
        settings = encrypt_settings(cfg)
        if not settings:
            raise ConfigError(f'{config} is not a protected config: no {ENCRYPT} in its pipelines '
                              '(tools/protect_config.py makes one)')
        self.method = '+'.join(parse_method(settings[0].get('method', 'shuffle')))
        self.block_size = settings[0].get('block_size', 4)
        self.model = init_model(cfg, None, device='cpu')
        loaded = load_checkpoint(self.model, str(checkpoint), map_location='cpu', logger='silent')
        meta = loaded.get('meta', {})
        if meta.get('dataset_meta'):
            self.model.dataset_meta = meta['dataset_meta']
        self.record = meta.get(CHECKPOINT_META_KEY)
        self.model.to(device).eval()
        self.encrypted_input = encrypted_input
        self.cipher: Optional[BlockCipher] = None
        if not encrypted_input:
            key = load_key(key_file)
            self.cipher = key.cipher(self.method, self.block_size)
            check_checkpoint_key(self.record, self.method, self.block_size, self.cipher.fingerprint,
                                 key.source, str(checkpoint))
        test_pipeline = cfg.test_dataloader.dataset.pipeline
        self.resize = Compose([TRANSFORMS.build(t) for t in test_pipeline if transform_type(t) not in _REPLACED])
        self.pack = TRANSFORMS.build(dict(type=PACK, meta_keys=DEFAULT_META_KEYS + (PADDING_META_KEY,)))

    @property
    def palette(self):
        return self.model.dataset_meta.get('palette')

    def _load(self, image: ImageInput) -> dict:
        path = None
        if isinstance(image, (str, Path)):
            path = str(image)
            image = read_image(image, encrypted=self.encrypted_input)
        elif not isinstance(image, np.ndarray):
            raise ImageFormatError(f'expected an image path or an RGB array, got {type(image).__name__}')
        bgr = np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3 else image
        return dict(img=bgr, img_path=path, ori_shape=image.shape[:2], img_shape=image.shape[:2])

    def _prepare(self, image: ImageInput, cipher) -> dict:
        results = self._load(image)
        if self.encrypted_input:
            encrypted = results['img']
            if encrypted.ndim != 3 or encrypted.shape[2] != 3:
                raise ImageFormatError(f'{results["img_path"] or "image"}: expected an HxWx3 encrypted image')
            height, width = encrypted.shape[:2]
            if height % self.block_size or width % self.block_size:
                raise ImageFormatError(f'{results["img_path"] or "image"} is {height}x{width}, not a multiple of '
                                       f'the block size {self.block_size}: encrypt it with --pad')
            if encrypted.max() >= FFX_DOMAIN:
                raise ImageFormatError(f'{results["img_path"] or "image"} holds values above {FFX_DOMAIN - 1}: '
                                       'not an encrypted image')
            results['img'] = encrypted.astype(np.int16) if encrypted.dtype != np.uint8 else encrypted
            results[PADDING_META_KEY] = (0, 0, 0, 0)
        else:
            results = self.resize(results)
            encrypt_results(results, cipher, block_size=self.block_size)
        return self.pack(results)

    @torch.no_grad()
    def __call__(self, images: Union[ImageInput, Sequence[ImageInput]], cipher: Union[str, BlockCipher] = 'key',
                 batch_size: int = 4) -> List:
        """Predict label maps.

        Args:
            images: one or more paths or RGB arrays.
            cipher: ``'key'`` (the inferencer's key), ``'plain'`` (no
                encryption: what an unauthorized user gets), or another
                :class:`BlockCipher` (a wrong key).
            batch_size (int): images per forward pass.

        Returns:
            list[SegDataSample]: with ``pred_sem_seg`` at each image's size.
        """
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        if cipher == 'key':
            cipher = self.cipher
        elif cipher == 'plain':
            cipher = None
        results = []
        for start in range(0, len(images), batch_size):
            batch = pseudo_collate([self._prepare(image, cipher) for image in images[start:start + batch_size]])
            results += self.model.test_step(batch)
        return results


def predict_folder(inferencer: ProtectedInferencer, source: Union[str, Path], out: Union[str, Path],
                   alpha: float = 0.5, progress=None) -> List[Path]:
    """Predict every image under ``source``; write ``<name>_mask.png`` (class indices) and
    ``<name>_overlay.png`` (colours over the plain image, or alone for encrypted input)."""
    import cv2

    from ..visualization import colorize, overlay
    from .image_encryption import list_images, write_image
    root, files = list_images(source)
    out = Path(out)
    written = []
    for number, path in enumerate(files, 1):
        [result] = inferencer([path])
        mask = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        stem = out / path.relative_to(root).with_suffix('')
        stem.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(f'{stem}_mask.png', mask)
        picture = colorize(mask, inferencer.palette) if inferencer.encrypted_input else overlay(
            read_image(path), mask, inferencer.palette, alpha)
        write_image(f'{stem}_overlay.png', picture)
        written.append(Path(f'{stem}_mask.png'))
        if progress is not None:
            progress(number, len(files), path)
    return written
