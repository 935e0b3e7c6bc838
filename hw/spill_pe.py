"""An alternative GOBO PE with narrow bins spilled into the reconstruction every few beats
(issue 18, item 7; docs/efficiency.md, "PE alternatives")."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import check_int
from golden.hwmodel.pe_alternatives import spill_bin_bits

from .arith import adder_tree
from .index_decoder import IndexDecoder
from .layouts import centroids_layout, pe_input_layout
from .params import ConfigParams, check_latency

__all__ = ["SpillPE"]


class SpillPE(ConfigParams, wiring.Component):
    """A GOBO PE whose bins hold only ``spill_beats`` beats; bit-exact
    :func:`golden.hwmodel.pe.pe_dot`, with the present :class:`~hw.pe.GoboPE`'s ports.

    The bins (:attr:`bin_bits` wide, :func:`golden.hwmodel.pe_alternatives.spill_bin_bits`,
    against the present PE's ``config.bin_bits``) take one beat a cycle through one masked
    ``lanes``-input adder tree each, as the present PE's. Every ``spill_beats`` beats, and on a
    row's ``last`` beat, the chunk's bins move to a hand-over register and restart from zero; the
    reconstruction stage (``recon_multipliers`` multipliers for ``recon_cycles`` steps, as
    :class:`~hw.reconstruction.ReconstructionMultiplier`) adds ``sum_k centroid[k] * bin[k]`` of
    the chunk into the row's running sum, which it registers into ``o`` after the row's last
    chunk. The multiplier, idle most of a row in the present PE, works once per chunk; with
    ``spill_beats >= recon_cycles`` it keeps pace. A chunk end is refused (``i.ready`` low) while
    the hand-over register is full, so chunks are handed over ``max(chunk beats, recon_cycles)``
    apart (:func:`golden.hwmodel.pe_alternatives.spill_cycles`) and a row's result leaves
    :attr:`latency` cycles after its ``last`` beat. ``i.ready`` depends combinationally on
    ``i.payload.last`` and ``o.ready``.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        The PE's parameters, as :class:`~hw.pe.GoboPE`'s.
    spill_beats : int
        Beats per chunk, 1 to 2**16.

    Raises
    ------
    TypeError
        If ``config`` is not a GoboConfig or ``spill_beats`` not an integer.
    ValueError
        If ``spill_beats`` is outside 1 .. 2**16.

    Members
    -------
    i, centroids, o
        As :class:`~hw.pe.GoboPE`'s.
    """

    def __init__(self, *, config, spill_beats):
        self._init_config(config)
        self._spill_beats = check_int("spill_beats", spill_beats, 1, 1 << 16)
        super().__init__({
            "i": In(stream.Signature(pe_input_layout(config))),
            "centroids": In(centroids_layout(config)),
            "o": Out(stream.Signature(signed(config.out_bits))),
        })

    @property
    def spill_beats(self):
        """Beats per chunk (read-only)."""
        return self._spill_beats

    @property
    def bin_bits(self):
        """Width of a bin: at most the present PE's ``config.bin_bits``."""
        return min(spill_bin_bits(self._config, self._spill_beats), self._config.bin_bits)

    @property
    def latency(self):
        """Cycles from the transfer of a row's ``last`` beat to ``o.valid`` when nothing stalls:
        :attr:`~golden.config.GoboConfig.pe_latency`, as the present PE (1 hand-over +
        ``recon_cycles`` steps)."""
        return self._config.pe_latency

    def elaborate(self, platform):
        m = Module()
        config, chunk = self._config, self._spill_beats
        steps, mults = config.recon_cycles, config.recon_multipliers
        check_latency(self, config.accumulator_latency + steps)
        m.submodules.decoder = decoder = IndexDecoder(lanes=config.lanes,
                                                      index_bits=config.index_bits)
        m.d.comb += decoder.indexes.eq(self.i.payload.indexes)

        layout = data.ArrayLayout(signed(self.bin_bits), config.n_centroids)
        acc_bins, handover = Signal(layout), Signal(layout)
        held, held_last = Signal(), Signal()      # hand-over full; it is a row's last chunk
        beat = Signal(range(chunk))
        step = Signal(range(steps))
        partial = Signal(signed(config.out_bits))  # the row's running sum

        # Reconstruction of the held chunk, one step of `mults` products a cycle.
        products = []
        for p in range(mults):
            if steps == 1:
                bin_, centroid = handover[p], self.centroids[p]
            else:
                bin_ = handover.as_value().word_select(step * mults + p,
                                                       self.bin_bits).as_signed()
                centroid = self.centroids.as_value().word_select(
                    step * mults + p, config.centroid_bits).as_signed()
            product = Signal(signed(self.bin_bits + config.centroid_bits), name=f"product{p}")
            m.d.comb += product.eq(bin_ * centroid)
            products.append(product)
        step_sum = Signal(signed(config.out_bits))
        m.d.comb += step_sum.eq(sum(products[1:], products[0]) + partial)

        o_free = ~self.o.valid | self.o.ready
        released = Signal()                        # the held chunk's last step happens now
        m.d.comb += released.eq(held & (step == steps - 1) & (~held_last | o_free))
        chunk_end = self.i.payload.last | (beat == chunk - 1)
        m.d.comb += self.i.ready.eq(~chunk_end | ~held | released)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(released):
            m.d.sync += [held.eq(0), step.eq(0)]
            with m.If(held_last):
                m.d.sync += [self.o.payload.eq(step_sum), self.o.valid.eq(1), partial.eq(0)]
            with m.Else():
                m.d.sync += partial.eq(step_sum)
        with m.Elif(held & (step != steps - 1)):
            m.d.sync += [partial.eq(step_sum), step.eq(step + 1)]

        with m.If(self.i.valid & self.i.ready):
            for k in range(config.n_centroids):
                mask = decoder.masks[k]
                terms = [Mux(mask[lane], self.i.payload.acts[lane], 0)
                         for lane in range(config.lanes)]
                total = Signal(signed(self.bin_bits), name=f"sum{k}")
                m.d.comb += total.eq(acc_bins[k] + adder_tree(terms))
                with m.If(chunk_end):
                    m.d.sync += [acc_bins[k].eq(0), handover[k].eq(total)]
                with m.Else():
                    m.d.sync += acc_bins[k].eq(total)
            with m.If(chunk_end):
                m.d.sync += [held.eq(1), held_last.eq(self.i.payload.last), beat.eq(0)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
