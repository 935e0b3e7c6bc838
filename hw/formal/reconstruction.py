"""Formal wrappers of :class:`hw.reconstruction.ReconstructionMultiplier` and
:class:`hw.pe.GoboPE`: both take a stream of work and a static dictionary and give one result
per dot product."""

from amaranth.hdl import Assert, Assume, Signal, signed
from amaranth.lib import stream
from amaranth.lib.wiring import In

from golden.config import GoboConfig

from ..layouts import centroids_layout
from ..reconstruction import ReconstructionMultiplier
from .properties import FormalWrapper, Proof, raw

__all__ = ["ResultStreamFormal", "PROOFS", "SMALL"]

#: Four centroids, two multipliers (two steps), narrow bins and centroids.
SMALL = GoboConfig(lanes=2, index_bits=2, act_bits=2, centroid_bits=2, max_dot_length=2,
                   recon_multipliers=2)


class ResultStreamFormal(FormalWrapper):
    """The environment offers ``i`` under the stream rules, holds ``centroids`` still (the
    contract of both components: the dictionary is static while they work) and takes ``o``
    whenever it likes. Asserted: ``o`` obeys the stream rules and never has more results than
    the environment gave dot products (``i`` transfers, or ``last`` beats with ``rows=True``),
    nor more than ``max_outstanding`` results in flight (``count=True``). With ``data=True``
    (one input per product: the reconstruction), each result equals ``sum_k centroid[k] *
    bin[k]`` of its input."""

    def __init__(self, *, dut_class=ReconstructionMultiplier, config=SMALL, rows=False,
                 data=False, count=True, max_outstanding=1):
        self._config = config
        self._dut = dut_class(config=config)
        self._rows = rows
        self._data = data
        self._count = count
        self._max_outstanding = max_outstanding
        i_layout = self._dut.i.payload.shape()
        super().__init__({
            "i": In(stream.Signature(i_layout)),
            "centroids": In(centroids_layout(config)),
            "o_ready": In(1),
        })

    def elaborate(self, platform):
        m, dut = self.stream_dut()
        config = self._config
        m.d.comb += dut.centroids.eq(self.centroids)
        started = Signal(name="started")
        held = Signal.like(raw(self.centroids), name="centroids_held")
        m.d.sync += [started.eq(1), held.eq(raw(self.centroids))]
        with m.If(started):
            m.d.comb += Assume(raw(self.centroids) == held)

        if not self._count:
            return m
        i_xfer = dut.i.valid & dut.i.ready
        o_xfer = dut.o.valid & dut.o.ready
        products = i_xfer & dut.i.payload.last if self._rows else i_xfer
        outstanding = Signal(range(self._max_outstanding + 2), name="outstanding")
        m.d.sync += outstanding.eq(outstanding + products - o_xfer)
        m.d.comb += [
            Assert(outstanding <= self._max_outstanding, "too many results in flight"),
            Assert(~dut.o.valid | (outstanding != 0), "a result without a dot product"),
        ]
        if self._data:
            expected = Signal(signed(config.out_bits), name="expected")
            terms = [self.centroids[k] * dut.i.payload[k] for k in range(config.n_centroids)]
            with m.If(i_xfer):
                m.d.sync += expected.eq(sum(terms[1:], terms[0]))
            with m.If(dut.o.valid):
                m.d.comb += Assert(dut.o.payload == expected,
                                   "result differs from sum centroid * bin")
        return m


PROOFS = [
    Proof("reconstruction_stream_rules", lambda: ResultStreamFormal(count=False), "prove", 4),
    Proof("reconstruction_result", lambda: ResultStreamFormal(data=True), "bmc", 8),
]
