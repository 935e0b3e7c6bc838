"""Every hardware component's declared latency, measured in the Amaranth simulator.

The latencies are written once, in :class:`golden.config.GoboConfig` (``pe_latency``,
``side_path_latency``, ``merge_latency``, ...); each component returns the configuration's value
as its ``latency`` (the tiles: ``fill_drain``), and the golden cycle models read the same
properties. Here each component gets one input offered in cycle 0 with nothing else in flight and
its output always ready; the cycle of its first output transfer must be its ``latency``, and
(except for the reconstruction, which takes its input in its last step) the data input must
transfer at once, so the figure is also "first input transfer to first output transfer". A
mutation test shows the measurement sees an extra register.
"""

import gc

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from golden.config import GoboConfig, mac_flavour, preset
from hw.accumulators import CentroidAccumulators
from hw.decompressor import Decompressor
from hw.index_decoder import IndexDecoder
from hw.mac_pe import MacPE
from hw.outlier_path import OutlierSidePath
from hw.pe import GoboPE
from hw.reconstruction import ReconstructionMultiplier
from hw.tile_controller import TileController

TINY = preset("tiny")
MAC_CONFIG, MAC_WEIGHT_BITS = mac_flavour("w8a8", lanes=4, max_dot_length=64)


def measure(dut, inputs, output, *, max_cycles=100):
    """Offer every stream of ``inputs`` (``{stream: {payload field: value}}``, other fields 0)
    once from cycle 0 with ``output.ready`` high. Returns ``(in_cycles, out_cycle)``: the
    transfer cycle of each input and of the first output."""
    in_cycles, out_cycle = {}, []

    async def bench(ctx):
        ctx.set(output.ready, 1)
        for stream, fields in inputs.items():
            ctx.set(stream.valid, 1)
            for name, value in fields.items():
                ctx.set(getattr(stream.payload, name), value)
        for cycle in range(max_cycles):
            samples = await ctx.tick().sample(output.valid, *(s.ready for s in inputs))
            valid, readies = samples[2], samples[3:]
            for stream, ready in zip(inputs, readies):
                if ready and stream not in in_cycles:
                    in_cycles[stream] = cycle
                    ctx.set(stream.valid, 0)
            if valid:
                out_cycle.append(cycle)
                return
        raise AssertionError(f"no output within {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(in_cycles) == len(inputs), "an input was never taken"
    return list(in_cycles.values()), out_cycle[0]


def accumulators(config):
    dut = CentroidAccumulators(config=config)
    return dut, {dut.i: {"last": 1}}, dut.o


def reconstruction(config):
    dut = ReconstructionMultiplier(config=config)
    return dut, {dut.i: {}}, dut.o


def pe(config):
    dut = GoboPE(config=config)
    return dut, {dut.i: {"last": 1}}, dut.o


def side_path(config):
    # A command of one record word: its first word is its last.
    dut = OutlierSidePath(config=config)
    return dut, {dut.i: {"start": 0, "stop": 1}}, dut.o


def merge(config):
    dut = TileController(config=config)
    return dut, {dut.dots: {}, dut.corr: {}}, dut.o


def mac_pe(config):
    dut = MacPE(config=config, weight_bits=MAC_WEIGHT_BITS)
    return dut, {dut.i: {"last": 1}}, dut.o


def decompressor(config):
    # A beat without outliers: the head record is the row's end marker.
    dut = Decompressor(config=config, weight_bits=MAC_WEIGHT_BITS)
    return dut, {dut.i: {"last": 1}, dut.outliers: {"col": config.max_dot_length}}, dut.o


PIPELINES = {
    # name: (build, configurations, the configuration's latency)
    "accumulators": (accumulators, [TINY], lambda c: c.accumulator_latency),
    "reconstruction": (reconstruction, [TINY, TINY.replace(recon_multipliers=2),
                                        TINY.replace(recon_multipliers=8)],
                       lambda c: c.recon_cycles),
    "pe": (pe, [TINY, TINY.replace(recon_multipliers=4), GoboConfig(lanes=1, index_bits=4)],
           lambda c: c.pe_latency),
    "side_path": (side_path, [TINY], lambda c: c.side_path_latency),
    "merge": (merge, [TINY], lambda c: c.merge_latency),
    "mac_pe": (mac_pe, [MAC_CONFIG], lambda c: c.mac_pe_latency),
    "decompressor": (decompressor, [MAC_CONFIG], lambda c: c.decompressor_latency),
}


@pytest.mark.parametrize("name,index", [(name, i) for name, (_, configs, _) in PIPELINES.items()
                                        for i in range(len(configs))])
def test_measured_latency_is_the_declared_one(name, index):
    build, configs, owned = PIPELINES[name]
    config = configs[index]
    dut, inputs, output = build(config)
    assert dut.latency == owned(config), "the component must return the configuration's value"
    in_cycles, out_cycle = measure(dut, inputs, output)
    if name != "reconstruction":   # takes its bins in its last step, not at once
        assert in_cycles[0] == 0, f"the input waited until cycle {in_cycles[0]}"
    assert out_cycle == dut.latency, (f"{name}: first output in cycle {out_cycle}, declared "
                                      f"latency {dut.latency}")


def test_index_decoder_is_combinational():
    dut = IndexDecoder(lanes=4, index_bits=3)

    async def bench(ctx):
        ctx.set(dut.indexes[2], 5)
        assert ctx.get(dut.masks[5]) == 1 << 2, "masks must follow indexes in the same cycle"

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert dut.latency == 0


def test_fetch_latency_of_the_controller():
    """From the first cycle of a run (``busy`` high) to the first beat offered on ``bc``."""
    dut = TileController(config=TINY)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.layer.blocks, 1)
        ctx.set(dut.layer.chunks, 1)
        ctx.set(dut.layer.tokens, 1)
        ctx.set(dut.start, 1)
        for cycle in range(20):
            _, _, busy, valid = await ctx.tick().sample(dut.busy, dut.bc.valid)
            ctx.set(dut.start, 0)
            if busy and "busy" not in seen:
                seen["busy"] = cycle
            if valid:
                seen["bc"] = cycle
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["bc"] - seen["busy"] == dut.fetch_latency == TINY.fetch_latency


class _Delayed(wiring.Component):
    """A component with one more register on ``o.valid`` than ``inner`` declares (the mutant)."""

    def __init__(self, inner):
        self.inner = inner
        super().__init__(inner.signature)
        self.latency = inner.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        late = Signal()
        m.d.sync += late.eq(inner.o.valid)
        m.d.comb += [self.o.valid.eq(late), self.o.payload.eq(inner.o.payload),
                     inner.o.ready.eq(self.o.ready & late)]
        return m


def test_measurement_sees_an_extra_register():
    dut = _Delayed(CentroidAccumulators(config=TINY))
    _, out_cycle = measure(dut, {dut.i: {"last": 1}}, dut.o)
    assert out_cycle == dut.latency + 1


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_tiles_declare_their_fill_and_drain():
    """Tiles have no fixed latency; their fill/drain is measured against the cycle counters in
    tests/test_hw_tile.py and tests/test_hw_mac_tile.py (the no-stall runs)."""
    from hw.compressed_mac_tile import CompressedMacTile
    from hw.mac_tile import MacTile
    from hw.tile import GoboTile
    assert GoboTile(config=TINY).fill_drain == TINY.tile_fill_drain == TINY.recon_cycles + 4
    for cls in (MacTile, CompressedMacTile):
        tile = cls(config=MAC_CONFIG, weight_bits=MAC_WEIGHT_BITS)
        assert tile.fill_drain == MAC_CONFIG.mac_tile_fill_drain == 4
        assert not hasattr(tile, "latency")
    del tile
    gc.collect()
