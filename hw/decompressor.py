"""GOBO's memory-compression mode: expands packed indexes, the dictionary and the outliers back
into the dense integer weight stream that a conventional MAC PE consumes."""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.packing import (
    decompressor_outlier_fields,
    index_beat_fields,
    weight_beat_fields,
)

from .layouts import centroids_layout, struct_layout
from .params import MacParams

__all__ = ["Decompressor"]


class Decompressor(MacParams, wiring.Component):
    """Turns beats of ``lanes`` indexes into beats of ``lanes`` dense weights, bit-exactly
    :func:`golden.hwmodel.mac.decompress`.

    This is the first application of the GOBO paper (MICRO 2020, section on memory
    compression): the weights travel and are stored in GOBO form, and a conventional datapath
    computes on the dense weights. Each accepted beat looks its indexes up in the dictionary
    into the stage register; while the head outlier record falls inside that beat it replaces
    one weight per cycle (so a beat with ``k`` outliers leaves ``k`` cycles later); the beat
    leaves on ``o`` once the head record lies beyond it. Each row's records end with a marker
    record (``col == max_dot_length``), consumed with the row's ``last`` beat, so the
    decompressor never has to guess whether more outliers are coming. With no outlier in a
    beat, one beat per cycle flows through with :attr:`latency` 1.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Uses ``lanes``, ``index_bits`` and ``max_dot_length``.
    weight_bits : int
        Width of a dense signed weight (and of a centroid and an outlier value), 2 to 32 bits.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig` or ``weight_bits`` not an
        integer.
    ValueError
        If ``weight_bits`` is outside 2 to 32.

    Members
    -------
    i : ``In(stream.Signature(struct_layout(index_beat_fields(config))))``
        ``indexes`` and ``last``.
    outliers : ``In(stream.Signature(struct_layout(decompressor_outlier_fields(...))))``
        ``col`` and ``value`` of each outlier, in column order, one marker per row.
    centroids : ``In(ArrayLayout(signed(weight_bits), n_centroids))``
        The dictionary as integer weights, held static.
    o : ``Out(stream.Signature(struct_layout(weight_beat_fields(config, weight_bits))))``
        ``weights`` and ``last``.
    busy : ``Out(1)``
        A beat is in the stage register (accepted, not yet on ``o``).
    """

    def __init__(self, *, config, weight_bits):
        self._init_mac(config, weight_bits)
        super().__init__({
            "i": In(stream.Signature(struct_layout(index_beat_fields(config)))),
            "outliers": In(stream.Signature(
                struct_layout(decompressor_outlier_fields(config, weight_bits)))),
            "centroids": In(centroids_layout(config, weight_bits)),
            "o": Out(stream.Signature(struct_layout(weight_beat_fields(config, weight_bits)))),
            "busy": Out(1),
        })

    @property
    def latency(self):
        """Cycles from the transfer of a beat without outliers to ``o.valid`` of it:
        :attr:`~golden.config.GoboConfig.decompressor_latency` (1, the stage register); each
        outlier in the beat adds a cycle."""
        return self._config.decompressor_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config
        lanes, end = config.lanes, config.max_dot_length
        col_shape = unsigned(end.bit_length())

        w_valid = Signal()
        w_col = Signal(col_shape)        # column of lane 0 of the beat in the stage register
        next_col = Signal(col_shape)     # column of lane 0 of the next accepted beat
        head = self.outliers.payload
        m.d.comb += self.busy.eq(w_valid)

        # head.col >= w_col holds for a well-formed stream: earlier beats consumed theirs.
        hit = Signal()
        m.d.comb += hit.eq(self.outliers.valid & (head.col != end)
                           & (head.col < w_col + lanes))
        m.d.comb += self.o.valid.eq(w_valid & self.outliers.valid & ~hit)
        o_taken = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(~w_valid | o_taken),
            self.outliers.ready.eq(w_valid & (hit | (o_taken & self.o.payload.last))),
        ]

        with m.If(o_taken):
            m.d.sync += w_valid.eq(0)

        weights, indexes = self.o.payload.weights, self.i.payload.indexes

        offset = Signal(col_shape)
        m.d.comb += offset.eq(head.col - w_col)
        with m.If(w_valid & hit):
            for lane in range(lanes):
                with m.If(offset == lane):
                    m.d.sync += weights[lane].eq(head.value)

        with m.If(self.i.valid & self.i.ready):
            for lane in range(lanes):
                m.d.sync += weights[lane].eq(self.centroids[indexes[lane]])
            m.d.sync += [
                self.o.payload.last.eq(self.i.payload.last),
                w_valid.eq(1),
                w_col.eq(next_col),
                next_col.eq(0),
            ]
            with m.If(~self.i.payload.last):
                m.d.sync += next_col.eq(next_col + lanes)
        return m
