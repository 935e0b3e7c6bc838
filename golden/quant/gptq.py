"""Error-compensating index choice for a GOBO matrix (GPTQ, Frantar et al., ICLR 2023), in NumPy.

Plain GOBO gives every weight the index of its nearest centroid. GPTQ keeps GOBO's dictionary and
outlier positions but chooses the indexes one input column at a time, and spreads each column's
rounding error over the columns not yet chosen so that the layer's *outputs* on calibration
activations move as little as possible: it minimizes ``||X W^T - X Q^T||^2`` greedily, with the
Gram matrix ``H = X^T X`` of the layer's inputs ``X`` (tokens x in) taken on calibration
sentences. An outlier stores its (compensated) weight exactly, so its column error is zero.

The result is an ordinary :class:`~golden.quant.layer.GoboLayer`: same dictionary, same outlier
positions, same stored form (golden.quant.stored), same hardware; only the index choice and the
outlier values differ. Nothing is retrained: no gradient, no change to any other tensor.

The algorithm is the paper's (Algorithm 1): ``H`` damped by ``damp`` x its mean diagonal, the
upper Cholesky factor ``U`` of ``H^-1``, columns in order (by default in decreasing order of
``H``'s diagonal, the reference implementation's ``act_order``: the columns that see the
largest inputs are rounded first, while every other column can still absorb their error), error
``(w - q) / U[i, i]`` subtracted from the later columns of the block as ``err * U[i, i+1:]``,
and between blocks of 128 columns the accumulated error applied to the rest at once (the "lazy
batch" update; same result).
"""

import dataclasses

import numpy as np

from golden.quant.quantizer import _check_weights, _nearest, layer_stats, quantize

__all__ = ["gram", "quantize_gptq", "DEFAULT_DAMP"]

#: Damping of ``H``'s diagonal, as a fraction of its mean (the paper's 1 %).
DEFAULT_DAMP = 0.01
_BLOCK = 128


def gram(activations):
    """``X^T X`` in float64 of the layer inputs ``X`` ``[tokens, in]`` (summed over tokens)."""
    x = np.asarray(activations, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"activations must be [tokens, in], not shape {x.shape}")
    return x.T @ x


def _inverse_cholesky(h, damp):
    h = np.array(h, dtype=np.float64)
    dead = np.diag(h) == 0       # an input never active: its weights cannot matter
    h[dead, dead] = 1.0
    h[np.diag_indices_from(h)] += damp * float(np.mean(np.diag(h)))
    inverse = np.linalg.inv(np.linalg.cholesky(h))     # L^-1; H^-1 = L^-T L^-1
    return np.linalg.cholesky(inverse.T @ inverse).T    # upper U with U^T U = H^-1


def quantize_gptq(weights, hessian, *, index_bits=3, outlier_log_prob=-4.0, damp=DEFAULT_DAMP,
                  act_order=True, method="gobo", fit=None, outlier_fit="gaussian"):
    """GOBO-quantize ``weights`` ``[out, in]`` with GPTQ index choice.

    Parameters
    ----------
    weights : array_like
        The FP32 matrix (PyTorch ``[out, in]``).
    hessian : array_like
        ``[in, in]``: :func:`gram` of the layer's inputs on calibration data (any positive
        multiple gives the same result).
    index_bits, outlier_log_prob, method, fit, outlier_fit
        As :func:`golden.quant.quantizer.quantize`, which fits the dictionary and finds the
        outliers on the original weights.
    damp : float
        Added to ``H``'s diagonal, times its mean diagonal; > 0.
    act_order : bool
        Round the columns in decreasing order of ``H``'s diagonal (True) or in index order.

    Returns
    -------
    GoboLayer
        Its ``stats`` are measured against ``weights``: the weight error is larger than
        nearest-centroid's, the output error on the calibration data smaller.

    Raises
    ------
    ValueError
        For a bad matrix or parameters, a ``hessian`` of the wrong shape or not finite.
    """
    w = _check_weights(weights)
    h = np.asarray(hessian, dtype=np.float64)
    if h.shape != (w.shape[1], w.shape[1]) or not np.all(np.isfinite(h)):
        raise ValueError(f"hessian must be a finite [{w.shape[1]}, {w.shape[1]}] matrix, not "
                         f"shape {h.shape}")
    if isinstance(damp, bool) or not isinstance(damp, (int, float)) or not 0 < damp < 1e6:
        raise ValueError(f"damp must be positive, not {damp!r}")
    base = quantize(w, index_bits=index_bits, outlier_log_prob=outlier_log_prob, method=method,
                    fit=fit, outlier_fit=outlier_fit)
    centroids = base.centroids.astype(np.float64)
    outlier = np.zeros(w.size, dtype=bool)
    outlier[base.outlier_positions] = True
    outlier = outlier.reshape(w.shape)
    # Work on the columns in the chosen order; every result is put back in place at the end.
    order = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(w.shape[1])
    upper = _inverse_cholesky(h[np.ix_(order, order)], damp)
    work = w[:, order]
    outlier = outlier[:, order]
    indexes = np.empty(w.shape, dtype=np.uint8)
    cols = w.shape[1]
    for start in range(0, cols, _BLOCK):
        stop = min(start + _BLOCK, cols)
        block = work[:, start:stop]          # a view: updated in place
        errors = np.empty_like(block)
        for i in range(stop - start):
            column = block[:, i]
            index = _nearest(column, base.centroids)
            quantized = np.where(outlier[:, start + i], column, centroids[index])
            indexes[:, start + i] = index
            errors[:, i] = (column - quantized) / upper[start + i, start + i]
            block[:, i] = quantized
            block[:, i + 1:] -= np.outer(errors[:, i], upper[start + i, start + i + 1:stop])
        work[:, stop:] -= errors @ upper[start:stop, stop:]
    back = np.argsort(order)
    indexes = np.ascontiguousarray(indexes[:, back])
    flat = work[:, back].reshape(-1)
    indexes.setflags(write=False)
    values = flat[base.outlier_positions].astype(np.float32)
    values.setflags(write=False)
    layer = dataclasses.replace(base, indexes=indexes, outlier_values=values, stats=None)
    return dataclasses.replace(layer, stats=layer_stats(layer, w))
