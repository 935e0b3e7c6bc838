"""Formal wrapper of :class:`hw.accumulators.CentroidAccumulators`."""

from amaranth.hdl import Assert, Mux, Signal, signed
from amaranth.lib import stream
from amaranth.lib.wiring import In

from golden.config import GoboConfig

from ..accumulators import CentroidAccumulators, accumulator_input_layout, bins_layout
from .properties import FormalWrapper, Proof

__all__ = ["AccumulatorsFormal", "PROOFS", "SMALL"]

#: Two lanes, four bins, 2-bit activations, bins of a few bits: small enough for the solver.
SMALL = GoboConfig(lanes=2, index_bits=2, act_bits=2, max_dot_length=8)


class AccumulatorsFormal(FormalWrapper):
    """The environment offers any beats (any masks) under the stream rules and takes ``o``
    whenever it likes. Asserted: ``o`` obeys the stream rules; with ``data=True`` also, against
    a shadow model, that every result equals the masked sums of the beats accepted since the
    previous ``last`` (no beat lost or counted twice across the hand-over) and that there is
    exactly one result per accepted ``last`` beat."""

    def __init__(self, *, config=SMALL, data=True, dut_class=CentroidAccumulators):
        self._config = config
        self._data = data
        self._dut = dut_class(config=config)
        super().__init__({
            "i": In(stream.Signature(accumulator_input_layout(config))),
            "o_ready": In(1),
        })

    def elaborate(self, platform):
        m, dut = self.stream_dut()
        config = self._config
        if not self._data:
            return m

        # Shadow model: the working sums and the expected result of the last completed product.
        work = Signal(bins_layout(config), name="shadow_work")
        expected = Signal(bins_layout(config), name="shadow_expected")
        outstanding = Signal(range(4), name="outstanding")   # accepted last beats - o transfers
        i_xfer = dut.i.valid & dut.i.ready
        o_xfer = dut.o.valid & dut.o.ready
        beat = dut.i.payload
        with m.If(i_xfer):
            for k in range(config.n_centroids):
                lanes = [Mux(beat.masks[k][lane], beat.acts[lane], 0)
                         for lane in range(config.lanes)]
                total = Signal(signed(config.bin_bits), name=f"shadow_sum{k}")
                m.d.comb += total.eq(work[k] + sum(lanes))
                with m.If(beat.last):
                    m.d.sync += [expected[k].eq(total), work[k].eq(0)]
                with m.Else():
                    m.d.sync += work[k].eq(total)
        m.d.sync += outstanding.eq(outstanding + (i_xfer & beat.last) - o_xfer)
        m.d.comb += [
            Assert(outstanding <= 1, "a result was overwritten before its transfer"),
            Assert(dut.o.valid == (outstanding == 1), "a result missing or duplicated"),
        ]
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload.as_value() == expected.as_value(),
                               "bins differ from the masked sums of the accepted beats")
        return m


PROOFS = [
    Proof("accumulators_stream_rules", lambda: AccumulatorsFormal(data=False), "prove", 4),
    Proof("accumulators_bins", lambda: AccumulatorsFormal(data=True), "bmc", 12),
]
