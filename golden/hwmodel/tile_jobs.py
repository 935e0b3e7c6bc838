"""Jobs for the tile bench: a layer (GOBO layer image or MAC tile layer), integer activations,
the golden outputs and counters."""

import numpy as np

from golden.hwmodel.layer_image import (
    calibrated_image,
    layer_word,
    load_beats,
    logical_outputs,
)
from golden.hwmodel.mac_tile import (
    compressed_streams,
    mac_layer_word,
    mac_load_beats,
    mac_tile_cycles,
    mac_tile_outputs,
)
from golden.hwmodel.tile import tile_cycles_of_image, tile_outputs
from golden.quant.quantizer import quantize

__all__ = ["tile_job", "layer_job", "logical_beats", "mac_tile_job", "tile_vectors"]

COUNTERS = ("cycles", "busy", "stall_outlier", "stall_recon", "stall_output", "outliers")


def _job(layer, tokens, y, model, *, name, seed, layer_word, load, streams=None,
         gap_probability=0.0, backpressure_probability=0.0, corrupt=None):
    pes = layer.config.pes
    expected = [[int(v) for v in y[b * pes:(b + 1) * pes, t]]
                for b in range(layer.blocks) for t in range(tokens)]
    timed = backpressure_probability == 0
    return {
        "name": name, "seed": seed, "tokens": tokens,
        "layer": format(layer_word, "x"),
        "load": [format(b, "x") for b in load],
        # Streams driven at once before the load beats (the compressed tile's weights).
        "streams": {k: [format(w, "x") for w in words] for k, words in (streams or {}).items()},
        "expected": expected,
        "expected_counters": {k: model[k] for k in COUNTERS} if timed else None,
        "ideal_cycles": tokens * layer.blocks * layer.chunks,
        "gap_probability": gap_probability, "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
    }


def tile_job(image, acts, *, name, seed=1, **options):
    """One GOBO tile bench job: load ``image`` and activations ``acts`` (T, N ints), run, check."""
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    return _job(image, tokens, tile_outputs(image, acts), tile_cycles_of_image(image, tokens),
                name=name, seed=seed, layer_word=layer_word(image, tokens),
                load=load_beats(image, acts), **options)


def layer_job(config, weights, activations, *, bias=None, seed=1, name="layer",
              outlier_fit="gaussian", **options):
    """One real FC layer as a tile job: quantize ``weights`` (M, N float) with GOBO
    (``outlier_fit`` as :func:`golden.quant.quantizer.quantize`; index width and threshold from
    ``config``), calibrate the image on float ``activations`` (T, N); return ``(image, x_int,
    fp32, job)``: the layer image, the integer activations, the FP32 layer's result (T, M) and
    the :func:`tile_job`. Raises :class:`~golden.hwmodel.layer_image.ImageError` (a
    ``ValueError``) for a layer the configuration cannot hold."""
    layer = quantize(weights, index_bits=config.index_bits,
                     outlier_log_prob=config.outlier_log_prob, outlier_fit=outlier_fit)
    image, x_int, fp32 = calibrated_image(config, weights, activations, bias=bias, layer=layer)
    return image, x_int, fp32, tile_job(image, x_int, name=name, seed=seed, **options)


def logical_beats(image, beats, tokens):
    """Output beats (slot ``(b, t)`` -> ``P`` values, ``b`` major) back to ``Y`` (T, M) in the
    model's row order."""
    pes = image.config.pes
    beats = np.asarray(beats)
    physical = beats.reshape(image.blocks, tokens, pes).transpose(0, 2, 1).reshape(-1, tokens)
    return logical_outputs(image, physical).T


def mac_tile_job(layer, acts, *, name, seed=1, **options):
    """One MAC tile bench job (a :class:`~golden.hwmodel.mac_tile.MacLayer`); a layer with a
    compressed form is for the memory-compression tile: its weights go through the decompressor
    streams ``packed`` and ``outliers``, not the load beats."""
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    compressed = layer.compressed is not None
    streams = None
    if compressed:
        packed, records = compressed_streams(layer)
        streams = {"packed": packed, "outliers": records}
    return _job(layer, tokens, mac_tile_outputs(layer, acts), mac_tile_cycles(layer, tokens),
                name=name, seed=seed, layer_word=mac_layer_word(layer, tokens),
                load=mac_load_beats(layer, acts, weights=not compressed), streams=streams,
                **options)


def tile_vectors(config, jobs, *, seed=1):
    return {"seed": seed, "config": config.to_dict(), "jobs": jobs}
