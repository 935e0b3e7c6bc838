"""Bench jobs of the PE-shaped designs (GOBO PE and MAC baseline PE): real quantized BERT rows,
seeded activations, golden outputs and cycles.

Everything here comes from ``golden/``; the bench only drives and compares.
"""

import numpy as np

from golden.hwmodel.fixedpoint import to_fixed
from golden.hwmodel.mac import decompress, mac_cycles, mac_dot, mac_out_bits, quantize_symmetric
from golden.hwmodel.packing import (
    centroids_fields,
    decompressor_streams,
    mac_beats,
    pack,
    pe_beats,
    weight_beats,
)
from golden.hwmodel.pe import pe_cycles, pe_dot
from golden.quant.quantizer import quantize

__all__ = ["seeded_activations", "pe_job", "mac_job", "decompressor_job", "pe_vectors",
           "mac_vectors"]


def seeded_activations(config, n, seed):
    """Activations over the full signed range, with both extremes present, so the bins and the
    reconstruction are exercised at their widest."""
    rng = np.random.default_rng(seed)
    low, high = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    acts = rng.integers(low, high, size=n, endpoint=True, dtype=np.int64)
    acts[rng.integers(n)] = low
    acts[rng.integers(n)] = high
    return acts


def pe_job(config, name, matrix, *, rows, seed, latency, gap_probability=0.0,
           backpressure_probability=0.0, corrupt=None, cycle_model=None):
    """One bench job: the first ``rows`` rows of the GOBO-quantized ``matrix`` (out x in).

    ``cycle_model(indexes (rows, N)) -> cycles`` replaces :func:`~golden.hwmodel.pe.pe_cycles`
    for a PE of other timing (:mod:`golden.hwmodel.pe_alternatives`)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or not 1 <= rows <= matrix.shape[0]:
        raise ValueError(f"{name}: need a 2-D matrix with at least {rows} rows, "
                         f"got shape {matrix.shape}")
    layer = quantize(matrix, index_bits=config.index_bits,
                     outlier_log_prob=config.outlier_log_prob)
    centroids, _exponent = to_fixed(layer.centroids, config.centroid_bits)
    indexes = np.asarray(layer.indexes[:rows], dtype=np.int64)
    acts = seeded_activations(config, matrix.shape[1], seed)
    expected = pe_dot(config, indexes, acts, centroids)
    beats = [b for row in indexes for b in pe_beats(config, row, acts)]
    timed = gap_probability == 0 and backpressure_probability == 0
    return {
        "name": name, "seed": seed, "rows": rows, "n_inputs": int(matrix.shape[1]),
        "centroids": [int(c) for c in centroids],
        "beats": [format(b, "x") for b in beats],
        "expected": [int(v) for v in expected],
        "expected_cycles": None if not timed else
        pe_cycles(config, matrix.shape[1], rows, latency) if cycle_model is None else
        int(cycle_model(indexes)),
        "recon_cycles": config.recon_cycles,
        "gap_probability": gap_probability, "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
    }


def mac_job(config, weight_bits, name, matrix, *, rows, seed, latency, gap_probability=0.0,
            backpressure_probability=0.0, corrupt=None):
    """One MAC bench job: the first ``rows`` rows of ``matrix`` (out x in) quantized uniformly
    (symmetric, per row) to ``weight_bits``, with seeded ``act_bits`` activations."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or not 1 <= rows <= matrix.shape[0]:
        raise ValueError(f"{name}: need a 2-D matrix with at least {rows} rows, "
                         f"got shape {matrix.shape}")
    weights, _scales = quantize_symmetric(matrix[:rows], weight_bits)
    acts = seeded_activations(config, matrix.shape[1], seed)
    expected = mac_dot(config, weight_bits, weights, acts)
    beats = [b for row in weights for b in mac_beats(config, weight_bits, row, acts)]
    timed = gap_probability == 0 and backpressure_probability == 0
    return {
        "name": name, "seed": seed, "rows": rows, "n_inputs": int(matrix.shape[1]),
        "centroids": None,
        "beats": [format(b, "x") for b in beats],
        "expected": [int(v) for v in expected],
        "expected_cycles": mac_cycles(config, matrix.shape[1], rows, latency) if timed else None,
        "gap_probability": gap_probability, "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
    }


def pe_vectors(config, jobs, *, seed=1, out_bits=None):
    """The bench's vectors; ``out_bits`` defaults to the GOBO PE's."""
    return {"seed": seed, "out_bits": config.out_bits if out_bits is None else out_bits,
            "centroid_bits": config.centroid_bits, "config": config.to_dict(), "jobs": jobs}


def mac_vectors(config, weight_bits, jobs, *, seed=1):
    return {**pe_vectors(config, jobs, seed=seed, out_bits=mac_out_bits(config, weight_bits)),
            "weight_bits": weight_bits}


def decompressor_job(config, weight_bits, centroids, rows, *, name, seed=1,
                     gap_probability=0.0, backpressure_probability=0.0):
    """One decompressor job: ``rows`` ``[(indexes (N,), [(col, value), ...])]`` and the integer
    dictionary ``centroids`` (K,) as the packed streams ``i`` (index beats) and ``outliers``,
    the ``centroids`` word, and the expected output words (dense weights, hex): every row's
    :func:`~golden.hwmodel.mac.decompress`, padded to whole beats with index 0 (so padding lanes
    carry centroid 0, as the hardware's do)."""
    beats, records = decompressor_streams(config, weight_bits, rows)
    expected = []
    for indexes, outliers in rows:
        padded = np.concatenate([indexes, np.zeros(-len(indexes) % config.lanes, dtype=np.int64)])
        weights = decompress(config, weight_bits, padded, centroids, outliers)
        expected += [format(word, "x") for word in weight_beats(config, weight_bits, weights)]
    word = pack(centroids_fields(config, weight_bits), {"centroids": centroids})
    return {"name": name, "seed": seed, "centroids": format(word, "x"),
            "streams": {"i": [format(b, "x") for b in beats],
                        "outliers": [format(r, "x") for r in records]},
            "expected": expected, "expected_cycles": None,
            "gap_probability": gap_probability,
            "backpressure_probability": backpressure_probability}
