"""A layer longer than max_dot_length on the streaming tile, as passes (hw/stream_tile.py pass
mode, golden.hwmodel.passes; docs/offchip.md section 10) in the Amaranth simulator: each pass's
unrounded partial sums go back into the next pass's ``carry`` stream as the tile emitted them;
every partial sum and every output against the golden passes and the single-pass model, every
counter (``stall_carry`` included) against the cycle model with the same carry schedule."""

import gc

import numpy as np
import pytest

from golden.hwmodel.layer_image import act_beats, layer_word
from golden.hwmodel.offchip import OffchipPort, offchip_layout
from golden.hwmodel.packing import stream_counters_fields, unpack
from golden.hwmodel.passes import (
    CarrySchedule,
    carry_beats,
    pass_columns,
    pass_images,
    pass_modes,
    passes_outputs,
    single_pass,
)
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.hwmodel.tile import tile_outputs
from hw.stream_tile import StreamTile
from hw.testing import StreamMonitor, carry_stream, offchip_memory, run_tile
from tests.test_hw_stream_tile import (
    BASE,
    MEMORIES,
    STREAM,
    check_counters,
    check_outputs,
    real_layer,
)

# Passes of 16 columns (4 chunks of 4 lanes), at most 4: a 61-column layer is 16+16+16+13.
PASSES = STREAM.replace(max_dot_length=16, max_passes=4)


def run_passes(image, acts, memory, schedule, *, corrupt=None, stall_prob=0.0):
    """Run ``image`` as passes on one StreamTile: ``(Y, [each pass's outputs], [each pass's
    counters], [each pass's model counters])``; each pass's carry is the previous pass's RTL
    outputs (``corrupt`` applied to them first, if given); ``o`` refused with probability
    ``stall_prob`` a cycle (seeded)."""
    config = image.config
    tokens = acts.shape[0]
    dut = StreamTile(config=config, bus_bytes=memory.bus_bytes)
    parts = pass_images(image)
    outs, counters, models, previous = [], [], [], None
    for k, ((start, stop), part) in enumerate(zip(pass_columns(image.cols, 16), parts)):
        modes = pass_modes(k, len(parts))
        layout = offchip_layout(part, memory.bus_bytes, base=BASE)
        port = OffchipPort(memory, layout.data, base=BASE)
        background = [offchip_memory(dut, port)]
        carry = None
        if modes["carry_in"]:
            carry = schedule
            fed = previous if corrupt is None else corrupt(previous)
            background.append(carry_stream(dut, carry_beats(config, fed), schedule))
        ((y, word),) = run_tile(dut, load=act_beats(config, acts[:, start:stop]),
                                layer=layer_word(part, tokens, **modes), tokens=tokens,
                                blocks=part.blocks, inputs=[(dut.base, BASE)],
                                background=background, monitor=StreamMonitor(),
                                rng=np.random.default_rng(k), stall_prob=stall_prob)
        outs.append(y)
        counters.append(unpack(stream_counters_fields(config), word))
        models.append(stream_tile_cycles_of_image(part, tokens, memory, base=BASE, carry=carry))
        previous = y
    return outs[-1], outs, counters, models


@pytest.fixture(scope="module")
def layer(minilm):
    """Layer 5's FFN output, 38 rows x 61 columns (4 passes), 3 tokens, on PASSES."""
    return real_layer(minilm, "encoder.layer.5.output.dense.weight", 38, 61, 3, config=PASSES)


@pytest.mark.parametrize("memory, schedule", [
    ("fast", CarrySchedule()),                          # the carry is there from the start
    ("bursty", CarrySchedule()),
    ("fast", CarrySchedule(latency=40, interval=12)),   # a slot every 4 cycles: the merge waits
])
def test_passes_on_the_tile_equal_one_pass_and_the_cycle_model(layer, memory, schedule):
    image, acts = layer
    y, outs, counters, models = run_passes(image, acts, MEMORIES[memory], schedule)
    want_y, partials = passes_outputs(image, acts)
    assert len(outs) == 4
    for got, want in zip(outs[:-1], partials[:-1]):
        check_outputs(want, got)                       # unrounded partial sums, every element
    check_outputs(want_y, y)
    check_outputs(tile_outputs(single_pass(image), acts), y)
    for got, model in zip(counters, models):
        check_counters(model, got)
    waits = sum(c["stall_carry"] for c in counters)
    assert (waits > 0) == (schedule.interval > 0), waits


def test_passes_exact_under_output_backpressure_and_a_slow_carry(layer):
    """Random ``o`` backpressure (the merge holds with a carry in its register) and a carry
    every 7 cycles: every partial sum and output still exact (the run is not timed)."""
    image, acts = layer
    y, outs, counters, _ = run_passes(image, acts, MEMORIES["fast"],
                                      CarrySchedule(latency=3, interval=7), stall_prob=0.4)
    want_y, partials = passes_outputs(image, acts)
    for got, want in zip(outs[:-1], partials[:-1]):
        check_outputs(want, got)
    check_outputs(want_y, y)
    assert all(c["stall_output"] > 0 for c in counters)


def test_a_corrupted_carry_on_the_tile_fails_the_check(layer):
    image, acts = layer

    def off_by_one_step(previous):
        bad = previous.copy()
        bad[5, 1] += 1 << image.out_shift
        return bad
    y, _, _, _ = run_passes(image, acts, MEMORIES["fast"], CarrySchedule(),
                            corrupt=off_by_one_step)
    want = tile_outputs(single_pass(image), acts)
    assert int(np.count_nonzero(y != want)) == 1
    with pytest.raises(AssertionError, match=r"1 outputs differ, first at \(row, token\) \(5, 1\)"):
        check_outputs(want, y)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_only_the_streaming_gobo_tile_has_passes():
    from golden.config import mac_flavour
    from hw.mac_tile import MacTile
    from hw.tile import GoboTile
    with pytest.raises(ValueError, match=r"^max_passes=4: passes are built only in the "
                                         r"streaming GOBO tile \(hw.stream_tile.StreamTile\)$"):
        GoboTile(config=PASSES)
    with pytest.raises(ValueError, match="max_passes=2: passes are built only in the streaming"):
        MacTile(config=mac_flavour("w8a8", base="tiny", max_passes=2)[0], weight_bits=8)
    gc.collect()    # the refused components' warnings now, under this test's filter
