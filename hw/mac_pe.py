"""The conventional multiply-accumulate baseline PE (integer weights x integer activations)."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.mac import mac_out_bits

from .arith import adder_tree
from .layouts import mac_input_layout
from .params import MacParams

__all__ = ["MacPE"]


class MacPE(MacParams, wiring.Component):
    """A conventional MAC PE: ``lanes`` multipliers, a balanced adder tree and an accumulator,
    bit-exactly :func:`golden.hwmodel.mac.mac_dot`.

    It has the GOBO PE's stream shape and the same single-cycle structure as its bins
    (:class:`~hw.accumulators.CentroidAccumulators`): every accepted beat adds the adder tree of
    its ``lanes`` products into the accumulator; the ``last`` beat moves the completed sum into
    the output register and restarts the accumulator from zero, so rows follow each other with
    no bubble. A ``last`` beat is refused (``i.ready`` low) while the output register still
    holds an untaken result, so ``i.ready`` depends combinationally on ``i.payload.last`` and
    ``o.ready``. Equal ``lanes`` means equal multiply-accumulates per cycle as the GOBO PE.

    The multipliers are not pipelined (as the GOBO PE's bins are not): the critical path is one
    multiplier, the adder tree and the accumulator.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Uses ``lanes``, ``act_bits`` and ``max_dot_length``.
    weight_bits : int
        Width of a signed integer weight, 2 to 32 bits.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig` or ``weight_bits`` not an
        integer.
    ValueError
        If ``weight_bits`` is outside 2 to 32.

    Members
    -------
    i : ``In(stream.Signature(mac_input_layout(config, weight_bits)))``
        Input beats: ``weights``, ``acts`` and ``last``; the bits equal
        :func:`golden.hwmodel.packing.pack` of :func:`golden.hwmodel.packing.mac_input_fields`.
    o : ``Out(stream.Signature(signed(mac_out_bits(config, weight_bits))))``
        One exact result per dot product.
    """

    def __init__(self, *, config, weight_bits):
        self._init_mac(config, weight_bits)
        super().__init__({
            "i": In(stream.Signature(mac_input_layout(config, weight_bits))),
            "o": Out(stream.Signature(signed(mac_out_bits(config, weight_bits)))),
        })

    @property
    def out_bits(self):
        """Width of a result: :func:`golden.hwmodel.mac.mac_out_bits`."""
        return mac_out_bits(self._config, self._weight_bits)

    @property
    def latency(self):
        """Cycles from the transfer of a ``last`` beat to ``o.valid`` of its result:
        :attr:`~golden.config.GoboConfig.mac_pe_latency` (1, the output register), whatever
        ``weight_bits``."""
        return self._config.mac_pe_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config

        acc = Signal(signed(self.out_bits), name="acc")
        weights, acts = self.i.payload.weights, self.i.payload.acts
        products = []
        for lane in range(config.lanes):
            product = Signal(signed(self._weight_bits + config.act_bits), name=f"product{lane}")
            m.d.comb += product.eq(weights[lane] * acts[lane])
            products.append(product)
        total = Signal(signed(self.out_bits), name="total")
        m.d.comb += total.eq(acc + adder_tree(products))

        o_free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(~self.i.payload.last | o_free)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(self.i.valid & self.i.ready):
            with m.If(self.i.payload.last):
                m.d.sync += [acc.eq(0), self.o.payload.eq(total), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += acc.eq(total)
        return m
