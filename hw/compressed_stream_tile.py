"""The streaming memory-compression tile: the GOBO streaming tile's fetcher fills GOBO banks, a
decompression stage expands each row block into a dense bank, the MAC tile's PEs compute on it
(docs/offchip.md section 8)."""

from amaranth.hdl import Module
from amaranth.lib import wiring

from golden.hwmodel.offchip import word_beats

from .block_decompressor import BlockDecompressor
from .mac_stream_tile import MacStreamTile, mac_stream_tile_memory_specs
from .mac_tile import connect_mac_core, mac_core
from .stream_tile import connect_streamed
from .tile_memories import MemorySpec
from .weight_fetcher import WeightFetcher, fetcher_buffer_shapes

__all__ = ["CompressedStreamTile", "compressed_stream_tile_memory_specs"]


def compressed_stream_tile_memory_specs(config, weight_bits):
    """The streaming memory-compression tile's on-chip memories: the streaming MAC tile's
    (activations, two dense banks of weight words and biases: ``weight``, ``dense_bias``; the
    weights written a ``weight_bits`` granule at a time for the outliers) and the GOBO streaming
    tile's two GOBO banks (``index``, ``outlier``, ``bias``; :func:`~hw.weight_fetcher.
    fetcher_buffer_shapes`). Their size does not depend on ``M``."""
    mac = mac_stream_tile_memory_specs(config, weight_bits)
    weight = mac["weight"]
    specs = {"activation": mac["activation"],
             "weight": MemorySpec(weight.width, weight.depth, granularity=weight_bits),
             "dense_bias": mac["bias"]}
    specs.update({name: MemorySpec(width, depth)
                  for name, (width, depth) in fetcher_buffer_shapes(config).items()})
    return specs


class CompressedStreamTile(MacStreamTile):
    """The memory-compression tile (:class:`~hw.compressed_mac_tile.CompressedMacTile`) with its
    GOBO form off chip: ``Y = X W^T + b`` of any number of rows on ``pes`` MAC PEs, bit-exactly
    :func:`golden.hwmodel.mac_tile.mac_tile_outputs` of the decompressed layer.

    Three stages, each double-buffered against the next: the
    :class:`~hw.weight_fetcher.WeightFetcher` reads row block ``b`` in the GOBO streaming tile's
    layout (:func:`golden.hwmodel.offchip.offchip_layout` of
    :func:`golden.hwmodel.mac_tile.compressed_image`, so the off-chip bytes are GOBO's) into
    GOBO bank ``b % 2``; the :class:`~hw.block_decompressor.BlockDecompressor` expands it into
    dense bank ``b % 2`` (a word a cycle, then ``centroid + residual`` per outlier record, then
    the block counts as ``loaded``); the MAC tile's controller (``streamed=True``), PEs and merge
    compute on the dense banks, and their ``merged`` releases them. Timing:
    :func:`golden.hwmodel.compressed_stream_tile.compressed_stream_tile_cycles`.

    Parameters
    ----------
    config : :class:`~golden.config.GoboConfig`
    weight_bits : int
        Width of a dense signed weight and of a centroid, 2 to 32 bits.
    bus_bytes : int
        Bytes of an AXI R beat.
    memories : ``"internal"`` or ``"ports"``
        As :class:`~hw.tile.GoboTile`.

    Raises
    ------
    TypeError, ValueError
        As :class:`~hw.mac_stream_tile.MacStreamTile`.

    Members
    -------
    axi : ``Out(axi_read_signature(...))``
    load : ``In(stream.Signature(mac_load_layout(config, weight_bits)))``
        Activation words (``target = ACTIVATION``; other targets are taken, dropped and flagged in
        ``counters.error``).
    layer : ``In(mac_layer_layout(config, weight_bits))``
        As the memory-compression tile's: ``centroids`` is the dictionary as integer weights.
    base : ``In(32)``
    start, busy, o
        As the MAC tile's.
    counters : ``Out(stream_counters_layout(config))``
        The tile's counters, ``stall_memory`` (the broadcast's wait for a decompressed
        block), ``bytes_read`` and ``error`` (as :class:`~hw.stream_tile.StreamTile`'s).
    """

    def _memory_specs(self):
        return compressed_stream_tile_memory_specs(self._config, self._weight_bits)

    def _new_fetcher(self):
        return WeightFetcher(config=self._config, bus_bytes=self._bus_bytes)

    @property
    def beats(self):
        """``{section: beats of one word}`` (:func:`golden.hwmodel.offchip.word_beats`: the GOBO
        layout's)."""
        return word_beats(self._config, self._bus_bytes)

    def elaborate(self, platform):
        m = Module()
        config = self._config
        ctrl, units = mac_core(m, config, self._weight_bits, streamed=True)
        m.submodules.fetcher = fetch = self._fetcher
        m.submodules.decompressor = dec = BlockDecompressor(config=config,
                                                            weight_bits=self._weight_bits)
        mems = self._memories
        mems.build(m, self)

        connect_streamed(m, self, ctrl, fetch, mems, ("index", "outlier", "bias"), stage=dec,
                         bias="dense_bias")
        for name in ("index", "outlier", "bias"):
            wiring.connect(m, mems.read(name), getattr(dec, f"{name}_rd"))
        for name, port in (("weight", dec.weight_wr), ("dense_bias", dec.bias_wr)):
            wr = mems.write(name)
            m.d.comb += [wr.en.eq(port.en), wr.addr.eq(port.addr), wr.data.eq(port.data)]
        m.d.comb += [dec.centroids.eq(self.layer.centroids),
                     dec.bank_words[0].eq(fetch.bank_words[0]),
                     dec.bank_words[1].eq(fetch.bank_words[1])]
        wiring.connect(m, mems.read("weight"), ctrl.index_rd)
        connect_mac_core(m, self, ctrl, units)
        return m
