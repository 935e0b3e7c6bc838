"""Jobs for the tile bench: a layer image, integer activations, the golden outputs and counters."""

import numpy as np

from golden.layer_image import layer_word, load_beats
from golden.tile_cycles import tile_cycles_of_image
from golden.tile_model import tile_outputs

__all__ = ["tile_job", "tile_vectors"]


def tile_job(image, acts, *, name, seed=1, gap_probability=0.0, backpressure_probability=0.0,
             corrupt=None):
    """One bench job: load ``image`` and activations ``acts`` (T, N ints), run, check."""
    config = image.config
    acts = np.asarray(acts, dtype=np.int64)
    tokens = acts.shape[0]
    y = tile_outputs(image, acts)                     # (blocks * pes, T)
    pes = config.pes
    expected = [[int(v) for v in y[b * pes:(b + 1) * pes, t]]
                for b in range(image.blocks) for t in range(tokens)]
    model = tile_cycles_of_image(image, tokens)
    timed = backpressure_probability == 0
    counters = {k: model[k] for k in ("cycles", "busy", "stall_outlier", "stall_recon",
                                      "stall_output", "outliers")} if timed else None
    return {
        "name": name, "seed": seed, "tokens": tokens,
        "layer": format(layer_word(image, tokens), "x"),
        "load": [format(b, "x") for b in load_beats(image, acts)],
        "expected": expected, "expected_counters": counters,
        "ideal_cycles": tokens * image.blocks * image.chunks,
        "gap_probability": gap_probability, "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
    }


def tile_vectors(config, jobs, *, seed=1):
    return {"seed": seed, "config": config.to_dict(), "jobs": jobs}
