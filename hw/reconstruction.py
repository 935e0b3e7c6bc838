"""The reconstruction stage of a GOBO PE: ``sum_k centroid[k] * bin[k]``."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .accumulators import bins_layout
from .layouts import centroids_layout

__all__ = ["ReconstructionMultiplier"]


class ReconstructionMultiplier(wiring.Component):
    """Multiplies every bin by its centroid and sums the products, exactly.

    ``config.recon_multipliers`` multipliers work for ``config.recon_cycles`` cycles per dot
    product: in step ``j`` multiplier ``p`` forms ``centroid[j*M + p] * bin[j*M + p]``
    (``M = recon_multipliers``), and the step's products are added to a running sum. The bins are
    read straight from ``i.payload`` while ``i.valid`` is high and are only accepted
    (``i.ready`` high) in the final step, so the upstream hand-over register is the only copy
    needed. The final sum is registered into ``o.payload``; if ``o`` still holds an untaken
    result, the final step waits (and ``i`` waits with it), so ``i.ready`` depends
    combinationally on ``o.ready``.

    All widths are exact: a product of a ``bin_bits`` bin and a ``centroid_bits`` centroid, and
    every partial sum, fit ``config.out_bits`` (see :attr:`golden.config.GoboConfig.out_bits`).

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Uses ``index_bits``, ``centroid_bits``, ``bin_bits``, ``out_bits`` and
        ``recon_multipliers``.

    Members
    -------
    i : ``In(stream.Signature(ArrayLayout(signed(bin_bits), n_centroids)))``
        The bins of one dot product.
    centroids : ``In(ArrayLayout(signed(centroid_bits), n_centroids))``
        The dictionary; must hold still while a dot product is reconstructed.
    o : ``Out(stream.Signature(signed(out_bits)))``
        One exact result per dot product, in order.
    """

    def __init__(self, *, config):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(bins_layout(config))),
            "centroids": In(centroids_layout(config)),
            "o": Out(stream.Signature(signed(config.out_bits))),
        })

    @property
    def config(self):
        return self._config

    @property
    def latency(self):
        """Cycles from ``i.valid`` rising (stage idle, ``o`` free) to ``o.valid`` of the result:
        ``recon_cycles`` (the steps; the last one writes the output register)."""
        return self._config.recon_cycles

    def elaborate(self, platform):
        m = Module()
        config = self._config
        steps, mults = config.recon_cycles, config.recon_multipliers

        step = Signal(range(steps), name="step")
        partial = Signal(signed(config.out_bits), name="partial")  # running sum of earlier steps

        products = []
        for p in range(mults):
            if steps == 1:
                bin_, centroid = self.i.payload[p], self.centroids[p]
            else:
                # word_select by the step: a multiplexer in front of each multiplier.
                bin_ = self.i.payload.as_value().word_select(
                    step * mults + p, config.bin_bits).as_signed()
                centroid = self.centroids.as_value().word_select(
                    step * mults + p, config.centroid_bits).as_signed()
            product = Signal(signed(config.product_bits), name=f"product{p}")
            m.d.comb += product.eq(bin_ * centroid)
            products.append(product)
        step_sum = Signal(signed(config.out_bits), name="step_sum")
        m.d.comb += step_sum.eq(sum(products[1:], products[0]) + partial)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(self.i.valid):
            with m.If(step == steps - 1):
                with m.If(~self.o.valid | self.o.ready):
                    m.d.comb += self.i.ready.eq(1)
                    m.d.sync += [
                        self.o.payload.eq(step_sum),
                        self.o.valid.eq(1),
                        partial.eq(0),
                        step.eq(0),
                    ]
            with m.Else():
                m.d.sync += [partial.eq(step_sum), step.eq(step + 1)]

        return m
