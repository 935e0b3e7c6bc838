"""GOBO with one dictionary per group of output rows (a finer dictionary granularity than the
paper's one per matrix), for the accuracy-per-bit frontier (scripts/frontier.py).

Rows ``[g*rows_per_group, (g+1)*rows_per_group)`` are quantized as a matrix of their own
(:func:`golden.quant.quantizer.quantize`: own Gaussian fit, outliers and ``2**index_bits``
centroids). The stored form is the groups' stored forms (golden.quant.stored) back to back, so
every group pays its 24-byte header and its dictionary: the per-group metadata is counted, not
assumed away. On the tile a group is a layer image of its own (its rows are a smaller FC layer),
so the hardware runs it as one tile run per group with a dictionary reload in between.
"""

import dataclasses

import numpy as np

from golden.config import check_int
from golden.quant import stored
from golden.quant.quantizer import _check_weights, quantize

__all__ = ["RowGroupLayer", "quantize_row_groups"]


@dataclasses.dataclass(frozen=True, eq=False)
class RowGroupLayer:
    """A matrix of ``shape`` as ``groups``, GoboLayers of consecutive row ranges in order."""
    shape: tuple
    rows_per_group: int
    groups: tuple

    @property
    def numel(self):
        return self.shape[0] * self.shape[1]

    @property
    def n_outliers(self):
        return sum(g.n_outliers for g in self.groups)

    def dequantize(self):
        return np.concatenate([g.dequantize() for g in self.groups], axis=0)

    def stored_nbytes(self):
        """Bytes of the stored form: the sum of the groups' :func:`golden.quant.stored.
        stored_nbytes`."""
        return sum(stored.stored_nbytes(g.shape, g.index_bits, g.n_outliers) for g in self.groups)

    def to_bytes(self):
        return b"".join(stored.to_bytes(g) for g in self.groups)


def quantize_row_groups(weights, rows_per_group, **options):
    """GOBO-quantize ``weights`` with one dictionary per ``rows_per_group`` rows (the last group
    may be shorter); ``options`` go to :func:`golden.quant.quantizer.quantize`."""
    w = _check_weights(weights)
    check_int("rows_per_group", rows_per_group, 1, w.shape[0])
    groups = tuple(quantize(w[r:r + rows_per_group], **options)
                   for r in range(0, w.shape[0], rows_per_group))
    return RowGroupLayer(shape=tuple(int(n) for n in w.shape), rows_per_group=rows_per_group,
                         groups=groups)
