"""The streaming MAC baseline tile: the MAC tile's PEs and merge fed from off-chip memory a row
block at a time, through the GOBO streaming tile's weight fetcher and double-buffered banks
(docs/offchip.md section 8)."""

from amaranth.hdl import Module
from amaranth.lib import wiring

from golden.hwmodel.offchip import check_bus_bytes, mac_word_beats
from golden.hwmodel.packing import memory_shapes

from .mac_tile import check_mac_acc, connect_mac_core, mac_core, mac_layer_layout, mac_load_layout
from .params import MacParams, check_memories
from .stream_tile import connect_streamed, stream_members
from .tile_memories import MemorySpec, TileMemories
from .weight_fetcher import WeightFetcher, fetcher_buffer_shapes

__all__ = ["MacStreamTile", "mac_stream_tile_memory_specs"]


def mac_stream_tile_memory_specs(config, weight_bits):
    """The streaming MAC tile's on-chip memories: the activations (as the MAC tile's) and two
    banks of one block's dense weight words and biases (:func:`~hw.weight_fetcher.
    fetcher_buffer_shapes`). Their size does not depend on ``M``."""
    specs = {"activation": MemorySpec(*memory_shapes(config)["activation"])}
    specs.update({name: MemorySpec(width, depth) for name, (width, depth)
                  in fetcher_buffer_shapes(config, weight_bits).items()})
    return specs


class MacStreamTile(MacParams, wiring.Component):
    """``Y = X W^T + b`` of any number of rows on ``pes`` MAC PEs with dense ``weight_bits``
    weights read from off-chip memory, bit-exactly :func:`golden.hwmodel.mac_tile.
    mac_tile_outputs` (docs/offchip.md section 8).

    The activations are loaded through ``load`` (target ``ACTIVATION``; other targets are taken,
    dropped and flagged in ``counters.error``). The dense layer stays off chip, laid out by
    :func:`golden.hwmodel.offchip.mac_offchip_layout` from byte ``base``; the
    :class:`~hw.weight_fetcher.WeightFetcher` (dense) streams row block ``b`` into bank ``b % 2``
    of the weight and bias buffers while the PEs compute block ``b - 1``. The controller
    (``streamed=True``), the MAC PEs and the merge are the :class:`~hw.mac_tile.MacTile`'s.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    weight_bits : int
        Width of a dense signed weight, 2 to 32 bits.
    bus_bytes : int
        Bytes of an AXI R beat.
    memories : ``"internal"`` or ``"ports"``
        As :class:`~hw.tile.GoboTile`.

    Raises
    ------
    TypeError, ValueError
        As :class:`~hw.mac_tile.MacTile`, or a ``bus_bytes`` that is not a power of two.

    Members
    -------
    axi : ``Out(axi_read_signature(...))``
    load : ``In(stream.Signature(mac_load_layout(config, weight_bits)))``
    layer : ``In(mac_layer_layout(config, weight_bits))``
    base : ``In(32)``
    start, busy, o
        As the MAC tile's.
    counters : ``Out(stream_counters_layout(config))``
        The tile's counters, ``stall_memory``, ``bytes_read`` and ``error`` (as
        :class:`~hw.stream_tile.StreamTile`'s).
    """

    def __init__(self, *, config, weight_bits, bus_bytes, memories="internal"):
        self._init_mac(config, weight_bits)
        check_memories(memories)
        check_mac_acc(config, weight_bits)
        self._bus_bytes = check_bus_bytes(bus_bytes, config)
        self._memories = TileMemories(self._memory_specs(), memories)
        self._fetcher = self._new_fetcher()
        super().__init__(stream_members(config, self._memories, self._fetcher,
                                        mac_load_layout(config, weight_bits),
                                        mac_layer_layout(config, weight_bits)))

    def _memory_specs(self):
        return mac_stream_tile_memory_specs(self._config, self._weight_bits)

    def _new_fetcher(self):
        return WeightFetcher(config=self._config, bus_bytes=self._bus_bytes,
                             weight_bits=self._weight_bits)

    @property
    def bus_bytes(self):
        """Bytes of an AXI R beat (read-only)."""
        return self._bus_bytes

    @property
    def beats(self):
        """``{section: beats of one word}`` (:func:`golden.hwmodel.offchip.mac_word_beats`)."""
        return mac_word_beats(self._config, self._weight_bits, self._bus_bytes)

    @property
    def memories(self):
        """The :class:`~hw.tile_memories.TileMemories` (read-only)."""
        return self._memories

    def elaborate(self, platform):
        m = Module()
        config = self._config
        ctrl, units = mac_core(m, config, self._weight_bits, streamed=True)
        m.submodules.fetcher = fetch = self._fetcher
        mems = self._memories
        mems.build(m, self)

        connect_streamed(m, self, ctrl, fetch, mems, ("weight", "bias"))
        wiring.connect(m, mems.read("weight"), ctrl.index_rd)
        connect_mac_core(m, self, ctrl, units)
        return m
