"""The bit-exact tile model against an independent dense formulation, and its requantization."""

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.tile import requantize, tile_accumulators, tile_outputs
from tests.test_layer_image import random_image

TINY = preset("tiny")


def dense_reference(image, acts):
    """The same function written another way: one dense integer weight matrix at the
    accumulator's exponent (centroids shifted by sd, residuals by sr, biases by sb), then a plain
    matmul."""
    weights = image.centroids[image.indexes] << image.shift_dot
    for m, n, r in zip(image.outlier_rows, image.outlier_cols, image.outlier_residuals):
        weights[m, n] += int(r) << image.shift_corr
    return [[int(sum(int(w) * int(x) for w, x in zip(row, token))) + (int(bias) << image.shift_bias)
             for token in acts] for row, bias in zip(weights, image.bias)]


@pytest.mark.parametrize("seed", range(4))
def test_accumulators_equal_the_dense_reference(seed):
    rng = np.random.default_rng(seed)
    image = random_image(rows=11, cols=21, n_outliers=15, seed=seed, shift_dot=seed,
                         shift_corr=3 - seed, shift_bias=5 * seed)
    acts = rng.integers(-(1 << 15), 1 << 15, (3, 21))
    acc = tile_accumulators(image, acts)
    assert acc.shape == (12, 3)  # padded to 3 blocks of 4 PEs
    assert acc[:11].tolist() == dense_reference(image, acts)


def test_padded_rows_compute_index_zero_with_no_bias():
    image = random_image(rows=5, cols=8, n_outliers=0)
    acts = np.arange(16).reshape(2, 8)
    acc = tile_accumulators(image, acts)
    assert acc[5:].tolist() == [[int(image.centroids[0] * acts[t].sum()) for t in range(2)]] * 3


def test_requantize_rounds_half_up_and_saturates():
    assert requantize(TINY, [5, 6, 7, -5, -6, -7], 2).tolist() == [1, 2, 2, -1, -1, -2]
    assert requantize(TINY, [1 << 40, -(1 << 40), 32767, -32768], 0).tolist() == \
        [32767, -32768, 32767, -32768]
    assert requantize(TINY, [(1 << 20) - 1], 5).tolist() == [32767]


def test_outputs_apply_the_image_shift():
    image = random_image(out_shift=9)
    acts = np.random.default_rng(7).integers(-300, 300, (2, 13))
    np.testing.assert_array_equal(tile_outputs(image, acts),
                                  requantize(TINY, tile_accumulators(image, acts), 9))


def test_activation_width_is_checked():
    image = random_image()
    with pytest.raises(ValueError, match="activations must fit signed 16-bit"):
        tile_accumulators(image, np.full((1, 13), 1 << 15))
    with pytest.raises(ValueError, match=r"activations must be \(tokens, 13\)"):
        tile_accumulators(image, np.zeros((1, 12), int))
