"""Formal wrappers of :class:`hw.weight_fetcher.WeightFetcher`, GOBO and dense layouts: its
AXI4 read-manager rules (ARM IHI 0022 E), and its off-chip layout and bank handshake against a
shadow model of the image."""

import types

from amaranth.hdl import Assert, Assume, Cat, Module, Mux, Signal
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from golden.config import GoboConfig
from golden.hwmodel.offchip import AXI_BOUNDARY, mac_word_beats, word_beats
from golden.hwmodel.packing import format_bits, offchip_header_fields

from ..weight_fetcher import AXI_ADDR_BITS, WeightFetcher
from .properties import FormalWrapper, Proof, stream_rules

__all__ = ["FetcherFormal", "PROOFS", "SMALL", "WIDE", "WIDE_BUS", "DENSE_BITS"]

#: 2 PEs x 2 lanes of 2-bit fields, up to 3 row blocks (so block 2 reuses block 0's bank) of 1
#: or 2 chunks, 2 outlier words a bank; on a 1-byte bus an outlier word takes 2 beats.
SMALL = GoboConfig(lanes=2, index_bits=2, act_bits=2, centroid_bits=2, residual_bits=2, pes=2,
                   outlier_lanes=2, max_outlier_words=4, max_rows=6, max_tokens=2,
                   max_dot_length=4, bias_bits=4, max_align_shift=1)
#: The same with 512 chunks and 512 outlier words a bank, on a 2-byte bus (the header's 11 bits
#: fit one beat): parts longer than one 256-beat burst.
WIDE = SMALL.replace(max_dot_length=1024, max_outlier_words=1024, max_rows=512)
WIDE_BUS = 2
#: Dense weights of the MAC flavour proofs: 4 bits, so a weight word takes 2 beats of a 1-byte bus.
DENSE_BITS = 4
_BUS = 1

# AXI4 encodings (IHI 0022 E, A3.4.1): ARBURST INCR.
_INCR = 1


class FetcherFormal(FormalWrapper):
    """The fetcher's inputs are free top-level ports: the slave's side of AXI (``arready``,
    ``rvalid``, ``rid``, ``rdata``, ``rlast``) and the controller's (``start``, ``base``,
    ``blocks``, ``chunks``, ``merged``). Environment assumed in both proofs: ``base`` is aligned to
    the bus (the tile's documented contract), the layer is legal (``blocks >= 1``, ``1 <= chunks <=
    chunks_max``: the controller launches no other) and ``start`` (the controller's ``launch``)
    comes only when no request is offered (``arvalid`` low; the tile launches only after the
    previous run, when every block is loaded: ``layout=True`` proves the fetcher is then quiet).

    ``layout=False`` (k-induction, unbounded): the AXI4 read-manager rules. Once ``arvalid`` is
    high without ``arready``, ``arvalid`` and ``arid``/``araddr``/``arlen``/``arsize``/``arburst``
    hold in the next cycle (A3.2.1, A3.2.2); ``arid`` is 0 (one ID, in-order data); every burst is
    INCR (``arburst`` = 1), of full-width beats (``arsize`` = log2 of the bus bytes, A3.4.1), at a
    beat-aligned address, of 1 to 256 beats (``arlen`` 8 bits, AXI4 INCR, A3.4.1) and never crosses
    a 4 KB boundary (A3.4.1); each burst starts where the previous one ended, from ``base``
    (monotone, no beat skipped or requested twice); ``rready`` is always high (docs/offchip.md
    section 3). Nothing else is assumed: any ``arready``, any R traffic and data (headers legal or
    not), any ``merged``.

    ``layout=True`` (bounded): the image and the banks, against a shadow model that walks the R
    beats in order through the layout (docs/offchip.md section 2: per block the header (GOBO only),
    the bias word, ``C`` index or dense weight words, ``W_b`` outlier words, each word ``beats``
    beats). The slave is assumed to send R beats only for beats already requested (any latency, any
    number of bursts outstanding, any ``rdata``; ``rlast`` and ``rid`` are free because the fetcher
    counts beats and uses one ID), and an image that the layout allows (a header's ``W_b`` at most
    ``max_outlier_words // 2``). One run, started in the first cycle (``start`` resets every
    register of the walk), from ``base`` = 4 KB - 2 beats (block 0's head is split there; the
    addresses from any base are the k-induction's). The controller is assumed to hold ``blocks`` and
    ``chunks`` during the run, to start ``merged`` at 0 the cycle after ``start`` and never lower it
    nor raise it past ``loaded`` (``tile_controller_streamed_gates`` proves the controller's side).
    Asserted:

    - requests: never beyond the blocks whose size is known (the heads of the blocks so far, the
      outliers of those whose header arrived); once every block is loaded nothing is offered and
      nothing is owed (so, with the k-induction's contiguity, every beat of the image is requested
      exactly once);
    - words: each word is written on its last beat, to its section's port only, at its bank's
      address (bias: ``b % 2``; index or weight word ``j``: ``(b % 2)*C + j``; outlier word ``i``:
      ``(b % 2)*max_outlier_words/2 + i``), holding its beats in order; nothing else is written; a
      header's ``W_b`` lands in ``bank_words[b % 2]``;
    - banks: a word or header of block ``b`` is written only when ``b <= merged + 1``, so the bank
      of block ``b - 2`` has been released by the merge;
    - ``loaded`` equals the blocks whose words have all been written (it never passes them);
    - ``error`` stays 0 (a legal image, an aligned ``base``).

    ``layout=False`` also asserts what a fetch error (``error``: any header here) does: once
    ``arvalid`` is low after it, no request is offered until the next ``start``, and ``loaded``
    equals ``blocks`` (every block released, so the tile's run ends).
    """

    def __init__(self, *, config=SMALL, bus_bytes=_BUS, weight_bits=None, layout=True,
                 dut_class=WeightFetcher):
        self._config = config
        self._weight_bits = weight_bits
        self._layout = layout
        self._dut = dut = dut_class(config=config, bus_bytes=bus_bytes, weight_bits=weight_bits)
        axi = dut.axi
        super().__init__({
            "arready": In(1), "rvalid": In(1), "rid": In(1), "rdata": In(len(axi.rdata)),
            "rlast": In(1),
            "start": In(1), "base": In(AXI_ADDR_BITS), "blocks": In(len(dut.blocks)),
            "chunks": In(len(dut.chunks)), "merged": In(len(dut.merged)),
        })

    def elaborate(self, platform):
        m = Module()
        self.no_reset(m)
        m.submodules.dut = dut = self._dut
        axi = dut.axi
        m.d.comb += [axi.arready.eq(self.arready), axi.rvalid.eq(self.rvalid),
                     axi.rid.eq(self.rid), axi.rdata.eq(self.rdata), axi.rlast.eq(self.rlast),
                     dut.start.eq(self.start), dut.base.eq(self.base),
                     dut.blocks.eq(self.blocks), dut.chunks.eq(self.chunks),
                     dut.merged.eq(self.merged)]
        bus_bytes = dut.bus_bytes
        m.d.comb += Assume((self.base[:ceil_log2(bus_bytes)] == 0) & (self.blocks != 0) &
                           (self.chunks != 0) & (self.chunks <= self._config.chunks_max))
        with m.If(self.start):
            m.d.comb += Assume(~axi.arvalid)
        if self._layout:
            self._image(m, dut)
        else:
            self._axi_rules(m, dut)
        return m

    def _axi_rules(self, m, dut):
        axi, start, base = dut.axi, self.start, self.base
        bus_bytes = dut.bus_bytes
        request = types.SimpleNamespace(
            valid=axi.arvalid, ready=axi.arready,
            payload=Cat(axi.arid, axi.araddr, axi.arlen, axi.arsize, axi.arburst))
        stream_rules(m, request, name="ar")
        beats = axi.arlen + 1
        # Each burst starts where the previous one ended, from base: monotone, no beat skipped
        # or requested twice.
        next_addr = Signal(AXI_ADDR_BITS, name="next_addr")
        with m.If(start):
            m.d.sync += next_addr.eq(base)
        with m.Elif(axi.arvalid & axi.arready):
            m.d.sync += next_addr.eq(axi.araddr + beats * bus_bytes)
        with m.If(axi.arvalid):
            m.d.comb += [
                Assert(axi.arid == 0, "ar: not the one ID"),
                Assert(axi.arburst == _INCR, "ar: not an INCR burst"),
                Assert(axi.arsize == ceil_log2(bus_bytes), "ar: beats not the bus width"),
                Assert(axi.araddr[:ceil_log2(AXI_BOUNDARY)] + beats * bus_bytes <= AXI_BOUNDARY,
                       "ar: a burst crosses a 4 KB boundary"),
            ]
        # Aligned in every cycle, not only while offered: the next request's address is
        # always the register araddr shows.
        m.d.comb += [Assert(axi.araddr[:ceil_log2(bus_bytes)] == 0, "ar: address not beat-aligned"),
                     Assert(axi.araddr == next_addr, "ar: not the next beat of the image"),
                     Assert(axi.rready, "r: rready low")]
        # A fetch error (a corrupt header: any rdata here) stops the requests: once no request
        # is offered after it, none is until the next start; and every block is released.
        stopped = Signal(name="stopped_after_error")
        blocks_before = Signal.like(self.blocks, name="blocks_before")    # blocks is free here
        m.d.sync += [stopped.eq(dut.error.any() & ~axi.arvalid & ~start),
                     blocks_before.eq(self.blocks)]
        with m.If(stopped):
            m.d.comb += [Assert(~axi.arvalid, "ar: a request after a fetch error"),
                         Assert(dut.loaded == blocks_before, "loaded: not every block after a "
                                "fetch error")]

    def _image(self, m, dut):
        config, axi = self._config, dut.axi
        bus_bytes, bus_bits = dut.bus_bytes, 8 * dut.bus_bytes
        dense = self._weight_bits is not None
        beats = (mac_word_beats(config, self._weight_bits, bus_bytes) if dense
                 else word_beats(config, bus_bytes))
        words = "weight" if dense else "index"
        bank_half = config.max_outlier_words // 2
        max_block = (beats["header"] + beats["bias"] + config.chunks_max * beats[words]
                     + bank_half * beats["outlier"])
        image_beats = max_block * ((1 << len(dut.blocks)) - 1)
        blocks, chunks, merged, start = self.blocks, self.chunks, self.merged, self.start

        # The controller: a run's parameters legal and held; merged from 0, rising to loaded.
        ran = Signal(name="ran")
        after_start = Signal(name="after_start")
        held = Signal.like(Cat(self.base, blocks, chunks), name="run_held")
        merged_prev = Signal.like(merged, name="merged_prev")
        m.d.sync += [after_start.eq(start), held.eq(Cat(self.base, blocks, chunks)),
                     merged_prev.eq(merged)]
        # The image 2 bytes below a 4 KB boundary, so that block 0's head is split there.
        # (Addresses are proved from any base by the k-induction, layout=False; a free base
        # here made the bounded proof 2-3 times slower.)
        m.d.comb += Assume(self.base == AXI_BOUNDARY - 2 * bus_bytes)
        # One run, started in the first cycle: ``start`` resets every register of the walk.
        m.d.comb += Assume(start == ~ran)
        m.d.sync += ran.eq(1)
        with m.If(ran):
            m.d.comb += Assume(Cat(self.base, blocks, chunks) == held)
        with m.If(after_start):
            m.d.comb += Assume(merged == 0)
        with m.Elif(ran):
            m.d.comb += Assume((merged >= merged_prev) & (merged <= dut.loaded))

        # The slave: R beats only for requested beats; a quiet bus when a run starts.
        requested = Signal(range(image_beats + 1), name="beats_requested")
        received = Signal(range(image_beats + 1), name="beats_received")
        ar_beats = axi.arlen + 1
        ar_xfer = axi.arvalid & axi.arready
        r_xfer = axi.rvalid & axi.rready
        m.d.comb += Assume(~axi.rvalid | (received != requested))
        with m.If(start):
            m.d.comb += Assume(received == requested)
            m.d.sync += [requested.eq(0), received.eq(0)]
        with m.Else():
            with m.If(ar_xfer):
                m.d.sync += requested.eq(requested + ar_beats)
            with m.If(r_xfer):
                m.d.sync += received.eq(received + 1)

        # The shadow walk of the R beats: block ``r_block``, beat ``r_pos`` within it.
        r_block = Signal.like(blocks, name="r_block")
        r_pos = Signal(range(max_block), name="r_pos")
        r_words = Signal(range(bank_half + 1), name="r_outlier_words")   # W of r_block
        r_begin = Signal.like(requested, name="r_block_begin")            # its first beat
        index_at = beats["header"] + beats["bias"]
        outlier_at = index_at + chunks * beats[words]
        size = outlier_at + r_words * beats["outlier"]
        head = index_at + chunks * beats[words]
        is_header = r_xfer & (r_pos == 0) if not dense else 0
        w_bits = format_bits(offchip_header_fields(config))
        header_words = axi.rdata[:w_bits]
        if not dense:
            with m.If(is_header):
                m.d.comb += Assume(header_words <= bank_half)
                m.d.sync += r_words.eq(header_words)
        block_end = r_xfer & (r_pos == size - 1)
        most = max(beats.values())
        earlier = Signal(max(most - 1, 1) * bus_bits, name="r_earlier")   # the last beats, in order
        with m.If(r_xfer):
            m.d.sync += r_pos.eq(Mux(block_end, 0, r_pos + 1))
            if most > 1:
                m.d.sync += earlier.eq(Cat(earlier[bus_bits:], axi.rdata))
        with m.If(block_end):
            m.d.sync += [r_block.eq(r_block + 1), r_begin.eq(r_begin + size)]
        with m.If(start):
            m.d.sync += [r_block.eq(0), r_pos.eq(0), r_begin.eq(0)]

        # Requests: contiguous from base, never past the blocks known; quiet once all loaded.
        known = Mux(r_block >= blocks, r_begin,
                    Mux((r_pos == 0) & (not dense), r_begin + head,
                        r_begin + size + Mux(r_block + 1 < blocks, head, 0)))
        with m.If(axi.arvalid):
            m.d.comb += Assert(requested + ar_beats <= known, "ar: beats beyond the blocks known")
        with m.If(ran & (dut.loaded == blocks)):
            m.d.comb += Assert(~axi.arvalid & (requested == received),
                               "a request after every block was loaded")

        # Words: each on its last beat, at its bank's address, its beats in order.
        bank = r_block[0]
        sections = [("bias", beats["header"], beats["bias"], 1, bank),
                    (words, index_at, beats[words], config.chunks_max, bank * chunks)]
        if not dense:
            sections.append(("outlier", outlier_at, beats["outlier"], bank_half,
                             bank * bank_half))
        for name, begin, n, most_words, first in sections:
            port = getattr(dut, f"{name}_wr")
            count = {"bias": 1, words: chunks, "outlier": r_words}[name]
            ends = [r_xfer & (r_pos == begin + j * n + n - 1) & (j < count)
                    for j in range(most_words)]
            due = Signal(name=f"{name}_due")
            addr = Signal.like(port.addr, name=f"{name}_addr_expected")
            m.d.comb += due.eq(Cat(ends).any())
            for j, end in enumerate(ends):
                with m.If(end):
                    m.d.comb += addr.eq(first + j)
            word = Cat(earlier[len(earlier) - (n - 1) * bus_bits:], axi.rdata) if n > 1 \
                else axi.rdata
            m.d.comb += Assert(port.en == due, f"{name}: a write that is not a completed word, "
                               "or a completed word not written")
            with m.If(due):
                m.d.comb += [Assert(port.addr == addr, f"{name}: a word at the wrong address"),
                             Assert(port.data == word[:len(port.data)],
                                    f"{name}: a word not its beats in order")]
            with m.If(port.en):
                m.d.comb += Assert(r_block <= merged + 1, f"{name}: a bank not yet released")
        if not dense:
            with m.If(is_header):
                m.d.comb += Assert(r_block <= merged + 1, "header: a bank not yet released")
            landed = Signal(2, name="header_landed")
            expect = [Signal.like(r_words, name=f"bank{i}_words") for i in range(2)]
            for i in range(2):
                with m.If(is_header & (bank == i)):
                    m.d.sync += [landed[i].eq(1), expect[i].eq(header_words)]
                with m.If(landed[i]):
                    m.d.comb += Assert(dut.bank_words[i] == expect[i],
                                       "bank_words: not the W of the block in the bank")
        m.d.comb += [Assert(dut.loaded == r_block, "loaded: not the blocks written"),
                     Assert(dut.error == 0, "error: set on a legal image")]


PROOFS = [
    Proof("weight_fetcher_axi_rules", lambda: FetcherFormal(
        config=WIDE, bus_bytes=WIDE_BUS, layout=False), "prove", 4),
    Proof("weight_fetcher_dense_axi_rules", lambda: FetcherFormal(
        config=WIDE, bus_bytes=WIDE_BUS, weight_bits=DENSE_BITS, layout=False), "prove", 4),
    Proof("weight_fetcher_layout", FetcherFormal, "bmc", 12),
    Proof("weight_fetcher_dense_layout", lambda: FetcherFormal(weight_bits=DENSE_BITS), "bmc",
          14),
]
