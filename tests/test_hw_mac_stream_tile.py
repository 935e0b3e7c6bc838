"""The streaming MAC tile (hw/mac_stream_tile.py) in the Amaranth simulator, a Python process
playing the off-chip memory from the same golden model (golden.hwmodel.offchip) the cycle model
steps, exactly as the GOBO streaming tile's bench (tests/test_hw_stream_tile.py): every output
element against golden.hwmodel.mac_tile, every counter against golden.hwmodel.mac_stream_tile,
on a slice of a real all-MiniLM-L6-v2 matrix larger than the on-chip buffers (two row blocks)
at W16A16, W8A8 and W4A4, under a slow, a fast and a bursty memory; the checkers shown to fail;
no memory stall beyond the first block's fill when bandwidth suffices."""

import gc

import numpy as np
import pytest

from golden.config import MAC_FLAVOURS, mac_flavour
from golden.hwmodel.layer_image import act_beats, output_exponent, quantize_activations
from golden.hwmodel.mac_stream_tile import mac_stream_tile_cycles
from golden.hwmodel.mac_tile import MacLayer, mac_layer_from_float, mac_layer_word, mac_tile_outputs
from golden.hwmodel.offchip import OffchipPort, mac_offchip_layout
from golden.hwmodel.packing import (
    LoadTarget,
    mac_load_fields,
    pack,
    stream_counters_fields,
    unpack,
)
from hw.mac_stream_tile import MacStreamTile
from hw.testing import StreamMonitor, offchip_memory, run_tile
from tests.test_hw_stream_tile import (
    BASE,
    MEMORIES,
    STREAM,
    check_checkers_fail,
    check_counters,
    check_outputs,
    random_memory,
)

# The GOBO streaming bench's tiny datapath (4 PEs x 4 lanes, buffers of two blocks) at each
# flavour's activation width.
CONFIGS = {name: mac_flavour(name, base="tiny", max_rows=STREAM.max_rows)
           for name in MAC_FLAVOURS}


def real_mac_layer(minilm, flavour, name, rows, cols, tokens, seed=0, config=None):
    """A ``rows x cols`` slice of a real MiniLM matrix (with its bias) quantized to the
    flavour's weights on ``config`` (default the flavour's tiny datapath, :data:`CONFIGS`), and
    seeded integer activations."""
    config, weight_bits = CONFIGS[flavour] if config is None else (config,
                                                                     MAC_FLAVOURS[flavour][0])
    w = np.asarray(minilm[name][:rows, :cols], dtype=np.float64)
    bias = np.asarray(minilm[name.replace(".weight", ".bias")][:rows], dtype=np.float64)
    x = np.random.default_rng(seed).standard_normal((tokens, cols))
    x_int, e_x = quantize_activations(config, x)
    layer = mac_layer_from_float(config, weight_bits, w, bias=bias, act_exponent=e_x,
                                 out_exponent=output_exponent(config, x @ w.T + bias))
    return layer, x_int


def run_mac_stream_tile(layer, acts, memory, *, stall_prob=0.0, seed=0, base=BASE,
                        tile=MacStreamTile, layout_of=mac_offchip_layout, corrupt=None,
                        stray_load=None):
    """One run of ``layer`` on a ``tile`` (a MacStreamTile, or a subclass reading another
    layout: ``layout_of(layer, bus_bytes, base=...)``) with ``memory`` playing the off-chip
    memory. Returns ``(Y, counters dict, layout)``; every internal stream obeys the stream
    rules. ``corrupt(layout)`` returns other off-chip bytes; ``stray_load`` is a load beat's
    ``{target, addr, data}`` put after the first activation beat."""
    config, tokens = layer.config, acts.shape[0]
    layout = layout_of(layer, memory.bus_bytes, base=base)
    dut = tile(config=config, weight_bits=layer.weight_bits, bus_bytes=memory.bus_bytes)
    port = OffchipPort(memory, layout.data if corrupt is None else corrupt(layout), base=base)
    monitor = StreamMonitor()
    fields = mac_load_fields(config, layer.weight_bits)
    load = act_beats(config, acts, fields)
    if stray_load is not None:
        load = [load[0], pack(fields, stray_load), *load[1:]]
    ((y, word),) = run_tile(dut, load=load, layer=mac_layer_word(layer, tokens), tokens=tokens,
                            blocks=layer.blocks, inputs=[(dut.base, base)],
                            background=[offchip_memory(dut, port)], monitor=monitor,
                            rng=np.random.default_rng(seed), stall_prob=stall_prob)
    assert monitor.transfers["controller.bc"] == tokens * layer.blocks * layer.chunks
    return y, unpack(stream_counters_fields(config), word), layout


@pytest.fixture(scope="module")
def layers(minilm):
    """Layer 5's FFN output: 38 rows (10 blocks, the last half padding) x 61 columns (16
    chunks, the last partly padding), 3 tokens, per flavour."""
    return {flavour: real_mac_layer(minilm, flavour, "encoder.layer.5.output.dense.weight",
                                    38, 61, 3) for flavour in MAC_FLAVOURS}


@pytest.mark.parametrize("memory", list(MEMORIES))
@pytest.mark.parametrize("flavour", list(MAC_FLAVOURS))
def test_mac_stream_tile_matches_golden_and_cycle_models(layers, flavour, memory):
    layer, acts = layers[flavour]
    assert layer.blocks > 2, "the layer must not fit the two banks"
    y, counters, layout = run_mac_stream_tile(layer, acts, MEMORIES[memory])
    check_outputs(mac_tile_outputs(layer, acts), y)
    model = mac_stream_tile_cycles(layer, acts.shape[0], MEMORIES[memory], base=BASE)
    check_counters(model, counters)
    assert counters["bytes_read"] == layout.size
    assert counters["stall_outlier"] == counters["stall_recon"] == counters["outliers"] == 0


def test_a_stray_load_beat_is_dropped_and_flagged(layers):
    """A load beat for the weight memory this tile does not have on chip (``WEIGHT``) is taken
    and dropped with ``load_target`` (0b100); every output and other counter is the models'."""
    layer, acts = layers["w8a8"]
    memory = MEMORIES["fast"]
    y, counters, _ = run_mac_stream_tile(
        layer, acts, memory, stray_load={"target": LoadTarget.WEIGHT, "addr": 0, "data": 7})
    check_outputs(mac_tile_outputs(layer, acts), y)
    assert counters.pop("error") == 0b100
    check_counters(mac_stream_tile_cycles(layer, acts.shape[0], memory, base=BASE), counters)


def test_checkers_fail_on_a_corrupted_output_or_counter(layers):
    layer, acts = layers["w8a8"]
    memory = MEMORIES["bursty"]
    y, counters, _ = run_mac_stream_tile(layer, acts, memory)
    want = mac_tile_outputs(layer, acts)
    model = mac_stream_tile_cycles(layer, acts.shape[0], memory, base=BASE)
    check_checkers_fail(want, y, model, counters, (7, 2))


def test_pes_wait_only_when_bandwidth_is_short(minilm):
    """Enough bandwidth: the broadcast waits only for the first block; every other cycle beyond
    the ideal is the MAC tile's fill and drain. Too little: it waits between blocks too. At 4
    tokens a block computes in 64 cycles: W4A4's block (136 bytes on the 8-byte bus) arrives
    in time from the fast memory, W16A16's (520 bytes, 65 beats at one a cycle) does not, where
    the GOBO tile's (about 30 beats) did (tests/test_hw_stream_tile.py)."""
    for flavour, name, waits in (("w4a4", "fast", False), ("w16a16", "fast", True),
                                 ("w4a4", "slow", True)):
        layer, acts = real_mac_layer(minilm, flavour,
                                     "encoder.layer.0.intermediate.dense.weight", 24, 64, 4)
        memory = MEMORIES[name]
        y, counters, _ = run_mac_stream_tile(layer, acts, memory)
        check_outputs(mac_tile_outputs(layer, acts), y)
        model = mac_stream_tile_cycles(layer, acts.shape[0], memory, base=BASE)
        check_counters(model, counters)
        beyond_fill = counters["stall_memory"] - model["first_fill"]
        assert (beyond_fill > 0) == waits, (flavour, name, beyond_fill)
        if not waits:
            assert counters["cycles"] == (model["ideal_cycles"] + layer.config.mac_tile_fill_drain
                                          + counters["stall_memory"])


def test_outputs_stay_exact_under_output_backpressure(layers):
    """With o.ready random the counters are not predicted, but every output still is."""
    layer, acts = layers["w4a4"]
    y, counters, layout = run_mac_stream_tile(layer, acts, MEMORIES["fast"], stall_prob=0.7,
                                              seed=4)
    check_outputs(mac_tile_outputs(layer, acts), y)
    assert counters["bytes_read"] == layout.size


#: The seeds of :func:`test_random_shapes_buses_and_memories` (tests/test_latency.py runs them too).
RANDOM_CASES = [(6, False), (10, False), (11, True)]


def random_case(seed, wide):
    """``(layer, acts, memory, base)`` of a seeded random layer (the next test's docstring)."""
    rng = np.random.default_rng(seed)
    flavour = "w16a16" if wide else str(rng.choice(list(MAC_FLAVOURS)))
    pes, lanes = int(rng.choice([1, 3, 4])), 1 if wide else int(rng.choice([2, 4, 5]))
    config, weight_bits = mac_flavour(flavour, base="tiny", max_rows=STREAM.max_rows, pes=pes,
                                      lanes=lanes, max_dot_length=700 if wide else 300)
    rows = int(rng.integers(2 * pes + 1, (3 if wide else 9) * pes + 1))
    cols = int(rng.integers(300, 700) if wide else rng.integers(1, 120))
    tokens = 1 if wide else int(rng.integers(1, 5))
    w_half, a_half = 1 << (weight_bits - 1), 1 << (config.act_bits - 1)
    layer = MacLayer(config, weight_bits, rng.integers(-w_half, w_half, (rows, cols)),
                     rng.integers(-9999, 9999, rows), shift_bias=2, out_shift=weight_bits + 6)
    acts = rng.integers(-a_half, a_half, (tokens, cols))
    memory = random_memory(rng, seed)
    base = 4096 - 3 * memory.bus_bytes
    return layer, acts, memory, base


@pytest.mark.parametrize("seed, wide", RANDOM_CASES)
def test_random_shapes_buses_and_memories(seed, wide):
    """Seeded integer layers on other datapaths (1-4 PEs, 2-5 lanes; ``wide``: one lane and
    300-700 columns of 16-bit weights, so a block's head is longer than a 256-beat burst),
    buses of 4-16 bytes, images just below a 4 KiB boundary, memories with 1-3 outstanding
    requests, refresh and random stalls: outputs and counters."""
    layer, acts, memory, base = random_case(seed, wide)
    tokens = acts.shape[0]
    y, counters, layout = run_mac_stream_tile(layer, acts, memory, base=base)
    assert (layout.head_beats(layer.chunks) > 256) == wide
    check_outputs(mac_tile_outputs(layer, acts), y)
    check_counters(mac_stream_tile_cycles(layer, tokens, memory, base=base), counters)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mac_stream_tile_parameters_are_checked():
    config, weight_bits = CONFIGS["w8a8"]
    with pytest.raises(ValueError, match="bus_bytes must be a power of two, not 12"):
        MacStreamTile(config=config, weight_bits=weight_bits, bus_bytes=12)
    with pytest.raises(ValueError, match="weight_bits"):
        MacStreamTile(config=config, weight_bits=40, bus_bytes=8)
    with pytest.raises(ValueError, match="memories must be one of"):
        MacStreamTile(config=config, weight_bits=weight_bits, bus_bytes=8, memories="sram")
    with pytest.raises(ValueError, match="not aligned"):
        mac_offchip_layout(real_layer_stub(config, weight_bits), 8, base=4)
    gc.collect()


def real_layer_stub(config, weight_bits):
    """A one-row layer (for the parameter checks)."""
    return MacLayer(config, weight_bits, np.ones((1, 3), dtype=np.int64), np.zeros(1))


def test_mac_stream_tile_verilog_is_lint_clean(tmp_path):
    """The emitted Verilog passes ``verilator --lint-only -Wall`` with the project waivers."""
    from hw.verilog import emit, lint
    config, weight_bits = CONFIGS["w8a8"]
    path = tmp_path / "mac_stream_tile_tiny.v"
    path.write_text(emit(MacStreamTile(config=config, weight_bits=weight_bits, bus_bytes=8),
                         "mac_stream_tile_tiny"))
    lint(path, "mac_stream_tile_tiny")
