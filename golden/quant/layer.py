"""A GOBO-quantized matrix and its quality figures: plain data, shared by the quantizer that makes
it and the stored form that serializes it (so neither imports the other)."""

import dataclasses

import numpy as np

__all__ = ["GoboLayer", "LayerStats"]


def _readonly(array):
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class LayerStats:
    """Quality and size figures of one quantized matrix (see docs/quantizer.md).

    Parameters
    ----------
    numel : int
        Weights in the matrix.
    outliers : int
        Weights kept exactly as outliers.
    outlier_fraction : float
        ``outliers / numel``.
    rel_rmse : float
        RMSE of the reconstruction against the original, divided by the original's standard
        deviation (population, ``ddof=0``); 0 for a perfect reconstruction.
    l1 : float
        Total ``sum |w - dequantized(w)|`` over *all* weights (outliers contribute 0).
    l1_mean : float
        ``l1 / numel``.
    stored_bytes : int
        Size of the serialized stored form (:func:`golden.quant.stored.to_bytes`).
    compression_ratio : float
        ``4 * numel / stored_bytes``: FP32 bytes over stored bytes.
    iterations : int
        Centroid updates kept by the fit (see :func:`quantize`).
    warnings : tuple of str
        What is far from expected (outlier share, compression ratio) and its likely cause, from
        :func:`golden.quant.outliers.check_layer`; empty when nothing is.
    """

    numel: int
    outliers: int
    outlier_fraction: float
    rel_rmse: float
    l1: float
    l1_mean: float
    stored_bytes: int
    compression_ratio: float
    iterations: int
    warnings: tuple = ()

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class GoboLayer:
    """One GOBO-quantized weight matrix.

    Arrays are read-only. The index stream is dense: an outlier position also carries the index of
    its nearest centroid, so the hardware side path only has to add
    ``residual = outlier - centroids[index]`` (DESIGN.md section 3).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the matrix.
    index_bits : int
        Width of an index; ``len(centroids) == 2**index_bits``.
    indexes : numpy.ndarray
        ``uint8`` of ``shape``: the nearest centroid of every weight.
    centroids : numpy.ndarray
        ``float32`` dictionary, sorted ascending.
    outlier_positions : numpy.ndarray
        ``int64`` flat (row-major) positions of the outliers, strictly increasing.
    outlier_values : numpy.ndarray
        ``float32`` original values of the outliers.
    mean, std : float or None
        Location and scale of the Gaussian the outlier rule used (float64): mean and std for
        ``outlier_fit="gaussian"``, median and 1.4826 x MAD for ``"robust"``, possibly pooled over
        several matrices (:func:`golden.quant.outliers.scope_fits`). None when the layer was
        parsed from its stored form.
    outlier_log_prob : float or None
        The outlier log-density threshold used.
    outlier_fit : str or None
        ``"gaussian"`` or ``"robust"``: how ``mean`` and ``std`` were computed.
    method : str or None
        ``"gobo"`` or ``"kmeans"``.
    iterations : int or None
        Centroid updates kept by the fit.
    l1_history : tuple of float
        Total L1 error of the fit set (the non-outliers) after the initial centroids and after
        each kept update; strictly decreasing for ``"gobo"``.
    stats : LayerStats or None
        Figures measured against the original weights at quantization time.
    """

    shape: tuple
    index_bits: int
    indexes: np.ndarray
    centroids: np.ndarray
    outlier_positions: np.ndarray
    outlier_values: np.ndarray
    mean: float = None
    std: float = None
    outlier_log_prob: float = None
    outlier_fit: str = None
    method: str = None
    iterations: int = None
    l1_history: tuple = ()
    stats: LayerStats = None

    @property
    def numel(self):
        return self.shape[0] * self.shape[1]

    @property
    def n_outliers(self):
        return len(self.outlier_positions)

    def dequantize(self):
        """The reconstruction, float32: ``centroids[indexes]`` with the outliers restored
        exactly."""
        out = self.centroids[self.indexes]
        out.reshape(-1)[self.outlier_positions] = self.outlier_values
        return out

    def residuals(self):
        """``outlier - centroids[index]`` at each outlier position (float64), what the side path
        adds."""
        idx = self.indexes.reshape(-1)[self.outlier_positions]
        return self.outlier_values.astype(np.float64) - self.centroids[idx].astype(np.float64)
