"""Image files on the client side: read, encrypt or decrypt, write losslessly.

Encrypted images are written as PNG, 8-bit where every value fits (SHF, NP)
and 16-bit otherwise (FFX values reach 999), so decryption is exact. Arrays
here are RGB; files are read and written through OpenCV.
"""
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..crypto.ciphers import BlockCipher, check_image, pad_to_multiple
from ..errors import ImageFormatError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def read_image(path: Union[str, Path], encrypted: bool = False) -> np.ndarray:
    """Read an RGB image; plain images must be 8-bit, encrypted ones may be 16-bit.

    Raises:
        ImageFormatError: naming the file, for unreadable files, grayscale,
            RGBA, 16-bit plain or floating-point images.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFormatError(f'{path}: no such file')
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
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
    return np.ascontiguousarray(image[..., ::-1])


def write_image(path: Union[str, Path], image: np.ndarray) -> Path:
    """Write an RGB array as PNG, 16-bit when values exceed 255."""
    path = Path(path).with_suffix('.png')
    path.parent.mkdir(parents=True, exist_ok=True)
    fits = image.dtype == np.uint8 or (image.min() >= 0 and image.max() <= 255)
    data = image.astype(np.uint8 if fits else np.uint16)[..., ::-1]
    if not cv2.imwrite(str(path), data):
        raise OSError(f'could not write {path}')
    return path


def list_images(source: Union[str, Path]) -> Tuple[Path, List[Path]]:
    """``(root, files)``: a single file, or every image below a folder, sorted."""
    source = Path(source)
    if source.is_file():
        return source.parent, [source]
    if not source.is_dir():
        raise ImageFormatError(f'{source}: no such file or folder')
    files = sorted(p for p in source.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageFormatError(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)}) in this folder')
    return source, files


def transform_files(cipher: BlockCipher, files: Iterable[Path], root: Path, output: Path, decrypt: bool = False,
                    pad: bool = False, progress: Optional[Callable[[int, Path], None]] = None) -> List[Path]:
    """Encrypt (or decrypt) image files into ``output``, keeping the folder structure.

    Args:
        pad (bool): pad images whose sides are not multiples of M
            (right/bottom, zeros) instead of refusing them.
    """
    written = []
    output = Path(output)
    for number, path in enumerate(files, 1):
        image = read_image(path, encrypted=decrypt)
        try:
            if decrypt:
                result = cipher.decrypt(image.astype(np.int16) if image.dtype == np.uint16 else image)
            else:
                check_image(image, str(path))
                if pad:
                    image = pad_to_multiple(image, cipher.block_size, 0)
                result = cipher.encrypt(image)
        except ImageFormatError as error:
            hint = '' if pad or decrypt else ' (or pass --pad)'
            raise ImageFormatError(f'{path}: {error}{hint}') from None
        target = output / path.relative_to(root) if output.suffix == '' else output
        written.append(write_image(target, result))
        if progress is not None:
            progress(number, path)
    return written
