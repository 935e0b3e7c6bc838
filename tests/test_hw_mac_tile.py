"""MacTile and CompressedMacTile in the Amaranth simulator against golden.hwmodel.mac_tile: every
output element bit for bit and every counter, on seeded random layers of small shapes (P and L
not powers of two, M not a multiple of P, N not a multiple of L), with load gaps and output
backpressure; in memory-compression mode with outliers crowded into one row, one beat and the
padding."""

import gc

import numpy as np
import pytest

from golden.config import GoboConfig, mac_flavour
from golden.hwmodel.mac_tile import (
    MacLayer,
    compressed_streams,
    mac_layer_word,
    mac_load_beats,
    mac_tile_cycles,
    mac_tile_outputs,
    make_compressed_layer,
)
from golden.hwmodel.packing import counters_fields, unpack
from hw.compressed_mac_tile import CompressedMacTile
from hw.mac_tile import MacTile
from hw.testing import StreamMonitor, run_tile
from tests.test_hw_tile import check_outputs, corner_biases

SMALL = dict(pes=4, lanes=4, max_rows=64, max_dot_length=64, max_tokens=4)
CONFIGS = {
    "w16a16_p4_l4": mac_flavour("w16a16", **SMALL),
    "w8a8_p3_l3": mac_flavour("w8a8", **{**SMALL, "pes": 3, "lanes": 3}),
    "w4a4_p2_l1": mac_flavour("w4a4", **{**SMALL, "pes": 2, "lanes": 1, "max_dot_length": 16}),
}


def _out_shift(layer, acts, rng):
    """An ``out_shift`` that leaves most outputs unsaturated (some saturate)."""
    acc = ((layer.padded_weights() @ acts.T << layer.shift_dot)[:layer.rows]
           + (layer.bias[:, None] << layer.shift_bias))
    span = int(np.abs(acc).max() or 1).bit_length()
    return max(0, span - layer.config.act_bits + int(rng.integers(-1, 3)))


def random_dense(config, weight_bits, rng, *, rows, cols, tokens):
    w_half, a_half = 1 << (weight_bits - 1), 1 << (config.act_bits - 1)
    weights = rng.integers(-w_half, w_half, size=(rows, cols))
    weights[0, 0] = -w_half
    acts = rng.integers(-a_half, a_half, size=(tokens, cols))
    bias = rng.integers(-(1 << 12), 1 << 12, size=rows)
    shifts = dict(shift_dot=int(rng.integers(0, 4)), shift_bias=int(rng.integers(0, 4)))
    layer = MacLayer(config, weight_bits, weights, bias, **shifts)
    return MacLayer(config, weight_bits, weights, bias, **shifts,
                    out_shift=_out_shift(layer, acts, rng)), acts


def random_compressed(config, weight_bits, rng, *, rows, cols, tokens):
    w_half, a_half = 1 << (weight_bits - 1), 1 << (config.act_bits - 1)
    indexes = rng.integers(0, config.n_centroids, size=(rows, cols))
    centroids = rng.integers(-w_half, w_half, size=config.n_centroids)
    positions = {(int(f) // cols, int(f) % cols)
                 for f in np.flatnonzero(rng.random(rows * cols) < 0.05)}
    positions |= {(1, n) for n in range(cols)}                  # a row of only outliers
    positions |= {(rows - 1, n) for n in range(min(config.lanes, cols))}   # a whole beat
    outliers = [(m, n, int(rng.integers(-w_half, w_half))) for m, n in sorted(positions)]
    acts = rng.integers(-a_half, a_half, size=(tokens, cols))
    bias = rng.integers(-(1 << 12), 1 << 12, size=rows)
    parts = dict(indexes=indexes, centroids=centroids, outliers=outliers, bias=bias,
                 shift_bias=int(rng.integers(0, 4)))
    layer = make_compressed_layer(config, weight_bits, **parts)
    return make_compressed_layer(config, weight_bits, **parts,
                                 out_shift=_out_shift(layer, acts, rng)), acts


def run(layer, acts, *, compressed=False, seed=0, gap_prob=0.0, stall_prob=0.0, runs=1):
    config, tokens = layer.config, acts.shape[0]
    cls = CompressedMacTile if compressed else MacTile
    streams = None
    if compressed:
        packed, records = compressed_streams(layer)
        streams = {"packed": packed, "outliers": records}
    monitor = StreamMonitor()   # the stream rules on every internal stream, all along
    results = run_tile(cls(config=config, weight_bits=layer.weight_bits),
                       load=mac_load_beats(layer, acts, weights=not compressed),
                       layer=mac_layer_word(layer, tokens), tokens=tokens, blocks=layer.blocks,
                       rng=np.random.default_rng(seed), gap_prob=gap_prob,
                       stall_prob=stall_prob, runs=runs, streams=streams, monitor=monitor)
    idle = [name for name, count in monitor.transfers.items() if not count]
    assert not idle, f"internal streams without a transfer: {idle}"
    assert any(name.endswith("controller.bc") for name in monitor.transfers)
    return [(y, unpack(counters_fields(config), word)) for y, word in results]


def check_counters(layer, tokens, counters):
    want = mac_tile_cycles(layer, tokens)
    got = {k: counters[k] for k in want if k != "busy"}
    got["busy"] = list(counters["busy"])
    assert got == want, f"counters {got}, model {want}"


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "compressed"])
def test_mac_tile_matches_golden_and_cycle_model(name, compressed):
    config, weight_bits = CONFIGS[name]
    rng = np.random.default_rng(len(name) * 7 + compressed)
    rows = config.pes * 3 + 1
    cols = min(config.max_dot_length, config.lanes * 5 + config.lanes - 1 if config.lanes > 1
               else 11)
    make = random_compressed if compressed else random_dense
    layer, acts = make(config, weight_bits, rng, rows=rows, cols=cols, tokens=3)
    # Two runs: the counters restart, the outputs repeat.
    for y, counters in run(layer, acts, compressed=compressed, seed=1, gap_prob=0.2, runs=2):
        check_outputs(mac_tile_outputs(layer, acts), y)
        check_counters(layer, 3, counters)


@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "compressed"])
def test_mac_tile_exact_under_backpressure_and_one_chunk_rows(compressed):
    config, weight_bits = CONFIGS["w16a16_p4_l4"]
    rng = np.random.default_rng(40 + compressed)
    make = random_compressed if compressed else random_dense
    for cols, stall in ((3, 0.0), (4 * 9 + 2, 0.9)):     # C = 1 (every beat last); C = 10
        layer, acts = make(config, weight_bits, rng, rows=7, cols=cols, tokens=4)
        (y, counters), = run(layer, acts, compressed=compressed, seed=3, gap_prob=0.3,
                             stall_prob=stall)
        check_outputs(mac_tile_outputs(layer, acts), y)
        if stall:   # the output holds the broadcast back; nothing waits for outliers
            ideal = mac_tile_cycles(layer, 4)
            assert counters["cycles"] > ideal["cycles"] and counters["stall_outlier"] == 0
            assert list(counters["busy"]) == ideal["busy"]
        else:
            check_counters(layer, 4, counters)


def test_compressed_tile_uses_the_decompressed_weights():
    """The checker fails when the golden model ignores the outliers: the RTL really applies
    them (and the dense golden model is not the compressed one by accident)."""
    config, weight_bits = CONFIGS["w8a8_p3_l3"]
    layer, acts = random_compressed(config, weight_bits, np.random.default_rng(8), rows=5,
                                    cols=10, tokens=2)
    (y, _), = run(layer, acts, compressed=True, seed=4)
    check_outputs(mac_tile_outputs(layer, acts), y)
    no_outliers = make_compressed_layer(
        config, weight_bits, indexes=layer.compressed["indexes"],
        centroids=layer.compressed["centroids"], bias=layer.bias, out_shift=layer.out_shift)
    with pytest.raises(AssertionError, match="outputs differ"):
        check_outputs(mac_tile_outputs(no_outliers, acts), y)


def test_mac_tile_golden_model_against_python_integers():
    """mac_tile_outputs against a plain-Python evaluation of the same arithmetic."""
    config, weight_bits = CONFIGS["w8a8_p3_l3"]
    layer, acts = random_dense(config, weight_bits, np.random.default_rng(3), rows=4, cols=7,
                               tokens=2)
    y = mac_tile_outputs(layer, acts)
    hi = (1 << (config.act_bits - 1)) - 1
    for m in range(layer.rows):
        for t in range(2):
            acc = (sum(int(a) * int(b) for a, b in zip(layer.weights[m], acts[t]))
                   << layer.shift_dot) + (int(layer.bias[m]) << layer.shift_bias)
            if layer.out_shift:
                acc = (acc + (1 << (layer.out_shift - 1))) >> layer.out_shift
            assert y[m, t] == min(hi, max(-hi - 1, acc))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "compressed"])
def test_fill_and_drain_is_the_declared_one(compressed):
    """A run of one slot takes its ``C`` beats plus the tile's declared ``fill_drain`` (the
    configuration's), measured by the ``cycles`` counter."""
    config, weight_bits = CONFIGS["w8a8_p3_l3"]
    make = random_compressed if compressed else random_dense
    layer, acts = make(config, weight_bits, np.random.default_rng(50 + compressed),
                       rows=config.pes, cols=3 * 4 + 2, tokens=1)
    (y, counters), = run(layer, acts, compressed=compressed)
    check_outputs(mac_tile_outputs(layer, acts), y)
    cls = CompressedMacTile if compressed else MacTile
    tile = cls(config=config, weight_bits=weight_bits)
    assert counters["cycles"] - layer.chunks == tile.fill_drain
    del tile
    gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mac_tile_rejects_bad_parameters():
    config, _ = CONFIGS["w16a16_p4_l4"]
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        MacTile(config=3, weight_bits=8)
    with pytest.raises(ValueError, match="weight_bits must be an integer between 2 and 32"):
        MacTile(config=config, weight_bits=1)
    with pytest.raises(ValueError, match="raise centroid_bits"):
        MacTile(config=GoboConfig(centroid_bits=2, act_bits=2, bias_bits=2, max_align_shift=0,
                                  max_dot_length=2), weight_bits=32)
    with pytest.raises(ValueError, match="memories must be one of 'internal', 'ports', not 'sram'"):
        MacTile(config=config, weight_bits=8, memories="sram")
    gc.collect()


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("compressed", [False, True], ids=["dense", "compressed"])
@pytest.mark.parametrize("out_shift", [0, 2])
def test_mac_tile_merge_rounding_ties_and_saturation(name, compressed, out_shift):
    # As the GOBO tile's corner test: token 0 has zero activations, so Y is the rounded,
    # clamped bias (exact halves, both saturation ends); token 1 adds random dot products.
    config, weight_bits = CONFIGS[name]
    bias, expected = corner_biases(config.act_bits, out_shift)
    rows, cols = len(bias), 5
    rng = np.random.default_rng(70 + out_shift)
    w_half = 1 << (weight_bits - 1)
    acts = np.zeros((2, cols), dtype=np.int64)
    acts[1] = rng.integers(-(1 << (config.act_bits - 1)), 1 << (config.act_bits - 1), size=cols)
    if compressed:
        layer = make_compressed_layer(
            config, weight_bits, indexes=rng.integers(0, config.n_centroids, size=(rows, cols)),
            centroids=rng.integers(-w_half, w_half, size=config.n_centroids),
            outliers=[(0, 1, -w_half), (rows - 1, 4, w_half - 1)], bias=bias,
            out_shift=out_shift)
    else:
        weights = rng.integers(-w_half, w_half, size=(rows, cols))
        layer = MacLayer(config, weight_bits, weights, bias, out_shift=out_shift)
    (y, _), = run(layer, acts, compressed=compressed, seed=8, gap_prob=0.2, stall_prob=0.3)
    assert list(y[:rows, 0]) == expected
    check_outputs(mac_tile_outputs(layer, acts), y)
