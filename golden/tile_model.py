"""Bit-exact integer model of the tile (docs/tile.md section 1): GOBO dot products, outlier
corrections, bias, alignment shifts, round-half-up requantization and saturation."""

import numpy as np

from .fixedpoint import check_signed
from .pe_model import pe_dot

__all__ = ["tile_outputs", "tile_accumulators", "requantize"]


def tile_accumulators(image, acts):
    """``acc[m, t]`` for every row of the padded blocks (``blocks * pes``) and token; int64."""
    config = image.config
    acts = np.asarray(acts)
    if acts.ndim != 2 or acts.shape[1] != image.cols:
        raise ValueError(f"activations must be (tokens, {image.cols}), not {acts.shape}")
    check_signed("activations", acts, config.act_bits)
    padded = image.padded_indexes()
    rows = padded.shape[0]
    cols = padded.shape[1]
    x = np.zeros((acts.shape[0], cols), dtype=np.int64)
    x[:, :image.cols] = acts
    dot = np.stack([pe_dot(config, padded, x[t], image.centroids) for t in range(len(x))], axis=1)
    corr = np.zeros((rows, len(x)), dtype=np.int64)
    np.add.at(corr, image.outlier_rows,
              image.outlier_residuals[:, None] * x[:, image.outlier_cols].T)
    check_signed("outlier corrections", corr, config.corr_bits)
    bias = np.zeros(rows, dtype=np.int64)
    bias[:image.rows] = image.bias
    # Exact in int64: acc_bits <= 64 is enforced by GoboConfig.
    acc = (dot << image.shift_dot) + (corr << image.shift_corr) + bias[:, None]
    check_signed("accumulators", acc, config.acc_bits)
    return acc


def requantize(config, acc, out_shift):
    """Round half up by ``out_shift`` bits, then saturate to signed ``act_bits``."""
    acc = np.asarray(acc, dtype=np.int64)
    if out_shift > 0:
        acc = (acc + (1 << (out_shift - 1))) >> out_shift
    low, high = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    return np.clip(acc, low, high)


def tile_outputs(image, acts):
    """``Y`` (blocks * pes, T) of the tile, padded rows included (callers trim to ``rows``)."""
    return requantize(image.config, tile_accumulators(image, acts), image.out_shift)
