"""The outlier side path of the tile: per-row corrections ``sum R * X[t, col]`` of one block."""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.hwmodel.packing import memory_shapes, outlier_record_fields, side_command_fields

from .layouts import act_word_layout, corrections_layout, outlier_word_layout, struct_layout
from .params import ConfigParams

__all__ = ["OutlierSidePath", "side_command_layout", "outlier_record_layout"]


def outlier_record_layout(config):
    """One record: ``valid``, ``row`` (within the block), ``col``, ``residual``
    (:func:`golden.hwmodel.packing.outlier_record_fields`)."""
    return struct_layout(outlier_record_fields(config))


def side_command_layout(config):
    """One command of the side path: block ``b``'s record words ``start .. stop-1``
    (``off[b]``, ``off[b+1]``) for token ``t``, whose activations start at word ``act_base =
    t*C`` of the activation memory (:func:`golden.hwmodel.packing.side_command_fields`)."""
    return struct_layout(side_command_fields(config))


class OutlierSidePath(ConfigParams, wiring.Component):
    """Walks one block's outlier record words per command and accumulates, per row of the block,
    ``corr[p] = sum R * X[t, col]`` over the valid records of row ``p``, exactly.

    A command (:func:`side_command_layout`) names the words ``start .. stop-1`` of the outlier
    memory (``Q = outlier_lanes`` records each) and the activation base ``t*C``. Every word flows
    down a four-stage pipeline, one word per cycle:

    0. issue: the word's address on ``outlier_rd``;
    1. the word arrives; record ``q``'s activation word ``act_base + col // L`` is addressed on
       ``act_rd[q]`` (one read port per record lane);
    2. the activation words arrive; lane ``col % L`` is multiplied by the residual (``Q``
       multipliers) into the product register;
    3. each row ``p`` adds the products of the lanes whose record is valid and names row ``p``
       (an adder over the ``Q`` lanes, so several records of one row in one word are fine) to its
       working correction; on the command's last word the completed corrections move to the
       hand-over register ``o.payload`` and the working ones restart from zero.

    A command of ``W`` words occupies stage 0 for ``max(W, 1)`` cycles (an empty block still
    sends one word without valid records, so every command yields exactly one ``o`` transfer), and
    commands follow each other without a gap. Records are never dropped or reordered. If the
    hand-over register still holds an untaken result when the next command's last word reaches
    stage 3, the whole pipeline holds (every read port's ``en`` low, so its data stays) until
    ``o`` is taken; ``i.ready`` is low meanwhile.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Uses ``pes``, ``lanes``, ``act_bits``, ``outlier_lanes``, ``residual_bits``, ``corr_bits``
        and the memory shapes.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig`.

    Members
    -------
    i : ``In(stream.Signature(side_command_layout(config)))``
        Commands, one per slot ``(b, t)``.
    outlier_rd : ``In(ReadPort.Signature(...))``
        A synchronous read port of the outlier memory (``en``, ``addr`` driven here).
    act_rd : ``In(ReadPort.Signature(...)).array(outlier_lanes)``
        Synchronous read ports of the activation memory, one per record lane.
    o : ``Out(stream.Signature(ArrayLayout(signed(corr_bits), pes)))``
        One vector of corrections per command, in command order.
    processed : ``Out(range(outlier_lanes + 1))``
        Valid records accumulated in this cycle (for the ``outliers`` counter).
    """

    def __init__(self, *, config):
        self._init_config(config)
        shapes = memory_shapes(config)
        out_width, out_depth = shapes["outlier"]
        act_width, act_depth = shapes["activation"]
        super().__init__({
            "i": In(stream.Signature(side_command_layout(config))),
            "outlier_rd": In(ReadPort.Signature(addr_width=ceil_log2(out_depth),
                                                shape=unsigned(out_width))),
            "act_rd": In(ReadPort.Signature(addr_width=ceil_log2(act_depth),
                                            shape=unsigned(act_width))).array(config.outlier_lanes),
            "o": Out(stream.Signature(corrections_layout(config))),
            "processed": Out(range(config.outlier_lanes + 1)),
        })

    @property
    def latency(self):
        """Cycles from the issue of a command's last word (stage 0) to ``o.valid`` when nothing
        stalls: :attr:`~golden.config.GoboConfig.side_path_latency` (4, stages 1 to 3 and the
        hand-over register). A command of ``W`` words transferred in cycle ``c`` (which issues
        its first word) is valid on ``o`` in cycle ``c + max(W, 1) - 1 + latency``."""
        return self._config.side_path_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config
        q_lanes, pes, lanes = config.outlier_lanes, config.pes, config.lanes
        word_layout = outlier_word_layout(config)
        acts_layout = act_word_layout(config)
        prod_bits = config.residual_bits + config.act_bits

        # Stage 3 holds the command's last word and the hand-over register is occupied: hold.
        s3_valid = Signal(name="s3_valid")
        s3_last = Signal(name="s3_last")
        o_free = ~self.o.valid | self.o.ready
        advance = Signal(name="advance")
        m.d.comb += advance.eq(~(s3_valid & s3_last & ~o_free))

        # Stage 0: issue ---------------------------------------------------------------------
        s0_active = Signal(name="s0_active")  # words of the current command remain after this
        s0_ptr = Signal.like(self.i.payload.start, name="s0_ptr")
        s0_stop = Signal.like(self.i.payload.stop, name="s0_stop")
        s0_base = Signal.like(self.i.payload.act_base, name="s0_base")

        s1_valid = Signal(name="s1_valid")
        s1_last = Signal(name="s1_last")
        s1_empty = Signal(name="s1_empty")
        s1_base = Signal.like(s0_base, name="s1_base")

        m.d.comb += [self.i.ready.eq(advance & ~s0_active), self.outlier_rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += s1_valid.eq(0)
            with m.If(s0_active):
                m.d.comb += self.outlier_rd.addr.eq(s0_ptr)
                m.d.sync += [
                    s1_valid.eq(1), s1_empty.eq(0), s1_base.eq(s0_base),
                    s1_last.eq(s0_ptr + 1 == s0_stop),
                    s0_ptr.eq(s0_ptr + 1),
                ]
                with m.If(s0_ptr + 1 == s0_stop):
                    m.d.sync += s0_active.eq(0)
            with m.Elif(self.i.valid):
                cmd = self.i.payload
                m.d.comb += self.outlier_rd.addr.eq(cmd.start)
                # Words left after this one: stop - start - 1 > 0.
                more = cmd.stop > cmd.start + 1
                m.d.sync += [
                    s1_valid.eq(1), s1_empty.eq(cmd.stop == cmd.start), s1_base.eq(cmd.act_base),
                    s1_last.eq(~more),
                    s0_active.eq(more), s0_ptr.eq(cmd.start + 1), s0_stop.eq(cmd.stop),
                    s0_base.eq(cmd.act_base),
                ]

        # Stage 1: the outlier word; address the activation words ------------------------------
        s1_word = data.View(word_layout, self.outlier_rd.data)
        s2_valid = Signal(name="s2_valid")
        s2_last = Signal(name="s2_last")
        s2_rec_valid = Signal(q_lanes, name="s2_rec_valid")
        s2_row = [Signal.like(s1_word[q].row, name=f"s2_row{q}") for q in range(q_lanes)]
        s2_res = [Signal(signed(config.residual_bits), name=f"s2_res{q}") for q in range(q_lanes)]
        lane_bits = ceil_log2(lanes)
        s2_lane = [Signal(range(lanes), name=f"s2_lane{q}") for q in range(q_lanes)]
        for q in range(q_lanes):
            col = s1_word[q].col
            if lanes & (lanes - 1) == 0:
                chunk, lane = col >> lane_bits, col[:lane_bits]
            else:
                chunk, lane = col // lanes, col % lanes
            m.d.comb += [self.act_rd[q].en.eq(advance),
                         self.act_rd[q].addr.eq(s1_base + chunk)]
            with m.If(advance):
                m.d.sync += [
                    s2_rec_valid[q].eq(s1_valid & ~s1_empty & s1_word[q].valid),
                    s2_row[q].eq(s1_word[q].row),
                    s2_res[q].eq(s1_word[q].residual),
                    s2_lane[q].eq(lane),
                ]
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2_last.eq(s1_last)]

        # Stage 2: select the lane, multiply ----------------------------------------------------
        s3_rec_valid = Signal(q_lanes, name="s3_rec_valid")
        s3_row = [Signal.like(s2_row[q], name=f"s3_row{q}") for q in range(q_lanes)]
        s3_prod = [Signal(signed(prod_bits), name=f"s3_prod{q}") for q in range(q_lanes)]
        for q in range(q_lanes):
            acts = data.View(acts_layout, self.act_rd[q].data)
            with m.If(advance):
                m.d.sync += [
                    s3_rec_valid[q].eq(s2_rec_valid[q]),
                    s3_row[q].eq(s2_row[q]),
                    s3_prod[q].eq(s2_res[q] * acts[s2_lane[q]]),
                ]
        with m.If(advance):
            m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_last)]

        # Stage 3: accumulate per row, hand over on the last word -------------------------------
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        fire = s3_valid & advance
        for p in range(pes):
            work = Signal(signed(config.corr_bits), name=f"corr{p}")
            total = Signal(signed(config.corr_bits), name=f"corr_next{p}")
            summands = []
            for q in range(q_lanes):
                hit = Signal(signed(prod_bits), name=f"hit{p}_{q}")
                with m.If(s3_rec_valid[q] & (s3_row[q] == p)):
                    m.d.comb += hit.eq(s3_prod[q])
                summands.append(hit)
            m.d.comb += total.eq(work + sum(summands[1:], summands[0]))
            with m.If(fire):
                with m.If(s3_last):
                    m.d.sync += [self.o.payload[p].eq(total), work.eq(0)]
                with m.Else():
                    m.d.sync += work.eq(total)
        with m.If(fire & s3_last):
            m.d.sync += self.o.valid.eq(1)
        with m.If(fire):
            m.d.comb += self.processed.eq(sum(s3_rec_valid[q] for q in range(q_lanes)))
        return m
