"""Keyed block-wise image ciphers: pixel shuffling, negative/positive and FFX.

The transforms are those of Ito, AprilPyone and Kiya (arXiv 2107.09362) and
MaungMaung and Kiya (arXiv 2010.00801). An image is cut into M x M blocks on a
grid anchored at its top-left corner. Each block is flattened to a vector of
``L = 3 * M * M`` values in (row, column, channel) order, channel fastest, with
channels in **RGB** order, and one key is applied identically to every block:

* ``shuffle`` (SHF): ``out[i] = in[permutation[i]]``.
* ``np`` (negative/positive): ``out[i] = 255 - in[i]`` where ``mask[i] == 1``.
* ``ffx``: ``out[i] = table[in[i]]`` where ``mask[i] == 1``; ``table`` maps
  0..255 into 0..999 (FFX format-preserving encryption of the value as three
  decimal digits), so FFX output is carried as ``int16`` with its raw values.
* ``ffx8``: FFX with its outputs put back, in their order, onto 0..255 (each
  table entry replaced by its rank among the 256): the same kind of keyed
  value substitution, in the range of plain pixels, so that normalisation
  treats FFX positions like the others. Carried as ``int16`` like ``ffx``.

Any chain of these (``'shuffle+np'``, ``'np+ffx+shuffle'``, ...) composes into a
single per-block map: each output position reads one input position, XORs it
with 0 or 255 and, where FFX applies, looks it up in the table. That composite
is the one core; :class:`BlockCipher` applies it to numpy images (HxWx3, the
data pipeline) and to torch batches (Nx3xHxW, any device) with the same index
arrays, so both front ends give bit-identical results.
"""
import hashlib
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import ImageFormatError, KeyProtectError

METHODS = ('shuffle', 'np', 'ffx', 'ffx8')
#: The value substitutions: only a shuffle may follow one in a chain.
FFX_METHODS = ('ffx', 'ffx8')
FFX_DOMAIN = 1000  # three decimal digits
# The largest block side accepted: 3 * 64 * 64 = 12,288 values per block.
MAX_BLOCK_SIZE = 64
# Larger images would make the per-width index tables and the encrypted copy run to gigabytes.
MAX_IMAGE_SIDE = 32768
# Whoever holds the model can score candidate keys on it, thousands a second on a GPU: key spaces under
# 2^40 transforms can be searched that way whatever is stored beside the model.
ENUMERABLE_BITS = 40
CHANNEL_ORDERS = ('rgb', 'bgr')
#: Channel order of the images a pipeline holds: mmcv loads BGR.
DEFAULT_CHANNEL_ORDER = 'bgr'
#: The default setting, chosen by the protection frontier study (docs/en/protection_frontier.md): method and M.
DEFAULT_METHOD, DEFAULT_BLOCK_SIZE = 'shuffle+np', 4


def parse_method(method: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """Normalise a method spec (``'shuffle+np'`` or ``['shuffle', 'np']``).

    Raises:
        KeyProtectError: for unknown names, an empty chain, or FFX followed by
            a value transform (FFX output leaves the 8-bit range, so nothing
            that assumes 8-bit values may follow it).
    """
    names = method.split('+') if isinstance(method, str) else list(method)
    names = tuple(str(name).strip().lower() for name in names)
    if not names or any(not name for name in names):
        raise KeyProtectError(f'method {method!r} is empty; expected names from {METHODS} joined by "+"')
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise KeyProtectError(f'unknown method {unknown[0]!r} in {method!r}; '
                              f'expected names from {METHODS} joined by "+"')
    substitutions = [index for index, name in enumerate(names) if name in FFX_METHODS]
    if substitutions and any(name != 'shuffle' for name in names[substitutions[0] + 1:]):
        raise KeyProtectError(
            f'method {method!r}: only "shuffle" may follow "{names[substitutions[0]]}" (the cipher composes a '
            'chain into one map that applies the FFX table last)')
    return names


def check_block_size(block_size) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise KeyProtectError(f'block_size must be a positive integer, got {block_size!r}')
    if block_size > MAX_BLOCK_SIZE:
        raise KeyProtectError(f'block_size {block_size} is larger than {MAX_BLOCK_SIZE}: such blocks are larger '
                              'than the objects of most images, and their keys take minutes to derive')
    return int(block_size)


def key_space(method: Union[str, Sequence[str]], block_size: int) -> int:
    """How many distinct transforms a method and M allow (FFX tables counted as unsearchable).

    Shuffles: L!; NP and FFX masks: C(L, L/2). The FFX table comes from a 128-bit
    password and is not counted; its mask is.
    """
    length = block_length(block_size)
    count = 1
    for name in parse_method(method):
        count *= math.factorial(length) if name == 'shuffle' else math.comb(length, length // 2)
    return count


def enumerable_warning(method: Union[str, Sequence[str]], block_size: int) -> Optional[str]:
    """A warning text when the method and M have few enough keys to try them all, else None."""
    count = key_space(method, block_size)
    if count >= 2 ** ENUMERABLE_BITS:
        return None
    return (f'{"+".join(parse_method(method))} at M = {block_size} has only {count:,} keys (about 2^'
            f'{math.log2(count):.0f}): whoever holds the model can try them all; use M >= 4')


def block_length(block_size: int) -> int:
    """Number of values in one flattened block: ``3 * M * M``."""
    return 3 * check_block_size(block_size) ** 2


def ffx_table(password: bytes) -> np.ndarray:
    """The 256-entry FFX table: ``pyffx.Integer(password, length=3)`` on 0..255."""
    import pyffx
    codec = pyffx.Integer(password, length=3)
    return np.array([codec.encrypt(value) for value in range(256)], dtype=np.int16)


def ranked_table(table: np.ndarray) -> np.ndarray:
    """The ``ffx8`` table: each FFX table entry replaced by its rank, a permutation of 0..255."""
    return np.argsort(np.argsort(table, kind='stable'), kind='stable').astype(np.int16)


def _check_vector(name: str, values, length: int) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (length,) or not np.issubdtype(array.dtype, np.integer):
        raise KeyProtectError(f'{name} must be {length} integers, got shape {array.shape} of {array.dtype}')
    return array.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Shuffle:
    """SHF: ``out[i] = in[permutation[i]]`` inside every block."""
    permutation: np.ndarray

    @classmethod
    def checked(cls, permutation, length: int) -> 'Shuffle':
        permutation = _check_vector('shuffle permutation', permutation, length)
        if not np.array_equal(np.sort(permutation), np.arange(length)):
            raise KeyProtectError(f'shuffle permutation is not a permutation of 0..{length - 1}')
        return cls(permutation)


@dataclass(frozen=True, eq=False)
class NegativePositive:
    """NP: ``out[i] = 255 - in[i]`` (= ``in[i] XOR 255``) where ``mask[i]``."""
    mask: np.ndarray

    @classmethod
    def checked(cls, mask, length: int) -> 'NegativePositive':
        mask = _check_vector('np mask', mask, length)
        if not np.isin(mask, (0, 1)).all():
            raise KeyProtectError('np mask must hold only 0 and 1')
        return cls(mask.astype(bool))


@dataclass(frozen=True, eq=False)
class FFX:
    """FFX: ``out[i] = table[in[i]]`` where ``mask[i]``; table maps 0..255 into 0..999."""
    mask: np.ndarray
    table: np.ndarray

    @classmethod
    def checked(cls, mask, table, length: int) -> 'FFX':
        mask = NegativePositive.checked(mask, length).mask
        table = _check_vector('ffx table', table, 256)
        if table.min() < 0 or table.max() >= FFX_DOMAIN or len(np.unique(table)) != 256:
            raise KeyProtectError(f'ffx table must hold 256 distinct values in 0..{FFX_DOMAIN - 1}')
        return cls(mask, table.astype(np.int16))


Step = Union[Shuffle, NegativePositive, FFX]


@dataclass(frozen=True)
class _StripLayout:
    """Index arrays for one strip of M image rows, precomputed per width.

    A strip is ``M`` rows of the image, flattened in memory order; every strip
    of an image is transformed the same way, so these arrays (``M*W*3`` long)
    are reused across all ``H/M`` strips and stay in cache.
    """
    gather: np.ndarray  # encrypted[p] = plain[gather[p]]
    scatter: np.ndarray  # plain[p] = encrypted[scatter[p]]
    xor: np.ndarray  # uint8 0/255 at encrypted positions, or None
    ffx: np.ndarray  # bool at encrypted positions, or None
    ffx_weight: np.ndarray  # the same as int16 0/1, for branch-free blending
    moves: bool  # False when the chain has no shuffle: no gather needed


class BlockCipher:
    """A chain of keyed block transforms, composed into one per-block map.

    Args:
        steps (Sequence[Step]): the transforms in the order they apply.
        block_size (int): M, the block side in pixels.

    Attributes:
        source (np.ndarray): composite map, output position i reads input
            position ``source[i]`` of the same block.
        xor (np.ndarray): uint8 0 or 255 XORed into output position i.
        ffx_mask (np.ndarray | None): output positions that go through the
            FFX table (after the XOR).
        ffx_table (np.ndarray | None): the FFX table (256 values).
        output_dtype (np.dtype): uint8, or int16 when FFX is in the chain.
    """

    def __init__(self, steps: Sequence[Step], block_size: int):
        self.block_size = check_block_size(block_size)
        self.length = block_length(self.block_size)
        self.steps = tuple(steps)
        if not self.steps:
            raise KeyProtectError('a BlockCipher needs at least one step')
        source = np.arange(self.length)
        xor = np.zeros(self.length, np.uint8)
        ffx_mask, table = None, None
        for step in self.steps:
            if isinstance(step, Shuffle):
                order = step.permutation
                source, xor = source[order], xor[order]
                ffx_mask = None if ffx_mask is None else ffx_mask[order]
            elif ffx_mask is not None:
                raise KeyProtectError('only a shuffle may follow FFX in a chain')
            elif isinstance(step, NegativePositive):
                xor = xor ^ np.where(step.mask, 255, 0).astype(np.uint8)
            elif isinstance(step, FFX):
                ffx_mask, table = step.mask.copy(), step.table
            else:
                raise TypeError(f'unknown cipher step {step!r}')
        self.source, self.xor, self.ffx_mask, self.ffx_table = source, xor, ffx_mask, table
        self.output_dtype = np.dtype(np.uint8 if table is None else np.int16)
        self.ffx_inverse = None
        if table is not None:
            self.ffx_inverse = np.full(FFX_DOMAIN, -1, np.int16)
            self.ffx_inverse[table] = np.arange(256, dtype=np.int16)
        self._layouts: Dict[tuple, _StripLayout] = {}
        self._torch_layouts: Dict[tuple, dict] = {}

    @classmethod
    def from_map(cls, source, xor, block_size: int, ffx_mask=None, ffx_table=None) -> 'BlockCipher':
        """The cipher with a given composite map (see the class attributes).

        Every chain of this module reduces to such a map; building one
        directly expresses an estimated or partly correct key, as the
        protection evaluation does.
        """
        length = block_length(block_size)
        xor = _check_vector('xor', xor, length)
        if not np.isin(xor, (0, 255)).all():
            raise KeyProtectError('xor must hold only 0 and 255')
        steps = [Shuffle.checked(source, length), NegativePositive.checked(xor // 255, length)]
        if ffx_table is not None:
            steps.append(FFX.checked(np.asarray(ffx_mask).astype(np.int64), ffx_table, length))
        return cls(steps, block_size)

    def transform_bytes(self) -> bytes:
        """The composite transform as canonical bytes: equal iff the ciphers act the same."""
        parts = [b'mmseg-keyprotect/transform/v1', np.int64(self.block_size).tobytes(),
                 self.source.astype('<i8').tobytes(), self.xor.tobytes()]
        if self.ffx_table is not None:
            parts += [self.ffx_mask.astype(np.uint8).tobytes(), self.ffx_table.astype('<i2').tobytes()]
        return b''.join(parts)

    @property
    def fingerprint(self) -> str:
        """Short unsalted hash of the composite transform: equal iff the ciphers are equal.

        For comparing ciphers in memory and for the key holder's own display.
        Nothing stored beside a model or an image uses it: for small key spaces
        (M = 2) a plain hash can be searched, so records hold a salted, slow
        verifier instead (:mod:`mmseg_keyprotect.crypto.verifier`).
        """
        return hashlib.sha256(self.transform_bytes()).hexdigest()[:16]

    # ----------------------------------------------------------------- layout
    def _layout(self, width: int, channel_order: str) -> _StripLayout:
        cached = self._layouts.get((width, channel_order))
        if cached is None:
            cached = self._layouts[width, channel_order] = self._build_layout(width, channel_order)
        return cached

    def _build_layout(self, width: int, channel_order: str) -> _StripLayout:
        size = self.block_size
        rows, columns, channels = np.meshgrid(
            np.arange(size), np.arange(width), np.arange(3), indexing='ij')
        block_column, column_in_block = np.divmod(columns, size)
        bgr = channel_order == 'bgr'
        rgb = 2 - channels if bgr else channels
        out_index = (rows * size + column_in_block) * 3 + rgb
        source = self.source[out_index]
        source_row, remainder = np.divmod(source, 3 * size)
        source_column, source_rgb = np.divmod(remainder, 3)
        source_channel = 2 - source_rgb if bgr else source_rgb
        gather = ((source_row * width + block_column * size + source_column) * 3
                  + source_channel).ravel()
        xor = self.xor[out_index].ravel()
        ffx = None if self.ffx_mask is None else self.ffx_mask[out_index].ravel()
        return _StripLayout(
            gather=gather,
            scatter=np.argsort(gather),
            xor=xor if xor.any() else None,
            ffx=ffx,
            ffx_weight=None if ffx is None else ffx.astype(np.int16),
            moves=not np.array_equal(self.source, np.arange(self.length)))

    def _strips(self, image: np.ndarray, what: str) -> np.ndarray:
        height, width = image.shape[:2]
        if height % self.block_size or width % self.block_size:
            raise ImageFormatError(
                f'{what} is {height}x{width}, not a multiple of the block size {self.block_size}; '
                'pad it first (the BlockwiseEncrypt transform pads right/bottom and records it)')
        return np.ascontiguousarray(image).reshape(height // self.block_size, -1)

    # ------------------------------------------------------------------ numpy
    def encrypt(self, image: np.ndarray, channel_order: str = 'rgb') -> np.ndarray:
        """Encrypt one HxWx3 uint8 image.

        Args:
            image (np.ndarray): HxWx3 uint8, H and W multiples of M.
            channel_order (str): ``'rgb'`` or ``'bgr'`` (how ``image`` stores
                its channels; the key always means RGB).

        Returns:
            np.ndarray: HxWx3 of :attr:`output_dtype`, same channel order.
        """
        check_image(image, 'image', channel_order)
        layout = self._layout(image.shape[1], channel_order)
        strips = self._strips(image, 'image')
        if layout.moves:
            out = np.take(strips, layout.gather, axis=1)
            if layout.xor is not None:
                np.bitwise_xor(out, layout.xor, out=out)
        else:
            out = np.bitwise_xor(strips, layout.xor) if layout.xor is not None else strips.copy()
        if layout.ffx is not None:
            out = _blend(cv2.LUT(out, self.ffx_table), out.astype(np.int16), layout.ffx_weight)
        return out.reshape(image.shape)

    def decrypt(self, image: np.ndarray, channel_order: str = 'rgb') -> np.ndarray:
        """Invert :meth:`encrypt` exactly; returns HxWx3 uint8.

        Raises:
            ImageFormatError: if ``image`` holds values no key of this cipher
                can produce (for example FFX values outside the table).
        """
        check_channel_order(channel_order)
        check_encrypted(image, self)
        layout = self._layout(image.shape[1], channel_order)
        values = self._strips(image, 'encrypted image')
        if layout.ffx is not None:
            if values.size and (values.min() < 0 or values.max() >= FFX_DOMAIN):
                raise ImageFormatError(f'encrypted image holds values outside 0..{FFX_DOMAIN - 1}: not FFX output')
            values = values.astype(np.int16, copy=False)
            values = _blend(np.take(self.ffx_inverse, values), values, layout.ffx_weight)
            if values.size and (values.min() < 0 or values.max() > 255):
                raise ImageFormatError('encrypted image holds values that this FFX key never produces: wrong key?')
        values = values.astype(np.uint8)  # always a fresh array: the XOR below works in place
        if layout.xor is not None:
            np.bitwise_xor(values, layout.xor, out=values)
        if layout.moves:
            values = np.take(values, layout.scatter, axis=1)
        return values.reshape(image.shape)

    # ------------------------------------------------------------------ torch
    def _torch_layout(self, width: int, channel_order: str, device) -> dict:
        import torch
        cache_key = (width, channel_order, str(device))
        if cache_key not in self._torch_layouts:
            layout = self._layout(width, channel_order)
            as_tensor = lambda array: None if array is None else torch.from_numpy(array).to(device)  # noqa: E731
            self._torch_layouts[cache_key] = dict(
                gather=as_tensor(layout.gather), scatter=as_tensor(layout.scatter),
                xor=as_tensor(layout.xor), ffx=as_tensor(layout.ffx),
                table=as_tensor(self.ffx_table), inverse=as_tensor(self.ffx_inverse))
        return self._torch_layouts[cache_key]

    def _tensor_strips(self, batch, what: str):
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ImageFormatError(f'{what} must be an Nx3xHxW tensor, got shape {tuple(batch.shape)}')
        count, _, height, width = batch.shape
        if height % self.block_size or width % self.block_size:
            raise ImageFormatError(
                f'{what} is {height}x{width}, not a multiple of the block size {self.block_size}')
        return batch.permute(0, 2, 3, 1).reshape(count, height // self.block_size, -1)

    def encrypt_tensor(self, batch, channel_order: str = 'rgb'):
        """Encrypt an Nx3xHxW uint8 tensor on its own device.

        Bit-identical to :meth:`encrypt` applied to each image.
        """
        import torch
        check_channel_order(channel_order)
        if batch.dtype != torch.uint8:
            raise ImageFormatError(f'batch must be uint8 (values 0..255), got {batch.dtype}')
        layout = self._torch_layout(batch.shape[-1], channel_order, batch.device)
        out = self._tensor_strips(batch, 'batch').index_select(2, layout['gather'])
        if layout['xor'] is not None:
            out.bitwise_xor_(layout['xor'])
        if layout['ffx'] is not None:
            out = torch.where(layout['ffx'], layout['table'][out.long()], out.to(torch.int16))
        return out.reshape(batch.shape[0], batch.shape[2], batch.shape[3], 3).permute(0, 3, 1, 2).contiguous()

    def decrypt_tensor(self, batch, channel_order: str = 'rgb'):
        """Invert :meth:`encrypt_tensor`; returns an Nx3xHxW uint8 tensor."""
        import torch
        check_channel_order(channel_order)
        layout = self._torch_layout(batch.shape[-1], channel_order, batch.device)
        values = self._tensor_strips(batch, 'encrypted batch')
        if layout['ffx'] is not None:
            looked_up = layout['inverse'][values.long().clamp(0, FFX_DOMAIN - 1)]
            values = torch.where(layout['ffx'], looked_up, values.to(torch.int16))
            if bool(((values < 0) | (values > 255)).any()):
                raise ImageFormatError('encrypted batch holds values that this FFX key never produces: wrong key?')
        values = values.to(torch.uint8)
        if layout['xor'] is not None:
            values = values ^ layout['xor']
        out = values.index_select(2, layout['scatter'])
        return out.reshape(batch.shape[0], batch.shape[2], batch.shape[3], 3).permute(0, 3, 1, 2).contiguous()


def _blend(selected: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``selected`` where ``weight`` is 1, ``other`` where 0 (int16, in place on ``selected``).

    Three in-place integer passes are several times faster than ``np.where``.
    """
    np.subtract(selected, other, out=selected)
    np.multiply(selected, weight, out=selected)
    np.add(selected, other, out=selected)
    return selected


def pad_to_multiple(array: np.ndarray, block_size: int, value) -> np.ndarray:
    """Pad right/bottom so height and width are multiples of ``block_size``."""
    height, width = array.shape[:2]
    pad_bottom, pad_right = -height % block_size, -width % block_size
    if not (pad_bottom or pad_right):
        return array
    widths = [(0, pad_bottom), (0, pad_right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode='constant', constant_values=value)


def check_channel_order(channel_order: str) -> None:
    if channel_order not in CHANNEL_ORDERS:
        raise KeyProtectError(f'channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}')


def check_image(image, what: str = 'image', channel_order: str = 'rgb') -> None:
    """Raise :class:`ImageFormatError` unless ``image`` is an HxWx3 uint8 array."""
    check_channel_order(channel_order)
    if not isinstance(image, np.ndarray):
        raise ImageFormatError(f'{what} must be a numpy array, got {type(image).__name__}')
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ImageFormatError(f'{what} is single-channel (grayscale) with shape {image.shape}; '
                               'the key is defined on RGB images: convert it to 3 channels first')
    if image.ndim != 3 or image.shape[2] != 3:
        hint = ' (RGBA? drop the alpha channel first)' if image.ndim == 3 and image.shape[2] == 4 else ''
        raise ImageFormatError(f'{what} has shape {image.shape}; expected HxWx3{hint}')
    if image.dtype != np.uint8:
        raise ImageFormatError(f'{what} has dtype {image.dtype}; expected 8-bit (uint8) values 0..255')
    if max(image.shape[:2]) > MAX_IMAGE_SIDE:
        raise ImageFormatError(f'{what} is {image.shape[0]}x{image.shape[1]}; sides above {MAX_IMAGE_SIDE} pixels '
                               'are refused (resize or tile the image first)')


def check_encrypted(image, cipher: BlockCipher, what: str = 'encrypted image') -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ImageFormatError(f'{what} must be an HxWx3 array, got {getattr(image, "shape", type(image).__name__)}')
    if not np.issubdtype(image.dtype, np.integer):
        raise ImageFormatError(f'{what} has dtype {image.dtype}; expected integers')
    if cipher.ffx_table is None and image.dtype != np.uint8 and image.size and (image.min() < 0 or image.max() > 255):
        raise ImageFormatError(f'{what} holds values outside 0..255, but this key has no FFX step')
