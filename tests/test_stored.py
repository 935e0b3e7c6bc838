"""The stored form: index bit-packing, byte layout, round trip and malformed input."""

import struct

import numpy as np
import pytest

from golden.quant.quantizer import quantize
from golden.quant.stored import (
    HEADER,
    StoredFormatError,
    from_bytes,
    pack_indexes,
    position_bytes,
    stored_nbytes,
    to_bytes,
    unpack_indexes,
)


def _layer(shape=(24, 40), bits=3, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, size=shape)
    w.reshape(-1)[rng.choice(w.size, size=max(1, w.size // 100), replace=False)] *= 8
    return quantize(w.astype(np.float32), index_bits=bits)


def test_bit_order_is_little_endian():
    # Indexes 1, 2, 3, 4 of 3 bits: stream 100 010 110 001 (LSB first) -> bytes 0xD1, 0x08.
    np.testing.assert_array_equal(pack_indexes([1, 2, 3, 4], 3), [0xD1, 0x08])


@pytest.mark.parametrize("bits", range(2, 9))
def test_pack_round_trip(bits):
    idx = np.random.default_rng(bits).integers(0, 1 << bits, size=1001, dtype=np.uint8)
    packed = pack_indexes(idx, bits)
    assert len(packed) == -(-1001 * bits // 8)
    np.testing.assert_array_equal(unpack_indexes(packed.tobytes(), bits, 1001), idx)


def test_pack_rejects_wide_indexes():
    with pytest.raises(ValueError, match=r"indexes must lie in \[0, 4\) for index_bits=2"):
        pack_indexes([0, 4], 2)


@pytest.mark.parametrize("numel, size", [(1, 1), (256, 1), (257, 2), (65536, 2), (65537, 4),
                                         (1 << 32, 4), ((1 << 32) + 1, 8)])
def test_position_width(numel, size):
    assert position_bytes(numel) == size


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_round_trip(bits):
    layer = _layer(bits=bits, seed=bits)
    data = to_bytes(layer)
    assert len(data) == stored_nbytes(layer.shape, bits, layer.n_outliers)
    assert layer.stats.compression_ratio == 4 * layer.numel / len(data)
    back = from_bytes(data)
    assert back.shape == layer.shape and back.index_bits == bits
    for field in ("indexes", "centroids", "outlier_positions", "outlier_values"):
        np.testing.assert_array_equal(getattr(back, field), getattr(layer, field))
    np.testing.assert_array_equal(back.dequantize(), layer.dequantize())
    assert back.mean is None and back.stats is None


def test_layout_offsets():
    layer = _layer()
    data = to_bytes(layer)
    magic, version, bits, pos, _, rows, cols, n = HEADER.unpack_from(data)
    assert (magic, version, bits, pos, rows, cols, n) == (b"GOBO", 1, 3, 2, 24, 40,
                                                          layer.n_outliers)
    dictionary = np.frombuffer(data, "<f4", count=8, offset=HEADER.size)
    np.testing.assert_array_equal(dictionary, layer.centroids)
    tail = np.frombuffer(data[-4 * layer.n_outliers:], "<f4")
    np.testing.assert_array_equal(tail, layer.outlier_values)


def _corrupt(data, offset, fmt, value):
    data = bytearray(data)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def _malformed_cases():
    layer = _layer()
    good = to_bytes(layer)
    pos_at = len(good) - layer.n_outliers * 6  # positions (2 bytes) then values (4 bytes)
    return [
        (good[:10], "shorter than the 24-byte header"),
        (b"GOBX" + good[4:], "magic is b'GOBX'"),
        (_corrupt(good, 4, "<B", 7), "format version 7 is not supported"),
        (_corrupt(good, 5, "<B", 9), "index_bits 9 is outside 2..8"),
        (_corrupt(good, 6, "<B", 4), "4-byte outlier positions, but 960 weights need 2"),
        (_corrupt(good, 7, "<B", 1), "reserved header byte is 1"),
        (_corrupt(good, 8, "<I", 0), r"shape \(0, 40\) is empty"),
        (_corrupt(good, 16, "<Q", 10**6), "1000000 outliers in a matrix of 960 weights"),
        (good[:-1], f"{len(good) - 1} bytes, but the header describes {len(good)}"),
        (good + b"\0", f"{len(good) + 1} bytes, but the header describes {len(good)}"),
        (_corrupt(good, HEADER.size, "<f", np.nan), "dictionary is not finite and sorted"),
        (_corrupt(good, HEADER.size, "<f", 1.0), "dictionary is not finite and sorted"),
        (_corrupt(good, pos_at, "<H", 5000), "strictly increasing and below 960"),
        (_corrupt(good, len(good) - 4, "<f", np.inf), "outlier value is NaN or Inf"),
    ]


@pytest.mark.parametrize("data, message", _malformed_cases())
def test_malformed_bytes(data, message):
    with pytest.raises(StoredFormatError, match=message) as info:
        from_bytes(data)
    assert str(info.value).startswith("not a valid stored GOBO matrix: ")
