"""The stored (serialized) form of a GOBO-quantized matrix, and the index bit-packing routine.

Byte layout, all little-endian (docs/quantizer.md):

======  =========================  ===============================================================
offset  size                       field
======  =========================  ===============================================================
0       4                          magic ``b"GOBO"``
4       1                          format version (1)
5       1                          ``index_bits`` (2..8)
6       1                          bytes per outlier position ``P`` (1, 2, 4 or 8)
7       1                          reserved, 0
8       4                          rows (uint32)
12      4                          cols (uint32)
16      8                          outlier count ``n`` (uint64)
24      ``4 * 2**index_bits``      dictionary: float32 centroids, ascending
...     ``ceil(numel*bits / 8)``   packed indexes (:func:`pack_indexes`)
...     ``n * P``                  outlier flat positions, unsigned, strictly increasing
...     ``n * 4``                  outlier values, float32
======  =========================  ===============================================================

``P`` is the narrowest of 1, 2, 4, 8 bytes that holds every position ``0 .. numel-1``.
"""

import struct

import numpy as np

from golden.quant.layer import GoboLayer

__all__ = ["StoredFormatError", "MAGIC", "VERSION", "HEADER", "pack_indexes", "unpack_indexes",
           "position_bytes", "stored_nbytes", "to_bytes", "from_bytes"]

MAGIC = b"GOBO"
VERSION = 1
#: magic, version, index_bits, position bytes, reserved, rows, cols, outlier count.
HEADER = struct.Struct("<4sBBBBIIQ")

_POSITION_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class StoredFormatError(ValueError):
    """Bytes that are not a valid stored GOBO matrix."""


def pack_indexes(indexes, index_bits):
    """Bit-pack indexes, ``index_bits`` each, little-endian bit order.

    Index ``i`` occupies stream bits ``[i*index_bits, (i+1)*index_bits)``, least significant bit
    first, and stream bit ``j`` is bit ``j % 8`` of byte ``j // 8``. This is the order of an
    ``amaranth.lib.data.ArrayLayout`` (element 0 at the lowest bits), so a hardware index word of
    ``lanes`` indexes is a plain slice of the stream. The last byte is zero-padded.

    Returns
    -------
    numpy.ndarray
        ``uint8`` of ``ceil(len(indexes) * index_bits / 8)`` bytes.
    """
    idx = np.asarray(indexes).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >> index_bits):
        raise ValueError(f"indexes must lie in [0, {1 << index_bits}) for index_bits="
                         f"{index_bits}, but span [{idx.min()}, {idx.max()}]")
    bits = (idx.astype(np.uint8)[:, None] >> np.arange(index_bits, dtype=np.uint8)) & 1
    return np.packbits(bits.reshape(-1), bitorder="little")


def unpack_indexes(packed, index_bits, count):
    """Inverse of :func:`pack_indexes`: the first ``count`` indexes as ``uint8``."""
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=count * index_bits,
                         bitorder="little").reshape(count, index_bits)
    return (bits << np.arange(index_bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)


def position_bytes(numel):
    """Narrowest of 1, 2, 4, 8 bytes that holds every flat position of ``numel`` weights."""
    for size in _POSITION_DTYPES:
        if numel - 1 < 1 << (8 * size):
            return size
    raise ValueError(f"{numel} weights are too many to address with 64-bit positions")


def _packed_index_bytes(numel, index_bits):
    return -(-numel * index_bits // 8)


def stored_nbytes(shape, index_bits, n_outliers):
    """Length of :func:`to_bytes` for a matrix, computed without serializing it."""
    numel = shape[0] * shape[1]
    return (HEADER.size + 4 * (1 << index_bits) + _packed_index_bytes(numel, index_bits)
            + n_outliers * (position_bytes(numel) + 4))


def to_bytes(layer):
    """Serialize a :class:`~golden.quant.quantizer.GoboLayer` (see the module docstring for the
    layout)."""
    rows, cols = layer.shape
    pos_size = position_bytes(layer.numel)
    header = HEADER.pack(MAGIC, VERSION, layer.index_bits, pos_size, 0, rows, cols,
                         layer.n_outliers)
    return b"".join([
        header,
        layer.centroids.astype("<f4").tobytes(),
        pack_indexes(layer.indexes, layer.index_bits).tobytes(),
        layer.outlier_positions.astype(np.dtype(_POSITION_DTYPES[pos_size]).newbyteorder("<"))
        .tobytes(),
        layer.outlier_values.astype("<f4").tobytes(),
    ])


def _fail(message):
    raise StoredFormatError(f"not a valid stored GOBO matrix: {message}")


def from_bytes(data):
    """Parse :func:`to_bytes` output back into a :class:`~golden.quant.quantizer.GoboLayer`.

    The fit metadata (mean, std, threshold, method, iterations, stats) is not stored and comes
    back as None.

    Raises
    ------
    StoredFormatError
        Naming the first thing that is wrong: size, magic, version, field ranges, total length,
        unsorted or out-of-range positions, non-finite values.
    """
    data = bytes(data)
    if len(data) < HEADER.size:
        _fail(f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    magic, version, bits, pos_size, reserved, rows, cols, n_outliers = HEADER.unpack_from(data)
    if magic != MAGIC:
        _fail(f"magic is {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        _fail(f"format version {version} is not supported (only {VERSION})")
    if not 2 <= bits <= 8:
        _fail(f"index_bits {bits} is outside 2..8")
    if rows == 0 or cols == 0:
        _fail(f"shape ({rows}, {cols}) is empty")
    numel = rows * cols
    if pos_size != position_bytes(numel):
        _fail(f"{pos_size}-byte outlier positions, but {numel} weights need "
              f"{position_bytes(numel)}")
    if reserved != 0:
        _fail(f"reserved header byte is {reserved}, expected 0")
    if n_outliers > numel:
        _fail(f"{n_outliers} outliers in a matrix of {numel} weights")
    expected = stored_nbytes((rows, cols), bits, n_outliers)
    if len(data) != expected:
        _fail(f"{len(data)} bytes, but the header describes {expected}")

    offset = HEADER.size
    k = 1 << bits
    centroids = np.frombuffer(data, dtype="<f4", count=k, offset=offset).astype(np.float32)
    offset += 4 * k
    if not np.all(np.isfinite(centroids)) or np.any(np.diff(centroids) < 0):
        _fail("the dictionary is not finite and sorted ascending")
    n_packed = _packed_index_bytes(numel, bits)
    indexes = unpack_indexes(data[offset:offset + n_packed], bits, numel).reshape(rows, cols)
    offset += n_packed
    pos_dtype = np.dtype(_POSITION_DTYPES[pos_size]).newbyteorder("<")
    positions = np.frombuffer(data, dtype=pos_dtype, count=n_outliers, offset=offset)
    offset += n_outliers * pos_size
    if n_outliers and (np.any(np.diff(positions.astype(np.int64)) <= 0)
                       or int(positions[-1]) >= numel):
        _fail(f"outlier positions must be strictly increasing and below {numel}")
    values = np.frombuffer(data, dtype="<f4", count=n_outliers, offset=offset).astype(np.float32)
    if not np.all(np.isfinite(values)):
        _fail("an outlier value is NaN or Inf")
    for array in (indexes, centroids, values):
        array.setflags(write=False)
    positions = positions.astype(np.int64)
    positions.setflags(write=False)
    return GoboLayer(shape=(rows, cols), index_bits=bits, indexes=indexes, centroids=centroids,
                     outlier_positions=positions, outlier_values=values)
