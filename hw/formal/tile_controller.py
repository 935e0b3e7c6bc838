"""Formal wrapper of :class:`hw.tile_controller.TileController` under the environment contract
of docs/tile.md section 8."""

from amaranth.hdl import Array, Assert, Assume, Module, Signal, unsigned
from amaranth.lib import stream
from amaranth.lib.wiring import In

from ..tile_controller import TileController, layer_layout
from .outlier_path import SMALL
from .properties import FormalWrapper, Proof, raw, stream_rules

__all__ = ["TileControllerFormal", "PROOFS", "SMALL"]


class TileControllerFormal(FormalWrapper):
    """The controller's three output streams ``bc``, ``side`` and ``o`` obey the stream rules,
    for any run, under the environment contract (docs/tile.md section 8): ``layer`` holds still
    while ``busy``; the PEs' ``dots`` and the side path's ``corr`` obey the stream rules and
    offer a result only for work they took (a ``last`` beat on ``bc``, a command on ``side``); the
    index, activation and bias read ports are synchronous and hold their data while ``en`` is
    low (any data otherwise: ``*_data`` are free inputs); the offsets memory, read
    asynchronously, holds any fixed content (``offsets``); ``start``, ``processed`` and every
    ``ready`` are free. Bounded: the first 18 cycles from reset, which hold a whole run of the
    small configuration's largest layer (2 blocks, 2 chunks, 2 tokens: 8 beats, 14 cycles
    without stalls) and the start of the next.

    With ``slots=True`` it asserts instead that a run emits exactly ``blocks * tokens`` outputs
    on ``o``, all while ``busy``: ``busy`` falls with the transfer of the last one (depth 14:
    runs of up to 4 beats complete, e.g. 2 blocks x 2 tokens x 1 chunk).

    With ``streamed=True`` the controller is the streaming tiles' (docs/offchip.md section 4)
    and ``loaded`` a free input under the weight reader's contract (0 in the cycle after a
    ``launch``, never falling during a run); it asserts instead its gates and bank releases: a
    beat offered on ``bc`` and a command offered on ``side`` belong to a block ``b < loaded``
    (the broadcast never passes the ``loaded`` gate), and ``merged`` counts exactly the blocks
    whose ``tokens`` slots the merge has taken, so it rises by one at a time, in block order,
    and never passes ``loaded`` (a bank is released only after its block was loaded and
    merged). Depth 14 (18, a 2-block run with stalls, took 41.5 s).

    With ``streamed=True, gates=False`` it asserts instead, under the same ``loaded``
    contract, the properties of the whole-layer controller: the stream rules on ``bc``,
    ``side`` and ``o``, or with ``slots=True`` exactly ``blocks * tokens`` outputs a run, none
    outside it (no beat dropped or added while the gates hold the walkers)."""

    def __init__(self, *, config=SMALL, slots=False, streamed=False, gates=True,
                 dut_class=TileController):
        self._config = config
        self._slots = slots
        self._streamed = streamed
        self._gates_only = streamed and gates
        self._dut = dut = dut_class(config=config, streamed=streamed)
        self._offset_words = 1 << len(dut.offset_lo.addr)
        sync_ports = {"index_data": dut.index_rd, "act_data": dut.act_rd}
        sync_ports.update({f"bias{p}_data": port for p, port in enumerate(dut.bias_rd)})
        self._sync_ports = sync_ports
        super().__init__({
            "layer": In(layer_layout(config)),
            "start": In(1),
            "processed": In(len(dut.processed)),
            **{name: In(len(port.data)) for name, port in sync_ports.items()},
            "offsets": In(unsigned(len(dut.offset_lo.data) * self._offset_words)),
            "dots": In(stream.Signature(dut.dots.payload.shape())),
            "corr": In(stream.Signature(dut.corr.payload.shape())),
            "bc_ready": In(1),
            "side_ready": In(1),
            "o_ready": In(1),
            **({"loaded": In(len(dut.loaded))} if streamed else {}),
        })

    def elaborate(self, platform):
        m = Module()
        self.no_reset(m)
        m.submodules.dut = dut = self._dut
        m.d.comb += [
            dut.layer.eq(self.layer), dut.start.eq(self.start), dut.processed.eq(self.processed),
            dut.bc.ready.eq(self.bc_ready), dut.side.ready.eq(self.side_ready),
            dut.o.ready.eq(self.o_ready),
        ]
        for name in ("dots", "corr"):
            ours, theirs = getattr(self, name), getattr(dut, name)
            m.d.comb += [theirs.valid.eq(ours.valid), raw(theirs.payload).eq(raw(ours.payload)),
                         ours.ready.eq(theirs.ready)]
            stream_rules(m, theirs, name=name, check=Assume)
        # Results only answer work: a slot's dot products follow its last beat on bc, its
        # corrections its command on side (the PEs and the side path invent nothing).
        for name, work in (("dots", dut.bc.valid & dut.bc.ready & dut.bc.payload.last),
                           ("corr", dut.side.valid & dut.side.ready)):
            result = getattr(dut, name)
            owed = Signal(4, name=f"{name}_owed")
            m.d.sync += owed.eq(owed + work - (result.valid & result.ready))
            m.d.comb += Assume(~result.valid | (owed != 0))

        # layer static during a run; fixed offsets; synchronous read ports that hold.
        started = Signal(name="started")
        layer_held = Signal.like(raw(self.layer), name="layer_held")
        offsets_held = Signal.like(self.offsets, name="offsets_held")
        m.d.sync += [started.eq(1), layer_held.eq(raw(self.layer)),
                     offsets_held.eq(self.offsets)]
        with m.If(started):
            m.d.comb += Assume(self.offsets == offsets_held)
        with m.If(dut.busy):
            m.d.comb += Assume(raw(self.layer) == layer_held)
        for name, port in self._sync_ports.items():
            data = Signal.like(port.data, name=f"{name}_reg")
            with m.If(port.en):
                m.d.sync += data.eq(getattr(self, name))
            m.d.comb += port.data.eq(data)
        width = len(dut.offset_lo.data)
        words = Array(self.offsets[w * width:(w + 1) * width] for w in range(self._offset_words))
        m.d.comb += [dut.offset_lo.data.eq(words[dut.offset_lo.addr]),
                     dut.offset_hi.data.eq(words[dut.offset_hi.addr])]

        if self._streamed:
            after_launch = self._loaded_contract(m, dut)
            if self._gates_only:
                self._gates(m, dut, after_launch)
                return m
        if not self._slots:
            for name in ("bc", "side", "o"):
                stream_rules(m, getattr(dut, name), name=name)
            return m

        layer = self.layer
        sent = Signal(8, name="outputs_sent")
        slots = Signal(8, name="run_slots")
        was_busy = Signal(name="was_busy")
        o_xfer = dut.o.valid & dut.o.ready
        m.d.sync += was_busy.eq(dut.busy)
        with m.If(dut.start & ~dut.busy):
            m.d.sync += [sent.eq(0), slots.eq(layer.blocks * layer.tokens)]
        with m.Elif(o_xfer):
            m.d.sync += sent.eq(sent + 1)
        m.d.comb += Assert(~dut.o.valid | dut.busy, "an output outside a run")
        with m.If(was_busy & ~dut.busy):
            m.d.comb += Assert(sent == slots,
                               "a run ended without blocks * tokens outputs")
        return m

    def _loaded_contract(self, m, dut):
        """The weight reader's ``loaded`` contract (assumed): 0 in the cycle after a
        ``launch``, never falling during a run. Returns that cycle's flag."""
        loaded = self.loaded
        m.d.comb += dut.loaded.eq(loaded)
        after_launch = Signal(name="after_launch")
        loaded_prev = Signal.like(loaded, name="loaded_prev")
        m.d.sync += [after_launch.eq(dut.launch), loaded_prev.eq(loaded)]
        with m.If(after_launch):
            m.d.comb += Assume(loaded == 0)
        with m.Elif(dut.busy):
            m.d.comb += Assume(loaded >= loaded_prev)
        return after_launch

    def _gates(self, m, dut, after_launch):
        """The streamed controller's gates and releases (asserted)."""
        layer, loaded = self.layer, self.loaded

        def walker(name, step, last_step):
            """The block of the next transfer of a stream: ``step`` counts its transfers
            within a block's ``tokens`` (``last_step``: the transfer ends a token), from 0 at
            ``launch``."""
            t = Signal.like(layer.tokens, name=f"{name}_t")
            b = Signal.like(layer.blocks, name=f"{name}_b")
            with m.If(dut.launch):
                m.d.sync += [t.eq(0), b.eq(0)]
            with m.Elif(step & last_step):
                with m.If(t == layer.tokens - 1):
                    m.d.sync += [t.eq(0), b.eq(b + 1)]
                with m.Else():
                    m.d.sync += t.eq(t + 1)
            return b

        bc_b = walker("bc", dut.bc.valid & dut.bc.ready, dut.bc.payload.last)
        side_b = walker("side", dut.side.valid & dut.side.ready, 1)
        merge_b = walker("merge", dut.dots.valid & dut.dots.ready, 1)
        with m.If(dut.bc.valid):
            m.d.comb += Assert(bc_b < loaded, "bc: a beat of a block not loaded")
        with m.If(dut.side.valid):
            m.d.comb += Assert(side_b < loaded, "side: a command of a block not loaded")
        with m.If(dut.busy & ~after_launch):
            m.d.comb += [Assert(dut.merged == merge_b, "merged: not the blocks merged"),
                         Assert(dut.merged <= loaded, "merged: a block released before loaded")]


PROOFS = [
    Proof("tile_controller_stream_rules", TileControllerFormal, "bmc", 18),
    Proof("tile_controller_slots", lambda: TileControllerFormal(slots=True), "bmc", 14),
    Proof("tile_controller_streamed_gates", lambda: TileControllerFormal(streamed=True), "bmc",
          14),
    Proof("tile_controller_streamed_stream_rules", lambda: TileControllerFormal(
        streamed=True, gates=False), "bmc", 18),
    Proof("tile_controller_streamed_slots", lambda: TileControllerFormal(
        streamed=True, gates=False, slots=True), "bmc", 14),
]
