"""hw.layouts: the Amaranth layouts put every field exactly where golden.hwmodel.packing.pack does."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.config import GoboConfig
from golden.hwmodel.packing import Field, pack, pe_input_fields
from hw.index_decoder import IndexDecoder
from hw.layouts import field_shape, pe_input_layout, struct_layout


def test_field_shapes():
    assert field_shape(Field("a", 5)) == unsigned(5)
    assert field_shape(Field("a", 5, signed=True)) == signed(5)
    assert field_shape(Field("a", 3, count=4)) == data.ArrayLayout(unsigned(3), 4)
    assert field_shape(Field("a", 7, signed=True, count=2)) == data.ArrayLayout(signed(7), 2)
    with pytest.raises(ValueError, match="field 'a' width must be a positive integer, not 0"):
        field_shape(Field("a", 0))
    with pytest.raises(ValueError, match="field name 'a' appears twice"):
        struct_layout([Field("a", 1), Field("a", 2)])


@pytest.mark.parametrize("lanes,index_bits", [(1, 3), (4, 3), (16, 4)])
def test_pe_input_layout_matches_golden_pack(lanes, index_bits):
    config = GoboConfig(lanes=lanes, index_bits=index_bits)
    fields = pe_input_fields(config)
    layout = pe_input_layout(config)
    assert layout.size == sum(f.bits for f in fields)
    assert list(layout.members) == ["indexes", "acts", "last"]

    # Drive golden-packed words into a payload signal and into the index decoder; read each
    # lane back through the layout.
    m = Module()
    payload = Signal(layout)
    m.submodules.decoder = decoder = IndexDecoder(lanes=lanes, index_bits=index_bits)
    m.d.comb += decoder.indexes.eq(payload.indexes)
    rng = np.random.default_rng(lanes)
    a_lo, a_hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1

    async def testbench(ctx):
        for trial in range(20):
            indexes = rng.integers(0, config.n_centroids, size=lanes)
            acts = rng.integers(a_lo, a_hi + 1, size=lanes)
            acts[trial % lanes] = (a_lo, a_hi)[trial % 2]
            last = int(rng.integers(0, 2))
            if lanes == 1:
                values = {"indexes": int(indexes[0]), "acts": int(acts[0]), "last": last}
            else:
                values = {"indexes": indexes, "acts": acts, "last": last}
            ctx.set(payload.as_value(), pack(fields, values))
            lane_value = (lambda view, l: view) if lanes == 1 else (lambda view, l: view[l])
            for lane in range(lanes):
                assert ctx.get(lane_value(payload.indexes, lane)) == indexes[lane]
                assert ctx.get(lane_value(payload.acts, lane)) == acts[lane]
                assert ctx.get(decoder.indexes[lane]) == indexes[lane]
            assert ctx.get(payload.last) == last

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
