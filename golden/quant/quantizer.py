"""The GOBO weight quantizer (Zadeh et al., MICRO 2020, section IV), in NumPy.

Per matrix: fit a Gaussian, keep the weights whose log-density under it lies below a threshold as
*outliers* (exact FP32), and represent every weight by the index of its nearest centroid in a
dictionary of ``2**index_bits`` values. The centroids start from the means of equal-population
groups of the sorted non-outlier weights and move like k-means, but GOBO stops as soon as the total
L1 error stops decreasing. Plain k-means (stop when the assignment is stable) is offered for
comparison. See docs/quantizer.md.

Why it is fast: the centroids stay sorted, so nearest-centroid assignment on the *sorted* fit set
is one ``searchsorted`` of the ``2**index_bits - 1`` midpoints, every cluster is a contiguous run,
and its mean and L1 error follow from prefix sums. An iteration costs O(k log n), not O(n); the
only O(n log n) step is the one sort per matrix.
"""

import dataclasses
import math

import numpy as np

from golden.config import GoboConfig, check_int
from golden.quant.layer import GoboLayer, LayerStats, _readonly
from golden.quant.outliers import OUTLIER_FITS, check_choice, check_layer, fit_gaussian
from golden.quant.stored import stored_nbytes

__all__ = ["GoboLayer", "LayerStats", "METHODS", "OUTLIER_FITS", "quantize", "log_density",
           "outlier_mask", "layer_stats", "aggregate_stats"]

#: Centroid-selection methods: GOBO's L1 stop rule, and Lloyd's k-means for comparison.
METHODS = ("gobo", "kmeans")

_DEFAULTS = GoboConfig()
#: Safety cap on centroid updates; GOBO stops long before (tens of steps on BERT matrices).
DEFAULT_MAX_ITERATIONS = 1000


# The outlier rule ---------------------------------------------------------------------------------

def log_density(weights, mean, std):
    """Natural-log Gaussian density ``log N(w; mean, std)`` of every weight, in float64."""
    w = np.asarray(weights, dtype=np.float64)
    return -0.5 * math.log(2.0 * math.pi * std * std) - (w - mean) ** 2 / (2.0 * std * std)


def outlier_mask(weights, mean, std, threshold):
    """True where ``log N(w; mean, std) < threshold``.

    A matrix whose weights are all equal (``std == 0``) has no outliers. Note the rule is absolute,
    as in the paper: the peak density is ``1 / (std * sqrt(2 pi))``, so with ``threshold=-4`` a
    matrix with ``std`` above about 21.8 has only outliers.
    """
    w = np.asarray(weights)
    if std == 0.0:
        return np.zeros(w.shape, dtype=bool)
    return log_density(w, mean, std) < threshold


# Centroid selection on a sorted fit set -----------------------------------------------------------

class _SortedFit:
    """A sorted 1-D float64 sample with prefix sums, on which cluster statistics are O(k log n)."""

    def __init__(self, values):
        self.x = values
        self.prefix = np.concatenate([[0.0], np.cumsum(values)])

    def boundaries(self, centroids):
        """Cluster ``j`` is ``x[b[j]:b[j+1]]`` under nearest-centroid assignment.

        A weight exactly on a midpoint goes to the upper centroid, as in :func:`_nearest`.
        """
        mids = 0.5 * (centroids[:-1] + centroids[1:])
        inner = np.searchsorted(self.x, mids, side="left")
        return np.concatenate([[0], inner, [len(self.x)]])

    def sums(self, bounds):
        return self.prefix[bounds[1:]] - self.prefix[bounds[:-1]], np.diff(bounds)

    def means(self, bounds, previous):
        """Cluster means; an empty cluster keeps its previous centroid. Means of consecutive runs
        of a sorted array stay sorted, and so does a kept centroid (it lies between its
        neighbours' runs), so the dictionary never needs re-sorting."""
        total, count = self.sums(bounds)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), previous)

    def l1(self, centroids, bounds):
        """``sum |x - c(x)|`` with each run split where it crosses its centroid."""
        lo, hi = bounds[:-1], bounds[1:]
        split = np.clip(np.searchsorted(self.x, centroids), lo, hi)
        p = self.prefix
        below = centroids * (split - lo) - (p[split] - p[lo])
        above = (p[hi] - p[split]) - centroids * (hi - split)
        return float(np.sum(below + above))

    def equal_population_means(self, k):
        """Means of ``k`` equal-population groups, split as ``np.array_split`` does (the first
        ``n % k`` groups hold one value more). With fewer than ``k`` values a group can be empty;
        it takes the sorted value at its position instead."""
        n = len(self.x)
        sizes = np.full(k, n // k)
        sizes[:n % k] += 1
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        fallback = self.x[np.minimum(bounds[:-1], n - 1)]
        return self.means(bounds, fallback)


def _fit_centroids(fit, k, method, max_iterations):
    """Return ``(centroids float64, kept updates, L1 history)``."""
    centroids = fit.equal_population_means(k)
    bounds = fit.boundaries(centroids)
    history = [fit.l1(centroids, bounds)]
    iterations = 0
    while iterations < max_iterations:
        moved = fit.means(bounds, centroids)
        moved_bounds = fit.boundaries(moved)
        error = fit.l1(moved, moved_bounds)
        if method == "gobo" and not error < history[-1]:
            break  # GOBO's stop rule: the step that fails to lower L1 is discarded
        centroids, iterations = moved, iterations + 1
        history.append(error)
        if method == "kmeans" and np.array_equal(moved_bounds, bounds):
            break  # Lloyd has converged: the next update would reproduce these centroids
        bounds = moved_bounds
    return centroids, iterations, tuple(history)


def _nearest(flat, centroids):
    """Index of the nearest of the sorted ``centroids`` for each value (ties go up)."""
    c = centroids.astype(np.float64)
    return np.searchsorted(0.5 * (c[:-1] + c[1:]), flat, side="right").astype(np.uint8)


# Validation ---------------------------------------------------------------------------------------

def _check_weights(weights):
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, not shape {w.shape}")
    if w.size == 0:
        raise ValueError(f"weights must not be empty, not shape {w.shape}")
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        raise ValueError(f"weights must be real numbers, not dtype {w.dtype}")
    w = w.astype(np.float64)
    bad = ~np.isfinite(w)
    if bad.any():
        n_nan, n_inf = int(np.isnan(w).sum()), int(np.isinf(w).sum())
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"weights contain {n_nan} NaN and {n_inf} Inf values "
                         f"(first at {first}); only finite weights can be quantized")
    return w


def _is_finite_number(value):
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
            and math.isfinite(value))


def _check_params(index_bits, outlier_log_prob, method, max_iterations, outlier_fit, fit):
    check_int("index_bits", index_bits, 2, 8)
    if not _is_finite_number(outlier_log_prob):
        raise ValueError(f"outlier_log_prob must be a finite number, not {outlier_log_prob!r}")
    check_choice("method", method, METHODS)
    check_int("max_iterations", max_iterations, 1)
    check_choice("outlier_fit", outlier_fit, OUTLIER_FITS)
    if fit is not None and not (isinstance(fit, (tuple, list)) and len(fit) == 2
                                and all(_is_finite_number(v) for v in fit) and fit[1] >= 0):
        raise ValueError(f"fit must be a (location, scale) pair of finite numbers with scale >= "
                         f"0, not {fit!r}")


# Public entry points ------------------------------------------------------------------------------

def quantize(weights, *, index_bits=_DEFAULTS.index_bits,
             outlier_log_prob=_DEFAULTS.outlier_log_prob, method="gobo",
             max_iterations=DEFAULT_MAX_ITERATIONS, outlier_fit="gaussian", fit=None):
    """Quantize one weight matrix with GOBO (or k-means).

    Parameters
    ----------
    weights : array_like
        A 2-D matrix of finite real numbers (PyTorch ``[out, in]``).
    index_bits : int
        2..8; the dictionary holds ``2**index_bits`` centroids.
    outlier_log_prob : float
        The threshold (named as in :class:`~golden.config.GoboConfig`): weights with
        ``log N(w; mean, std) < outlier_log_prob`` are outliers (natural log).
    method : {"gobo", "kmeans"}
        ``"gobo"`` repeats assign/update while the total L1 error of the non-outliers decreases
        and keeps the centroids before the first step that does not; ``"kmeans"`` (Lloyd, same
        equal-population start) repeats until the assignment no longer changes.
    max_iterations : int
        Cap on centroid updates for either method.
    outlier_fit : {"gaussian", "robust"}
        How the outlier Gaussian is fitted to ``weights`` (:func:`golden.quant.outliers.
        fit_gaussian`): GOBO's mean and std (default), or the median and 1.4826 x MAD, which a
        few extreme weights cannot inflate.
    fit : tuple of float, optional
        A precomputed ``(location, scale)`` to use instead of fitting ``weights`` (e.g. one pooled
        over an encoder layer, :func:`golden.quant.outliers.scope_fits`); ``outlier_fit`` then
        only records how it was computed.

    Returns
    -------
    GoboLayer
        With ``stats`` measured against ``weights``; ``stats.warnings`` says when the outlier
        share or the compression ratio is far from expected
        (:func:`golden.quant.outliers.check_layer`).

    Raises
    ------
    ValueError
        For a matrix that is not 2-D, is empty or holds NaN/Inf, or for parameters out of range.
    """
    _check_params(index_bits, outlier_log_prob, method, max_iterations, outlier_fit, fit)
    w = _check_weights(weights)
    flat = w.reshape(-1)
    mean, std = fit_gaussian(flat, outlier_fit) if fit is None else map(float, fit)
    mask = outlier_mask(flat, mean, std, outlier_log_prob)
    positions = np.flatnonzero(mask)
    inliers = flat[~mask] if len(positions) < len(flat) else flat  # all outliers: fit them all
    fit = _SortedFit(np.sort(inliers))
    centroids, iterations, history = _fit_centroids(fit, 1 << index_bits, method, max_iterations)
    centroids = centroids.astype(np.float32)
    # Rounding to float32 keeps the order (rounding is monotone), so _nearest stays valid.
    indexes = _nearest(flat, centroids).reshape(w.shape)
    layer = GoboLayer(
        shape=tuple(int(n) for n in w.shape), index_bits=index_bits,
        indexes=_readonly(indexes), centroids=_readonly(centroids),
        outlier_positions=_readonly(positions.astype(np.int64)),
        outlier_values=_readonly(flat[positions].astype(np.float32)),
        mean=mean, std=std, outlier_log_prob=float(outlier_log_prob),
        outlier_fit=outlier_fit, method=method, iterations=iterations,
        l1_history=history)
    return dataclasses.replace(layer, stats=layer_stats(layer, w))


def layer_stats(layer, weights):
    """Measure ``layer`` against the original ``weights`` (see :class:`LayerStats`) and check it
    (:func:`golden.quant.outliers.check_layer`)."""
    w = np.asarray(weights, dtype=np.float64)
    error = w - layer.dequantize().astype(np.float64)
    std = float(w.std())
    rmse = float(np.sqrt(np.mean(error * error)))
    nbytes = stored_nbytes(layer.shape, layer.index_bits, layer.n_outliers)
    l1 = float(np.abs(error).sum())
    return LayerStats(
        numel=layer.numel, outliers=layer.n_outliers,
        outlier_fraction=layer.n_outliers / layer.numel,
        rel_rmse=rmse / std if std > 0 else (0.0 if rmse == 0 else math.inf),
        l1=l1, l1_mean=l1 / layer.numel, stored_bytes=nbytes,
        compression_ratio=4 * layer.numel / nbytes, iterations=layer.iterations or 0,
        warnings=check_layer(layer, w))


def aggregate_stats(stats):
    """Pool several :class:`LayerStats` into one dict.

    ``outlier_fraction`` is over all weights, ``compression_ratio`` is total FP32 bytes over total
    stored bytes, ``rel_rmse`` is the weight-count-weighted mean of the per-matrix values, ``l1``
    and ``iterations`` are totals, ``min_compression_ratio`` is the worst matrix.
    """
    stats = list(stats)
    if not stats:
        raise ValueError("aggregate_stats needs at least one matrix")
    numel = sum(s.numel for s in stats)
    return {
        "matrices": len(stats),
        "numel": numel,
        "outliers": sum(s.outliers for s in stats),
        "outlier_fraction": sum(s.outliers for s in stats) / numel,
        "compression_ratio": 4 * numel / sum(s.stored_bytes for s in stats),
        "min_compression_ratio": min(s.compression_ratio for s in stats),
        "rel_rmse": sum(s.rel_rmse * s.numel for s in stats) / numel,
        "l1": sum(s.l1 for s in stats),
        "iterations": sum(s.iterations for s in stats),
    }
