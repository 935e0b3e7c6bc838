"""Uniform per-channel and block-wise scale quantizers: error bounds, code ranges, stored form."""

import numpy as np
import pytest

from golden.quant.scaled import (
    ScaledFormatError,
    from_bytes,
    quantize_blockwise,
    quantize_uniform,
    stored_nbytes,
    to_bytes,
)


@pytest.fixture
def weights():
    return np.random.default_rng(1).standard_t(4, size=(24, 100)).astype(np.float32) * 0.05


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_uniform_per_channel(weights, bits):
    layer = quantize_uniform(weights, bits=bits)
    qmax = 2 ** (bits - 1) - 1
    assert layer.scales.shape == (24, 1) and layer.scales.dtype == np.float32
    assert layer.codes.dtype == np.int8 and np.abs(layer.codes).max() == qmax
    # each row's largest weight maps exactly to +-qmax, and no error exceeds half a step
    np.testing.assert_array_equal(np.abs(layer.codes).max(axis=1), qmax)
    error = np.abs(layer.dequantize() - weights)
    assert np.all(error <= layer.scales * 0.5 * (1 + 1e-6))
    assert len(to_bytes(layer)) == stored_nbytes(layer.shape, bits, 100, 4)


def test_more_bits_less_error(weights):
    errors = [np.abs(quantize_uniform(weights, bits=b).dequantize() - weights).mean()
              for b in (2, 3, 4, 8)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.03 * errors[0]


def test_blockwise_blocks_and_ragged_last_block(weights):
    layer = quantize_blockwise(weights, bits=3, block=32)  # 100 = 3 * 32 + 4
    assert layer.scales.shape == (24, 4) and layer.scales.dtype == np.float16
    for j, lo in enumerate(range(0, 100, 32)):
        block = weights[:, lo:lo + 32]
        np.testing.assert_allclose(layer.scales[:, j],
                                   (np.abs(block).max(axis=1) / 3).astype(np.float16))
    error = np.abs(layer.dequantize() - weights)
    scale = np.repeat(layer.scales.astype(np.float32), 32, axis=1)[:, :100]
    assert np.all(error <= scale * 0.5 + 1e-3 * scale)  # +: the float16 scale's rounding
    # smaller blocks follow the local range: less error than one scale per row
    assert error.mean() < np.abs(quantize_uniform(weights, bits=3).dequantize() - weights).mean()
    assert 8 * len(to_bytes(layer)) / weights.size == pytest.approx(3 + 4 * 16 / 100 + 160 / 2400)


def test_zero_rows_and_blocks():
    w = np.zeros((3, 8), np.float32)
    w[1, 5] = 0.4375  # 7 steps of 1/16: exact in float16
    layer = quantize_blockwise(w, bits=4, block=4)
    np.testing.assert_array_equal(layer.dequantize(), w)


@pytest.mark.parametrize("call, message", [
    (lambda w: quantize_uniform(w, bits=1), "bits must be an integer between 2 and 8, not 1"),
    (lambda w: quantize_uniform(w, bits=9), "bits must be an integer between 2 and 8, not 9"),
    (lambda w: quantize_blockwise(w, bits=3, block=101),
     "block must be an integer between 1 and 100"),
    (lambda w: quantize_blockwise(w, bits=3, block=0),
     "block must be an integer between 1 and 100"),
    (lambda w: quantize_blockwise(w, bits=3, scale_dtype=np.int16), "float16 or float32"),
    (lambda w: quantize_uniform(w[0], bits=3), "must be a 2-D matrix"),
    (lambda w: quantize_uniform(np.where(w > 0.1, np.nan, w), bits=3), "NaN"),
    (lambda w: quantize_blockwise(w * 1e6, bits=2), "overflows float16"),
])
def test_bad_input(weights, call, message):
    with pytest.raises(ValueError, match=message):
        call(weights)


def test_round_trip_and_malformed_bytes(weights):
    layer = quantize_blockwise(weights, bits=3, block=16)
    data = to_bytes(layer)
    back = from_bytes(data)
    np.testing.assert_array_equal(back.dequantize(), layer.dequantize())
    bad = {
        "shorter than the 20-byte header": data[:10],
        "magic is": b"XXXX" + data[4:],
        "version 9 is not supported": data[:4] + bytes([9]) + data[5:],
        "bits 1 is outside": data[:5] + bytes([1]) + data[6:],
        "but the header describes": data[:-1],
        "a scale is negative": data[:20] + np.float16(-1).tobytes() + data[22:],
    }
    zero_code = bytearray(data)
    zero_code[-1] = 0  # code 0 means -4 for 3 bits: below -qmax
    bad["a code is outside"] = bytes(zero_code)
    for message, blob in bad.items():
        with pytest.raises(ScaledFormatError, match=message):
            from_bytes(blob)
