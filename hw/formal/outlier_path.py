"""Formal wrapper of :class:`hw.outlier_path.OutlierSidePath`."""

from amaranth.hdl import Array, Assert, Assume, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In

from golden.config import GoboConfig
from golden.hwmodel.packing import memory_shapes

from ..layouts import outlier_word_layout
from ..outlier_path import OutlierSidePath, side_command_layout
from .properties import FormalWrapper, Proof

__all__ = ["OutlierPathFormal", "PROOFS", "SMALL"]

#: Two PEs, two record lanes, an outlier memory of three words, 2-bit fields.
SMALL = GoboConfig(lanes=2, index_bits=2, act_bits=2, centroid_bits=2, residual_bits=2, pes=2,
                   outlier_lanes=2, max_outlier_words=3, max_rows=4, max_tokens=2,
                   max_dot_length=4, bias_bits=4, max_align_shift=1)

_FIFO = 8   # commands in flight the shadow model tracks (the side path holds at most 5)


class OutlierPathFormal(FormalWrapper):
    """The environment offers commands under the stream rules with ``start <= stop`` (what the
    offsets memory guarantees), the outlier memory is any fixed content (``mem``, a free input
    assumed constant; the wrapper models the synchronous read port, whose data holds while
    ``en`` is low), the activation ports return anything, and ``o`` is taken whenever the
    environment likes.

    Asserted: ``o`` obeys the stream rules; with ``count=True`` also that each result belongs to
    an accepted command (none invented or duplicated) and that when command ``n``'s result
    appears, the records accumulated so far (``processed``) are exactly the valid records of
    the words of commands ``0 .. n``: no record dropped, duplicated or moved to another
    command's result."""

    def __init__(self, *, config=SMALL, count=True, dut_class=OutlierSidePath):
        self._config = config
        self._count = count
        self._dut = dut_class(config=config)
        width, depth = memory_shapes(config)["outlier"]
        self._words = 1 << (depth - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(side_command_layout(config))),
            "mem": In(unsigned(width * self._words)),
            "act_data": In(unsigned(len(self._dut.act_rd[0].data))).array(config.outlier_lanes),
            "o_ready": In(1),
        })

    def elaborate(self, platform):
        m, dut = self.stream_dut()
        config = self._config
        width, _ = memory_shapes(config)["outlier"]
        m.d.comb += Assume(self.i.payload.start <= self.i.payload.stop)

        # The outlier memory: fixed content, a synchronous read port that holds without en.
        started = Signal(name="started")
        mem_held = Signal.like(self.mem, name="mem_held")
        m.d.sync += [started.eq(1), mem_held.eq(self.mem)]
        with m.If(started):
            m.d.comb += Assume(self.mem == mem_held)
        words = [self.mem[w * width:(w + 1) * width] for w in range(self._words)]
        rd_data = Signal(width, name="outlier_rd_data")
        with m.If(dut.outlier_rd.en):
            m.d.sync += rd_data.eq(Array(words)[dut.outlier_rd.addr])
        m.d.comb += dut.outlier_rd.data.eq(rd_data)
        for q in range(config.outlier_lanes):
            m.d.comb += dut.act_rd[q].data.eq(self.act_data[q])
        if not self._count:
            return m

        # Shadow model: cumulative valid records per accepted command, and per result.
        cmd = dut.i.payload
        layout = outlier_word_layout(config)
        per_word = []
        for w, word in enumerate(words):
            records = data.View(layout, word)
            inside = (cmd.start <= w) & (w < cmd.stop)
            per_word.append(inside * sum(records[q].valid for q in range(config.outlier_lanes)))
        count_bits = 6
        expected = Signal(count_bits, name="cmd_records")
        m.d.comb += expected.eq(sum(per_word))
        total = Signal(count_bits, name="expected_total")
        done = Signal(count_bits, name="processed_total")
        at = Array(Signal(count_bits, name=f"expected_at{n}") for n in range(_FIFO))
        n_cmd = Signal(range(_FIFO), name="n_cmd")
        n_res = Signal(range(_FIFO), name="n_res")
        m.d.sync += done.eq(done + dut.processed)
        with m.If(dut.i.valid & dut.i.ready):
            m.d.sync += [total.eq(total + expected), at[n_cmd].eq(total + expected),
                         n_cmd.eq(n_cmd + 1)]

        was_stalled = Signal(name="o_was_stalled")
        m.d.sync += was_stalled.eq(dut.o.valid & ~dut.o.ready)
        new_result = dut.o.valid & ~was_stalled
        with m.If(new_result):
            m.d.sync += n_res.eq(n_res + 1)
            m.d.comb += [
                Assert(n_res != n_cmd, "a result without a command"),
                Assert(done == at[n_res], "records dropped, duplicated or in the wrong result"),
            ]
        return m


PROOFS = [
    Proof("outlier_path_stream_rules", lambda: OutlierPathFormal(count=False), "prove", 8),
    Proof("outlier_path_records", lambda: OutlierPathFormal(count=True), "bmc", 12),
]
