"""The streaming memory-compression tile (hw/compressed_stream_tile.py) in the Amaranth simulator,
a Python process playing the off-chip memory from the same golden model the cycle model
(golden.hwmodel.compressed_stream_tile) steps, as the GOBO and MAC streaming benches
(tests/test_hw_stream_tile.py, tests/test_hw_mac_stream_tile.py): every output element against
the whole-layer memory-compression tile's golden model (golden.hwmodel.mac_tile), every counter
against the cycle model, on slices of real all-MiniLM-L6-v2 matrices larger than the on-chip
buffers, under a slow, a fast and a bursty memory; the checkers shown to fail."""

import gc

import numpy as np
import pytest

from golden.config import mac_flavour
from golden.hwmodel.compressed_stream_tile import DECOMPRESS_GAP, compressed_stream_tile_cycles
from golden.hwmodel.layer_image import output_exponent, quantize_activations
from golden.hwmodel.mac_tile import (
    compressed_image,
    compressed_layer_from_float,
    mac_tile_outputs,
)
from golden.hwmodel.offchip import OffchipMemory, offchip_layout
from golden.hwmodel.packing import LoadTarget
from hw.compressed_stream_tile import CompressedStreamTile
from tests.test_hw_mac_stream_tile import run_mac_stream_tile
from tests.test_hw_stream_tile import (
    BASE,
    MEMORIES,
    STREAM,
    check_checkers_fail,
    check_counters,
    check_outputs,
)

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
    # centroid + residual is the decompressed weight at every outlier; the rest is the centroid.
    rebuilt = image.centroids[image.indexes]
    rebuilt[image.outlier_rows, image.outlier_cols] += image.outlier_residuals
    np.testing.assert_array_equal(rebuilt, layer.weights)
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
    assert fast["first_fill"] > DECOMPRESS_GAP + layer.chunks + 2


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
    # A job of the memory-compression tile needs the width of its decompressed weights.
    from golden.hwmodel.tile_jobs import layer_job
    with pytest.raises(ValueError, match="compressed=True needs the weight_bits"):
        layer_job(CONFIG, np.ones((4, 4)), np.ones((1, 4)), compressed=True)


def compressed_layout(layer, bus_bytes, base=0):
    """The off-chip layout of ``layer``'s GOBO form (the GOBO tile's layout)."""
    return offchip_layout(compressed_image(layer), bus_bytes, base=base)


def run_compressed_stream_tile(layer, acts, memory, **options):
    """One run of ``layer`` on a CompressedStreamTile (the streaming MAC bench's run, with this
    tile and layout): ``(Y, counters dict, layout)``."""
    return run_mac_stream_tile(layer, acts, memory, tile=CompressedStreamTile,
                               layout_of=compressed_layout, **options)


def test_a_corrupt_header_or_stray_load_beat_sets_the_error(layer):
    """The GOBO streaming tile's error bits (tests/test_hw_stream_tile.py) through this tile's
    decompression stage: block 1's header one word above a bank ends the run (every output
    slot given, ``busy`` falls: ``run_tile`` asserts both) with ``header`` (0b001); a stray
    INDEX load beat is dropped with ``load_target`` (0b100), every output and other counter
    still the models'."""
    layer, acts = layer
    memory = MEMORIES["fast"]

    def bad_header(layout):
        data = bytearray(layout.data)
        data[layout.blocks[1]["header"] - BASE] = CONFIG.max_outlier_words // 2 + 1
        return bytes(data)

    _, counters, _ = run_compressed_stream_tile(layer, acts, memory, corrupt=bad_header)
    assert counters["error"] == 0b001
    y, counters, _ = run_compressed_stream_tile(
        layer, acts, memory, stray_load={"target": LoadTarget.INDEX, "addr": 1, "data": 3})
    check_outputs(mac_tile_outputs(layer, acts), y)
    assert counters.pop("error") == 0b100
    check_counters(compressed_stream_tile_cycles(layer, acts.shape[0], memory, base=BASE),
                   counters)


@pytest.mark.parametrize("memory", list(MEMORIES))
def test_compressed_stream_tile_matches_golden_and_cycle_models(layer, memory):
    layer, acts = layer
    y, counters, layout = run_compressed_stream_tile(layer, acts, MEMORIES[memory])
    check_outputs(mac_tile_outputs(layer, acts), y)
    model = compressed_stream_tile_cycles(layer, acts.shape[0], MEMORIES[memory], base=BASE)
    check_counters(model, counters)
    assert counters["bytes_read"] == layout.size


def test_checkers_fail_on_a_corrupted_output_or_counter(layer):
    layer, acts = layer
    memory = MEMORIES["bursty"]
    y, counters, _ = run_compressed_stream_tile(layer, acts, memory)
    want = mac_tile_outputs(layer, acts)
    model = compressed_stream_tile_cycles(layer, acts.shape[0], memory, base=BASE)
    check_checkers_fail(want, y, model, counters, (6, 2))


def test_outputs_stay_exact_under_output_backpressure(layer):
    """With o.ready random the counters are not predicted, but every output still is."""
    layer, acts = layer
    y, counters, layout = run_compressed_stream_tile(layer, acts, MEMORIES["fast"],
                                                     stall_prob=0.7, seed=4)
    check_outputs(mac_tile_outputs(layer, acts), y)
    assert counters["bytes_read"] == layout.size


@pytest.mark.parametrize("seed", [3, 8])
def test_random_outlier_heavy_layers_buses_and_memories(seed):
    """Seeded integer layers with ~5 % outliers, a row of only outliers and a whole beat of
    outliers (several outlier words a block, records of one weight word back to back) on other
    datapaths (1-4 PEs, 2-5 lanes, 1-4 outlier lanes, W4 or W8), buses of 4-16 bytes, images
    just below a 4 KiB boundary, memories with 1-3 outstanding requests, refresh and random
    stalls: every output and counter."""
    from tests.test_hw_mac_tile import random_compressed
    from tests.test_hw_stream_tile import random_memory
    rng = np.random.default_rng(seed)
    pes, lanes = int(rng.choice([1, 3, 4])), int(rng.choice([2, 3, 5]))
    config, weight_bits = mac_flavour(str(rng.choice(["w8a8", "w4a4"])), base="tiny",
                                      max_rows=STREAM.max_rows, pes=pes, lanes=lanes,
                                      max_dot_length=120, max_outlier_words=256,
                                      outlier_lanes=int(rng.choice([1, 2, 4])))
    rows = int(rng.integers(2 * pes + 2, 7 * pes + 1))
    layer, acts = random_compressed(config, weight_bits, rng, rows=rows,
                                    cols=int(rng.integers(8, 40)),
                                    tokens=int(rng.integers(1, 5)))
    assert max(compressed_image(layer).words_per_block()) > 1
    memory = random_memory(rng, seed)
    base = 4096 - 3 * memory.bus_bytes
    y, counters, layout = run_compressed_stream_tile(layer, acts, memory, base=base)
    check_outputs(mac_tile_outputs(layer, acts), y)
    check_counters(compressed_stream_tile_cycles(layer, acts.shape[0], memory, base=base),
                   counters)
    assert counters["bytes_read"] == layout.size


def test_blocks_follow_each_other_through_the_pipeline():
    """No drain between blocks (docs/offchip.md section 7): block ``d + 1``'s first index word
    issues two cycles after block ``d``'s last item (the gate cycle between them), while that
    item is still in the pipeline. A seeded outlier-heavy layer (8 blocks of 6 index words and
    1-13 outlier words of 2 records) at 1 token from a memory of a beat a cycle, so that the
    decompressor, not the memory, sets the pace: every output and counter equal to the model,
    whose 166 cycles are 2 fewer than the walker that drained its pipeline took (168)."""
    from tests.test_hw_mac_tile import random_compressed
    config, weight_bits = mac_flavour("w8a8", base="tiny", max_rows=STREAM.max_rows, pes=2,
                                      lanes=4, max_dot_length=120, max_outlier_words=256,
                                      outlier_lanes=2)
    layer, acts = random_compressed(config, weight_bits, np.random.default_rng(5), rows=16,
                                    cols=24, tokens=1)
    assert compressed_image(layer).words_per_block() == [13, 1, 2, 1, 2, 2, 1, 5]
    memory = OffchipMemory(bytes_per_cycle=8, latency=2, bus_bytes=8, max_outstanding=4)
    y, counters, _ = run_compressed_stream_tile(layer, acts, memory)
    check_outputs(mac_tile_outputs(layer, acts), y)
    model = compressed_stream_tile_cycles(layer, 1, memory, base=BASE)
    check_counters(model, counters)
    assert model["cycles"] == 166 and model["stall_memory"] == 114


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_compressed_stream_tile_parameters_are_checked():
    with pytest.raises(ValueError, match="bus_bytes must be a power of two, not 12"):
        CompressedStreamTile(config=CONFIG, weight_bits=WEIGHT_BITS, bus_bytes=12)
    with pytest.raises(ValueError, match="weight_bits"):
        CompressedStreamTile(config=CONFIG, weight_bits=40, bus_bytes=8)
    with pytest.raises(ValueError, match="memories must be one of"):
        CompressedStreamTile(config=CONFIG, weight_bits=WEIGHT_BITS, bus_bytes=8,
                             memories="sram")
    gc.collect()


def test_compressed_stream_tile_verilog_is_lint_clean(tmp_path):
    """The emitted Verilog passes ``verilator --lint-only -Wall`` with the project waivers."""
    from hw.verilog import emit, lint
    path = tmp_path / "compressed_stream_tile_tiny.v"
    path.write_text(emit(CompressedStreamTile(config=CONFIG, weight_bits=WEIGHT_BITS,
                                              bus_bytes=8), "compressed_stream_tile_tiny"))
    lint(path, "compressed_stream_tile_tiny")
