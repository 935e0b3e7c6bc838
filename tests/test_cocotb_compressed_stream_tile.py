"""The streaming memory-compression tile (hw/compressed_stream_tile.py, docs/offchip.md section 8)
on Verilator through cocotb, the way `gobo simulate --flavour compressed_w16a16` runs it
(sim.simulate.simulate_layer): the `tiny` W16A16 datapath (4 PEs x 4 lanes, 4 tokens of
activations on chip) streaming a real MiniLM slice larger than its two banks of row blocks from
the DDR4 preset, in token groups; every output element against the whole-layer
memory-compression model (golden.hwmodel.mac_tile) and every counter against the cycle model
(golden.hwmodel.compressed_stream_tile); the bench shown to fail on a corrupted output element
and on a counter off by one. (Whole 1536-wide MiniLM layers: `gobo simulate --preset
minilm_stream --flavour compressed_w16a16`, docs/offchip.md section 9.)"""

import numpy as np

from golden.config import COMPRESSED_FLAVOURS, GOBO_ONLY_FIELDS, mac_flavour
from golden.hwmodel.offchip import memory_preset
from golden.hwmodel.tile_jobs import calibrated_mac_layer, stream_tile_group_jobs
from golden.quant.quantizer import quantize
from hw.designs import Design
from sim.simulate import simulate_layer
from tests.test_cocotb_stream_tile import LAYER5, _fails

FLAVOUR = "compressed_w16a16"
CONFIG, WEIGHT_BITS = mac_flavour(COMPRESSED_FLAVOURS[FLAVOUR], base="tiny")
MEMORY = memory_preset("ddr4_3200_x64")
#: As `gobo simulate --preset tiny --memory ddr4_3200_x64 --flavour compressed_w16a16` tags it,
#: so that both tests share one build.
TAG = "w16a16_tiny"
DESIGN = Design("compressed_stream_tile", CONFIG, WEIGHT_BITS,
                name=f"compressed_stream_tile_{TAG}_bus{MEMORY.bus_bytes}",
                bus_bytes=MEMORY.bus_bytes)
ROWS, COLS, TOKENS = 38, 61, 6          # 10 row blocks (the last half padding), 2 token groups


def _slice(minilm):
    weights = minilm[LAYER5][:ROWS, :COLS]
    return weights, minilm[LAYER5.replace(".weight", ".bias")][:ROWS]


def test_simulate_compressed_stream_tile_on_a_real_slice(minilm):
    weights, bias = _slice(minilm)
    report = simulate_layer(CONFIG, weights, bias=bias, tokens=TOKENS, seed=2,
                            name="layer5 output 38x61", tag=TAG, memory=MEMORY,
                            weight_bits=WEIGHT_BITS, compressed=True)
    assert report["design"] == DESIGN.kind and DESIGN.name.endswith(f"_bus{MEMORY.bus_bytes}")
    assert report["error"] is None and report["mismatches"] == 0
    assert report["outputs_checked"] == TOKENS * 10 * CONFIG.pes   # padding rows included
    assert report["row_blocks"] == 10 > 2, "must not fit the two banks"
    groups = report["token_groups"]
    assert [g["tokens"] for g in groups] == [4, 2]
    assert all(g["counters_match_model"] and g["mismatches"] == 0 for g in groups)
    for key in ("cycles", "stall_memory", "bytes_read", "ideal_cycles"):
        assert report[key] == sum(g[key] for g in groups), key
    assert report["expected_counters"]["cycles"] == report["cycles"]
    # The weights are read once per group in their GOBO form.
    assert report["bytes_read"] == 2 * report["offchip_bytes"]
    assert report["ideal_cycles"] == TOKENS * 10 * 16
    assert 0 < report["utilization"] < 1 and report["stall_memory"] > 0
    assert report["outliers"] > 0 and report["outliers_processed"] is None
    assert 0 < report["rel_rmse_vs_fp32"] < 0.5
    # Its config: the fields the streaming memory-compression design uses.
    assert {"index_bits", "outlier_lanes", "residual_bits", "max_outlier_words"} <= \
        set(report["config"])
    assert not {"centroid_bits", "recon_multipliers"} & set(report["config"])
    assert set(GOBO_ONLY_FIELDS) - set(report["config"]) == {"centroid_bits", "recon_multipliers"}


def test_simulate_the_whole_layer_compressed_tile(minilm):
    """Without a memory, simulate_layer runs the whole-layer memory-compression tile
    (``compressed_tile``, as `gobo simulate --flavour compressed_w16a16` on a preset that holds
    the layer); on tests/test_cocotb_mac_tile.py's 4 x 4 W16A16 datapath and tag, so that the
    two share a build. Its config has the quantizer's fields, not the streamed outlier banks'."""
    from tests.test_cocotb_mac_tile import SMALL
    config, weight_bits = mac_flavour("w16a16", **SMALL)
    weights, bias = _slice(minilm)
    report = simulate_layer(config, weights, bias=bias, tokens=3, seed=2, name="whole layer",
                            tag="w16a16_p4_l4", weight_bits=weight_bits, compressed=True)
    assert report["design"] == "compressed_tile" and "memory" not in report
    assert report["error"] is None and report["mismatches"] == 0
    assert report["outputs_checked"] == 3 * 10 * config.pes
    assert report["cycles"] == report["expected_counters"]["cycles"] > report["ideal_cycles"]
    assert report["outliers"] > 0 and report["outliers_processed"] is None
    assert "index_bits" in report["config"] and "outlier_lanes" not in report["config"]


def test_compressed_stream_tile_bench_fails_on_a_corrupted_element_or_counter(minilm):
    """Jobs as the run above makes them (its run passes them), one output bit flipped in one,
    ``stall_memory`` off by one in the other: the bench fails both, naming each."""
    weights, bias = _slice(minilm)
    acts = np.random.default_rng(2).standard_normal((3, COLS))
    gobo = quantize(weights, index_bits=CONFIG.index_bits,
                    outlier_log_prob=CONFIG.outlier_log_prob)
    layer, x_int, _ = calibrated_mac_layer(CONFIG, WEIGHT_BITS, weights, acts, bias=bias,
                                           gobo=gobo)
    corrupt, counter = (stream_tile_group_jobs(layer, x_int, MEMORY, name=name)[0]
                        for name in ("corrupt", "counter"))
    corrupt["corrupt"] = (6, 2, 0)
    counter["expected_counters"]["stall_memory"] += 1
    _fails(DESIGN, [corrupt, counter], r"corrupt slot 6 PE 2: hardware -?\d+ != golden -?\d+",
           r"counter: counter stall_memory = \d+, cycle model \d+")
