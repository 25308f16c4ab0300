"""Image files on the client side: read, encrypt or decrypt, write losslessly.

Encrypted images are written as PNG, 8-bit where every value fits (SHF, NP)
and 16-bit otherwise (FFX values reach 999), so decryption is exact. Arrays
here are RGB; files are read and written through OpenCV.
"""
import json
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterable, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np

from ..crypto.ciphers import BlockCipher, check_image, pad_to_multiple, parse_method
from ..crypto.verifier import make_verifier, matches
from ..errors import ImageFormatError, KeyProtectError
from ..utils.atomic_file import PRIVATE_MODE, atomic_file

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


METADATA_KEYWORD = b'mmseg-keyprotect'
# A record is a few hundred bytes; the cap keeps a crafted chunk from costing memory or time.
MAX_RECORD_BYTES = 4096
#: Images declaring more pixels are refused unless the caller lifts the limit: 8192 x 8192, far above the images
#: segmentation models are trained on, far below what a crafted header can make a decoder allocate.
MAX_IMAGE_PIXELS = 2 ** 26


class EncryptionRecord(NamedTuple):
    """How an image file was encrypted, as its PNG metadata says: method, M, a salted, slow verifier of the
    transform (:mod:`mmseg_keyprotect.crypto.verifier`), never the key, and the image's size before any
    ``--pad`` (``None`` in files written before sizes were recorded)."""
    method: str
    block_size: int
    verifier: dict
    original_size: Optional[Tuple[int, int]] = None

    def check_settings(self, method: str, block_size: int, what: str) -> None:
        """Raise :class:`ImageFormatError` naming ``what`` when method or M differ."""
        if (self.method, self.block_size) != (method, block_size):
            raise ImageFormatError(f'{what} was encrypted with {self.method}, M = {self.block_size}, not '
                                   f'{method}, M = {block_size}')

    def check_key(self, method: str, cipher: BlockCipher, what: str) -> None:
        """Raise :class:`ImageFormatError` naming ``what`` unless ``cipher`` is what encrypted it."""
        self.check_settings(method, cipher.block_size, what)
        try:
            right = matches(self.verifier, cipher, 'image')
        except KeyProtectError as error:
            raise ImageFormatError(f'{what}: {error}') from None
        if not right:
            raise ImageFormatError(f'{what} was encrypted with another key')


def image_size(path: Union[str, Path]) -> Optional[Tuple[int, int]]:
    """``(width, height)`` from the file's header, without decoding its pixels; None when Pillow cannot tell."""
    from PIL import Image, UnidentifiedImageError
    # Pillow's own guard refuses huge headers without saying their size; only the header is read here.
    guard, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def read_image(path: Union[str, Path], encrypted: bool = False, max_pixels: Optional[int] = MAX_IMAGE_PIXELS
               ) -> np.ndarray:
    """Read an RGB image; plain images must be 8-bit, encrypted ones may be 16-bit.

    A plain image is turned as its EXIF orientation says, as mmseg's loader
    (OpenCV's colour decoding) does, so that the client's encrypted image and
    the key holder's prediction have the same orientation.

    Args:
        max_pixels (int, optional): refuse images whose header declares more
            pixels, before decoding them (None: no limit). A small file can
            declare a huge image: 1 MB of PNG can decode to gigabytes.

    Raises:
        ImageFormatError: naming the file, for unreadable files, grayscale,
            RGBA, 16-bit plain or floating-point images, and images above
            ``max_pixels``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError(f'{path}: no such file')
    size = image_size(path) if max_pixels is not None else None
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageFormatError(f'{path} declares {size[0]}x{size[1]} pixels, more than the limit of {max_pixels:,} '
                               '(--max-pixels lifts it for images that really are that large)')
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise ImageFormatError(f'{path}: OpenCV cannot read this image ({str(error).strip().splitlines()[-1]})') \
            from None
    if image is None:
        raise ImageFormatError(f'{path}: not a readable image')
    if image.ndim == 2 or image.shape[2] == 1:
        raise ImageFormatError(f'{path}: grayscale image; the key is defined on RGB images (convert it to RGB)')
    if image.shape[2] == 4:
        raise ImageFormatError(f'{path}: RGBA image; drop the alpha channel first (the key is defined on RGB)')
    if encrypted:
        if image.dtype not in (np.uint8, np.uint16):
            raise ImageFormatError(f'{path}: dtype {image.dtype}; encrypted images are 8- or 16-bit PNG')
        return np.ascontiguousarray(image[..., ::-1])
    if image.dtype != np.uint8:
        raise ImageFormatError(f'{path}: {image.dtype} image; expected 8-bit RGB (convert 16-bit or float '
                               'images to 8-bit first)')
    # The unchanged read keeps what the checks above need; the colour read applies the EXIF orientation.
    oriented = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray((oriented if oriented is not None else image)[..., ::-1])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def encode_png(image: np.ndarray, record: Optional[EncryptionRecord] = None) -> bytes:
    """An RGB array as PNG bytes, 16-bit when values exceed 255, with the encryption record as a text chunk."""
    fits = image.dtype == np.uint8 or (image.min() >= 0 and image.max() <= 255)
    ok, encoded = cv2.imencode('.png', np.ascontiguousarray(image.astype(np.uint8 if fits else np.uint16)[..., ::-1]))
    if not ok:
        raise ImageFormatError('OpenCV could not encode the image as PNG')
    data = encoded.tobytes()
    if record is None:
        return data
    text = json.dumps(record._asdict(), separators=(',', ':')).encode('latin-1')
    header_end = 8 + 8 + 13 + 4  # signature, then the IHDR chunk (length, type, 13 bytes, CRC)
    return data[:header_end] + _png_chunk(b'tEXt', METADATA_KEYWORD + b'\0' + text) + data[header_end:]


def read_record(path: Union[str, Path]) -> Optional[EncryptionRecord]:
    """The encryption record of a PNG written by :func:`write_image`, or None if it has none.

    Raises:
        ImageFormatError: the record is there but damaged or not one this
            package writes (wrong types, oversized, nested).
    """
    with open(path, 'rb') as handle:
        data = handle.read()
    if not data.startswith(b'\x89PNG\r\n\x1a\n'):
        return None
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b'tEXt' and body.startswith(METADATA_KEYWORD + b'\0'):
            return _parse_record(body[len(METADATA_KEYWORD) + 1:], path)
        if kind in (b'IDAT', b'IEND'):
            return None
        offset += 12 + length
    return None


def _parse_record(text: bytes, path) -> EncryptionRecord:
    damaged = ImageFormatError(f'{path}: damaged mmseg-keyprotect metadata')
    if len(text) > MAX_RECORD_BYTES:
        raise damaged
    try:
        fields = json.loads(text.decode('latin-1'))
        method, block_size = '+'.join(parse_method(fields['method'])), fields['block_size']
        verifier, size = fields['verifier'], fields.get('original_size')
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, KeyProtectError):
        raise damaged from None
    counts = [block_size] + (list(size) if isinstance(size, list) and len(size) == 2 else [])
    if (not isinstance(verifier, dict) or (size is not None and len(counts) != 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in counts)):
        raise damaged
    return EncryptionRecord(method, block_size, verifier, tuple(size) if size is not None else None)


def write_image(path: Union[str, Path], image: np.ndarray, record: Optional[EncryptionRecord] = None,
                overwrite: bool = True) -> Path:
    """Write an RGB array as PNG at ``path``, atomically: a complete file or none.

    Raises:
        ImageFormatError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ImageFormatError(f'{path} exists; nothing was overwritten (pass --overwrite to replace it)')
    # Encrypted images give the key away in numbers, and decrypted ones are the plain data: both stay private.
    with atomic_file(path, mode=PRIVATE_MODE) as handle:
        handle.write(encode_png(image, record))
    return path


def list_images(source: Union[str, Path]) -> Tuple[Path, List[Path]]:
    """``(root, files)``: a single file, or every image below a folder, sorted."""
    source = Path(source)
    if source.is_file():
        return source.parent, [source]
    if not source.is_dir():
        raise ImageFormatError(f'{source}: no such file or folder')
    files = sorted(p for p in source.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageFormatError(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)}) in this folder')
    return source, files


def plan_outputs(source: Union[str, Path], output: Union[str, Path],
                 overwrite: bool = False) -> List[Tuple[Path, Path]]:
    """``(input, output)`` file pairs, checked before anything is written.

    A folder goes to a folder (structure kept, every output a ``.png``), whatever
    the folder is called. A file goes to the ``.png`` file ``output`` names, or
    into ``output`` if that is an existing folder or a name without a suffix.

    Raises:
        ImageFormatError: the output is the input or lies inside it, two inputs
            would get the same output (both named), an output exists and
            ``overwrite`` is False, or a single output is not named ``.png``.
    """
    source, output = Path(source), Path(output)
    root, files = list_images(source)
    if source.is_dir():
        if output.exists() and not output.is_dir():
            raise ImageFormatError(f'{output} is a file; a folder of images needs an output folder')
        inside = output.resolve() == source.resolve() or source.resolve() in output.resolve().parents
        if inside and not overwrite:
            raise ImageFormatError(f'{output} is {source} or lies inside it: outputs would mix with the inputs '
                                   'and a second run would encrypt them again (choose another folder)')
        pairs = [(path, output / path.relative_to(root).with_suffix('.png')) for path in files]
    else:
        target = output / f'{source.stem}.png' if output.is_dir() or not output.suffix else output
        if target.suffix.lower() != '.png':
            raise ImageFormatError(f'{output}: encrypted images are PNG files; name it *.png or give a folder '
                                   '(an existing one, or a name without a suffix)')
        if target.resolve() == source.resolve() and not overwrite:
            raise ImageFormatError(f'{target} is the input itself (pass --overwrite to replace it)')
        pairs = [(source, target)]
    claimed = {}
    for path, target in pairs:
        if target in claimed:
            raise ImageFormatError(f'{claimed[target]} and {path} would both be written to {target}; rename one')
        claimed[target] = path
    existing = [target for _, target in pairs if target.exists()]
    if existing and not overwrite:
        more = f' and {len(existing) - 1} more' if len(existing) > 1 else ''
        raise ImageFormatError(f'{existing[0]}{more} already exist; nothing was written (pass --overwrite to '
                               'replace them, or choose another output)')
    return pairs


def transform_files(cipher: BlockCipher, method: str, pairs: Iterable[Tuple[Path, Path]], decrypt: bool = False,
                    pad: bool = False, keep_going: bool = False,
                    progress: Optional[Callable[[int, Path], None]] = None,
                    max_pixels: Optional[int] = MAX_IMAGE_PIXELS) -> Tuple[List[Path], List[str]]:
    """Encrypt (or decrypt) each ``(input, output)`` pair from :func:`plan_outputs`.

    Every image is checked before the first file is written. Encrypted files
    carry an :class:`EncryptionRecord` with the image's original size;
    encryption refuses a file that already carries one, and decryption
    refuses a file without one or whose record names another method, M or
    key, and crops ``--pad`` padding off again.

    Args:
        method (str): the cipher's method or chain, for the record.
        pad (bool): pad images whose sides are not multiples of M
            (right/bottom, zeros) instead of refusing them.
        keep_going (bool): on a bad image, note it and go on with the rest.
        max_pixels (int, optional): refuse larger images (:func:`read_image`).

    Returns:
        tuple[list[Path], list[str]]: the files written, and one message per
        image that failed (empty unless ``keep_going``).

    Raises:
        ImageFormatError: the first bad image, naming it, before anything is
            written (without ``keep_going``).
    """
    pairs = list(pairs)
    method = '+'.join(parse_method(method))
    verifier = None if decrypt else make_verifier(cipher, 'image')
    good, failures = [], []
    for path, target in pairs:
        try:
            _transformed(cipher, method, verifier, path, decrypt, pad, max_pixels)
            good.append((path, target))
        except ImageFormatError as error:
            if not keep_going:
                raise
            failures.append(str(error))
    written = []
    for number, (path, target) in enumerate(good, 1):
        result, record = _transformed(cipher, method, verifier, path, decrypt, pad, max_pixels)
        written.append(write_image(target, result, record))
        if progress is not None:
            progress(number, path)
    return written, failures


def _transformed(cipher: BlockCipher, method: str, verifier: Optional[dict], path: Path, decrypt: bool,
                 pad: bool, max_pixels: Optional[int]) -> Tuple[np.ndarray, Optional[EncryptionRecord]]:
    """The image of ``path`` encrypted (with its record) or decrypted, or an :class:`ImageFormatError`."""
    image = read_image(path, encrypted=decrypt, max_pixels=max_pixels)
    found = read_record(path)
    if decrypt:
        if found is None:
            raise ImageFormatError(f'{path} carries no mmseg-keyprotect record: it was not encrypted by '
                                   'tools/encrypt_images.py, or its metadata was stripped; it is not decrypted '
                                   'without knowing it was encrypted with this key')
        found.check_key(method, cipher, str(path))
        plain = cipher.decrypt(image.astype(np.int16) if image.dtype == np.uint16 else image)
        if found.original_size is not None:
            height, width = found.original_size
            plain = plain[:height, :width]
        return plain, None
    if found is not None:
        raise ImageFormatError(f'{path} is already encrypted ({found.method}, M = {found.block_size}); '
                               'encrypting it again would take both keys to undo')
    height, width = image.shape[:2]
    if pad:
        image = pad_to_multiple(image, cipher.block_size, 0)
    try:
        check_image(image, str(path))
        encrypted = cipher.encrypt(image)
    except ImageFormatError as error:
        message = str(error) if str(error).startswith(str(path)) else f'{path}: {error}'
        raise ImageFormatError(message + ('' if pad else ' (or pass --pad)')) from None
    return encrypted, EncryptionRecord(method, cipher.block_size, verifier, (height, width))
