"""One-hot decoding of a packed index word into per-centroid lane masks."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["IndexDecoder"]


class IndexDecoder(wiring.Component):
    """Unpack ``lanes`` weight indexes and decode them into one lane mask per centroid.

    Bit ``l`` of ``masks[k]`` is set when lane ``l`` holds index ``k``: every lane sets exactly
    one bit across all masks. The accumulators use ``masks[k]`` to pick the activations that go
    into bin ``k``. Purely combinational.

    Parameters
    ----------
    lanes : int
        Indexes per word.
    index_bits : int
        Width of one index; there are ``2**index_bits`` masks.

    Members
    -------
    indexes : ``In(ArrayLayout(unsigned(index_bits), lanes))``
        The packed index word, lane 0 at the lowest bits.
    masks : ``Out(ArrayLayout(unsigned(lanes), 2**index_bits))``
        Per centroid, the lanes whose index selects it.
    """

    def __init__(self, *, lanes, index_bits):
        for name, value in (("lanes", lanes), ("index_bits", index_bits)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self._lanes = lanes
        self._index_bits = index_bits
        super().__init__({
            "indexes": In(data.ArrayLayout(unsigned(index_bits), lanes)),
            "masks": Out(data.ArrayLayout(unsigned(lanes), 1 << index_bits)),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def index_bits(self):
        return self._index_bits

    @property
    def n_centroids(self):
        return 1 << self._index_bits

    @property
    def latency(self):
        """Cycles from ``indexes`` to ``masks``: 0 (combinational)."""
        return 0

    def elaborate(self, platform):
        m = Module()
        for k in range(self.n_centroids):
            for lane in range(self._lanes):
                m.d.comb += self.masks[k][lane].eq(self.indexes[lane] == k)
        return m
