"""One-hot decoding of a packed index word into per-centroid lane masks."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.config import check_field

__all__ = ["IndexDecoder"]


class IndexDecoder(wiring.Component):
    """Unpack ``lanes`` weight indexes and decode them into one lane mask per centroid.

    Bit ``l`` of ``masks[k]`` is set when lane ``l`` holds index ``k``: every lane sets exactly
    one bit across all masks. The accumulators use ``masks[k]`` to pick the activations that go
    into bin ``k``. Purely combinational.

    Parameters
    ----------
    lanes : int
        Indexes per word, 1 to 256 (the range of :attr:`golden.config.GoboConfig.lanes`).
    index_bits : int
        Width of one index, 2 to 8 bits; there are ``2**index_bits`` masks.

    Raises
    ------
    TypeError
        If ``lanes`` or ``index_bits`` is not an integer.
    ValueError
        If either is outside its :data:`golden.config.FIELD_RANGES` range.

    Members
    -------
    indexes : ``In(ArrayLayout(unsigned(index_bits), lanes))``
        The packed index word, lane 0 at the lowest bits.
    masks : ``Out(ArrayLayout(unsigned(lanes), 2**index_bits))``
        Per centroid, the lanes whose index selects it.
    """

    def __init__(self, *, lanes, index_bits):
        self._lanes = check_field("lanes", lanes)
        self._index_bits = check_field("index_bits", index_bits)
        super().__init__({
            "indexes": In(data.ArrayLayout(unsigned(index_bits), lanes)),
            "masks": Out(data.ArrayLayout(unsigned(lanes), 1 << index_bits)),
        })

    @property
    def lanes(self):
        """Indexes per word (read-only)."""
        return self._lanes

    @property
    def index_bits(self):
        """Width of one index (read-only)."""
        return self._index_bits

    @property
    def n_centroids(self):
        """Masks: ``2**index_bits``."""
        return 1 << self._index_bits

    @property
    def latency(self):
        """Cycles from ``indexes`` to ``masks``: 0, by construction (no register, so no
        configuration value: :attr:`golden.config.GoboConfig.pe_latency` counts it as 0)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        for k in range(self.n_centroids):
            for lane in range(self._lanes):
                m.d.comb += self.masks[k][lane].eq(self.indexes[lane] == k)
        return m
