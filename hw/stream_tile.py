"""The streaming GOBO tile: the tile's PEs, side path and controller fed from off-chip memory a
row block at a time through double-buffered weight buffers (docs/offchip.md)."""

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.hwmodel.offchip import check_bus_bytes, word_beats
from golden.hwmodel.packing import LoadTarget, memory_shapes, stream_counters_fields

from .layouts import struct_layout
from .params import ConfigParams, check_memories
from .tile import connect_gobo_core, gobo_core, load_layout, run_members
from .tile_controller import layer_layout
from .tile_memories import MemorySpec, TileMemories
from .weight_fetcher import AXI_ADDR_BITS, WeightFetcher, fetcher_buffer_shapes

__all__ = ["StreamTile", "stream_tile_memory_specs", "stream_counters_layout"]


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


class StreamTile(ConfigParams, wiring.Component):
    """A fully-connected layer ``Y = X W^T + b`` of any number of rows on ``pes`` GOBO PEs, its
    weights read from off-chip memory (docs/offchip.md).

    The activations are loaded on chip through ``load`` (target ``ACTIVATION`` only: the other
    targets name memories this tile does not have, and their beats are taken and dropped). The
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
        The tile's counters, ``stall_memory`` and ``bytes_read``.
    """

    def __init__(self, *, config, bus_bytes, memories="internal"):
        self._init_config(config)
        config.check_tile()
        self._bus_bytes = check_bus_bytes(bus_bytes, config)
        self._memories = TileMemories(stream_tile_memory_specs(config), check_memories(memories))
        self._fetcher = WeightFetcher(config=config, bus_bytes=bus_bytes)
        members = run_members(config)
        members["counters"] = Out(stream_counters_layout(config))
        super().__init__({
            **self._memories.members(),
            "axi": Out(self._fetcher.axi.signature),
            "load": In(stream.Signature(load_layout(config))),
            "layer": In(layer_layout(config)),
            "base": In(AXI_ADDR_BITS),
            **members,
        })

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
        pes = config.pes

        ctrl, side, units = gobo_core(m, config, streamed=True)
        m.submodules.fetcher = fetch = self._fetcher

        mems = self._memories
        mems.build(m, self)

        # Activations: loaded while idle, as in the tile.
        m.d.comb += self.load.ready.eq(~ctrl.busy)
        act_wr = mems.write("activation")
        load = self.load.payload
        m.d.comb += [
            act_wr.en.eq(self.load.valid & self.load.ready &
                         (load.target == LoadTarget.ACTIVATION)),
            act_wr.addr.eq(load.addr), act_wr.data.eq(load.data),
        ]
        wiring.connect(m, mems.read("activation"), ctrl.act_rd)
        for q in range(config.outlier_lanes):
            wiring.connect(m, mems.read("activation", 1 + q), side.act_rd[q])

        # Weight buffers: written by the fetcher, read by the controller and the side path.
        for name in ("index", "outlier", "bias"):
            wr = mems.write(name)
            port = getattr(fetch, f"{name}_wr")
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
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
        bias_rd = mems.read("bias")
        bias_bits = config.bias_bits
        m.d.comb += [bias_rd.addr.eq(ctrl.bias_rd[0].addr[0]), bias_rd.en.eq(ctrl.bias_rd[0].en)]
        for p in range(pes):
            m.d.comb += ctrl.bias_rd[p].data.eq(bias_rd.data[p * bias_bits:(p + 1) * bias_bits])

        # Fetcher and controller.
        wiring.connect(m, fetch.axi, wiring.flipped(self.axi))
        m.d.comb += [
            fetch.start.eq(ctrl.launch), fetch.base.eq(self.base),
            fetch.blocks.eq(self.layer.blocks), fetch.chunks.eq(self.layer.chunks),
            fetch.merged.eq(ctrl.merged), ctrl.loaded.eq(fetch.loaded),
        ]

        # Controller, side path and PEs, as in the tile.
        m.d.comb += self.counters.as_value().eq(Cat(ctrl.counters.as_value(), ctrl.stall_memory,
                                                    fetch.bytes_read))
        connect_gobo_core(m, self, ctrl, side, units)
        return m
