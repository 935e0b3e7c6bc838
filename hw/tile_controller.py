"""The tile controller: slot walker, activation broadcast, side-path commands, merge and
requantization, and the performance counters (docs/tile.md sections 3 and 4)."""

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.config import check_int
from golden.hwmodel.packing import (
    COUNTER_BITS,
    broadcast_fields,
    counters_fields,
    layer_fields,
    memory_shapes,
)

from .layouts import corrections_layout, dots_layout, struct_layout, tile_output_layout
from .outlier_path import side_command_layout
from .params import ConfigParams, check_one_pass, check_shape

__all__ = ["TileController", "broadcast_layout", "layer_layout", "counters_layout"]


def layer_layout(config):
    return struct_layout(layer_fields(config))


def counters_layout(config):
    return struct_layout(counters_fields(config))


def broadcast_layout(config, element=None):
    """One broadcast beat: every PE's word of ``lanes`` elements (GOBO: indexes, the default;
    the MAC tile: signed weights), the shared activation word, and ``last``
    (:func:`golden.hwmodel.packing.broadcast_fields`)."""
    element = unsigned(config.index_bits) if element is None else element
    return struct_layout(broadcast_fields(config, element.width, signed=element.signed))


def _read_port(shape_name, config, width=None, depth=None):
    natural, natural_depth = memory_shapes(config)[shape_name]
    depth = natural_depth if depth is None else depth
    return ReadPort.Signature(addr_width=ceil_log2(depth),
                              shape=unsigned(natural if width is None else width))


class TileController(ConfigParams, wiring.Component):
    """Schedules the slots ``(b, t)`` (``b`` major) of a run over the PEs and the side path.

    Three independent walkers share the slot order:

    - the **broadcast** walker reads index word ``b*C + j`` and activation word ``t*C + j`` for
      ``j = 0 .. C-1`` of every slot (stage ``s0``: addresses; stage ``s1``: the words, offered on
      ``bc`` with ``last`` on ``j = C-1``). It issues one beat per cycle and only ever waits when
      ``bc`` is not ready, which the PEs do only for a ``last`` beat while their hand-over bins
      are full;
    - the **command** walker offers the side path one command per slot (block ``b``'s record
      words ``off[b] .. off[b+1]-1``, read through two asynchronous ports of the small offsets
      memory, and the activation base ``t*C``); the side path runs ahead as far as its hand-over
      register lets it;
    - the **merge** takes a slot's ``P`` dot products (``dots``) and ``P`` corrections (``corr``)
      when both are there, reads the block's ``P`` biases (one bank per PE), and computes
      ``Y = clamp((acc + 2**(out_shift-1)) >> out_shift)`` with ``acc = (dot << shift_dot) +
      (corr << shift_corr) + (bias << shift_bias)`` (:attr:`latency` cycles to ``o``).

    Counters (docs/tile.md section 3): ``cycles`` counts the cycles ``busy`` is high; ``busy[p]``
    the beats PE ``p`` accepted for rows ``b*P + p < rows``; ``outliers`` the valid records the
    side path accumulated. A cycle in which ``bc`` holds a beat that is not taken is a stall,
    charged to one cause in this order: ``stall_output`` if ``o`` is valid and not ready,
    else ``stall_outlier`` if the dot products wait for a correction (``dots.valid`` and not
    ``corr.valid``), else ``stall_recon``.

    The controller serves the MAC baseline tile too (:class:`~hw.mac_tile.MacTile`): there the
    broadcast words hold weights, the dot products and the accumulator have the MAC's widths,
    and the corrections are a constant zero stream.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    element : shape
        One lane of a PE's broadcast word (default ``unsigned(index_bits)``).
    dot_bits, acc_bits : int
        Widths in bits, 2 to 64, of a dot product and of the merge's accumulator (default
        ``config.out_bits`` and ``config.acc_bits``).
    streamed : bool
        The weights stream in, a row block at a time, into double-buffered buffers
        (:class:`~hw.stream_tile.StreamTile`, docs/offchip.md): the index memory is two banks of
        ``chunks_max`` words and block ``b``'s word ``j`` is at ``(b % 2)*C + j``; the broadcast
        and the command walker take block ``b`` only once ``b < loaded``; ``merged`` tells the
        reader which banks are free, and ``stall_memory`` counts the cycles the broadcast
        waited for a block.
    passes : bool
        Pass mode (``config.max_passes > 1``, the streaming GOBO tile only; docs/offchip.md
        section 10): the ``layer`` port's ``carry_in`` makes the merge take one ``carry`` beat
        per slot too and add its ``P`` partial sums to ``acc``; ``partial_out`` emits ``acc``
        unrounded on ``o`` (``acc_bits`` wide in this mode, ``Y`` sign-extended otherwise);
        ``stall_carry`` counts the stalls of the broadcast while the merge waited for a carry.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig`, ``element`` not a shape, or
        ``dot_bits`` or ``acc_bits`` not an integer.
    ValueError
        If ``dot_bits`` or ``acc_bits`` is outside 2 to 64, or ``config.max_passes > 1``
        without ``passes`` (or the reverse).

    Members
    -------
    layer : ``In(layer_layout(config))``
    start : ``In(1)``
    busy : ``Out(1)``
    index_rd, act_rd : ``In(ReadPort.Signature(...))``
        Synchronous read ports of the index and activation memories (the broadcast).
    offset_lo, offset_hi : ``In(ReadPort.Signature(...))``
        Asynchronous read ports of the offsets memory (``en`` unused).
    bias_rd : ``In(ReadPort.Signature(...)).array(pes)``
        Synchronous read ports of the bias banks (bank ``p`` holds ``Bq[b*P + p]`` at ``b``).
    bc : ``Out(stream.Signature(broadcast_layout(config)))``
    dots : ``In(stream.Signature(ArrayLayout(signed(out_bits), pes)))``
    side : ``Out(stream.Signature(side_command_layout(config)))``
    corr : ``In(stream.Signature(ArrayLayout(signed(corr_bits), pes)))``
    processed : ``In(range(outlier_lanes + 1))``
    o : ``Out(stream.Signature(ArrayLayout(signed(act_bits), pes)))``
    counters : ``Out(counters_layout(config))``
    loaded : ``In(unsigned(blocks width))``
        Streamed only: blocks whose weights are in the buffers (block ``b`` usable if ``b <
        loaded``).
    merged : ``Out(unsigned(blocks width))``
        Streamed only: blocks whose last slot the merge has taken (their banks are free).
    launch : ``Out(1)``
        Streamed only: high in the cycle a ``start`` is accepted.
    stall_memory : ``Out(32)``
        Streamed only: cycles in which the broadcast could issue a beat but its block was not
        loaded.
    carry : ``In(stream.Signature(tile_output_layout(config)))``
        Passes only: the previous pass's partial sums, one beat per slot in the merge's order.
    stall_carry : ``Out(32)``
        Passes only: stalled broadcast cycles while the merge waited for ``carry``.
    """

    def __init__(self, *, config, element=None, dot_bits=None, acc_bits=None, streamed=False,
                 passes=False):
        self._init_config(config)
        self._element = check_shape(
            "element", unsigned(config.index_bits) if element is None else element)
        self._dot_bits = check_int("dot_bits", config.out_bits if dot_bits is None else dot_bits,
                                   2, 64)
        self._acc_bits = check_int("acc_bits", config.acc_bits if acc_bits is None else acc_bits,
                                   2, 64)
        if not isinstance(streamed, bool):
            raise TypeError(f"streamed must be a bool, not {streamed!r}")
        self._streamed = streamed
        if not isinstance(passes, bool):
            raise TypeError(f"passes must be a bool, not {passes!r}")
        if not passes:
            check_one_pass(config)
        elif config.max_passes == 1:
            raise ValueError("passes need a configuration with max_passes > 1")
        self._passes = passes
        pes = config.pes
        bias_width, _ = memory_shapes(config)["bias"]
        word_bits = pes * config.lanes * Shape.cast(self._element).width
        blocks_width = layer_layout(config).members["blocks"]
        streamed_members = {
            "loaded": In(blocks_width), "merged": Out(blocks_width), "launch": Out(1),
            "stall_memory": Out(COUNTER_BITS),
        } if streamed else {}
        if passes:
            streamed_members.update({
                "carry": In(stream.Signature(tile_output_layout(config))),
                "stall_carry": Out(COUNTER_BITS)})
        super().__init__({
            "layer": In(layer_layout(config)),
            "start": In(1),
            "busy": Out(1),
            "index_rd": In(_read_port("index", config, word_bits,
                                      2 * config.chunks_max if streamed else None)),
            "act_rd": In(_read_port("activation", config)),
            "offset_lo": In(_read_port("offset", config)),
            "offset_hi": In(_read_port("offset", config)),
            "bias_rd": In(ReadPort.Signature(addr_width=ceil_log2(config.blocks_max),
                                             shape=unsigned(bias_width))).array(pes),
            "bc": Out(stream.Signature(broadcast_layout(config, self._element))),
            "dots": In(stream.Signature(dots_layout(config, self._dot_bits))),
            "side": Out(stream.Signature(side_command_layout(config))),
            "corr": In(stream.Signature(corrections_layout(config))),
            "processed": In(range(config.outlier_lanes + 1)),
            "o": Out(stream.Signature(tile_output_layout(config))),
            "counters": Out(counters_layout(config)),
            **streamed_members,
        })

    @property
    def streamed(self):
        """Whether the weights stream in a block at a time (read-only)."""
        return self._streamed

    @property
    def element(self):
        """One lane of a PE's broadcast word (read-only)."""
        return self._element

    @property
    def dot_bits(self):
        """Width of a dot product on ``dots`` (read-only)."""
        return self._dot_bits

    @property
    def acc_bits(self):
        """Width of the merge's accumulator (read-only)."""
        return self._acc_bits

    @property
    def latency(self):
        """Cycles from the merge taking a slot (``dots`` and ``corr`` transfer) to ``o.valid`` of
        its outputs: :attr:`~golden.config.GoboConfig.merge_latency` (2, the operand register
        with the bias read alongside, then the output register)."""
        return self._config.merge_latency

    @property
    def fetch_latency(self):
        """Cycles from the first cycle of a run (``busy`` high) to its first beat on ``bc``:
        :attr:`~golden.config.GoboConfig.fetch_latency` (1, the synchronous read of the first
        index and activation words)."""
        return self._config.fetch_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config
        pes = config.pes
        layer = self.layer
        blocks, chunks, tokens = layer.blocks, layer.chunks, layer.tokens

        # Run control ---------------------------------------------------------------------------
        o_xfer = self.o.valid & self.o.ready
        o_last = Signal(name="o_last")
        launch = Signal(name="launch")
        m.d.comb += launch.eq(self.start & ~self.busy & (blocks != 0) & (chunks != 0) &
                              (tokens != 0))
        with m.If(launch):
            m.d.sync += self.busy.eq(1)
        with m.Elif(o_xfer & o_last):
            m.d.sync += self.busy.eq(0)

        c_b = Signal.like(blocks, name="c_b")
        mg_b = Signal.like(blocks, name="mg_b")

        # Broadcast walker ----------------------------------------------------------------------
        s0_more = Signal(name="s0_more")
        s0_j = Signal.like(chunks, name="s0_j")
        s0_t = Signal.like(tokens, name="s0_t")
        s0_b = Signal.like(blocks, name="s0_b")
        s0_idx_addr = Signal.like(self.index_rd.addr, name="s0_idx_addr")
        s0_idx_base = Signal.like(self.index_rd.addr, name="s0_idx_base")
        s0_act_addr = Signal.like(self.act_rd.addr, name="s0_act_addr")
        row_bits = len(layer.rows) + ceil_log2(pes) + 1
        s0_row_base = Signal(row_bits, name="s0_row_base")

        s1_valid = Signal(name="s1_valid")
        s1_last = Signal(name="s1_last")
        s1_row_base = Signal.like(s0_row_base, name="s1_row_base")

        bc_xfer = self.bc.valid & self.bc.ready
        s0_go = Signal(name="s0_go")
        s0_ready = Signal(name="s0_ready")     # the block of the next beat is on chip
        c_ready = Signal(name="c_ready")       # the block of the next command is on chip
        if self._streamed:
            m.d.comb += [s0_ready.eq(s0_b < self.loaded), c_ready.eq(c_b < self.loaded),
                         self.launch.eq(launch)]
        else:
            m.d.comb += [s0_ready.eq(1), c_ready.eq(1)]
        m.d.comb += [
            s0_go.eq(s0_more & s0_ready & (~s1_valid | bc_xfer)),
            self.index_rd.addr.eq(s0_idx_addr), self.index_rd.en.eq(s0_go),
            self.act_rd.addr.eq(s0_act_addr), self.act_rd.en.eq(s0_go),
            self.bc.valid.eq(s1_valid),
            self.bc.payload.indexes.eq(self.index_rd.data),
            self.bc.payload.acts.eq(self.act_rd.data),
            self.bc.payload.last.eq(s1_last),
        ]
        with m.If(bc_xfer):
            m.d.sync += s1_valid.eq(0)
        with m.If(s0_go):
            m.d.sync += [s1_valid.eq(1), s1_last.eq(s0_j == chunks - 1),
                         s1_row_base.eq(s0_row_base)]
            with m.If(s0_j == chunks - 1):
                m.d.sync += s0_j.eq(0)
                with m.If(s0_t == tokens - 1):
                    # Streamed: the index banks alternate, block b at (b % 2) * C.
                    next_block = (Mux(s0_b[0], 0, s0_idx_addr + 1) if self._streamed
                                  else s0_idx_addr + 1)
                    m.d.sync += [s0_t.eq(0), s0_act_addr.eq(0),
                                 s0_idx_addr.eq(next_block), s0_idx_base.eq(next_block),
                                 s0_row_base.eq(s0_row_base + pes)]
                    with m.If(s0_b == blocks - 1):
                        m.d.sync += s0_more.eq(0)
                    with m.Else():
                        m.d.sync += s0_b.eq(s0_b + 1)
                with m.Else():
                    m.d.sync += [s0_t.eq(s0_t + 1), s0_act_addr.eq(s0_act_addr + 1),
                                 s0_idx_addr.eq(s0_idx_base)]
            with m.Else():
                m.d.sync += [s0_j.eq(s0_j + 1), s0_idx_addr.eq(s0_idx_addr + 1),
                             s0_act_addr.eq(s0_act_addr + 1)]

        # Side-path command walker --------------------------------------------------------------
        c_more = Signal(name="c_more")
        c_t = Signal.like(tokens, name="c_t")
        c_base = Signal.like(self.side.payload.act_base, name="c_base")
        m.d.comb += [
            self.offset_lo.addr.eq(c_b), self.offset_hi.addr.eq(c_b + 1),
            self.side.valid.eq(c_more & c_ready),
            self.side.payload.start.eq(self.offset_lo.data),
            self.side.payload.stop.eq(self.offset_hi.data),
            self.side.payload.act_base.eq(c_base),
        ]
        with m.If(self.side.valid & self.side.ready):
            with m.If(c_t == tokens - 1):
                m.d.sync += [c_t.eq(0), c_base.eq(0)]
                with m.If(c_b == blocks - 1):
                    m.d.sync += c_more.eq(0)
                with m.Else():
                    m.d.sync += c_b.eq(c_b + 1)
            with m.Else():
                m.d.sync += [c_t.eq(c_t + 1), c_base.eq(c_base + chunks)]

        # Merge ---------------------------------------------------------------------------------
        m1_valid = Signal(name="m1_valid")
        m1_last = Signal(name="m1_last")
        m1_dot = Signal.like(self.dots.payload, name="m1_dot")
        m1_corr = Signal.like(self.corr.payload, name="m1_corr")
        mg_t = Signal.like(tokens, name="mg_t")

        m1_free = ~self.o.valid | self.o.ready
        take = Signal(name="take")
        can_take = self.dots.valid & self.corr.valid & (~m1_valid | m1_free)
        if self._passes:
            carry_ok = Signal(name="carry_ok")     # no carry needed, or this slot's is there
            m1_carry = Signal.like(self.carry.payload, name="m1_carry")
            m.d.comb += [carry_ok.eq(~layer.carry_in | self.carry.valid),
                         self.carry.ready.eq(take & layer.carry_in)]
            with m.If(take):
                m.d.sync += m1_carry.eq(Mux(layer.carry_in, self.carry.payload.as_value(), 0))
            can_take = can_take & carry_ok
        m.d.comb += [
            take.eq(can_take),
            self.dots.ready.eq(take), self.corr.ready.eq(take),
        ]
        for p in range(pes):
            m.d.comb += [self.bias_rd[p].addr.eq(mg_b), self.bias_rd[p].en.eq(take)]
        with m.If(m1_valid & m1_free):
            m.d.sync += m1_valid.eq(0)
        with m.If(take):
            m.d.sync += [m1_valid.eq(1), m1_dot.eq(self.dots.payload),
                         m1_corr.eq(self.corr.payload),
                         m1_last.eq((mg_b == blocks - 1) & (mg_t == tokens - 1))]
            with m.If(mg_t == tokens - 1):
                m.d.sync += [mg_t.eq(0), mg_b.eq(mg_b + 1)]
            with m.Else():
                m.d.sync += mg_t.eq(mg_t + 1)

        acc_bits = self._acc_bits
        s_eff = Signal(range(acc_bits + 2), name="s_eff")
        s_m1 = Signal(range(acc_bits + 1), name="s_m1")
        half = Signal(unsigned(acc_bits + 1), name="half")
        # Any out_shift > acc_bits gives Y = 0, as does acc_bits + 1: saturate the shift there.
        m.d.comb += s_eff.eq(Mux(layer.out_shift > acc_bits + 1, acc_bits + 1, layer.out_shift))
        with m.If(s_eff != 0):
            m.d.comb += [s_m1.eq(s_eff - 1), half.eq(Const(1, 1) << s_m1)]
        low, high = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
        bias_bits, _ = memory_shapes(config)["bias"]
        y = []
        for p in range(pes):
            dot_sh = Signal(signed(acc_bits), name=f"dot_sh{p}")
            corr_sh = Signal(signed(acc_bits), name=f"corr_sh{p}")
            bias_sh = Signal(signed(acc_bits), name=f"bias_sh{p}")
            acc = Signal(signed(acc_bits), name=f"acc{p}")
            rounded = Signal(signed(acc_bits + 2), name=f"rounded{p}")
            shifted = Signal(signed(acc_bits + 2), name=f"shifted{p}")
            m.d.comb += [
                # The shifts are at most max_align_shift, so the truncation to acc_bits is exact.
                dot_sh.eq(m1_dot[p] << layer.shift_dot),
                corr_sh.eq(m1_corr[p] << layer.shift_corr),
                bias_sh.eq(self.bias_rd[p].data[:bias_bits].as_signed() << layer.shift_bias),
                # acc_bits holds the sum over every pass (GoboConfig.acc_bits): exact.
                acc.eq(dot_sh + corr_sh + bias_sh + m1_carry[p] if self._passes
                       else dot_sh + corr_sh + bias_sh),
                rounded.eq(acc + half),
                shifted.eq(rounded >> s_eff),
            ]
            clamped = Mux(shifted > high, high, Mux(shifted < low, low, shifted))
            y.append(Mux(layer.partial_out, acc, clamped) if self._passes else clamped)
        with m.If(o_xfer):
            m.d.sync += self.o.valid.eq(0)
        with m.If(m1_valid & m1_free):
            m.d.sync += [self.o.valid.eq(1), o_last.eq(m1_last)]
            m.d.sync += [self.o.payload[p].eq(y[p]) for p in range(pes)]

        # Counters ------------------------------------------------------------------------------
        if self._streamed:
            m.d.comb += self.merged.eq(mg_b)
            with m.If(launch):
                m.d.sync += self.stall_memory.eq(0)
            with m.Elif(self.busy & s0_more & ~s0_ready & (~s1_valid | bc_xfer)):
                m.d.sync += self.stall_memory.eq(self.stall_memory + 1)
        cnt = self.counters
        stalled = self.bc.valid & ~self.bc.ready
        with m.If(self.busy):
            m.d.sync += cnt.cycles.eq(cnt.cycles + 1)
            with m.If(stalled):
                with m.If(self.o.valid & ~self.o.ready):
                    m.d.sync += cnt.stall_output.eq(cnt.stall_output + 1)
                with m.Elif(self.dots.valid & ~self.corr.valid):
                    m.d.sync += cnt.stall_outlier.eq(cnt.stall_outlier + 1)
                if self._passes:
                    with m.Elif(self.dots.valid & ~carry_ok):
                        m.d.sync += self.stall_carry.eq(self.stall_carry + 1)
                with m.Else():
                    m.d.sync += cnt.stall_recon.eq(cnt.stall_recon + 1)
            m.d.sync += cnt.outliers.eq(cnt.outliers + self.processed)
            with m.If(bc_xfer):
                for p in range(pes):
                    with m.If(s1_row_base + p < layer.rows):
                        m.d.sync += cnt.busy[p].eq(cnt.busy[p] + 1)

        # Start: clear the counters and arm the walkers (placed last: it wins over the above).
        with m.If(launch):
            if self._passes:
                m.d.sync += self.stall_carry.eq(0)
            m.d.sync += [cnt.eq(0),
                         s0_more.eq(1), s0_j.eq(0), s0_t.eq(0), s0_b.eq(0), s0_idx_addr.eq(0),
                         s0_idx_base.eq(0), s0_act_addr.eq(0), s0_row_base.eq(0),
                         c_more.eq(1), c_t.eq(0), c_b.eq(0), c_base.eq(0),
                         mg_t.eq(0), mg_b.eq(0)]
        return m
