"""Key-aware inference: mmseg's inferencer with the key applied before the network.

>>> inferencer = ProtectedInferencer('configs/...py', 'model.pth', key_file='my.key')
>>> result = inferencer('image.png', return_datasamples=True)
>>> result.pred_sem_seg.data  # 1xHxW class indices on the original pixels
>>> inferencer('images/', out_dir='outputs')  # outputs/vis/<image>, outputs/pred/<image stem>_pred.png

With ``encrypted_input=True`` the inferencer holds no key: it takes images
that the client already encrypted (``tools/encrypt_images.py``) at the
model's input size, and runs them as they are.
"""
import copy
import os.path as osp
import warnings
from pathlib import Path
from typing import List, Optional, Union

import cv2
import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmseg.apis import MMSegInferencer

from ..checkpoint.locked import LockedCheckpointError, is_locked
from ..checkpoint.record import CHECKPOINT_META_KEY, check_checkpoint_key, check_record_settings
from ..config.check import pipeline_encryption
from ..config.loading import load_config
from ..config.pipelines import ENCRYPT, PACK, encrypt_settings, transform_type
from ..crypto.ciphers import FFX_DOMAIN, BlockCipher
from ..crypto.conditions import Condition, condition_cipher, encrypt_batch
from ..crypto.run_key import RunKey
from ..datasets.transforms.blockwise_encrypt import transform_settings
from ..errors import ConfigError, ImageFormatError
from .image_encryption import IMAGE_SUFFIXES, read_image, read_record

#: Images with a side below this are suspected when the network fails: most backbones downsample 32 times.
SMALL_IMAGE_SIDE = 64


class ProtectedInferencer(MMSegInferencer):
    """:class:`~mmseg.apis.MMSegInferencer` for a protected model.

    The test pipeline of the config pads each image to whole blocks right
    before packing, and each batch is encrypted with the key (or the call's
    condition) before the network: the inputs of testing, bit for bit.
    Prediction, visualisation and output files are mmseg's, except that
    predictions are named after their images.
    Array inputs are BGR, as everywhere in mmseg.

    Args:
        model (str | Config): the protected config (its test pipeline says how
            images are resized; its BlockwiseEncrypt says method and M).
        weights (str): checkpoint file; its key fingerprint must match.
        key_file (str, optional): the key; default the run's key (``$KEYPROTECT_KEY_FILE``).
            Not used with ``encrypted_input``.
        device (str, optional): ``'cpu'``, ``'cuda'``, ... Default: CUDA if available.
        encrypted_input (bool): images arrive encrypted; no key is loaded.
        classes, palette, dataset_name: as for ``MMSegInferencer``; by
            default the checkpoint's dataset meta.

    Attributes:
        input_names (list[str | None]): the file stems of the last call's
            inputs (None for arrays), which name its prediction files.

    Raises:
        ConfigError: the config has no BlockwiseEncrypt step.
        KeyFileError: the key does not match the checkpoint.
    """

    def __init__(self, model: Union[str, Config], weights: str, key_file: Optional[str] = None,
                 device: Optional[str] = None, encrypted_input: bool = False, classes=None, palette=None,
                 dataset_name: Optional[str] = None):
        # A model trained with on-device encryption sees the same inputs when the pipeline encrypts.
        cfg = pipeline_encryption(load_config(model))
        settings = encrypt_settings(cfg)
        if not settings:
            raise ConfigError(f'{model} is not a protected config: no {ENCRYPT} in its pipelines '
                              '(tools/protect_config.py makes one)')
        resolved = transform_settings(settings[0])
        self.method, self.block_size = resolved['method'], resolved['block_size']
        self.channel_order = resolved['channel_order']
        self.encrypted_input = encrypted_input
        self.cipher: Optional[BlockCipher] = None
        self._active: Optional[BlockCipher] = None  # the cipher of the call in progress
        self.run_key: Optional[RunKey] = None
        self.record = None
        if not encrypted_input:
            # The run's key from here on: the pipeline's transform and the locked-checkpoint loader use it.
            self.run_key = RunKey.load(key_file)
            self.cipher = self.run_key.cipher(self.method, self.block_size)
        elif is_locked(weights):
            raise LockedCheckpointError(
                f'{weights} is locked under the model\'s key, which a server of encrypted images does not hold: '
                'serve an unlocked copy (tools/lock_checkpoint.py --unlock, run by the key holder)')
        self._checkpoint_name = str(weights)
        self.input_names: List[str] = []
        super().__init__(cfg, str(weights), classes, palette, dataset_name, device)
        meta = self.model.dataset_meta or {}
        self.visualizer.set_dataset_meta(classes or meta.get('classes'), palette or meta.get('palette'), dataset_name)

    @property
    def palette(self):
        return self.model.dataset_meta.get('palette')

    def _load_weights_to_model(self, model, checkpoint: Optional[dict], cfg) -> None:
        super()._load_weights_to_model(model, checkpoint, cfg)
        self.record = (checkpoint or {}).get('meta', {}).get(CHECKPOINT_META_KEY)
        if self.record is None:
            warnings.warn(f'{self._checkpoint_name} has no mmseg-keyprotect record: the key cannot be checked '
                          'against it, and a wrong key would give poor predictions without an error')
        elif self.cipher is not None:
            check_checkpoint_key(self.record, self.method, self.cipher, self.run_key.source, self._checkpoint_name)
        else:  # a server without the key can still refuse a model trained under other settings
            check_record_settings(self.record, self.method, self.block_size, self._checkpoint_name)

    def _init_collate(self, cfg: Config):
        # mmseg configs name no collate function; MMEngine would look for one in a registry mmseg lacks, and
        # warn, before it falls back to this one.
        if cfg.test_dataloader.get('collate_fn') is None:
            return pseudo_collate
        return super()._init_collate(cfg)

    def _init_visualizer(self, cfg: Config):
        # The inferencer writes its drawings itself (out_dir): storage backends, which need a save_dir, are not used.
        if cfg.get('visualizer') is not None:
            cfg.visualizer.vis_backends = None
        return super()._init_visualizer(cfg)

    def _init_pipeline(self, cfg: Config) -> Compose:
        if self.encrypted_input:
            return Compose([self._load_encrypted, dict(type=PACK)])
        # mmseg edits the pipeline it is given; the model's config keeps its own (annotations included).
        cfg = copy.deepcopy(cfg)
        for step in cfg.test_dataloader.dataset.pipeline:
            if transform_type(step) == ENCRYPT:
                step['on_device'] = True  # pad to whole blocks only: forward() encrypts under the call's condition
        return super()._init_pipeline(cfg)

    def _load_encrypted(self, single_input: Union[str, np.ndarray]) -> dict:
        """An already encrypted image, as the client wrote it, checked for whole blocks and its value range."""
        name = single_input if isinstance(single_input, str) else 'image'
        if isinstance(single_input, str):
            record = read_record(single_input)
            if record is None:
                raise ImageFormatError(f'{name} carries no encryption record: not an image encrypted by '
                                       'tools/encrypt_images.py (plain images are never run in this mode)')
            # Without the key only the settings can be checked; the key holder's --decrypt checks the key too.
            record.check_settings(self.method, self.block_size, name)
            image = read_image(single_input, encrypted=True)[..., ::-1]  # RGB file -> BGR, as mmcv loads
        elif isinstance(single_input, np.ndarray):
            image = single_input
        else:
            raise ImageFormatError(f'expected an image path or an array, got {type(single_input).__name__}')
        if image.ndim != 3 or image.shape[2] != 3:
            raise ImageFormatError(f'{name}: expected an HxWx3 encrypted image, got shape {image.shape}')
        height, width = image.shape[:2]
        if height % self.block_size or width % self.block_size:
            raise ImageFormatError(f'{name} is {height}x{width}, not a multiple of the block size '
                                   f'{self.block_size}: encrypt it with --pad')
        if image.max() >= FFX_DOMAIN:
            raise ImageFormatError(f'{name} holds values above {FFX_DOMAIN - 1}: not an encrypted image')
        image = np.ascontiguousarray(image if image.dtype == np.uint8 else image.astype(np.int16))
        return dict(img=image, img_path=single_input if isinstance(single_input, str) else None,
                    ori_shape=(height, width), img_shape=(height, width))

    def _inputs_to_list(self, inputs) -> list:
        if isinstance(inputs, (str, Path)) and osp.isdir(str(inputs)):
            files = sorted(p for p in Path(inputs).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            inputs = [str(p) for p in files]
        listed = super()._inputs_to_list([str(i) if isinstance(i, Path) else i for i in inputs]
                                         if isinstance(inputs, (list, tuple)) else inputs)
        self.input_names = [Path(i).stem if isinstance(i, str) else None for i in listed]
        return listed

    def __call__(self, inputs, cipher: Condition = 'key', **kwargs):
        """Predict, as ``MMSegInferencer.__call__``, with the key or another condition.

        Args:
            inputs: an image path, a folder, a BGR array, or a list of them.
            cipher: ``'key'`` (the inferencer's key), ``'plain'`` (no
                encryption: what an unauthorized user gets), or another
                :class:`BlockCipher` (a wrong key). Ignored with
                ``encrypted_input``.
            **kwargs: ``return_datasamples``, ``batch_size``, ``out_dir``,
                ``opacity``, ... as for ``MMSegInferencer``.
        """
        self._active = None if self.encrypted_input else condition_cipher(cipher, self.cipher)
        return super().__call__(inputs, **kwargs)

    def forward(self, inputs, **kwargs):
        inputs = dict(inputs, inputs=encrypt_batch(inputs['inputs'], self._active, self.channel_order))
        try:
            return super().forward(inputs, **kwargs)
        except RuntimeError as error:
            # A network that downsamples 32 times cannot run on a smaller image: say which, not where it broke.
            sizes = [tuple(image.shape[-2:]) for image in inputs['inputs']]
            small = [size for size in sizes if min(size) < SMALL_IMAGE_SIDE]
            if not small:
                raise
            raise ImageFormatError(
                f'the model cannot run on an image of {small[0][0]}x{small[0][1]} pixels ({str(error)[:120]}); '
                f'give images of at least {SMALL_IMAGE_SIDE} pixels a side, or a test pipeline that resizes them') \
                from None

    def visualize(self, inputs: list, preds, **kwargs):
        if self.encrypted_input:
            return None  # the server sees only ciphertext: there is nothing to draw the prediction on
        return super().visualize(inputs, preds, **kwargs)

    def postprocess(self, preds, visualization, return_datasample: bool = False, pred_out_dir: str = ''):
        if pred_out_dir and not return_datasample:
            Path(pred_out_dir).mkdir(parents=True, exist_ok=True)
            for index, pred in enumerate(preds):
                name = self.input_names[index] if index < len(self.input_names) else None
                stem = name or f'{self.num_pred_imgs + index:08d}'
                mask = pred.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                cv2.imwrite(osp.join(pred_out_dir, f'{stem}_pred.png'), mask)
        return super().postprocess(preds, visualization, return_datasample, '')
