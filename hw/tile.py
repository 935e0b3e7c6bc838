"""The GOBO tile: ``pes`` PEs sharing an activation broadcast, the outlier side path, the tile
controller and the on-chip memories (docs/tile.md)."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.config import GoboConfig
from golden.packing import (LOAD_ACT, LOAD_BIAS, LOAD_INDEX, LOAD_OFFSET, LOAD_OUTLIER,
                            load_fields, memory_shapes)

from .layouts import struct_layout
from .outlier_path import OutlierSidePath, side_path_latency
from .pe import GoboPE, pe_latency
from .tile_controller import MERGE_LATENCY, TileController, counters_layout, layer_layout

__all__ = ["GoboTile", "load_layout", "tile_fill_drain"]


def load_layout(config):
    return struct_layout(load_fields(config))


def tile_fill_drain(config):
    """Cycles a run takes beyond its broadcast beats and stalls, for ``config``: 1 (addressing the
    first words) + 1 (the last beat into the hand-over bins) + ``recon_cycles`` + ``MERGE_LATENCY``
    (see :mod:`golden.tile_cycles`)."""
    return pe_latency(config) + 1 + MERGE_LATENCY


class GoboTile(wiring.Component):
    """One fully-connected layer ``Y = X W^T + b`` over ``T`` tokens on ``pes`` GOBO PEs.

    The memories are loaded through ``load`` while idle (docs/tile.md section 2); a ``start``
    pulse runs the slots ``(b, t)`` and emits one ``o`` beat of ``P`` outputs per slot
    (section 3). The controller (:class:`~hw.tile_controller.TileController`) broadcasts one
    activation word per cycle to all PEs with each PE's index word; the side path
    (:class:`~hw.outlier_path.OutlierSidePath`) computes the outlier corrections in parallel; the
    merge adds dot products, corrections and biases and requantizes.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`

    Members
    -------
    load : ``In(stream.Signature(load_layout(config)))``
        Memory writes ``{target, addr, data}`` (:func:`golden.packing.load_fields`); ``ready`` is
        low while busy.
    layer : ``In(layer_layout(config))``
        The loaded layer's dictionary, sizes, shifts and rows; static during a run.
    start : ``In(1)``
        A pulse while idle starts a run and clears the counters.
    busy : ``Out(1)``
        From the cycle after ``start`` until the last output has transferred.
    o : ``Out(stream.Signature(ArrayLayout(signed(act_bits), pes)))``
        One beat per slot, ``b`` major: element ``p`` is ``Y[b*P + p, t]``.
    counters : ``Out(counters_layout(config))``
        ``cycles``, ``busy`` (per PE), ``stall_outlier``, ``stall_recon``, ``stall_output``,
        ``outliers``.
    """

    def __init__(self, *, config):
        if not isinstance(config, GoboConfig):
            raise TypeError(f"config must be a GoboConfig, not {config!r}")
        config.check_tile()
        self._config = config
        super().__init__({
            "load": In(stream.Signature(load_layout(config))),
            "layer": In(layer_layout(config)),
            "start": In(1),
            "busy": Out(1),
            "o": Out(stream.Signature(data.ArrayLayout(signed(config.act_bits), config.pes))),
            "counters": Out(counters_layout(config)),
        })

    @property
    def config(self):
        return self._config

    @property
    def fill_drain(self):
        """Cycles of a run beyond ``T*B*C`` beats when nothing stalls (:func:`tile_fill_drain`)."""
        return tile_fill_drain(self._config)

    def elaborate(self, platform):
        m = Module()
        config = self._config
        pes = config.pes
        shapes = memory_shapes(config)

        m.submodules.controller = ctrl = TileController(config=config)
        m.submodules.side_path = side = OutlierSidePath(config=config)
        assert side.latency == side_path_latency(config)
        pe = []
        for p in range(pes):
            m.submodules[f"pe{p}"] = unit = GoboPE(config=config)
            pe.append(unit)

        # Memories ------------------------------------------------------------------------------
        def memory(name, target):
            width, depth = shapes[target]
            mem = Memory(shape=unsigned(width), depth=depth, init=[])
            m.submodules[f"{name}_mem"] = mem
            return mem

        index_mem = memory("index", "index")
        act_mem = memory("act", "activation")
        outlier_mem = memory("outlier", "outlier")
        offset_mem = memory("offset", "offset")
        bias_width, _ = shapes["bias"]
        bias_banks = []
        for p in range(pes):
            bank = Memory(shape=unsigned(bias_width), depth=config.blocks_max, init=[])
            m.submodules[f"bias_mem{p}"] = bank
            bias_banks.append(bank)

        # The load stream: one write per beat, only while idle.
        m.d.comb += self.load.ready.eq(~ctrl.busy)
        load = self.load.payload
        load_xfer = self.load.valid & self.load.ready
        for mem, target in ((index_mem, LOAD_INDEX), (act_mem, LOAD_ACT),
                            (outlier_mem, LOAD_OUTLIER), (offset_mem, LOAD_OFFSET)):
            wr = mem.write_port()
            m.d.comb += [wr.en.eq(load_xfer & (load.target == target)),
                         wr.addr.eq(load.addr), wr.data.eq(load.data)]
        # Bias row m lives in bank m % P at m // P, so a block's P biases come out in one cycle.
        if pes & (pes - 1) == 0:
            bank_sel, bank_addr = load.addr[:max(pes.bit_length() - 1, 0)], \
                load.addr >> (pes.bit_length() - 1)
        else:
            bank_sel, bank_addr = load.addr % pes, load.addr // pes
        for p, bank in enumerate(bias_banks):
            wr = bank.write_port()
            selected = (bank_sel == p) if pes > 1 else 1
            m.d.comb += [wr.en.eq(load_xfer & (load.target == LOAD_BIAS) & selected),
                         wr.addr.eq(bank_addr), wr.data.eq(load.data)]

        # Read ports ----------------------------------------------------------------------------
        wiring.connect(m, index_mem.read_port(), ctrl.index_rd)
        wiring.connect(m, act_mem.read_port(), ctrl.act_rd)
        for port, member in ((offset_mem.read_port(domain="comb"), ctrl.offset_lo),
                             (offset_mem.read_port(domain="comb"), ctrl.offset_hi)):
            m.d.comb += [port.addr.eq(member.addr), member.data.eq(port.data)]
        for p, bank in enumerate(bias_banks):
            wiring.connect(m, bank.read_port(), ctrl.bias_rd[p])
        wiring.connect(m, outlier_mem.read_port(), side.outlier_rd)
        for q in range(config.outlier_lanes):
            wiring.connect(m, act_mem.read_port(), side.act_rd[q])

        # Controller, side path and PEs ---------------------------------------------------------
        m.d.comb += [
            ctrl.layer.eq(self.layer), ctrl.start.eq(self.start), self.busy.eq(ctrl.busy),
            self.counters.eq(ctrl.counters), ctrl.processed.eq(side.processed),
        ]
        wiring.connect(m, ctrl.side, side.i)
        wiring.connect(m, side.o, ctrl.corr)
        wiring.connect(m, ctrl.o, wiring.flipped(self.o))

        # The PEs run in lockstep (same beats, same timing), so their readies agree; a beat is
        # offered to all only when all take it, which keeps them together by construction.
        all_ready = Signal(name="pe_all_ready")
        all_valid = Signal(name="pe_all_valid")
        m.d.comb += [
            all_ready.eq(_all_of(unit.i.ready for unit in pe)),
            all_valid.eq(_all_of(unit.o.valid for unit in pe)),
            ctrl.bc.ready.eq(all_ready),
            ctrl.dots.valid.eq(all_valid),
        ]
        for p, unit in enumerate(pe):
            m.d.comb += [
                unit.centroids.eq(self.layer.centroids),
                unit.i.valid.eq(ctrl.bc.valid & all_ready),
                unit.i.payload.indexes.eq(ctrl.bc.payload.indexes[p]),
                unit.i.payload.acts.eq(ctrl.bc.payload.acts),
                unit.i.payload.last.eq(ctrl.bc.payload.last),
                unit.o.ready.eq(ctrl.dots.ready & all_valid),
                ctrl.dots.payload[p].eq(unit.o.payload),
            ]
        return m


def _all_of(bits):
    bits = list(bits)
    result = bits[0]
    for bit in bits[1:]:
        result = result & bit
    return result
