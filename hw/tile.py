"""The GOBO tile: ``pes`` PEs sharing an activation broadcast, the outlier side path, the tile
controller and the on-chip memories (docs/tile.md)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.packing import LoadTarget, load_fields, memory_shapes

from .layouts import struct_layout, tile_output_layout
from .outlier_path import OutlierSidePath
from .params import ConfigParams, check_memories, check_one_pass
from .pe import GoboPE
from .tile_controller import TileController, counters_layout, layer_layout
from .tile_memories import MemorySpec, TileMemories

__all__ = ["GoboTile", "load_layout", "tile_memory_specs",
           "bias_bank_specs", "write_bias_banks", "broadcast_to_pes", "run_members", "gobo_core",
           "connect_gobo_core"]


def run_members(config):
    """The members every tile shares: ``start``, ``busy``, the output stream ``o`` of ``P``
    results a slot, and the performance ``counters``."""
    return {
        "start": In(1),
        "busy": Out(1),
        "o": Out(stream.Signature(tile_output_layout(config))),
        "counters": Out(counters_layout(config)),
    }


def tile_memory_specs(config):
    """The GOBO tile's memories: index (one word of ``P`` index words per chunk and block),
    activations (read by the broadcast and by each of the ``Q`` side-path lanes), outlier records,
    block offsets (two asynchronous reads: a block's first and one-past-last word) and one bias
    bank per PE (so a block's ``P`` biases come out in one cycle)."""
    shapes = memory_shapes(config)
    specs = {
        "index": MemorySpec(*shapes["index"]),
        "activation": MemorySpec(*shapes["activation"],
                                 reads=("sync",) * (1 + config.outlier_lanes)),
        "outlier": MemorySpec(*shapes["outlier"]),
        "offset": MemorySpec(*shapes["offset"], reads=("comb", "comb")),
    }
    return {**specs, **bias_bank_specs(config)}


def bias_bank_specs(config):
    """One bias bank per PE: bank ``p`` holds ``Bq[b*P + p]`` at address ``b``."""
    bias_bits, _ = memory_shapes(config)["bias"]
    return {f"bias{p}": MemorySpec(bias_bits, config.blocks_max) for p in range(config.pes)}


def write_bias_banks(m, mems, pes, write, addr, data):
    """Bias row ``addr`` goes to bank ``addr % P`` at ``addr // P`` when ``write`` is high."""
    if pes & (pes - 1) == 0:
        sel_bits = max(pes.bit_length() - 1, 0)
        bank_sel, bank_addr = addr[:sel_bits], addr >> sel_bits
    else:
        bank_sel, bank_addr = addr % pes, addr // pes
    for p in range(pes):
        wr = mems.write(f"bias{p}")
        selected = (bank_sel == p) if pes > 1 else 1
        m.d.comb += [wr.en.eq(write & selected), wr.addr.eq(bank_addr), wr.data.eq(data)]


def load_layout(config):
    return struct_layout(load_fields(config))


class GoboTile(ConfigParams, wiring.Component):
    """One fully-connected layer ``Y = X W^T + b`` over ``T`` tokens on ``pes`` GOBO PEs.

    The memories are loaded through ``load`` while idle (docs/tile.md section 2); a ``start``
    pulse runs the slots ``(b, t)`` and emits one ``o`` beat of ``P`` outputs per slot
    (section 3). The controller (:class:`~hw.tile_controller.TileController`) broadcasts one
    activation word per cycle to all PEs with each PE's index word; the side path
    (:class:`~hw.outlier_path.OutlierSidePath`) computes the outlier corrections in parallel; the
    merge adds dot products, corrections and biases and requantizes.

    A tile has no fixed latency: a run's length depends on the layer (its outliers per block can
    stall the broadcast). It declares :attr:`fill_drain` instead, the cycles a run takes beyond its
    ``T*B*C`` beats when nothing stalls; :func:`golden.hwmodel.tile.tile_cycles` predicts the rest.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Must also pass :meth:`~golden.config.GoboConfig.check_tile`.
    memories : ``"internal"`` or ``"ports"``
        Where the memories are (:class:`~hw.tile_memories.TileMemories`); with ``"ports"`` each
        memory port is a top-level port group instead (synthesis of the logic alone).

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig` or ``memories`` not a string.
    ValueError
        If the tile accumulator of ``config`` exceeds 64 bits, or ``memories`` is not one of
        ``"internal"``, ``"ports"``.

    Members
    -------
    load : ``In(stream.Signature(load_layout(config)))``
        Memory writes ``{target, addr, data}`` (:func:`golden.hwmodel.packing.load_fields`;
        ``target`` a :class:`~golden.hwmodel.packing.LoadTarget`); ``ready`` is low while busy.
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

    def __init__(self, *, config, memories="internal"):
        self._init_config(config)
        check_one_pass(config.check_tile())
        self._memories = TileMemories(tile_memory_specs(config), check_memories(memories))
        super().__init__({
            **self._memories.members(),
            "load": In(stream.Signature(load_layout(config))),
            "layer": In(layer_layout(config)),
            **run_members(config),
        })

    @property
    def memories(self):
        """The :class:`~hw.tile_memories.TileMemories` built from the ``memories`` parameter
        (``memories.place``; their bits: ``memories.report()``); read-only."""
        return self._memories

    @property
    def fill_drain(self):
        """Cycles of a run beyond its ``T*B*C`` beats when nothing stalls:
        :attr:`~golden.config.GoboConfig.tile_fill_drain` (``recon_cycles + 4``)."""
        return self._config.tile_fill_drain

    def elaborate(self, platform):
        m = Module()
        config = self._config
        pes = config.pes

        ctrl, side, pe = gobo_core(m, config)

        # Memories ------------------------------------------------------------------------------
        mems = self._memories
        mems.build(m, self)
        index_wr, act_wr, outlier_wr, offset_wr = (
            mems.write(name) for name in ("index", "activation", "outlier", "offset"))

        # The load stream: one write per beat, only while idle.
        m.d.comb += self.load.ready.eq(~ctrl.busy)
        load = self.load.payload
        load_xfer = self.load.valid & self.load.ready
        for wr, target in ((index_wr, LoadTarget.INDEX), (act_wr, LoadTarget.ACTIVATION),
                           (outlier_wr, LoadTarget.OUTLIER), (offset_wr, LoadTarget.OFFSET)):
            m.d.comb += [wr.en.eq(load_xfer & (load.target == target)),
                         wr.addr.eq(load.addr), wr.data.eq(load.data)]
        write_bias_banks(m, mems, pes, load_xfer & (load.target == LoadTarget.BIAS), load.addr,
                         load.data)

        # Read ports ----------------------------------------------------------------------------
        wiring.connect(m, mems.read("index"), ctrl.index_rd)
        wiring.connect(m, mems.read("activation"), ctrl.act_rd)
        for k, member in enumerate((ctrl.offset_lo, ctrl.offset_hi)):
            port = mems.read("offset", k)
            m.d.comb += [port.addr.eq(member.addr), member.data.eq(port.data)]
        for p in range(pes):
            wiring.connect(m, mems.read(f"bias{p}"), ctrl.bias_rd[p])
        wiring.connect(m, mems.read("outlier"), side.outlier_rd)
        for q in range(config.outlier_lanes):
            wiring.connect(m, mems.read("activation", 1 + q), side.act_rd[q])

        # Controller, side path and PEs ---------------------------------------------------------
        m.d.comb += self.counters.eq(ctrl.counters)
        connect_gobo_core(m, self, ctrl, side, pe)
        return m


def gobo_core(m, config, *, streamed=False):
    """Add a GOBO tile's controller (:class:`~hw.tile_controller.TileController`, ``streamed``
    as given), outlier side path and ``pes`` PEs to ``m``; returns ``(ctrl, side, pes)``."""
    m.submodules.controller = ctrl = TileController(
        config=config, streamed=streamed, passes=streamed and config.max_passes > 1)
    m.submodules.side_path = side = OutlierSidePath(config=config)
    units = []
    for p in range(config.pes):
        m.submodules[f"pe{p}"] = unit = GoboPE(config=config)
        units.append(unit)
    return ctrl, side, units


def connect_gobo_core(m, tile, ctrl, side, units):
    """Wire :func:`gobo_core`'s parts to each other and to ``tile``'s ``layer``, ``start``,
    ``busy`` and ``o`` (the memories and ``counters`` are the tile's own business)."""
    m.d.comb += [
        ctrl.layer.eq(tile.layer), ctrl.start.eq(tile.start), tile.busy.eq(ctrl.busy),
        ctrl.processed.eq(side.processed),
    ]
    wiring.connect(m, ctrl.side, side.i)
    wiring.connect(m, side.o, ctrl.corr)
    wiring.connect(m, ctrl.o, wiring.flipped(tile.o))
    for unit in units:
        m.d.comb += unit.centroids.eq(tile.layer.centroids)
    broadcast_to_pes(m, ctrl, units, "indexes")


def broadcast_to_pes(m, ctrl, units, word):
    """Connect the controller's broadcast ``bc`` to the PEs ``units`` (PE ``p`` gets its own
    word as payload member ``word``, the shared activations and ``last``) and their results to
    ``dots``.

    The PEs run in lockstep (same beats, same timing), so their readies agree; a beat is
    offered to all only when all take it, which keeps them together by construction."""
    all_ready = Signal(name="pe_all_ready")
    all_valid = Signal(name="pe_all_valid")
    m.d.comb += [
        all_ready.eq(_all_of(unit.i.ready for unit in units)),
        all_valid.eq(_all_of(unit.o.valid for unit in units)),
        ctrl.bc.ready.eq(all_ready),
        ctrl.dots.valid.eq(all_valid),
    ]
    for p, unit in enumerate(units):
        m.d.comb += [
            unit.i.valid.eq(ctrl.bc.valid & all_ready),
            getattr(unit.i.payload, word).eq(ctrl.bc.payload.indexes[p]),
            unit.i.payload.acts.eq(ctrl.bc.payload.acts),
            unit.i.payload.last.eq(ctrl.bc.payload.last),
            unit.o.ready.eq(ctrl.dots.ready & all_valid),
            ctrl.dots.payload[p].eq(unit.o.payload),
        ]


def _all_of(bits):
    bits = list(bits)
    result = bits[0]
    for bit in bits[1:]:
        result = result & bit
    return result
