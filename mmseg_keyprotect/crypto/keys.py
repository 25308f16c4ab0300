"""Key kinds and sub-key derivation: random, password, legacy and exported-array keys.

Sub-keys (random and password keys) are derived with HMAC-SHA256 in counter
mode (NIST SP 800-108) from ``PRK = HMAC-SHA256(b"mmseg-keyprotect/v1",
material)``; the label names the method, block size, position in the chain
and purpose, for example ``b"shuffle/M=4/step=0/permutation"``. Permutations are
an unbiased Fisher-Yates shuffle driven by that stream (rejection sampling of
32-bit big-endian integers); masks set exactly ``L // 2`` positions, chosen by
such a permutation; the FFX password is 32 hex digits of the stream. Nothing
depends on numpy or torch random generators, so a key file gives the same
transform on every machine and version (pinned by tests/data vectors).
How keys are stored is :mod:`~mmseg_keyprotect.crypto.key_files`.
"""
import hashlib
import hmac
import secrets
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import KeyFileError
from .ciphers import (
    FFX,
    FFX_METHODS,
    BlockCipher,
    NegativePositive,
    Shuffle,
    Step,
    block_length,
    check_block_size,
    ffx_table,
    parse_method,
    ranked_table,
)

LEGACY_DEFAULT_PASSWORD = 'password'
MATERIAL_BYTES = 32


class KeyStream:
    """Deterministic byte stream: HMAC-SHA256(PRK, label || counter), counter = 0, 1, ..."""

    def __init__(self, prk: bytes, label: str):
        self._prk, self._label = prk, label.encode()
        self._counter, self._buffer = 0, b''

    def read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            block = hmac.new(self._prk, self._label + self._counter.to_bytes(4, 'big'), hashlib.sha256).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:count], self._buffer[count:]
        return out

    def below(self, bound: int) -> int:
        """Uniform integer in ``[0, bound)`` by rejection sampling (no modulo bias)."""
        limit = (2**32 // bound) * bound
        while True:
            value = int.from_bytes(self.read(4), 'big')
            if value < limit:
                return value % bound

    def permutation(self, length: int) -> np.ndarray:
        """Fisher-Yates: for i = L-1 .. 1 swap a[i] with a[j], j uniform in [0, i]."""
        order = list(range(length))
        for i in range(length - 1, 0, -1):
            j = self.below(i + 1)
            order[i], order[j] = order[j], order[i]
        return np.array(order, dtype=np.int64)


def half_mask(permutation: np.ndarray) -> np.ndarray:
    """Mask with ones at the positions named by the first ``L // 2`` entries."""
    mask = np.zeros(len(permutation), dtype=np.int64)
    mask[permutation[:len(permutation) // 2]] = 1
    return mask


class Key:
    """Base class: something that yields the concrete arrays of each step."""

    source: str = '<memory>'

    def step(self, method: str, block_size: int, index: int) -> Step:
        raise NotImplementedError

    def cipher(self, method: Union[str, Sequence[str]], block_size: int) -> BlockCipher:
        """Build the :class:`BlockCipher` for a method chain at block size M."""
        block_size = check_block_size(block_size)
        names = parse_method(method)
        return BlockCipher([self.step(name, block_size, index) for index, name in enumerate(names)], block_size)

    @property
    def fingerprint(self) -> str:
        raise NotImplementedError


class SecretKey(Key):
    """256-bit key material (random or from a password)."""

    def __init__(self, material: bytes, source: str = '<memory>'):
        if len(material) != MATERIAL_BYTES:
            raise KeyFileError(f'{source}: key material must be {MATERIAL_BYTES} bytes, got {len(material)}')
        self._prk = hmac.new(b'mmseg-keyprotect/v1', material, hashlib.sha256).digest()
        self._fingerprint = hmac.new(material, b'mmseg-keyprotect/fingerprint', hashlib.sha256).hexdigest()[:16]
        self.source = source

    @classmethod
    def generate(cls) -> 'SecretKey':
        return cls(secrets.token_bytes(MATERIAL_BYTES))

    @property
    def fingerprint(self) -> str:
        """First 8 bytes of HMAC(material, "mmseg-keyprotect/fingerprint"), hex."""
        return self._fingerprint

    def stream(self, label: str) -> KeyStream:
        return KeyStream(self._prk, label)

    def step(self, method: str, block_size: int, index: int) -> Step:
        length = block_length(block_size)
        label = f'{method}/M={block_size}/step={index}'
        if method == 'shuffle':
            return Shuffle(self.stream(label + '/permutation').permutation(length))
        mask = half_mask(self.stream(label + '/mask').permutation(length)).astype(bool)
        if method == 'np':
            return NegativePositive(mask)
        table = ffx_table(self.ffx_password(block_size, index))
        return FFX(mask, ranked_table(table) if method == 'ffx8' else table)

    def ffx_password(self, block_size: int, index: int) -> bytes:
        return self.stream(f'ffx/M={block_size}/step={index}/password').read(16).hex().encode()

    def __repr__(self):  # never show material
        return f'SecretKey(fingerprint={self.fingerprint}, source={self.source!r})'


class LegacyKey(Key):
    """Keys of the published code: a torch-seeded permutation and a password.

    Every step of a chain uses the same seeded permutation, as the published
    code re-seeds in each transform.
    """

    def __init__(self, seed: int, password: str = 'password', source: str = '<memory>'):
        self.seed, self.password, self.source = int(seed), password, source

    def _permutation(self, length: int) -> np.ndarray:
        import torch
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randperm(length, generator=generator).numpy().astype(np.int64)

    def step(self, method: str, block_size: int, index: int) -> Step:
        length = block_length(block_size)
        permutation = self._permutation(length)
        if method == 'shuffle':
            return Shuffle(permutation)
        mask = permutation > length / 2
        if method == 'np':
            return NegativePositive(mask)
        table = ffx_table(self.password.encode())
        return FFX(mask, ranked_table(table) if method == 'ffx8' else table)

    @property
    def fingerprint(self) -> str:
        text = f'legacy/{self.seed}/{self.password}'.encode()
        return hashlib.sha256(b'mmseg-keyprotect/legacy-fingerprint/' + text).hexdigest()[:16]

    def __repr__(self):
        return f'LegacyKey(fingerprint={self.fingerprint}, source={self.source!r})'


def weak_step_problem(step: Step) -> Optional[str]:
    """Why an explicit step protects little or nothing, or None.

    Generated masks set exactly half of the positions. A mask far from that leaves most values as they are, or
    changes nearly all of them the same way (all ones is the image's negative: a fixed map, no key at all), so
    masks must set between a quarter and three quarters of the positions.
    """
    if isinstance(step, Shuffle):
        if np.array_equal(step.permutation, np.arange(len(step.permutation))):
            return 'leaves every block as it is (an identity permutation): such a key protects nothing'
        return None
    length, ones = len(step.mask), int(np.count_nonzero(step.mask))
    if not ones:
        return 'leaves every block as it is (an empty mask): such a key protects nothing'
    if not length / 4 <= ones <= 3 * length / 4:
        return (f'has a mask that sets {ones} of its {length} positions: a quarter to three quarters must be set '
                f'(generated masks set {length // 2}), or the step barely changes an image or is a fixed map')
    return None


class ArrayKey(Key):
    """Explicit per-block arrays for one block size (the ``--export`` format)."""

    def __init__(self, block_size: int, steps: Sequence[dict], source: str = '<memory>'):
        self.block_size, self.source = check_block_size(block_size), source
        self.entries = [dict(entry) for entry in steps]
        length = block_length(self.block_size)
        self._steps = []
        for number, entry in enumerate(self.entries):
            method = entry.get('method')
            try:
                if method == 'shuffle':
                    self._steps.append(Shuffle.checked(entry['permutation'], length))
                elif method == 'np':
                    self._steps.append(NegativePositive.checked(entry['mask'], length))
                elif method in FFX_METHODS:
                    step = FFX.checked(entry['mask'], entry['ffx_table'], length)
                    if method == 'ffx8' and step.table.max() > 255:
                        raise KeyFileError(f'{source}: step {number} (ffx8) has table values above 255')
                    self._steps.append(step)
                else:
                    raise KeyFileError(f'{source}: step {number} has unknown method {method!r}')
            except KeyError as missing:
                raise KeyFileError(f'{source}: step {number} ({method}) lacks the array {missing}') from None
            except ValueError as error:
                raise KeyFileError(f'{source}: step {number} ({method}): {error}') from None
            problem = weak_step_problem(self._steps[-1])
            if problem:
                raise KeyFileError(f'{source}: step {number} ({method}) {problem}')

    @property
    def methods(self):
        return tuple(entry['method'] for entry in self.entries)

    def step(self, method: str, block_size: int, index: int) -> Step:
        if block_size != self.block_size:
            raise KeyFileError(f'{self.source} holds arrays for block size {self.block_size}, not {block_size}')
        if index >= len(self._steps) or self.entries[index]['method'] != method:
            raise KeyFileError(f'{self.source} holds arrays for the chain {"+".join(self.methods)}; '
                               f'step {index} "{method}" is not in it')
        return self._steps[index]

    def cipher(self, method, block_size):
        if len(parse_method(method)) != len(self._steps):
            raise KeyFileError(f'{self.source} holds arrays for the chain {"+".join(self.methods)}, '
                               f'not {"+".join(parse_method(method))}')
        return super().cipher(method, block_size)

    @property
    def fingerprint(self) -> str:
        return self.cipher(self.methods, self.block_size).fingerprint


def shown_fingerprint(key: Key) -> str:
    """The fingerprint to print or log. A random or password key's comes from 256 secret bits and reveals
    nothing; a legacy or array key's would be a plain hash of a key small enough to search, so a note
    stands in for it."""
    if isinstance(key, SecretKey):
        return key.fingerprint
    return 'not shown (legacy and array keys are searchable from a hash of them)'
