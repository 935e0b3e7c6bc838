"""hw.layouts: the Amaranth layouts put every field exactly where golden.hwmodel.packing.pack
does, for every packed format, in one-lane and one-PE configurations too (no special case), and
the components' ports use them."""

import gc
import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.config import GoboConfig, preset
from golden.hwmodel.packing import (
    Field,
    broadcast_fields,
    counters_fields,
    format_bits,
    layer_fields,
    load_fields,
    mac_layer_fields,
    mac_load_fields,
    pack,
    packed_formats,
    pe_input_fields,
    side_command_fields,
    unpack,
)
from hw.index_decoder import IndexDecoder
from hw.layouts import (
    act_word_layout,
    bins_layout,
    centroids_layout,
    corrections_layout,
    dots_layout,
    field_layout,
    field_shape,
    mac_input_layout,
    outlier_word_layout,
    pe_input_layout,
    struct_layout,
    tile_output_layout,
)
from tests.test_packing import random_value

TINY = preset("tiny")

#: One lane and one PE (the configurations that used to be special), odd sizes, wider indexes.
CONFIGS = {
    "tiny": TINY,
    "lanes1_pes1_q1": TINY.replace(lanes=1, pes=1, outlier_lanes=1),
    "lanes1_pes4": TINY.replace(lanes=1),
    "lanes3_pes3_q3": TINY.replace(lanes=3, pes=3, outlier_lanes=3),
    "idx4_lanes16": GoboConfig(lanes=16, index_bits=4, max_dot_length=256, max_rows=64),
}


def const_value(value, shape):
    """A field read back through an Amaranth layout (``data.Const``), as plain Python."""
    if isinstance(shape, data.ArrayLayout):
        return [const_value(value[i], shape.elem_shape) for i in range(shape.length)]
    if isinstance(shape, data.StructLayout):
        return {name: const_value(value[name], member.shape) for name, member in shape}
    return value


def test_field_shapes():
    assert field_shape(Field("a", 5)) == unsigned(5)
    assert field_shape(Field("a", 5, signed=True)) == signed(5)
    assert field_shape(Field("a", 3, count=4, array=True)) == data.ArrayLayout(unsigned(3), 4)
    # One element is still an array: the per-lane fields of a one-lane PE.
    assert field_shape(Field("a", 3, count=1, array=True)) == data.ArrayLayout(unsigned(3), 1)
    assert field_shape(Field("a", 7, signed=True, count=(2, 3), array=True)) == \
        data.ArrayLayout(data.ArrayLayout(signed(7), 3), 2)
    record = [Field("v", 1), Field("r", 4, signed=True)]
    assert field_shape(Field("a", record, count=2, array=True)) == data.ArrayLayout(
        data.StructLayout({"v": unsigned(1), "r": signed(4)}), 2)
    with pytest.raises(ValueError, match="field 'a' width must be a positive integer, not 0"):
        field_shape(Field("a", 0))
    with pytest.raises(ValueError, match="field name 'a' appears twice"):
        struct_layout([Field("a", 1), Field("a", 2)])
    with pytest.raises(ValueError, match="a word of one field was expected, not of 'a', 'b'"):
        field_layout([Field("a", 1), Field("b", 2)])


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_format_layout_matches_pack(config):
    """For every field list: the layout's size is the format's, every field read through the
    layout from a packed word is the packed value, and the layout's constant of the values is
    the packed word, bit for bit."""
    rng = random.Random(config.lanes * 100 + config.pes)
    for name, fields in packed_formats(config, weight_bits=5).items():
        layout = struct_layout(fields)
        assert layout.size == format_bits(fields), name
        assert list(layout.members) == [f.name for f in fields], name
        for _ in range(8):
            values = {f.name: random_value(f, rng) for f in fields}
            word = pack(fields, values)
            assert const_value(layout.from_bits(word), layout) == values, name
            assert layout.const(values).as_bits() == word, name
            assert unpack(fields, word) == values, name
            if len(fields) == 1 and fields[0].array:     # a port that is the array itself
                shape = field_layout(fields)
                assert const_value(shape.from_bits(word), shape) == values[fields[0].name]


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_per_lane_and_per_pe_members_are_arrays_whatever_their_length(config):
    assert isinstance(pe_input_layout(config)["indexes"].shape, data.ArrayLayout)
    assert isinstance(pe_input_layout(config)["acts"].shape, data.ArrayLayout)
    assert isinstance(mac_input_layout(config, 8)["weights"].shape, data.ArrayLayout)
    assert isinstance(struct_layout(counters_fields(config))["busy"].shape, data.ArrayLayout)
    for layout, length in ((act_word_layout(config), config.lanes),
                           (corrections_layout(config), config.pes),
                           (dots_layout(config), config.pes),
                           (tile_output_layout(config), config.pes),
                           (outlier_word_layout(config), config.outlier_lanes),
                           (bins_layout(config), config.n_centroids),
                           (centroids_layout(config), config.n_centroids)):
        assert isinstance(layout, data.ArrayLayout) and layout.length == length


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
            ctx.set(payload.as_value(),
                    pack(fields, {"indexes": indexes, "acts": acts, "last": last}))
            for lane in range(lanes):
                assert ctx.get(payload.indexes[lane]) == indexes[lane]
                assert ctx.get(payload.acts[lane]) == acts[lane]
                assert ctx.get(decoder.indexes[lane]) == indexes[lane]
            assert ctx.get(payload.last) == last

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()


def _payload(member):
    return member.signature.members["payload"].shape


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("config", [TINY, CONFIGS["lanes1_pes1_q1"]], ids=["tiny", "lanes1_pes1"])
def test_component_ports_are_the_golden_formats(config):
    from hw.accumulators import CentroidAccumulators
    from hw.decompressor import Decompressor
    from hw.mac_pe import MacPE
    from hw.mac_tile import MacTile
    from hw.outlier_path import OutlierSidePath
    from hw.pe import GoboPE
    from hw.reconstruction import ReconstructionMultiplier
    from hw.tile import GoboTile
    from hw.tile_controller import TileController

    members = GoboTile(config=config, memories="ports").signature.members
    assert _payload(members["load"]) == struct_layout(load_fields(config))
    assert members["layer"].shape == struct_layout(layer_fields(config))
    assert members["counters"].shape == struct_layout(counters_fields(config))
    assert _payload(members["o"]) == tile_output_layout(config)

    mac = MacTile(config=config, weight_bits=8, memories="ports").signature.members
    assert _payload(mac["load"]) == struct_layout(mac_load_fields(config, 8))
    assert mac["layer"].shape == struct_layout(mac_layer_fields(config, 8))

    pe = GoboPE(config=config).signature.members
    assert _payload(pe["i"]) == pe_input_layout(config)
    assert pe["centroids"].shape == centroids_layout(config)
    recon = ReconstructionMultiplier(config=config).signature.members
    assert _payload(recon["i"]) == bins_layout(config)
    assert _payload(CentroidAccumulators(config=config).signature.members["o"]) == \
        bins_layout(config)
    assert _payload(MacPE(config=config, weight_bits=8).signature.members["i"]) == \
        mac_input_layout(config, 8)
    assert Decompressor(config=config, weight_bits=8).signature.members["centroids"].shape == \
        centroids_layout(config, 8)

    side = OutlierSidePath(config=config).signature.members
    assert _payload(side["i"]) == struct_layout(side_command_fields(config))
    assert _payload(side["o"]) == corrections_layout(config)
    ctrl = TileController(config=config).signature.members
    assert _payload(ctrl["bc"]) == struct_layout(broadcast_fields(config))
    assert _payload(ctrl["dots"]) == dots_layout(config)
    assert _payload(ctrl["corr"]) == corrections_layout(config)
    gc.collect()  # report the components built only for their signatures while the filter is on
