"""Formal wrapper of :class:`hw.index_decoder.IndexDecoder`."""

from amaranth.hdl import Assert, Module, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In

from ..index_decoder import IndexDecoder
from .properties import FormalWrapper, Proof

__all__ = ["IndexDecoderFormal", "PROOFS"]


class IndexDecoderFormal(FormalWrapper):
    """For any index word: every lane sets exactly one mask bit, the one of its index."""

    def __init__(self, *, lanes=3, index_bits=2, dut_class=IndexDecoder):
        self._dut = dut_class(lanes=lanes, index_bits=index_bits)
        super().__init__({"indexes": In(data.ArrayLayout(unsigned(index_bits), lanes))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        m.d.comb += dut.indexes.eq(self.indexes)
        for lane in range(dut.lanes):
            bits = [dut.masks[k][lane] for k in range(dut.n_centroids)]
            m.d.comb += Assert(sum(bits) == 1, f"lane {lane}: not exactly one mask bit")
            for k in range(dut.n_centroids):
                m.d.comb += Assert(dut.masks[k][lane] == (self.indexes[lane] == k),
                                   f"lane {lane}: mask {k} does not match its index")
        return m


PROOFS = [
    Proof("index_decoder_l3_i2", lambda: IndexDecoderFormal(lanes=3, index_bits=2), "prove", 1),
    Proof("index_decoder_l4_i3", lambda: IndexDecoderFormal(lanes=4, index_bits=3), "prove", 1),
]
