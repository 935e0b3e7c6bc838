"""The streaming tile (hw/stream_tile.py) in the Amaranth simulator, a Python process playing the
off-chip memory from the same golden model (golden.hwmodel.offchip) the cycle model steps: every
output element against golden.hwmodel.tile, every counter against golden.hwmodel.stream_tile,
on slices of real all-MiniLM-L6-v2 matrices larger than the on-chip buffers (two row blocks),
under a slow, a fast and a bursty memory; the checkers shown to fail; no memory stall beyond
the first block's fill when bandwidth suffices."""

import gc
from fractions import Fraction

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.layer_image import act_beats, calibrated_image, layer_word, make_image
from golden.hwmodel.offchip import AXI_MAX_BURST, OffchipMemory, OffchipPort, offchip_layout
from golden.hwmodel.packing import (
    STREAM_ERRORS,
    LoadTarget,
    load_fields,
    pack,
    stream_counters_fields,
    stream_error_message,
    unpack,
)
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.hwmodel.tile import tile_outputs
from hw.stream_tile import StreamTile
from hw.testing import StreamMonitor, offchip_memory, run_tile

# The tiny datapath (4 PEs x 4 lanes); the row count only sizes the layer port's counts, the
# buffers hold two blocks of 4 rows whatever M is.
STREAM = preset("tiny").replace(max_rows=4096, max_outlier_words=32)
BUS = 8
BASE = 0xFC0    # the first block's head crosses a 4 KiB boundary: its burst is split there

MEMORIES = {
    # 1 byte every 2 cycles: the PEs wait for every block.
    "slow": OffchipMemory(bytes_per_cycle=Fraction(1, 2), latency=20, bus_bytes=BUS),
    # A beat a cycle: a block (about 30 beats) arrives well within one block's compute.
    "fast": OffchipMemory(bytes_per_cycle=8, latency=5, bus_bytes=BUS),
    # Refresh and seeded bank-conflict stalls at 3 bytes a cycle.
    "bursty": OffchipMemory(bytes_per_cycle=3, latency=12, bus_bytes=BUS, max_outstanding=2,
                            refresh_interval=97, refresh_cycles=11,
                            stall_probability=Fraction(1, 8), stall_max_cycles=6, seed=7),
}


def real_layer(minilm, name, rows, cols, tokens, seed=0, config=STREAM):
    """The image of a ``rows x cols`` slice of a real MiniLM matrix (with its bias), with seeded
    activations, on ``config``, and the integer activations."""
    weights = np.asarray(minilm[name][:rows, :cols], dtype=np.float32)
    bias = np.asarray(minilm[name.replace(".weight", ".bias")][:rows], dtype=np.float32)
    acts = np.random.default_rng(seed).standard_normal((tokens, cols))
    image, x_int, _ = calibrated_image(config, weights, acts, bias=bias)
    return image, x_int


def run_stream_tile(image, acts, memory, *, stall_prob=0.0, seed=0, base=BASE, data=None,
                    load=None):
    """One run of ``image`` on a StreamTile with ``memory`` playing the off-chip memory. Returns
    ``(Y, counters dict, layout)``; every internal stream is checked against the stream rules.
    ``data`` replaces the off-chip bytes (a corrupted image), ``load`` the load beats."""
    config = image.config
    tokens = acts.shape[0]
    layout = offchip_layout(image, memory.bus_bytes, base=base)
    dut = StreamTile(config=config, bus_bytes=memory.bus_bytes)
    port = OffchipPort(memory, layout.data if data is None else data, base=base)
    monitor = StreamMonitor()
    ((y, word),) = run_tile(dut, load=act_beats(config, acts) if load is None else load,
                            layer=layer_word(image, tokens),
                            tokens=tokens, blocks=image.blocks, inputs=[(dut.base, base)],
                            background=[offchip_memory(dut, port)], monitor=monitor,
                            rng=np.random.default_rng(seed), stall_prob=stall_prob)
    assert monitor.transfers["controller.bc"] == tokens * image.blocks * image.chunks
    return y, unpack(stream_counters_fields(config), word), layout


def check_outputs(want, got):
    """Every output element, bit for bit (padded rows included)."""
    bad = np.argwhere(got != want)
    assert not bad.size, (f"{len(bad)} outputs differ, first at (row, token) "
                          f"{tuple(int(i) for i in bad[0])}")


def check_counters(model, counters):
    """Every counter of the RTL equals the cycle model's."""
    diff = {k: (v, model[k]) for k, v in counters.items() if model[k] != v}
    assert not diff, f"counters (RTL, model) differ: {diff}"


@pytest.fixture(scope="module")
def layer(minilm):
    """Layer 5's FFN output (the heaviest tails): 38 rows (10 blocks, the last half padding)
    x 61 columns (16 chunks, the last partly padding), 3 tokens."""
    return real_layer(minilm, "encoder.layer.5.output.dense.weight", 38, 61, 3)


@pytest.mark.parametrize("memory", list(MEMORIES))
def test_stream_tile_matches_golden_and_cycle_models(layer, memory):
    image, acts = layer
    assert image.blocks > 2 and image.n_outliers, "the layer must not fit the two banks"
    y, counters, layout = run_stream_tile(image, acts, MEMORIES[memory])
    check_outputs(tile_outputs(image, acts), y)
    model = stream_tile_cycles_of_image(image, acts.shape[0], MEMORIES[memory], base=BASE)
    check_counters(model, counters)
    assert counters["bytes_read"] == layout.size
    assert counters["outliers"] == image.n_outliers * acts.shape[0]


def test_checkers_fail_on_a_corrupted_output_or_counter(layer):
    image, acts = layer
    memory = MEMORIES["bursty"]
    y, counters, _ = run_stream_tile(image, acts, memory)
    want = tile_outputs(image, acts)
    model = stream_tile_cycles_of_image(image, acts.shape[0], memory, base=BASE)
    check_checkers_fail(want, y, model, counters, (5, 1))


def check_checkers_fail(want, y, model, counters, spot,
                        names=("cycles", "busy", "stall_memory", "bytes_read", "error")):
    """The run passes both checkers, and each fails once output ``spot`` (row, token) is off
    by one bit or any counter of ``names`` (a list counter: each element) by one."""
    check_outputs(want, y)
    check_counters(model, counters)
    bad = y.copy()
    bad[spot] ^= 1
    with pytest.raises(AssertionError, match=rf"1 outputs differ, first at \(row, token\) "
                                             rf"\({spot[0]}, {spot[1]}\)"):
        check_outputs(want, bad)
    for name in names:
        value = counters[name]
        off = dict(counters, **{name: [v + 1 for v in value] if isinstance(value, list)
                                else value + 1})
        with pytest.raises(AssertionError, match=name):
            check_counters(model, off)


def test_a_corrupt_header_sets_the_error_and_ends_the_run(layer):
    """Block 1's header says one outlier word more than a bank holds (``offchip_layout``
    refuses such an image): the fetcher used to stop requesting and the tile hung with ``busy``
    high; now the run ends (every output slot given, ``busy`` falls: ``run_tile`` asserts both)
    with the ``header`` error bit and nothing else."""
    image, acts = layer
    memory = MEMORIES["fast"]
    layout = offchip_layout(image, BUS, base=BASE)
    data = bytearray(layout.data)
    at = layout.blocks[1]["header"] - BASE
    data[at] = image.config.max_outlier_words // 2 + 1       # W_b in the header's low bits
    _, counters, _ = run_stream_tile(image, acts, memory, data=bytes(data))
    assert counters["error"] == 1 << list(STREAM_ERRORS).index("header") == 0b001
    assert stream_error_message(counters["error"]).startswith("hardware error 0b1: header (")
    assert counters["bytes_read"] < layout.size      # the fetch stopped at the bad block


def test_a_wrong_target_load_beat_is_dropped_and_flagged(layer):
    """A load beat for a memory this tile does not have (an INDEX word) is taken and dropped,
    as before, but now sets ``load_target``; the outputs and every other counter are still the
    models'."""
    image, acts = layer
    config = image.config
    memory = MEMORIES["fast"]
    beats = act_beats(config, acts)
    stray = pack(load_fields(config), {"target": LoadTarget.INDEX, "addr": 0, "data": 0x5A})
    y, counters, _ = run_stream_tile(image, acts, memory, load=[beats[0], stray, *beats[1:]])
    check_outputs(tile_outputs(image, acts), y)
    model = stream_tile_cycles_of_image(image, acts.shape[0], memory, base=BASE)
    assert counters.pop("error") == 0b100
    check_counters(model, counters)
    assert stream_error_message(0b100) == ("hardware error 0b100: load_target (a load beat "
                                           "whose target is not ACTIVATION was dropped)")


def test_pes_wait_only_when_bandwidth_is_short(minilm):
    """Enough bandwidth: the broadcast waits only for the first block, then never (every other
    cycle beyond the ideal is the tile's fill and drain). Too little: it waits between
    blocks too. Both counted exactly by the RTL and the model."""
    image, acts = real_layer(minilm, "encoder.layer.0.intermediate.dense.weight", 24, 64, 4)
    tokens = acts.shape[0]
    fill_drain = STREAM.tile_fill_drain
    for name, waits in (("fast", False), ("slow", True)):
        memory = MEMORIES[name]
        y, counters, _ = run_stream_tile(image, acts, memory)
        check_outputs(tile_outputs(image, acts), y)
        model = stream_tile_cycles_of_image(image, tokens, memory, base=BASE)
        check_counters(model, counters)
        beyond_fill = counters["stall_memory"] - model["first_fill"]
        assert (beyond_fill > 0) == waits, (name, beyond_fill)
        if not waits:
            assert counters["stall_recon"] == counters["stall_outlier"] == 0
            assert counters["cycles"] == (model["ideal_cycles"] + fill_drain
                                          + counters["stall_memory"])


def test_outputs_stay_exact_under_output_backpressure(layer):
    """With o.ready random the counters are not predicted, but every output still is."""
    image, acts = layer
    y, counters, layout = run_stream_tile(image, acts, MEMORIES["fast"], stall_prob=0.7,
                                          seed=4)
    check_outputs(tile_outputs(image, acts), y)
    assert counters["bytes_read"] == layout.size


def random_memory(rng, seed):
    """A seeded memory: a bus of 4-16 bytes, 1/7 to 39 bytes a cycle, latency 1-29, 1-3
    outstanding requests, refresh (7 of 50 cycles) and random stalls (1-5 cycles, p = 1/10)."""
    bus = int(rng.choice([4, 8, 16]))
    return OffchipMemory(bytes_per_cycle=Fraction(int(rng.integers(1, 40)),
                                                  int(rng.integers(1, 8))),
                         latency=int(rng.integers(1, 30)), bus_bytes=bus,
                         max_outstanding=int(rng.integers(1, 4)), refresh_interval=50,
                         refresh_cycles=7, stall_probability=Fraction(1, 10),
                         stall_max_cycles=5, seed=seed)


#: The seeds of :func:`test_random_shapes_buses_and_memories` (tests/test_latency.py runs them too).
RANDOM_CASES = [(1, False), (4, False), (26, False), (2, True)]


def random_case(seed, wide):
    """``(image, acts, memory, base)`` of a seeded random layer (the next test's docstring)."""
    rng = np.random.default_rng(seed)
    pes, lanes = int(rng.choice([1, 3, 4])), 1 if wide else int(rng.choice([2, 4, 5]))
    config = STREAM.replace(pes=pes, lanes=lanes, max_dot_length=700 if wide else 300,
                            outlier_lanes=int(rng.choice([1, 2, 4])),
                            recon_multipliers=int(rng.choice([1, 2, 8])))
    rows = int(rng.integers(2 * pes + 1, (3 if wide else 9) * pes + 1))
    cols = int(rng.integers(300, 700) if wide else rng.integers(1, 120))
    tokens = 1 if wide else int(rng.integers(1, 5))
    spots = {(int(rng.integers(rows)), int(rng.integers(cols))) for _ in range(3 * pes)}
    image = make_image(config, indexes=rng.integers(0, 8, (rows, cols)),
                       centroids=rng.integers(-3000, 3000, 8), bias=rng.integers(-9999, 9999, rows),
                       outliers=[(m, n, int(rng.integers(-500, 500))) for m, n in spots],
                       out_shift=6)
    acts = rng.integers(-3000, 3000, (tokens, cols))
    memory = random_memory(rng, seed)
    base = 4096 - 3 * memory.bus_bytes
    return image, acts, memory, base


@pytest.mark.parametrize("seed, wide", RANDOM_CASES)
def test_random_shapes_buses_and_memories(seed, wide):
    """Seeded integer layers on other datapaths (1-4 PEs, 2-5 lanes, 1-4 outlier lanes, 1-8
    reconstruction multipliers; ``wide``: one lane and 300-700 columns, so a block's head is
    longer than a 256-beat burst), buses of 4-16 bytes, images just below a 4 KiB boundary and
    memories with 1-3 outstanding requests, refresh and random stalls: outputs and counters."""
    image, acts, memory, base = random_case(seed, wide)
    tokens = acts.shape[0]
    y, counters, layout = run_stream_tile(image, acts, memory, base=base)
    assert (layout.head_beats(image.chunks) > AXI_MAX_BURST) == wide
    check_outputs(tile_outputs(image, acts), y)
    check_counters(stream_tile_cycles_of_image(image, tokens, memory, base=base), counters)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_stream_tile_parameters_are_checked():
    with pytest.raises(ValueError, match="bus_bytes must be a power of two, not 12"):
        StreamTile(config=STREAM, bus_bytes=12)
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        StreamTile(config=3, bus_bytes=8)
    with pytest.raises(ValueError, match="memories must be one of"):
        StreamTile(config=STREAM, bus_bytes=8, memories="sram")
    gc.collect()    # the half-built components warn when collected: here, under the filter


def test_stream_tile_verilog_is_lint_clean(tmp_path):
    """The emitted Verilog passes ``verilator --lint-only -Wall`` with the project waivers
    (the cocotb bench is not written yet: docs/offchip.md section 7)."""
    from hw.verilog import emit, lint
    path = tmp_path / "stream_tile_tiny.v"
    path.write_text(emit(StreamTile(config=STREAM, bus_bytes=BUS), "stream_tile_tiny"))
    lint(path, "stream_tile_tiny")

