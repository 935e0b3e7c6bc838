"""An alternative GOBO PE whose bins take at most ``bin_inputs`` lanes a cycle, stalling on
collisions (issue 18, item 7; docs/efficiency.md, "PE alternatives")."""

from amaranth.hdl import Cat, Const, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.config import check_int

from .arith import adder_tree
from .index_decoder import IndexDecoder
from .layouts import bins_layout, centroids_layout, pe_input_layout
from .params import ConfigParams, check_latency
from .reconstruction import ReconstructionMultiplier

__all__ = ["CollisionPE"]


class CollisionPE(ConfigParams, wiring.Component):
    """A GOBO PE with ``bin_inputs`` (K) adder-tree inputs per bin instead of ``lanes``; bit-exact
    :func:`golden.hwmodel.pe.pe_dot`, with the present :class:`~hw.pe.GoboPE`'s ports.

    Each cycle, for every bin ``k``, the first K lanes (lowest first) of the beat that select
    ``k`` and are not yet added go through a K-input adder tree into bin ``k``; a lane reaches
    tree input ``j`` when it is the ``j``-th such lane (a one-hot AND-OR selection). A beat with
    more than K lanes on one bin stays (``i.ready`` low) until all its lanes are in: it takes
    :func:`golden.hwmodel.pe_alternatives.beat_cycles` cycles. The rest is the present PE's: on
    the final cycle of the ``last`` beat the bins move to a hand-over register (refused while it
    is full) and the :class:`~hw.reconstruction.ReconstructionMultiplier` reads them, so rows are
    handed over ``max(row cycles, recon_cycles)`` apart
    (:func:`golden.hwmodel.pe_alternatives.collision_cycles`) and leave :attr:`latency` cycles
    after it. ``i.ready`` depends combinationally on the beat's indexes, ``last`` and ``o.ready``.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        The PE's parameters, as :class:`~hw.pe.GoboPE`'s.
    bin_inputs : int
        Adder-tree inputs per bin, 1 to ``config.lanes``.

    Raises
    ------
    TypeError
        If ``config`` is not a GoboConfig or ``bin_inputs`` not an integer.
    ValueError
        If ``bin_inputs`` is outside 1 .. ``lanes``.

    Members
    -------
    i, centroids, o
        As :class:`~hw.pe.GoboPE`'s.
    """

    def __init__(self, *, config, bin_inputs):
        self._init_config(config)
        self._bin_inputs = check_int("bin_inputs", bin_inputs, 1, config.lanes)
        super().__init__({
            "i": In(stream.Signature(pe_input_layout(config))),
            "centroids": In(centroids_layout(config)),
            "o": Out(stream.Signature(signed(config.out_bits))),
        })

    @property
    def bin_inputs(self):
        """Adder-tree inputs per bin (read-only)."""
        return self._bin_inputs

    @property
    def latency(self):
        """Cycles from the final cycle of a row's ``last`` beat to ``o.valid`` when nothing
        stalls: :attr:`~golden.config.GoboConfig.pe_latency`, as the present PE."""
        return self._config.pe_latency

    def elaborate(self, platform):
        m = Module()
        config, width = self._config, self._bin_inputs
        lanes = config.lanes
        m.submodules.decoder = decoder = IndexDecoder(lanes=lanes, index_bits=config.index_bits)
        m.submodules.reconstruction = recon = ReconstructionMultiplier(config=config)
        check_latency(self, config.accumulator_latency + recon.latency)
        m.d.comb += [decoder.indexes.eq(self.i.payload.indexes),
                     recon.centroids.eq(self.centroids)]
        wiring.connect(m, recon.o, wiring.flipped(self.o))

        acc_bins = Signal(bins_layout(config))
        done = Signal(lanes)             # lanes of the current beat already added
        taken = []                       # per bin, the lanes added this cycle
        fits = []                        # per bin, whether all its remaining lanes fit now
        totals = []
        count_shape = range(lanes + 1)
        for k in range(config.n_centroids):
            pending = Signal(lanes, name=f"pending{k}")
            m.d.comb += pending.eq(decoder.masks[k] & ~done)
            # rank[l]: pending lanes below l; lane l feeds tree input rank[l] if it is below K.
            rank = Const(0, count_shape)
            chosen = []
            inputs = [[] for _ in range(width)]
            for lane in range(lanes):
                for j in range(min(width, lane + 1)):
                    inputs[j].append(Cat(pending[lane] & (rank == j)).replicate(config.act_bits)
                                     & self.i.payload.acts[lane])
                chosen.append(pending[lane] & (rank < width))
                nxt = Signal(count_shape, name=f"rank{k}_{lane + 1}")
                m.d.comb += nxt.eq(rank + pending[lane])
                rank = nxt
            terms = []
            for j, lane_terms in enumerate(inputs):
                term = Signal(signed(config.act_bits), name=f"in{k}_{j}")
                m.d.comb += term.eq(_or_all(lane_terms))
                terms.append(term)
            total = Signal(signed(config.bin_bits), name=f"sum{k}")
            m.d.comb += total.eq(acc_bins[k] + adder_tree(terms))
            taken.append(Cat(*chosen))
            fits.append(rank <= width)
            totals.append(total)

        final = Signal()                 # this cycle adds the beat's last lanes
        m.d.comb += final.eq(Cat(*fits).all())
        o_free = ~recon.i.valid | recon.i.ready
        advance = self.i.valid & (~final | ~self.i.payload.last | o_free)
        m.d.comb += self.i.ready.eq(final & (~self.i.payload.last | o_free))

        with m.If(recon.i.valid & recon.i.ready):
            m.d.sync += recon.i.valid.eq(0)
        with m.If(advance):
            with m.If(final):
                m.d.sync += done.eq(0)
            with m.Else():
                m.d.sync += done.eq(done | _or_all(taken))
            with m.If(final & self.i.payload.last):
                m.d.sync += recon.i.valid.eq(1)
                for k, total in enumerate(totals):
                    m.d.sync += [acc_bins[k].eq(0), recon.i.payload[k].eq(total)]
            with m.Else():
                for k, total in enumerate(totals):
                    m.d.sync += acc_bins[k].eq(total)
        return m


def _or_all(values):
    """The bitwise OR of ``values`` (a non-empty list), as a balanced tree."""
    while len(values) > 1:
        values = [values[i] | values[i + 1] for i in range(0, len(values) - 1, 2)] + (
            [values[-1]] if len(values) % 2 else [])
    return values[0]
