"""GOBO's memory-compression mode as a tile: the decompressor writes the MAC baseline tile's
weight memory from the GOBO form (indexes, dictionary, outliers) that crossed the off-chip
interface (docs/tile.md section 6)."""

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In

from golden.hwmodel.packing import (
    LoadTarget,
    decompressor_outlier_fields,
    index_beat_fields,
    weight_slice_fields,
    weight_word_bits,
)

from .decompressor import Decompressor
from .layouts import struct_layout
from .mac_tile import MacTile
from .params import MacParams

__all__ = ["CompressedMacTile"]


class CompressedMacTile(MacParams, wiring.Component):
    """A :class:`~hw.mac_tile.MacTile` whose weights arrive compressed, bit-exactly the dense
    tile on :func:`golden.hwmodel.mac.decompress` of them.

    Rows come on ``packed`` (``lanes`` indexes a beat, ``last`` on a row's final beat) with their
    outliers on ``outliers`` (:func:`golden.hwmodel.packing.decompressor_streams`), in row order
    over the padded blocks. The :class:`~hw.decompressor.Decompressor` expands them with
    ``layer.centroids`` (so ``layer`` must hold the layer while its weights stream in); a row
    counter turns row ``m = b*P + p``, beat ``j`` into a write of PE ``p``'s slice of weight word
    ``b*C + j`` (``C`` counted from the row's own beats), which goes into the tile's load stream
    ahead of any ``load`` beat. Activations and biases come on ``load`` as for the dense tile; a
    weight beat there would still be written, so the weights
    must come only through the decompressor.

    A ``start`` while the decompressor still holds a beat is kept until that beat is written,
    so a run never starts on a half-filled weight memory; ``busy`` covers the wait.

    Once started, a run is the dense tile's: it declares the same :attr:`fill_drain` and, as the
    tiles, no latency.

    Parameters
    ----------
    config, weight_bits, memories
        As :class:`~hw.mac_tile.MacTile`.

    Raises
    ------
    TypeError, ValueError
        As :class:`~hw.mac_tile.MacTile`.

    Members
    -------
    packed : ``In(stream.Signature(struct_layout(index_beat_fields(config))))``
    outliers : ``In(stream.Signature(struct_layout(decompressor_outlier_fields(...))))``
    load, layer, start, busy, o, counters
        As :class:`~hw.mac_tile.MacTile`.
    """

    def __init__(self, *, config, weight_bits, memories="internal"):
        self._init_mac(config, weight_bits)
        self._tile = MacTile(config=config, weight_bits=weight_bits, memories=memories)
        members = dict(self._tile.signature.members)
        members["packed"] = In(stream.Signature(struct_layout(index_beat_fields(config))))
        members["outliers"] = In(stream.Signature(
            struct_layout(decompressor_outlier_fields(config, weight_bits))))
        super().__init__(members)

    @property
    def memories(self):
        """The dense tile's :class:`~hw.tile_memories.TileMemories` (``memories.place``);
        read-only."""
        return self._tile.memories

    @property
    def fill_drain(self):
        """Cycles of a run beyond its ``T*B*C`` beats: the dense tile's,
        :attr:`~golden.config.GoboConfig.mac_tile_fill_drain`."""
        return self._tile.fill_drain

    def elaborate(self, platform):
        m = Module()
        config, w = self._config, self._weight_bits
        m.submodules.tile = tile = self._tile
        m.submodules.decompressor = dec = Decompressor(config=config, weight_bits=w)
        wiring.connect(m, wiring.flipped(self.packed), dec.i)
        wiring.connect(m, wiring.flipped(self.outliers), dec.outliers)
        m.d.comb += dec.centroids.eq(self.layer.centroids)

        # Memory ports (synthesis without memories) and the ports the wrapper does not touch.
        for name in tile.memories.members():
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(tile, name))
        m.d.comb += [tile.layer.eq(self.layer), self.counters.eq(tile.counters)]
        wiring.connect(m, tile.o, wiring.flipped(self.o))

        # Row walker: PE slot p, word base b*C and beat j of the row leaving the decompressor.
        word_bits = weight_word_bits(config)
        p = Signal(range(config.pes), name="row_pe")
        base = Signal(word_bits, name="row_base")
        j = Signal(range(config.chunks_max), name="row_beat")
        slice_fields = weight_slice_fields(config, w)
        weights = Value.cast(dec.o.payload.weights)
        assert sum(f.bits for f in slice_fields) == len(weights)

        weight_beat = Signal.like(tile.load.payload, name="weight_beat")
        m.d.comb += [
            weight_beat.target.eq(LoadTarget.WEIGHT),
            weight_beat.addr.eq((p << word_bits) | (base + j)),
            weight_beat.data.eq(weights),
        ]
        # The decompressor's beats go first; load beats pass when it has none.
        with m.If(dec.o.valid):
            m.d.comb += [tile.load.valid.eq(1), tile.load.payload.eq(weight_beat),
                         dec.o.ready.eq(tile.load.ready)]
        with m.Else():
            m.d.comb += [tile.load.valid.eq(self.load.valid),
                         tile.load.payload.eq(self.load.payload),
                         self.load.ready.eq(tile.load.ready)]
        with m.If(dec.o.valid & dec.o.ready):
            with m.If(dec.o.payload.last):
                m.d.sync += j.eq(0)
                with m.If(p == config.pes - 1):
                    m.d.sync += [p.eq(0), base.eq(base + j + 1)]
                with m.Else():
                    m.d.sync += p.eq(p + 1)
            with m.Else():
                m.d.sync += j.eq(j + 1)

        # A start waits for the decompressor to drain; a run restarts the row walker.
        start_pending = Signal(name="start_pending")
        launch = Signal(name="launch")
        m.d.comb += [
            launch.eq((self.start | start_pending) & ~tile.busy & ~dec.busy),
            tile.start.eq(launch),
            self.busy.eq(tile.busy | start_pending),
        ]
        with m.If(launch):
            m.d.sync += [start_pending.eq(0), p.eq(0), base.eq(0), j.eq(0)]
        with m.Elif(self.start & ~tile.busy):
            m.d.sync += start_pending.eq(1)
        return m
