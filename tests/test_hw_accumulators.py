"""CentroidAccumulators against golden.hwmodel.pe.pe_bins, with gaps, backpressure and the
double-buffer hand-over."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.config import GoboConfig
from golden.hwmodel.packing import accumulator_input_fields, bins_fields, pack, unpack
from golden.hwmodel.pe import pe_bins
from hw.accumulators import CentroidAccumulators
from hw.testing import run_stream


def accumulator_words(config, indexes, acts):
    """Beats of one dot product in the accumulators' input format (masks, acts, last)."""
    n = len(acts)
    beats = -(-n // config.lanes)
    pad = beats * config.lanes - n
    idx = np.concatenate([indexes, np.zeros(pad, int)]).reshape(beats, config.lanes)
    act = np.concatenate([acts, np.zeros(pad, int)]).reshape(beats, config.lanes)
    fields = accumulator_input_fields(config)
    words = []
    for b in range(beats):
        masks = [sum(1 << lane for lane in range(config.lanes) if idx[b, lane] == k)
                 for k in range(config.n_centroids)]
        words.append(pack(fields, {"masks": masks, "acts": act[b], "last": int(b == beats - 1)}))
    return words


def unpack_bins(config, word):
    return unpack(bins_fields(config), word)["bins"]


@pytest.mark.parametrize("lanes,index_bits,max_len", [(1, 3, 5), (4, 3, 13), (16, 4, 40)])
@pytest.mark.parametrize("gap_prob,stall_prob", [(0.0, 0.0), (0.3, 0.6)])
def test_bins_match_golden(lanes, index_bits, max_len, gap_prob, stall_prob):
    config = GoboConfig(lanes=lanes, index_bits=index_bits, max_dot_length=64)
    dut = CentroidAccumulators(config=config)
    assert dut.latency == 1
    rng = np.random.default_rng(lanes + index_bits)
    a_lo, a_hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    rows = []
    for r in range(12):
        n = int(rng.integers(1, max_len + 1)) if r else config.max_dot_length
        acts = rng.integers(a_lo, a_hi + 1, size=n) if r else np.full(n, a_lo)
        indexes = rng.integers(0, config.n_centroids, size=n) if r else np.zeros(n, int)
        rows.append((indexes, acts))
    words = [w for indexes, acts in rows for w in accumulator_words(config, indexes, acts)]
    received, _, _ = run_stream(dut, words, len(rows), rng=rng, gap_prob=gap_prob,
                                stall_prob=stall_prob)
    got = np.array([unpack_bins(config, w) for w in received])
    want = np.concatenate([pe_bins(config, indexes, acts) for indexes, acts in rows])
    np.testing.assert_array_equal(got, want)
    assert got[0, 0] == -(1 << (config.bin_bits - 1)), "row 0 fills bin 0 to its minimum"


def test_next_row_accumulates_while_bins_wait_and_last_is_held_back():
    config = GoboConfig(lanes=2, index_bits=3, max_dot_length=64)
    dut = CentroidAccumulators(config=config)
    row0 = accumulator_words(config, np.array([1, 2]), np.array([10, 20]))
    row1 = accumulator_words(config, np.array([3, 3, 3, 3, 1, 1]), np.array([1, 2, 3, 4, 5, 6]))

    async def testbench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), row0[0])
        _, _, ready = await ctx.tick().sample(dut.i.ready)
        assert ready
        # The next row's non-last beats are taken at once although o is full.
        for word in row1[:-1]:
            ctx.set(dut.i.payload.as_value(), word)
            assert ctx.get(dut.o.valid)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            assert ready
        # Its last beat waits while o holds row 0 ...
        ctx.set(dut.i.payload.as_value(), row1[-1])
        for _ in range(3):
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            assert not ready
        assert unpack_bins(config, ctx.get(dut.o.payload.as_value()))[1:3] == [10, 20]
        # ... and goes in the cycle o transfers.
        ctx.set(dut.o.ready, 1)
        _, _, ready = await ctx.tick().sample(dut.i.ready)
        assert ready
        ctx.set(dut.i.valid, 0)
        assert ctx.get(dut.o.valid)
        assert unpack_bins(config, ctx.get(dut.o.payload.as_value())) == [0, 11, 0, 10, 0, 0, 0, 0]
        await ctx.tick()
        assert not ctx.get(dut.o.valid)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
