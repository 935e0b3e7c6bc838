"""The weight fetcher of the streaming tiles: reads a layer's row blocks from off-chip memory over
AXI4 read channels and writes them into the double-buffered weight buffers (docs/offchip.md; GOBO
form, or dense weights for the streaming MAC tile, section 8)."""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.config import check_weight_bits
from golden.hwmodel.offchip import (
    AXI_BOUNDARY,
    AXI_MAX_BURST,
    check_bus_bytes,
    mac_word_beats,
    word_beats,
)
from golden.hwmodel.packing import (
    COUNTER_BITS,
    bias_block_fields,
    format_bits,
    index_word_fields,
    mac_weight_word_fields,
    offchip_header_fields,
    offset_bits,
    outlier_word_fields,
)

from .params import ConfigParams
from .tile_controller import layer_layout

__all__ = ["WeightFetcher", "axi_read_signature", "fetcher_buffer_shapes", "AXI_ADDR_BITS"]

#: Width of ``araddr``: a 4 GiB address space (AXI allows up to 64 bits).
AXI_ADDR_BITS = 32

# AXI4 encodings (IHI 0022, A3.4.1): ARBURST INCR, ARSIZE = log2(bytes per beat).
_ARBURST_INCR = 1


def axi_read_signature(*, addr_bits, data_bits):
    """The AXI4 read channels a manager drives (the subset the tile uses): AR (``arid``,
    ``araddr``, ``arlen``, ``arsize``, ``arburst``, ``arvalid``/``arready``) and R (``rid``,
    ``rdata``, ``rlast``, ``rvalid``/``rready``). One ID: ``arid`` is a constant 0 and ``rid`` is
    not read (one stream, in order; AXI4 slave models such as cocotbext-axi's ``AxiRamRead``
    require the ID signals), no ``rresp`` (the memory model does not fail), no
    ``arprot``/``arcache``/``arlock``/``arqos`` (constants at the interconnect)."""
    return wiring.Signature({
        "arid": Out(1), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        "rid": In(1), "rdata": In(data_bits), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
    })


def fetcher_buffer_shapes(config, weight_bits=None):
    """``{buffer: (word bits, depth)}`` of the weights a streaming tile holds on chip: two banks
    each of one block's index words (``2 * chunks_max``), outlier words (``max_outlier_words``,
    ``max_outlier_words // 2`` a bank) and biases (one word of ``P`` biases a bank). Given
    ``weight_bits`` (a streaming MAC tile): dense weight words instead of index words, and no
    outlier buffer."""
    if weight_bits is not None:
        return {"weight": (format_bits(mac_weight_word_fields(config, weight_bits)),
                           2 * config.chunks_max),
                "bias": (format_bits(bias_block_fields(config)), 2)}
    return {"index": (format_bits(index_word_fields(config)), 2 * config.chunks_max),
            "outlier": (format_bits(outlier_word_fields(config)), config.max_outlier_words),
            "bias": (format_bits(bias_block_fields(config)), 2)}


class WeightFetcher(ConfigParams, wiring.Component):
    """Reads row block after row block of a layer's off-chip image (:func:`golden.hwmodel.offchip.
    offchip_layout`) and writes each into bank ``b % 2`` of the weight buffers.

    **Requests (AR).** Per block ``b``: the head (header, biases and ``C`` index words,
    ``1 + beats["bias"] + C*beats["index"]`` beats), then, once the block's header beat has
    arrived, its ``W_b * beats["outlier"]`` outlier beats. Each part is cut into INCR bursts as
    long as allowed (256 beats, no 4 KiB crossing; :func:`golden.hwmodel.offchip.burst_lengths`),
    issued back to back (several may be outstanding). Block ``b`` is requested only once the
    merge has released block ``b - 2`` (``b <= merged + 1``), whose bank it overwrites; between
    blocks the request walker spends one cycle in its gate state.

    **Dense (``weight_bits`` given, a streaming MAC tile).** The layout is
    :func:`golden.hwmodel.offchip.mac_offchip_layout`: a block is its biases and ``C`` dense
    weight words, no header and no outliers, so the request walker asks for the head and goes
    straight to the gate; the weight words go where the index words would (``weight_wr``).

    **Data (R).** ``rready`` is always high: the bank being written is free. Beats are
    assembled into words (beat ``i`` of a word in its bits ``[i*bus, (i+1)*bus)``) and each word
    is written on its last beat: the biases to ``bias[b % 2]``, index word ``j`` to ``index[(b %
    2)*C + j]``, outlier word ``i`` to ``outlier[(b % 2)*max_outlier_words/2 + i]``; the header's
    ``W_b`` to ``bank_words[b % 2]``. ``loaded`` counts the blocks whose last beat has been
    written; it rises in the cycle after that write.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    bus_bytes : int
        Bytes of an R beat: a power of two, 1 to 128.
    weight_bits : int or None
        None: the GOBO layout. An int: the dense layout of a MAC tile with weights of that width.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a GoboConfig, ``bus_bytes`` not a power of two in 1 .. 128 wide
        enough for a block header, or ``weight_bits`` not None nor an integer in 2 .. 32.

    Members
    -------
    axi : ``Out(axi_read_signature(addr_bits=32, data_bits=8*bus_bytes))``
    start : ``In(1)``
        A pulse: a run starts (the controller's ``launch``); everything restarts at block 0.
    base : ``In(32)``
        Byte address of the layer's image, aligned to ``bus_bytes``; read at ``start``.
    blocks, chunks : ``In(...)``
        ``B`` and ``C`` of the layer (the ``layer`` port's widths).
    merged : ``In(...)``
        Blocks released by the merge.
    loaded : ``Out(...)``
        Blocks fully written (``blocks`` after a fetch error, ``error``).
    bank_words : ``Out(offset_bits).array(2)``
        ``W_b`` of the block in each bank.
    index_wr, outlier_wr, bias_wr : ``In(WritePort.Signature(...))``
        Write ports of the buffers (:func:`fetcher_buffer_shapes`); dense: ``weight_wr`` and
        ``bias_wr``.
    bytes_read : ``Out(32)``
        Bytes of the R beats taken since ``start``.
    error : ``Out(2)``
        Sticky fetch errors, cleared at ``start`` (bits 0 and 1 of :data:`golden.hwmodel.packing.
        STREAM_ERRORS`): bit 0, a header's ``W_b`` above a bank (``max_outlier_words // 2``);
        bit 1, ``base`` not aligned to the bus at ``start``. On either the fetcher requests no
        more (a burst already offered completes), writes no more words, takes and drops the R
        beats still owed, and sets ``loaded`` to ``blocks`` so that the run ends.
    """

    def __init__(self, *, config, bus_bytes, weight_bits=None):
        self._init_config(config)
        self._bus_bytes = check_bus_bytes(bus_bytes, config)
        self._weight_bits = None if weight_bits is None else check_weight_bits(weight_bits)
        layer = layer_layout(config).members
        shapes = fetcher_buffer_shapes(config, weight_bits)
        super().__init__({
            "axi": Out(axi_read_signature(addr_bits=AXI_ADDR_BITS, data_bits=8 * bus_bytes)),
            "start": In(1),
            "base": In(AXI_ADDR_BITS),
            "blocks": In(layer["blocks"]),
            "chunks": In(layer["chunks"]),
            "merged": In(layer["blocks"]),
            "loaded": Out(layer["blocks"]),
            "bank_words": Out(offset_bits(config)).array(2),
            **{f"{name}_wr": In(WritePort.Signature(addr_width=ceil_log2(depth),
                                                    shape=unsigned(width)))
               for name, (width, depth) in shapes.items()},
            "bytes_read": Out(COUNTER_BITS),
            "error": Out(2),
        })

    @property
    def bus_bytes(self):
        """Bytes of an R beat (read-only)."""
        return self._bus_bytes

    def elaborate(self, platform):
        m = Module()
        config = self._config
        bus_bytes = self._bus_bytes
        bus_bits = 8 * bus_bytes
        dense = self._weight_bits is not None
        beats = (mac_word_beats(config, self._weight_bits, bus_bytes) if dense
                 else word_beats(config, bus_bytes))
        section = "weight" if dense else "index"     # the section of a block's C words
        axi = self.axi
        blocks, chunks = self.blocks, self.chunks
        bank_half = config.max_outlier_words // 2
        addr_bits = AXI_ADDR_BITS

        # Request walker (AR) -------------------------------------------------------------------
        # HEAD, OUTL: requesting; WAIT: for the block's header; GATE: for the next block's bank.
        IDLE, HEAD, WAIT, OUTL, GATE = range(5)
        state = Signal(range(5), name="ar_state")
        ar_block = Signal.like(blocks, name="ar_block")
        ar_addr = Signal(addr_bits, name="ar_addr")
        head_max = beats["header"] + beats["bias"] + beats[section] * config.chunks_max
        head_beats = Signal(range(head_max + 1), name="head_beats")
        ar_rem = Signal(range(max(head_max, bank_half * beats["outlier"]) + 1), name="ar_rem")
        hdr_count = Signal.like(blocks, name="hdr_count")
        hdr_words = Signal(offset_bits(config), name="hdr_words")

        size = ceil_log2(bus_bytes)
        boundary_bits = ceil_log2(AXI_BOUNDARY)
        to_boundary = Signal(range(AXI_BOUNDARY // bus_bytes + 1), name="to_boundary")
        longest = Signal(range(AXI_MAX_BURST + 1), name="longest")
        burst = Signal(range(AXI_MAX_BURST + 1), name="burst")
        m.d.comb += [
            head_beats.eq(beats["header"] + beats["bias"] + chunks * beats[section]),
            to_boundary.eq((AXI_BOUNDARY - ar_addr[:boundary_bits]) >> size),
            longest.eq(Mux(ar_rem < AXI_MAX_BURST, ar_rem, AXI_MAX_BURST)),
            burst.eq(Mux(to_boundary < longest, to_boundary, longest)),
        ]
        m.d.comb += [
            axi.arid.eq(0), axi.araddr.eq(ar_addr), axi.arlen.eq(burst - 1), axi.arsize.eq(size),
            axi.arburst.eq(_ARBURST_INCR),
            # ar_rem is 0 in HEAD or OUTL only if a corrupt header's W_b * beats overflows it
            # (the layout refuses W_b above a bank); the term keeps that 0-beat part from
            # becoming a 256-beat burst (arlen = -1) across a 4 KB boundary, and lets the
            # k-induction of hw/formal/weight_fetcher.py, which starts from any state, see it.
            axi.arvalid.eq(((state == HEAD) | (state == OUTL)) & (ar_rem != 0)),
            axi.rready.eq(1),
        ]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [ar_addr.eq(ar_addr + (burst << size)), ar_rem.eq(ar_rem - burst)]
            with m.If(ar_rem == burst):
                m.d.sync += state.eq(GATE if dense else Mux(state == HEAD, WAIT, GATE))
        if not dense:     # (a dense block has no header to wait for)
            with m.If(state == WAIT):
                with m.If(hdr_count == ar_block + 1):
                    m.d.sync += ar_rem.eq(hdr_words * beats["outlier"])
                    m.d.sync += state.eq(Mux(hdr_words == 0, GATE, OUTL))
        with m.If(state == GATE):
            with m.If(ar_block + 1 == blocks):
                m.d.sync += state.eq(IDLE)
            with m.Elif(ar_block <= self.merged):
                m.d.sync += [state.eq(HEAD), ar_block.eq(ar_block + 1), ar_rem.eq(head_beats)]
        # A fetch error: no further request. (HEAD or OUTL first complete their part: an
        # offered request must stay offered; a bad header is never waited past, below.)
        failed = self.error.any()
        with m.If(failed & ((state == WAIT) | (state == GATE))):
            m.d.sync += state.eq(IDLE)

        # Data walker (R) -----------------------------------------------------------------------
        HDR, BIAS, IDX, OUT = range(4)
        first = BIAS if dense else HDR      # a block's first phase (a dense block has no header)
        r_phase = Signal(2, name="r_phase")
        r_word = Signal(range(max(config.chunks_max, bank_half)), name="r_word")
        most = max(beats.values())
        # At least one bit: a zero-width signal emits as [-1:0] (Verilator ASCRANGE) when every
        # word fits one beat.
        r_beat = Signal(range(max(most, 2)), name="r_beat")
        # The earlier beats of the word being assembled (beat i in bits [i*bus, (i+1)*bus)).
        held = Signal(max(most - 1, 1) * bus_bits, name="r_held")
        r_xfer = axi.rvalid & axi.rready
        bank = self.loaded[0]
        phase_beats = Signal(range(most + 1), name="r_phase_beats")
        m.d.comb += phase_beats.eq(Mux(r_phase == BIAS, beats["bias"],
                                       Mux(r_phase == IDX, beats[section],
                                           Mux(r_phase == OUT, beats["outlier"], 1))))
        word_done = r_xfer & (r_beat == phase_beats - 1)

        def word(n):
            """The word of ``n`` beats completed by this beat."""
            return Cat(held[:(n - 1) * bus_bits], axi.rdata) if n > 1 else axi.rdata

        sections = [("bias", BIAS, beats["bias"], bank),
                    (section, IDX, beats[section], Mux(bank, chunks, 0) + r_word)]
        if not dense:
            sections.append(("outlier", OUT, beats["outlier"], Mux(bank, bank_half, 0) + r_word))
        for name, phase, n, addr in sections:
            wr = getattr(self, f"{name}_wr")
            m.d.comb += [wr.en.eq(word_done & (r_phase == phase) & ~failed), wr.addr.eq(addr),
                         wr.data.eq(word(n))]

        header = axi.rdata[:format_bits(offchip_header_fields(config))]
        block_done = Signal(name="r_block_done")
        m.d.comb += block_done.eq(word_done & (
            ((r_phase == IDX) & (r_word == chunks - 1) & (hdr_words == 0)) |
            ((r_phase == OUT) & (r_word == hdr_words - 1))))
        with m.If(r_xfer):
            m.d.sync += self.bytes_read.eq(self.bytes_read + bus_bytes)
            with m.If(word_done):
                m.d.sync += r_beat.eq(0)
            with m.Else():
                m.d.sync += r_beat.eq(r_beat + 1)
                for i in range(most - 1):
                    with m.If(r_beat == i):
                        m.d.sync += held[i * bus_bits:(i + 1) * bus_bits].eq(axi.rdata)
        # A header the layout refuses (W_b above a bank): the error, and neither the request
        # walker (its outlier count) nor the banks see it.
        bad_header = Signal(name="r_bad_header")
        m.d.comb += bad_header.eq(word_done & (r_phase == HDR) & (header > bank_half))
        with m.If(word_done & (r_phase == HDR)):
            m.d.sync += r_phase.eq(BIAS)
            with m.If(bad_header):
                m.d.sync += self.error[0].eq(1)
            with m.Elif(~failed):
                m.d.sync += [hdr_words.eq(header), hdr_count.eq(hdr_count + 1),
                             self.bank_words[0].eq(Mux(bank, self.bank_words[0], header)),
                             self.bank_words[1].eq(Mux(bank, header, self.bank_words[1]))]
        with m.If(word_done & (r_phase == BIAS)):
            m.d.sync += [r_phase.eq(IDX), r_word.eq(0)]
        with m.If(word_done & (r_phase == IDX)):
            with m.If(r_word == chunks - 1):
                m.d.sync += [r_phase.eq(Mux(hdr_words == 0, first, OUT)), r_word.eq(0)]
            with m.Else():
                m.d.sync += r_word.eq(r_word + 1)
        with m.If(word_done & (r_phase == OUT)):
            with m.If(r_word == hdr_words - 1):
                m.d.sync += [r_phase.eq(HDR), r_word.eq(0)]
            with m.Else():
                m.d.sync += r_word.eq(r_word + 1)
        with m.If(block_done):
            m.d.sync += self.loaded.eq(self.loaded + 1)
        with m.If(failed):     # every block released: the controller finishes the run
            m.d.sync += self.loaded.eq(blocks)

        # Start (placed last: it wins) ----------------------------------------------------------
        with m.If(self.start):
            m.d.sync += [state.eq(HEAD), ar_block.eq(0), ar_addr.eq(self.base),
                         ar_rem.eq(head_beats), hdr_count.eq(0), r_phase.eq(first),
                         r_word.eq(0), r_beat.eq(0), self.loaded.eq(0),
                         self.bytes_read.eq(0), self.error.eq(0)]
            if size:     # an unaligned base: no request at all (the layout refuses it)
                with m.If(self.base[:size] != 0):
                    m.d.sync += [state.eq(IDLE), self.error[1].eq(1)]
        return m
