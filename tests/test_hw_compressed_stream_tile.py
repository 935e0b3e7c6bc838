"""The streaming memory-compression tile: its cycle model (golden.hwmodel.compressed_stream_tile)
on real all-MiniLM-L6-v2 slices larger than the on-chip buffers."""

import numpy as np
import pytest

from golden.config import mac_flavour
from golden.hwmodel.compressed_stream_tile import DECOMPRESS_GAP, compressed_stream_tile_cycles
from golden.hwmodel.layer_image import output_exponent, quantize_activations
from golden.hwmodel.mac_tile import compressed_image, compressed_layer_from_float
from golden.hwmodel.offchip import offchip_layout
from tests.test_hw_stream_tile import BASE, MEMORIES, STREAM

# The GOBO streaming bench's tiny datapath (4 PEs x 4 lanes, buffers of two blocks) at W8A8.
CONFIG, WEIGHT_BITS = mac_flavour("w8a8", base="tiny", max_rows=STREAM.max_rows,
                                  max_outlier_words=STREAM.max_outlier_words)


def real_compressed_layer(minilm, name, rows, cols, tokens, seed=0, config=CONFIG,
                          weight_bits=WEIGHT_BITS):
    """A ``rows x cols`` slice of a real MiniLM matrix (with its bias) GOBO-quantized, its
    centroids and outliers as ``weight_bits`` integers, and seeded integer activations."""
    w = np.asarray(minilm[name][:rows, :cols], dtype=np.float64)
    bias = np.asarray(minilm[name.replace(".weight", ".bias")][:rows], dtype=np.float64)
    x = np.random.default_rng(seed).standard_normal((tokens, cols))
    x_int, e_x = quantize_activations(config, x)
    layer = compressed_layer_from_float(config, weight_bits, w, bias=bias, act_exponent=e_x,
                                        out_exponent=output_exponent(config, x @ w.T + bias))
    return layer, x_int


@pytest.fixture(scope="module")
def layer(minilm):
    """Layer 5's FFN output: 38 rows (10 blocks, the last half padding) x 61 columns, 3
    tokens (as the GOBO and MAC streaming benches)."""
    return real_compressed_layer(minilm, "encoder.layer.5.output.dense.weight", 38, 61, 3)


def test_model_bytes_are_gobo_and_fast_memory_waits_only_for_the_first_block(layer):
    """The off-chip bytes are the GOBO layout's; with a fast memory the broadcast waits only
    for the first block (fetch and decompression), with a slow one between blocks too."""
    layer, acts = layer
    tokens = acts.shape[0]
    image = compressed_image(layer)
    assert image.n_outliers and layer.blocks > 2
    size = offchip_layout(image, MEMORIES["fast"].bus_bytes, base=BASE).size
    fast = compressed_stream_tile_cycles(layer, tokens, MEMORIES["fast"], base=BASE)
    assert fast["bytes_read"] == size
    assert fast["stall_memory"] == fast["first_fill"]
    assert fast["cycles"] == (fast["ideal_cycles"] + CONFIG.mac_tile_fill_drain
                              + fast["stall_memory"])
    items = layer.blocks * layer.chunks + sum(image.words_per_block()) * CONFIG.outlier_lanes
    assert fast["decompress_cycles"] == items
    slow = compressed_stream_tile_cycles(layer, tokens, MEMORIES["slow"], base=BASE)
    assert slow["bytes_read"] == size and slow["stall_memory"] > slow["first_fill"]
    # The first block waits for its fetch, then its decompression: gate, C + W_0*Q items, the
    # two pipeline stages and the cycle loaded takes to rise, and the broadcast's addressing.
    assert fast["first_fill"] > DECOMPRESS_GAP + layer.chunks


def test_model_refuses_a_dense_layer_and_a_residual_too_wide(layer):
    from golden.hwmodel.mac_tile import MacLayer, make_compressed_layer
    layer, _ = layer
    dense = MacLayer(CONFIG, WEIGHT_BITS, layer.weights, layer.bias)
    with pytest.raises(ValueError, match="a dense MAC layer has no compressed form"):
        compressed_stream_tile_cycles(dense, 3, MEMORIES["fast"])
    narrow = CONFIG.replace(residual_bits=4)
    wide = make_compressed_layer(narrow, WEIGHT_BITS, indexes=[[0, 1]], centroids=range(-4, 4),
                                 outliers=[(0, 1, 100)])
    with pytest.raises(ValueError, match="outlier residuals"):
        compressed_stream_tile_cycles(wide, 1, MEMORIES["fast"])
