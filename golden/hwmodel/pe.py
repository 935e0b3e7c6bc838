"""Bit-exact integer model of one GOBO PE (see docs/numerics.md).

A PE adds each activation into the bin its weight index selects, then reconstructs
``sum_k centroid[k] * bin[k]``. Everything is exact integer arithmetic in int64; the widths in
:class:`~golden.config.GoboConfig` guarantee that no intermediate value exceeds them.
"""

import numpy as np

from golden.hwmodel.fixedpoint import check_signed
from golden.hwmodel.packing import check_pe_inputs

__all__ = ["pe_bins", "pe_dot", "pe_cycles"]


def pe_bins(config, indexes, acts):
    """Bins of each row: ``bins[m, k] = sum_n acts[n] * (indexes[m, n] == k)``.

    ``indexes`` is (M, N) or (N,); ``acts`` is (N,), or (T, N) for ``T`` tokens at once.
    Returns int64 (M, 2**index_bits), or (M, 2**index_bits, T).

    Raises
    ------
    ValueError
        If the shapes disagree or N exceeds ``max_dot_length``.
    """
    indexes = np.atleast_2d(np.asarray(indexes))
    acts = np.asarray(acts, dtype=np.int64)
    x = acts[None] if acts.ndim == 1 else acts
    if x.ndim != 2 or indexes.shape[1] != x.shape[1]:
        raise ValueError(f"indexes {indexes.shape} and activations {acts.shape} do not match: "
                         f"need (M, N) and (N,) or (T, N)")
    if indexes.shape[1] > config.max_dot_length:
        raise ValueError(f"dot product length {indexes.shape[1]} exceeds max_dot_length="
                         f"{config.max_dot_length}")
    # Every partial sum of a bin is an integer below 2**(bin_bits-1), so float64 (53-bit
    # mantissa) adds them exactly in any order, and BLAS makes it fast; int64 otherwise.
    dtype = np.float64 if config.bin_bits <= 53 else np.int64
    xt = x.T.astype(dtype)
    bins = np.stack([(indexes == k).astype(dtype) @ xt for k in range(config.n_centroids)],
                    axis=1).astype(np.int64)
    check_signed("bins", bins, config.bin_bits)  # cannot fail by construction; guards the model
    return bins[:, :, 0] if acts.ndim == 1 else bins


def pe_dot(config, indexes, acts, centroids):
    """Exact PE outputs ``sum_k centroids[k] * bins[m, k]`` for each row: int64 (M,) for
    ``acts`` (N,), or (M, T) for ``acts`` (T, N).

    Raises
    ------
    ValueError
        If an input does not fit its width or the shapes disagree (:func:`pe_bins`).
    """
    check_pe_inputs(config, indexes, acts, centroids)
    bins = pe_bins(config, indexes, acts)
    out = np.einsum("mk...,k->m...", bins, np.asarray(centroids, dtype=np.int64))
    check_signed("PE outputs", out, config.out_bits)
    return out


def pe_cycles(config, n_inputs, rows, latency=None):
    """Cycles from the first input beat to the last output of ``rows`` back-to-back dot products
    of ``n_inputs`` each, with no input gaps and no output backpressure.

    A dot product takes ``ceil(n_inputs / lanes)`` beats; the double-buffered bins let the next
    one accumulate while the last is reconstructed, so a row issues every
    ``max(beats, recon_cycles)`` cycles, and the final output appears ``latency`` (default
    ``config.pe_latency``) cycles after the final beat of its row.
    """
    latency = config.pe_latency if latency is None else latency
    beats = -(-n_inputs // config.lanes)
    interval = max(beats, config.recon_cycles)
    return (rows - 1) * interval + beats + latency
