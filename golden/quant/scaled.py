"""Scale-based weight quantizers that GOBO is compared with (post-training, no retraining).

Both are symmetric linear quantizers, ``w ~ scale * q`` with integer ``q`` in
``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``, ``scale = max|w| / (2**(bits-1) - 1)`` over a group:

- **uniform per-channel** (:func:`quantize_uniform`): one float32 scale per output row, as
  MKQ-BERT and Q8BERT quantize weights (3, 4, 8 bits; 7, 15, 255 levels);
- **block-wise** (:func:`quantize_blockwise`): rows cut into blocks of ``block`` consecutive weights
  that share one scale (float16 by default), as in block-wise bit-compression (BBCT) and the
  block formats of LLM quantizers; the last block of a row may be shorter.

The stored form of either is :func:`to_bytes` (little-endian)::

    0   4  magic b"SCLQ"        8   4  rows (uint32)
    4   1  format version (1)   12  4  cols (uint32)
    5   1  bits (2..8)          16  4  block (weights per scale, uint32, <= cols)
    6   1  scale bytes (2 or 4) 20  .. scales (float16/32), row-major by (row, block)
    7   1  reserved, 0          ..  .. packed codes ``q + 2**(bits-1)`` (stored.pack_indexes)

so its bits per weight are ``bits + 8 * scale_bytes / block`` plus a 20-byte header.
"""

import dataclasses
import struct

import numpy as np

from golden.config import check_int
from golden.quant.quantizer import _check_weights
from golden.quant.stored import pack_indexes, unpack_indexes

__all__ = ["ScaledLayer", "ScaledFormatError", "quantize_uniform", "quantize_blockwise",
           "to_bytes", "from_bytes", "stored_nbytes", "MAGIC", "VERSION", "HEADER"]

MAGIC = b"SCLQ"
VERSION = 1
HEADER = struct.Struct("<4sBBBBIII")
_SCALE_DTYPES = {2: np.dtype("<f2"), 4: np.dtype("<f4")}


class ScaledFormatError(ValueError):
    """Bytes that are not a valid stored scale-quantized matrix."""


@dataclasses.dataclass(frozen=True, eq=False)
class ScaledLayer:
    """One matrix quantized as ``scale[row, j // block] * codes[row, j]``.

    Parameters
    ----------
    shape : tuple of int
    bits : int
        Code width; codes lie in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
    block : int
        Weights per scale along a row (``cols`` for per-channel).
    codes : numpy.ndarray
        ``int8`` of ``shape``.
    scales : numpy.ndarray
        ``[rows, ceil(cols / block)]``, float16 or float32 (as stored).
    """

    shape: tuple
    bits: int
    block: int
    codes: np.ndarray
    scales: np.ndarray

    @property
    def numel(self):
        return self.shape[0] * self.shape[1]

    @property
    def scale_bytes(self):
        return self.scales.dtype.itemsize

    def dequantize(self):
        scale = np.repeat(self.scales.astype(np.float32), self.block, axis=1)[:, :self.shape[1]]
        return (self.codes.astype(np.float32) * scale).astype(np.float32)


def _qmax(bits):
    return (1 << (bits - 1)) - 1


def _quantize(weights, bits, block, scale_dtype):
    check_int("bits", bits, 2, 8)
    w = _check_weights(weights)
    rows, cols = w.shape
    check_int("block", block, 1, cols)
    n_blocks = -(-cols // block)
    padded = np.zeros((rows, n_blocks * block))
    padded[:, :cols] = w
    groups = padded.reshape(rows, n_blocks, block)
    qmax = _qmax(bits)
    with np.errstate(over="ignore"):
        scales = (np.abs(groups).max(axis=2) / qmax).astype(scale_dtype)
    if not np.all(np.isfinite(scales)):
        raise ValueError(f"a block scale overflows {np.dtype(scale_dtype).name}; use float32 "
                         f"scales for these weights")
    stored = scales.astype(np.float64)[:, :, None]  # divide by the scale as stored, not exact
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(stored > 0, np.rint(groups / np.where(stored > 0, stored, 1)), 0)
    codes = np.clip(q, -qmax, qmax).astype(np.int8).reshape(rows, -1)[:, :cols]
    for array in (codes, scales):
        array.setflags(write=False)
    return ScaledLayer(shape=(rows, cols), bits=bits, block=block,
                       codes=np.ascontiguousarray(codes), scales=scales)


def quantize_uniform(weights, *, bits):
    """Symmetric per-output-channel (per-row) quantization with a float32 scale per row."""
    w = np.asarray(weights)
    cols = w.shape[1] if w.ndim == 2 else 1
    return _quantize(weights, bits, max(cols, 1), np.float32)


def quantize_blockwise(weights, *, bits, block=64, scale_dtype=np.float16):
    """Symmetric block-wise quantization: each run of ``block`` weights along a row shares one
    scale stored as ``scale_dtype`` (float16 or float32)."""
    if np.dtype(scale_dtype).itemsize not in _SCALE_DTYPES or \
            np.dtype(scale_dtype).kind != "f":
        raise ValueError(f"scale_dtype must be float16 or float32, not {scale_dtype!r}")
    return _quantize(weights, bits, block, scale_dtype)


# Stored form --------------------------------------------------------------------------------------

def stored_nbytes(shape, bits, block, scale_bytes):
    rows, cols = shape
    return (HEADER.size + rows * -(-cols // block) * scale_bytes
            + -(-rows * cols * bits // 8))


def to_bytes(layer):
    rows, cols = layer.shape
    header = HEADER.pack(MAGIC, VERSION, layer.bits, layer.scale_bytes, 0, rows, cols,
                         layer.block)
    offset_codes = layer.codes.astype(np.int16) + (1 << (layer.bits - 1))
    return b"".join([header, layer.scales.astype(_SCALE_DTYPES[layer.scale_bytes]).tobytes(),
                     pack_indexes(offset_codes, layer.bits).tobytes()])


def _fail(message):
    raise ScaledFormatError(f"not a valid stored scale-quantized matrix: {message}")


def from_bytes(data):
    """Parse :func:`to_bytes` output; raises :class:`ScaledFormatError` naming the problem."""
    data = bytes(data)
    if len(data) < HEADER.size:
        _fail(f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    magic, version, bits, scale_bytes, reserved, rows, cols, block = HEADER.unpack_from(data)
    if magic != MAGIC:
        _fail(f"magic is {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        _fail(f"format version {version} is not supported (only {VERSION})")
    if not 2 <= bits <= 8:
        _fail(f"bits {bits} is outside 2..8")
    if scale_bytes not in _SCALE_DTYPES or reserved != 0:
        _fail(f"scale bytes {scale_bytes} (expected 2 or 4) or reserved byte {reserved} "
              f"(expected 0)")
    if rows == 0 or cols == 0 or not 1 <= block <= cols:
        _fail(f"shape ({rows}, {cols}) with block {block} is empty or inconsistent")
    expected = stored_nbytes((rows, cols), bits, block, scale_bytes)
    if len(data) != expected:
        _fail(f"{len(data)} bytes, but the header describes {expected}")
    n_blocks = -(-cols // block)
    scales = np.frombuffer(data, dtype=_SCALE_DTYPES[scale_bytes], count=rows * n_blocks,
                           offset=HEADER.size).reshape(rows, n_blocks)
    if not np.all(np.isfinite(scales)) or np.any(scales < 0):
        _fail("a scale is negative, NaN or Inf")
    raw = unpack_indexes(data[HEADER.size + scales.nbytes:], bits, rows * cols)
    codes = raw.astype(np.int16) - (1 << (bits - 1))
    if np.any(codes < -_qmax(bits)):
        _fail(f"a code is outside [-{_qmax(bits)}, {_qmax(bits)}]")
    codes = codes.astype(np.int8).reshape(rows, cols)
    scales = scales.copy()
    for array in (codes, scales):
        array.setflags(write=False)
    return ScaledLayer(shape=(rows, cols), bits=bits, block=block, codes=codes, scales=scales)
