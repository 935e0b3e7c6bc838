"""A GOBO processing element: index decoder, per-centroid accumulators and reconstruction."""

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .accumulators import CentroidAccumulators
from .index_decoder import IndexDecoder
from .layouts import centroids_layout, pe_input_layout
from .params import ConfigParams, check_latency
from .reconstruction import ReconstructionMultiplier

__all__ = ["GoboPE"]


class GoboPE(ConfigParams, wiring.Component):
    """One GOBO PE: computes ``sum_k centroid[k] * sum_{n: index[n]=k} act[n]`` per dot product,
    bit-exactly as :func:`golden.hwmodel.pe.pe_dot`.

    A dot product arrives as ``ceil(N / lanes)`` beats (see
    :func:`golden.hwmodel.packing.pe_beats`), the final one flagged ``last``. The beats are decoded
    (:class:`~hw.index_decoder.IndexDecoder`), accumulated into ``2**index_bits`` bins
    (:class:`~hw.accumulators.CentroidAccumulators`, double-buffered) and reconstructed
    (:class:`~hw.reconstruction.ReconstructionMultiplier`).

    Timing, with ``R = config.recon_cycles``: one beat per cycle; a row's result is valid
    :attr:`latency` ``= 1 + R`` cycles after its ``last`` beat transfers; a ``last`` beat is held
    back (``i.ready`` low) until the previous row's reconstruction finishes, so rows issue every
    ``max(beats, R)`` cycles, which is :func:`golden.hwmodel.pe.pe_cycles`. Results leave in row
    order. ``i.ready`` depends combinationally on ``i.payload.last`` and ``o.ready``.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        The PE's parameters.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~golden.config.GoboConfig`.

    Members
    -------
    i : ``In(stream.Signature(pe_input_layout(config)))``
        Input beats: ``indexes`` (``ArrayLayout(unsigned(index_bits), lanes)``), ``acts``
        (``ArrayLayout(signed(act_bits), lanes)``) and ``last``; the bits equal
        :func:`golden.hwmodel.packing.pack` of :func:`golden.hwmodel.packing.pe_input_fields`.
    centroids : ``In(ArrayLayout(signed(centroid_bits), n_centroids))``
        The layer's dictionary, held static while the PE works.
    o : ``Out(stream.Signature(signed(out_bits)))``
        One exact result per dot product.
    """

    def __init__(self, *, config):
        self._init_config(config)
        super().__init__({
            "i": In(stream.Signature(pe_input_layout(config))),
            "centroids": In(centroids_layout(config)),
            "o": Out(stream.Signature(signed(config.out_bits))),
        })

    @property
    def latency(self):
        """Cycles from the transfer of a row's ``last`` beat to ``o.valid`` for that row when
        nothing stalls: :attr:`~golden.config.GoboConfig.pe_latency`, 1 (accumulators to
        hand-over register) + ``recon_cycles``."""
        return self._config.pe_latency

    def elaborate(self, platform):
        m = Module()
        config = self._config
        m.submodules.decoder = decoder = IndexDecoder(lanes=config.lanes,
                                                      index_bits=config.index_bits)
        m.submodules.accumulators = accumulators = CentroidAccumulators(config=config)
        m.submodules.reconstruction = reconstruction = ReconstructionMultiplier(config=config)
        check_latency(self, decoder.latency + accumulators.latency + reconstruction.latency)

        m.d.comb += [
            decoder.indexes.eq(self.i.payload.indexes),
            accumulators.i.valid.eq(self.i.valid),
            accumulators.i.payload.masks.eq(decoder.masks),
            accumulators.i.payload.acts.eq(self.i.payload.acts),
            accumulators.i.payload.last.eq(self.i.payload.last),
            self.i.ready.eq(accumulators.i.ready),
            reconstruction.centroids.eq(self.centroids),
        ]
        wiring.connect(m, accumulators.o, reconstruction.i)
        wiring.connect(m, reconstruction.o, wiring.flipped(self.o))
        return m
