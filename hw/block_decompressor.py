"""The decompression stage of the streaming memory-compression tile: expands a row block's GOBO
form from the fetcher's double-buffered GOBO banks into a double-buffered dense weight bank
(docs/offchip.md section 8)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.hwmodel.packing import offset_bits

from .layouts import centroids_layout, outlier_word_layout
from .mac_tile import mac_layer_layout
from .params import MacParams
from .weight_fetcher import fetcher_buffer_shapes

__all__ = ["BlockDecompressor"]


def _read(width, depth):
    return In(ReadPort.Signature(addr_width=ceil_log2(depth), shape=unsigned(width)))


def _write(width, depth, granularity=None):
    return In(WritePort.Signature(addr_width=ceil_log2(depth), shape=unsigned(width),
                                  granularity=granularity))


class BlockDecompressor(MacParams, wiring.Component):
    """Decompresses row block after row block: block ``d`` from GOBO bank ``d % 2`` (index,
    outlier and bias buffers, :func:`~hw.weight_fetcher.fetcher_buffer_shapes`) into dense bank
    ``d % 2`` (weight words of ``P*L`` signed ``weight_bits`` weights, biases), bit-exactly
    :func:`golden.hwmodel.mac.decompress` of every row; its timing is
    :class:`golden.hwmodel.compressed_stream_tile.DecompressSteps`.

    **Gate.** Block ``d`` starts once the fetcher has loaded it (``d < fetched``) and the MAC
    merge has released block ``d - 2``, whose dense bank it overwrites (``d <= merged + 1``);
    the check takes a cycle. Its first items follow block ``d - 1``'s last ones through the
    stages without a drain: an index word uses ``index_rd`` in ``s0`` and ``weight_wr`` in
    ``s1``, a record ``index_rd`` in ``s1`` and ``weight_wr`` in ``s2``, a block's index words
    come before its records, and the gate cycle puts one empty slot between a block's last
    record and the next block's first index word, so no two items want a port in one cycle.

    **Items**, one a cycle, through three stages (``s0`` addresses, ``s1``, ``s2``):

    - index word ``j`` (``j = 0 .. C-1``): ``s0`` reads it (and, for ``j = 0``, the GOBO
      biases); ``s1`` writes its ``P*L`` indexes through the dictionary (``centroids``) as dense
      word ``(d % 2)*C + j`` (and copies the biases: the fetcher overwrites the GOBO bank while
      the block still computes);
    - record ``q`` of outlier word ``i`` (``i < W_d``, from the fetcher's ``bank_words``):
      ``s0`` reads the word (for ``q = 0``; the read port holds it for the ``Q`` records);
      ``s1`` reads the index word of the record's column (``col // L``); ``s2`` writes
      ``centroids[index] + residual`` (the outlier's value, ``weight_bits`` wide) over that one
      weight (a write of one ``weight_bits`` granule). Invalid (padding) records take their
      cycle and write nothing.

    ``loaded`` (the MAC broadcast's gate, and the GOBO banks' release for the fetcher) counts
    the blocks whose last item has left ``s2``; it rises the cycle after.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    weight_bits : int
        Width of a dense signed weight (and of a centroid), 2 to 32.

    Raises
    ------
    TypeError, ValueError
        If ``config`` is not a GoboConfig or ``weight_bits`` not an integer in 2 .. 32.

    Members
    -------
    start : ``In(1)``
        A pulse: a run starts at block 0 (the controller's ``launch``).
    blocks, chunks : ``In(...)``
        ``B`` and ``C`` of the layer; static during a run.
    centroids : ``In(centroids_layout(config, weight_bits))``
        The dictionary as integer weights; static during a run.
    fetched : ``In(...)``
        Blocks the fetcher has written into the GOBO banks.
    bank_words : ``In(offset_bits(config)).array(2)``
        ``W_b`` of the block in each GOBO bank (the fetcher's).
    merged : ``In(...)``
        Blocks the MAC merge has finished.
    loaded : ``Out(...)``
        Blocks decompressed.
    index_rd, outlier_rd, bias_rd : ``In(ReadPort.Signature(...))``
        The GOBO banks, read synchronously.
    weight_wr : ``In(WritePort.Signature(..., granularity=weight_bits))``
        The dense weight banks (``2 * chunks_max`` words).
    bias_wr : ``In(WritePort.Signature(...))``
        The dense bias banks (2 words of ``P`` biases).
    """

    def __init__(self, *, config, weight_bits):
        self._init_mac(config, weight_bits)
        layer = mac_layer_layout(config, weight_bits).members
        gobo = fetcher_buffer_shapes(config)
        dense = fetcher_buffer_shapes(config, weight_bits)
        super().__init__({
            "start": In(1),
            "blocks": In(layer["blocks"]),
            "chunks": In(layer["chunks"]),
            "centroids": In(centroids_layout(config, weight_bits)),
            "fetched": In(layer["blocks"]),
            "bank_words": In(offset_bits(config)).array(2),
            "merged": In(layer["blocks"]),
            "loaded": Out(layer["blocks"]),
            **{f"{name}_rd": _read(*gobo[name]) for name in ("index", "outlier", "bias")},
            "weight_wr": _write(*dense["weight"], granularity=weight_bits),
            "bias_wr": _write(*dense["bias"]),
        })

    def elaborate(self, platform):
        m = Module()
        config, w = self._config, self._weight_bits
        pes, lanes, q_lanes = config.pes, config.lanes, config.outlier_lanes
        slots = pes * lanes
        half = config.max_outlier_words // 2
        chunks, blocks = self.chunks, self.blocks

        # s0: the walker; issues one item a cycle ------------------------------------------------
        IDLE, GATE, EXP, OUT = range(4)
        s0_state = Signal(range(4), name="s0_state", init=IDLE)
        s0_block = Signal.like(blocks, name="s0_block")
        s0_bank = s0_block[0]
        s0_j = Signal(range(config.chunks_max), name="s0_j")
        s0_word = Signal(range(max(half, 2)), name="s0_word")
        s0_q = Signal(range(max(q_lanes, 2)), name="s0_q")
        s0_words = Signal(offset_bits(config), name="s0_words")
        m.d.comb += s0_words.eq(Mux(s0_bank, self.bank_words[1], self.bank_words[0]))

        s1_valid, s1_out, s1_last, s1_first = (Signal(name=f"s1_{n}")
                                               for n in ("valid", "out", "last", "first"))
        s1_bank = Signal(name="s1_bank")
        s1_j = Signal.like(s0_j, name="s1_j")
        s1_q = Signal.like(s0_q, name="s1_q")
        s2_valid, s2_out, s2_last, s2_write = (Signal(name=f"s2_{n}")
                                               for n in ("valid", "out", "last", "write"))
        s2_bank = Signal(name="s2_bank")

        block_end = Signal(name="s0_block_end")
        with m.If(block_end):
            m.d.sync += [s0_block.eq(s0_block + 1),
                         s0_state.eq(Mux(s0_block + 1 == blocks, IDLE, GATE))]

        m.d.sync += [s1_valid.eq(0), s1_first.eq(0)]
        with m.Switch(s0_state):
            with m.Case(GATE):
                with m.If((s0_block < self.fetched) & (s0_block <= self.merged + 1)):
                    m.d.sync += [s0_state.eq(EXP), s0_j.eq(0)]
            with m.Case(EXP):
                last_word = s0_j == chunks - 1
                m.d.comb += [
                    self.index_rd.en.eq(1), self.index_rd.addr.eq(Mux(s0_bank, chunks, 0) + s0_j),
                    self.bias_rd.en.eq(s0_j == 0), self.bias_rd.addr.eq(s0_bank),
                    block_end.eq(last_word & (s0_words == 0)),
                ]
                m.d.sync += [s1_valid.eq(1), s1_out.eq(0), s1_j.eq(s0_j), s1_first.eq(s0_j == 0),
                             s1_last.eq(block_end), s0_j.eq(s0_j + 1)]
                with m.If(last_word & (s0_words != 0)):
                    m.d.sync += [s0_state.eq(OUT), s0_word.eq(0), s0_q.eq(0)]
            with m.Case(OUT):
                last_record = s0_q == q_lanes - 1
                m.d.comb += [
                    self.outlier_rd.en.eq(s0_q == 0),
                    self.outlier_rd.addr.eq(Mux(s0_bank, half, 0) + s0_word),
                    block_end.eq(last_record & (s0_word == s0_words - 1)),
                ]
                m.d.sync += [s1_valid.eq(1), s1_out.eq(1), s1_q.eq(s0_q), s1_last.eq(block_end),
                             s0_q.eq(Mux(last_record, 0, s0_q + 1)),
                             s0_word.eq(s0_word + last_record)]
        m.d.sync += s1_bank.eq(s0_bank)

        # s1: an index word arrives (expand, write; copy the biases) or a record is selected
        # (read the index word of its column) ---------------------------------------------------
        ib = config.index_bits
        index_word = self.index_rd.data
        expanded = Cat(self.centroids[index_word[k * ib:(k + 1) * ib]] for k in range(slots))
        weight_wr = self.weight_wr
        m.d.comb += [
            self.bias_wr.en.eq(s1_valid & s1_first), self.bias_wr.addr.eq(s1_bank),
            self.bias_wr.data.eq(self.bias_rd.data),
        ]
        record = data.View(outlier_word_layout(config), self.outlier_rd.data)[s1_q]
        col = record.col
        lane_bits = ceil_log2(lanes)
        if lanes & (lanes - 1) == 0:
            chunk, lane = col >> lane_bits, col[:lane_bits]
        else:
            chunk, lane = col // lanes, col % lanes
        with m.If(s1_valid & s1_out):
            m.d.comb += [self.index_rd.en.eq(1),
                         self.index_rd.addr.eq(Mux(s1_bank, chunks, 0) + chunk)]
        s2_slot = Signal(range(slots), name="s2_slot")
        s2_addr = Signal.like(weight_wr.addr, name="s2_addr")
        s2_residual = Signal(signed(config.residual_bits), name="s2_residual")
        m.d.sync += [
            s2_valid.eq(s1_valid), s2_out.eq(s1_out), s2_last.eq(s1_last), s2_bank.eq(s1_bank),
            s2_write.eq(s1_valid & s1_out & record.valid),
            s2_slot.eq(record.row * lanes + lane),
            s2_addr.eq(Mux(s1_bank, chunks, 0) + chunk),
            s2_residual.eq(record.residual),
        ]

        # s2: a record's index arrives; write centroid + residual over its one weight ----------
        index = index_word.word_select(s2_slot, ib)
        value = Signal(signed(w), name="s2_value")
        m.d.comb += value.eq(self.centroids[index] + s2_residual)
        with m.If(s2_write):
            m.d.comb += [weight_wr.en.eq((Const(1, slots) << s2_slot)[:slots]),
                         weight_wr.addr.eq(s2_addr), weight_wr.data.eq(value.replicate(slots))]
        with m.Elif(s1_valid & ~s1_out):
            m.d.comb += [weight_wr.en.eq(Const((1 << slots) - 1, slots)),
                         weight_wr.addr.eq(Mux(s1_bank, chunks, 0) + s1_j),
                         weight_wr.data.eq(expanded)]
        with m.If(s2_valid & s2_last):
            m.d.sync += self.loaded.eq(self.loaded + 1)

        # Start (placed last: it wins) ----------------------------------------------------------
        with m.If(self.start):
            m.d.sync += [s0_state.eq(GATE), s0_block.eq(0), self.loaded.eq(0), s1_valid.eq(0),
                         s2_valid.eq(0), s2_write.eq(0)]
        return m
