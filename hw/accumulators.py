"""The per-centroid accumulators ("bins") of a GOBO PE, double-buffered."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.packing import accumulator_input_fields

from .arith import adder_tree
from .layouts import bins_layout, struct_layout
from .params import ConfigParams

__all__ = ["CentroidAccumulators", "accumulator_input_layout", "bins_layout"]


def accumulator_input_layout(config):
    """One beat into the accumulators: per-centroid lane ``masks`` (from
    :class:`~hw.index_decoder.IndexDecoder`), the ``acts`` of the lanes, and ``last``
    (:func:`golden.hwmodel.packing.accumulator_input_fields`)."""
    return struct_layout(accumulator_input_fields(config))


class CentroidAccumulators(ConfigParams, wiring.Component):
    """Adds each lane's activation into the bin its weight index selects.

    Every accepted beat adds, for every centroid ``k``, the sum of the activations of the lanes
    in ``masks[k]`` (one masked adder tree per bin) into bin ``k``. On the beat with ``last`` the
    completed bins (including that beat) move to a hand-over register offered on ``o`` and the
    working bins restart from zero, so the next dot product accumulates from the very next cycle
    while the reconstruction stage works on the previous one (double buffering).

    If the hand-over register is still full (its transfer not happening in this cycle) when the
    next ``last`` beat arrives, that beat is refused (``i.ready`` low) until the register frees;
    beats other than ``last`` are always accepted. ``i.ready`` therefore depends combinationally
    on ``i.payload.last`` and ``o.ready``.

    Bins are ``config.bin_bits`` wide, which holds any dot product of at most
    ``config.max_dot_length`` activations exactly.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Uses ``lanes``, ``index_bits``, ``act_bits`` and ``bin_bits``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig`.

    Members
    -------
    i : ``In(stream.Signature(accumulator_input_layout(config)))``
        Beats of masks, activations and ``last``.
    o : ``Out(stream.Signature(bins_layout(config)))``
        Completed bins, one transfer per dot product.
    """

    def __init__(self, *, config):
        self._init_config(config)
        super().__init__({
            "i": In(stream.Signature(accumulator_input_layout(config))),
            "o": Out(stream.Signature(bins_layout(config))),
        })

    @property
    def latency(self):
        """Cycles from the transfer of a ``last`` beat to ``o.valid`` of its bins:
        :attr:`~golden.config.GoboConfig.accumulator_latency` (1, the hand-over register)."""
        return self._config.accumulator_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config

        # The working bank; the hand-over bank is o.payload itself.
        acc_bins = Signal(bins_layout(config))

        o_free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~self.i.payload.last | o_free)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(self.i.valid & self.i.ready):
            for k in range(config.n_centroids):
                mask = self.i.payload.masks[k]
                terms = [Mux(mask[lane], self.i.payload.acts[lane], 0)
                         for lane in range(config.lanes)]
                total = Signal(signed(config.bin_bits), name=f"sum{k}")
                m.d.comb += total.eq(acc_bins[k] + adder_tree(terms))
                with m.If(self.i.payload.last):
                    m.d.sync += [acc_bins[k].eq(0), self.o.payload[k].eq(total)]
                with m.Else():
                    m.d.sync += acc_bins[k].eq(total)
            with m.If(self.i.payload.last):
                m.d.sync += self.o.valid.eq(1)

        return m
