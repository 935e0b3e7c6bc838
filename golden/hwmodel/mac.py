"""Bit-exact models of the comparison designs: the conventional MAC baseline PE, the uniform
symmetric per-row quantizer that feeds it, and GOBO's memory-compression decompressor.

The MAC PE computes ``sum_n weight[n] * act[n]`` exactly; the decompressor turns GOBO's packed
form (indexes, a dictionary of integer centroids, outliers) back into the dense integer weights
that a MAC PE consumes (GOBO, MICRO 2020, its first application: compression of off-chip
weight memory only).
"""

import numpy as np

from golden.hwmodel.fixedpoint import check_signed

__all__ = ["mac_out_bits", "mac_dot", "mac_cycles", "quantize_symmetric", "decompress",
           "layer_memory_bits"]


def mac_out_bits(config, weight_bits):
    """Exact width of a dot product of at most ``max_dot_length`` products of a signed
    ``weight_bits`` weight and a signed ``act_bits`` activation."""
    return weight_bits + config.act_bits + config.dot_bits


def mac_dot(config, weight_bits, weights, acts):
    """Exact ``weights @ acts`` per row; ``weights`` is (M, N) or (N,); int64 (M,)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.int64))
    acts = np.asarray(acts, dtype=np.int64)
    if acts.ndim != 1 or weights.shape[1] != acts.shape[0]:
        raise ValueError(f"weights {weights.shape} and activations {acts.shape} do not match: "
                         f"need (M, N) and (N,)")
    if weights.shape[1] > config.max_dot_length:
        raise ValueError(f"dot product length {weights.shape[1]} exceeds max_dot_length="
                         f"{config.max_dot_length}")
    check_signed("weights", weights, weight_bits)
    check_signed("activations", acts, config.act_bits)
    out = weights @ acts
    check_signed("MAC outputs", out, mac_out_bits(config, weight_bits))
    return out


def mac_cycles(config, n_inputs, rows, latency=None):
    """Cycles from the first input beat to the last output of ``rows`` back-to-back dot
    products: the MAC PE takes one beat per cycle with no per-row interval, and the final output
    appears ``latency`` (default ``config.mac_pe_latency``) cycles after the final beat."""
    latency = config.mac_pe_latency if latency is None else latency
    beats = -(-n_inputs // config.lanes)
    return rows * beats + latency


def quantize_symmetric(matrix, bits):
    """Uniform symmetric per-row quantization to signed ``bits``: ``q = round(w / s)`` with
    ``s = max|w_row| / (2**(bits-1) - 1)``. Returns ``(q int64, scales float64)``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"need a 2-D matrix, not shape {matrix.shape}")
    top = (1 << (bits - 1)) - 1
    peak = np.abs(matrix).max(axis=1)
    scales = np.where(peak > 0, peak / top, 1.0)
    q = np.clip(np.rint(matrix / scales[:, None]), -top, top).astype(np.int64)
    return q, scales


def decompress(config, weight_bits, indexes, centroids, outliers=()):
    """Dense integer weights of one row: ``centroids[indexes]``, then every outlier
    ``(col, value)`` replaces the weight at ``col``. Outliers must be in column order."""
    indexes = np.asarray(indexes, dtype=np.int64)
    centroids = np.asarray(centroids, dtype=np.int64)
    if indexes.ndim != 1:
        raise ValueError(f"indexes must be 1-D, not {indexes.shape}")
    if len(centroids) != config.n_centroids:
        raise ValueError(f"the dictionary must hold {config.n_centroids} centroids, "
                         f"not {len(centroids)}")
    check_signed("centroids", centroids, weight_bits)
    weights = centroids[indexes]
    cols = [int(c) for c, _ in outliers]
    if cols != sorted(set(cols)) or any(not 0 <= c < len(indexes) for c in cols):
        raise ValueError(f"outlier columns must be distinct, ascending and inside the row of "
                         f"{len(indexes)}, not {cols}")
    for col, value in outliers:
        check_signed("outlier values", value, weight_bits)
        weights[col] = value
    return weights


def layer_memory_bits(rows=768, cols=3072, *, index_bits=3, centroid_bits=32,
                      outlier_fraction=0.003, outlier_value_bits=32, dense_bits=(16, 8, 4),
                      scale_bits=32):
    """Bits to store one fully-connected layer of ``rows x cols`` weights (default: BERT-base's
    768 x 3072 FFN layer) in GOBO form and densely.

    GOBO: ``index_bits`` per weight, the dictionary (``2**index_bits`` centroids of
    ``centroid_bits``), and ``round(outlier_fraction * rows * cols)`` outliers, each a
    ``outlier_value_bits`` value plus its position in the matrix (``ceil(log2(rows * cols))``
    bits). Dense ``W`` bits: ``W`` per weight plus one ``scale_bits`` scale per row (symmetric
    per-row quantization); FP32 for reference.
    """
    n = rows * cols
    position_bits = (n - 1).bit_length()
    outliers = round(outlier_fraction * n)
    gobo = {
        "indexes": n * index_bits,
        "dictionary": (1 << index_bits) * centroid_bits,
        "outliers": outliers * (outlier_value_bits + position_bits),
    }
    result = {
        "layer": {"rows": rows, "cols": cols, "weights": n},
        "gobo": {**gobo, "total": sum(gobo.values()), "outlier_count": outliers,
                 "outlier_record_bits": outlier_value_bits + position_bits,
                 "what": f"{index_bits}-bit indexes + {1 << index_bits} x {centroid_bits}-bit "
                         f"dictionary + {outlier_fraction:.1%} outliers as "
                         f"{outlier_value_bits}-bit value + {position_bits}-bit position"},
        "fp32": {"total": 32 * n, "what": "dense FP32"},
    }
    for bits in dense_bits:
        result[f"w{bits}"] = {"total": n * bits + rows * scale_bits,
                              "what": f"dense {bits}-bit + one {scale_bits}-bit scale per row"}
    for key in list(result):
        if key != "layer":
            result[key]["vs_fp32"] = result[key]["total"] / (32 * n)
    return result
