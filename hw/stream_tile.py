"""The streaming GOBO tile: the tile's PEs, side path and controller fed from off-chip memory a
row block at a time through double-buffered weight buffers (docs/offchip.md)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.offchip import check_bus_bytes, word_beats
from golden.hwmodel.packing import LoadTarget, memory_shapes, stream_counters_fields

from .layouts import struct_layout, tile_output_layout
from .params import ConfigParams, check_memories
from .tile import connect_gobo_core, gobo_core, load_layout, run_members
from .tile_controller import layer_layout
from .tile_memories import MemorySpec, TileMemories
from .weight_fetcher import AXI_ADDR_BITS, WeightFetcher, fetcher_buffer_shapes

__all__ = ["StreamTile", "stream_tile_memory_specs", "stream_counters_layout", "connect_streamed",
           "stream_members"]


def stream_counters_layout(config):
    """The tile's counters, then ``stall_memory`` and ``bytes_read``
    (:func:`golden.hwmodel.packing.stream_counters_fields`)."""
    return struct_layout(stream_counters_fields(config))


def stream_tile_memory_specs(config):
    """The streaming tile's on-chip memories: the activations (as the tile's: the broadcast and
    the ``Q`` side-path lanes read them) and the double-buffered weights
    (:func:`~hw.weight_fetcher.fetcher_buffer_shapes`). Their size does not depend on ``M``."""
    width, depth = memory_shapes(config)["activation"]
    specs = {"activation": MemorySpec(width, depth, reads=("sync",) * (1 + config.outlier_lanes))}
    specs.update({name: MemorySpec(width, depth)
                  for name, (width, depth) in fetcher_buffer_shapes(config).items()})
    return specs


def stream_members(config, memories, fetcher, load, layer):
    """The members of a streaming tile: its ``memories``' ports, ``axi`` (``fetcher``'s),
    ``load`` and ``layer`` of the given layouts, ``base``, and the run members with
    :func:`stream_counters_layout` counters."""
    members = run_members(config)
    members["counters"] = Out(stream_counters_layout(config))
    if config.max_passes > 1:     # passes: the previous pass's partial sums (docs/offchip.md 10)
        members["carry"] = In(stream.Signature(tile_output_layout(config)))
    return {**memories.members(), "axi": Out(fetcher.axi.signature),
            "load": In(stream.Signature(load)), "layer": In(layer), "base": In(AXI_ADDR_BITS),
            **members}


def connect_streamed(m, tile, ctrl, fetch, mems, buffers, *, stage=None, bias="bias"):
    """Wire what every streaming tile (this one, :class:`~hw.mac_stream_tile.MacStreamTile`,
    :class:`~hw.compressed_stream_tile.CompressedStreamTile`) shares: the activations, written
    from ``tile.load`` while idle (other targets taken and dropped) and read by the broadcast;
    the fetcher's writes into the ``buffers`` memories; the merge's biases (block ``b``'s ``P``
    biases, one word, from bank ``b % 2`` of memory ``bias``); the fetcher's AXI port, its run
    inputs and the bank handshake with the controller (``merged``, ``loaded``), or, given a
    middle ``stage`` (:class:`~hw.block_decompressor.BlockDecompressor`), the handshakes
    fetcher-stage (``fetched``, the stage's ``loaded`` releasing the fetcher's banks) and
    stage-controller (``loaded``, ``merged``); and ``tile.counters``: the controller's,
    ``stall_memory``, ``bytes_read`` (``stall_carry``) and ``error``: the fetcher's two bits,
    then ``load_target`` (:data:`golden.hwmodel.packing.STREAM_ERRORS`)."""
    config = ctrl.config
    m.d.comb += tile.load.ready.eq(~ctrl.busy)
    act_wr = mems.write("activation")
    load = tile.load.payload
    taken = tile.load.valid & tile.load.ready
    m.d.comb += [
        act_wr.en.eq(taken & (load.target == LoadTarget.ACTIVATION)),
        act_wr.addr.eq(load.addr), act_wr.data.eq(load.data),
    ]
    # load_target: a beat of another target was taken and dropped since the launch before the
    # run (``dropped`` holds those since the last launch, so the error outlives the launch).
    wrong = Signal(name="load_wrong_target")
    dropped = Signal(name="load_dropped")
    load_error = Signal(name="load_error")
    m.d.comb += wrong.eq(taken & (load.target != LoadTarget.ACTIVATION))
    with m.If(ctrl.launch):
        m.d.sync += [dropped.eq(0), load_error.eq(dropped | wrong)]
    with m.Elif(wrong):
        m.d.sync += [dropped.eq(1), load_error.eq(1)]
    wiring.connect(m, mems.read("activation"), ctrl.act_rd)
    for name in buffers:
        wr = mems.write(name)
        port = getattr(fetch, f"{name}_wr")
        m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
    bias_rd = mems.read(bias)
    bias_bits = config.bias_bits
    m.d.comb += [bias_rd.addr.eq(ctrl.bias_rd[0].addr[0]), bias_rd.en.eq(ctrl.bias_rd[0].en)]
    for p in range(config.pes):
        m.d.comb += ctrl.bias_rd[p].data.eq(bias_rd.data[p * bias_bits:(p + 1) * bias_bits])
    wiring.connect(m, fetch.axi, wiring.flipped(tile.axi))
    m.d.comb += [
        fetch.start.eq(ctrl.launch), fetch.base.eq(tile.base),
        fetch.blocks.eq(tile.layer.blocks), fetch.chunks.eq(tile.layer.chunks),
        tile.counters.as_value().eq(Cat(ctrl.counters.as_value(), ctrl.stall_memory,
                                        fetch.bytes_read,
                                        *([ctrl.stall_carry] if config.max_passes > 1 else []),
                                        fetch.error, load_error)),
    ]
    if config.max_passes > 1:
        wiring.connect(m, wiring.flipped(tile.carry), ctrl.carry)
    if stage is None:
        m.d.comb += [fetch.merged.eq(ctrl.merged), ctrl.loaded.eq(fetch.loaded)]
    else:
        m.d.comb += [
            stage.start.eq(ctrl.launch), stage.blocks.eq(tile.layer.blocks),
            stage.chunks.eq(tile.layer.chunks), stage.fetched.eq(fetch.loaded),
            fetch.merged.eq(stage.loaded), stage.merged.eq(ctrl.merged),
            ctrl.loaded.eq(stage.loaded),
        ]


class StreamTile(ConfigParams, wiring.Component):
    """A fully-connected layer ``Y = X W^T + b`` of any number of rows on ``pes`` GOBO PEs, its
    weights read from off-chip memory (docs/offchip.md).

    The activations are loaded on chip through ``load`` (target ``ACTIVATION`` only: the other
    targets name memories this tile does not have, and their beats are taken, dropped and
    flagged in ``counters.error``). The
    layer's GOBO form stays off chip, laid out by :func:`golden.hwmodel.offchip.offchip_layout`
    from byte ``base``; the :class:`~hw.weight_fetcher.WeightFetcher` streams row block ``b`` into
    bank ``b % 2`` of the index, outlier and bias buffers while the PEs compute block ``b - 1``
    over all tokens. The controller (:class:`~hw.tile_controller.TileController` with
    ``streamed=True``), the PEs, the side path and the merge are the tile's, so the numbers are
    the tile's, bit for bit (docs/tile.md section 1); only the schedule gains a wait, when a
    block's weights have not arrived (``stall_memory``).

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
        Must pass :meth:`~golden.config.GoboConfig.check_tile`. ``max_rows`` only sizes the
        ``layer`` port's counts; ``chunks_max`` (``max_dot_length``), ``max_tokens`` and
        ``max_outlier_words`` size the memories.
    bus_bytes : int
        Bytes of an AXI R beat.
    memories : ``"internal"`` or ``"ports"``
        As :class:`~hw.tile.GoboTile`.

    Members
    -------
    axi : ``Out(axi_read_signature(...))``
        The AXI4 read channels to the off-chip memory (:func:`~hw.weight_fetcher.
        axi_read_signature`).
    load : ``In(stream.Signature(load_layout(config)))``
        Activation words (``target = ACTIVATION``); ``ready`` is low while busy.
    layer : ``In(layer_layout(config))``
        As the tile's; static during a run.
    base : ``In(32)``
        Byte address of the layer's off-chip image, aligned to ``bus_bytes``; static during a run.
    start, busy, o
        As the tile's.
    counters : ``Out(stream_counters_layout(config))``
        The tile's counters, ``stall_memory`` and ``bytes_read`` (and ``stall_carry`` with
        passes), then ``error``: sticky cause bits (:data:`golden.hwmodel.packing.
        STREAM_ERRORS`; docs/offchip.md section 3), 0 on a good run. On a fetch error
        (``header``, ``base``) the run ends with meaningless outputs instead of hanging.
    carry : ``In(stream.Signature(tile_output_layout(config)))``
        Only with ``config.max_passes > 1`` (a layer longer than ``max_dot_length`` run as
        passes, docs/offchip.md section 10): the previous pass's partial sums, one beat per slot
        ``(b, t)`` in the output order, taken while ``layer.carry_in`` is set; with
        ``layer.partial_out`` the tile emits its unrounded accumulators on ``o``.
    """

    def __init__(self, *, config, bus_bytes, memories="internal"):
        self._init_config(config)
        config.check_tile()
        self._bus_bytes = check_bus_bytes(bus_bytes, config)
        self._memories = TileMemories(stream_tile_memory_specs(config), check_memories(memories))
        self._fetcher = WeightFetcher(config=config, bus_bytes=bus_bytes)
        super().__init__(stream_members(config, self._memories, self._fetcher,
                                        load_layout(config), layer_layout(config)))

    @property
    def bus_bytes(self):
        """Bytes of an AXI R beat (read-only)."""
        return self._bus_bytes

    @property
    def beats(self):
        """``{section: beats of one word}`` (:func:`golden.hwmodel.offchip.word_beats`)."""
        return word_beats(self._config, self._bus_bytes)

    @property
    def memories(self):
        """The :class:`~hw.tile_memories.TileMemories` (read-only)."""
        return self._memories

    def elaborate(self, platform):
        m = Module()
        config = self._config

        ctrl, side, units = gobo_core(m, config, streamed=True)
        m.submodules.fetcher = fetch = self._fetcher

        mems = self._memories
        mems.build(m, self)

        # Activations, weight buffers (written by the fetcher), biases, fetcher and counters.
        connect_streamed(m, self, ctrl, fetch, mems, ("index", "outlier", "bias"))
        for q in range(config.outlier_lanes):
            wiring.connect(m, mems.read("activation", 1 + q), side.act_rd[q])
        wiring.connect(m, mems.read("index"), ctrl.index_rd)
        wiring.connect(m, mems.read("outlier"), side.outlier_rd)
        # Block b's records: words (b % 2) * max_outlier_words/2 onwards, W_b of them. Both
        # offsets follow the command walker's block (offset_lo.addr); offset_hi's own address
        # (b + 1) names the next block in the whole-layer tile, which has no meaning here.
        half = config.max_outlier_words // 2
        lo_bank = ctrl.offset_lo.addr[0]
        m.d.comb += [
            ctrl.offset_lo.data.eq(Mux(lo_bank, half, 0)),
            ctrl.offset_hi.data.eq(Mux(lo_bank, half, 0) +
                                   Mux(lo_bank, fetch.bank_words[1], fetch.bank_words[0])),
        ]

        # Controller, side path and PEs, as in the tile.
        connect_gobo_core(m, self, ctrl, side, units)
        return m
