"""The cycle model of the streaming memory-compression tile
(:class:`hw.compressed_stream_tile.CompressedStreamTile`, docs/offchip.md section 8): three
stages stepped together one cycle at a time with ``o.ready`` high. The weight fetcher and the
off-chip memory (:func:`golden.hwmodel.stream_tile.stream_steps`, the GOBO streaming tile's
stepping) fill the GOBO banks; the decompression walker (:class:`DecompressSteps`) expands a
block from them into a dense bank; the MAC tile's control state
(:class:`golden.hwmodel.mac_stream_tile.MacSteps`) computes on the dense banks.

The numbers are the whole-layer memory-compression tile's
(:func:`golden.hwmodel.mac_tile.mac_tile_outputs` of the decompressed layer): streaming changes
when a block is computed, never what.
"""

from golden.hwmodel.mac_stream_tile import MacSteps
from golden.hwmodel.mac_tile import compressed_image, mac_tile_cycles
from golden.hwmodel.offchip import word_beats
from golden.hwmodel.stream_tile import block_beats, stream_max_cycles, stream_steps

__all__ = ["DecompressSteps", "compressed_stream_tile_cycles", "DECOMPRESS_GAP"]

# The decompression walker's states (hw/block_decompressor.py).
_GATE, _ISSUE, _IDLE = range(3)

#: Walker cycles of a block beyond its items (``C`` index words and ``Q`` records per outlier
#: word): the gate cycle. The next block's items follow through the two pipeline stages
#: behind the last ones (the walker once let them drain first: 3 cycles a block); its last
#: item leaves them two cycles after it issues.
DECOMPRESS_GAP = 1


class DecompressSteps:
    """The decompression stage's walker in front of the MAC tile's control state
    (:class:`~golden.hwmodel.mac_stream_tile.MacSteps`), with the interface
    :func:`~golden.hwmodel.stream_tile.stream_steps` steps (:meth:`comb` with the blocks the
    fetcher has ``loaded``, :attr:`finished`, :attr:`s0_go`, :attr:`merged_blocks`: here the
    blocks decompressed, which release the GOBO banks, :meth:`clock`).

    Block ``d`` is decompressed once the fetcher has loaded it (``d < fetched``) and the MAC
    merge has released the dense bank it overwrites (``d <= merged + 1``): a gate cycle, then
    one item a cycle (``C`` index words, then ``Q`` records of each of the block's ``W_d``
    outlier words), each through two more stages, block ``d``'s first items behind block
    ``d - 1``'s last ones; the block counts as decompressed (``loaded``, the MAC broadcast's
    gate) the cycle after its last item leaves the second.
    """

    def __init__(self, config, *, blocks, chunks, tokens, words):
        self.mac = MacSteps(config, blocks=blocks, chunks=chunks, tokens=tokens)
        self.ideal = self.mac.ideal
        self.items = [chunks + w * config.outlier_lanes for w in words]
        self.state, self.block, self.left = _GATE, 0, 0
        self.s1 = self.s2 = None        # None, or whether the item is its block's last
        self.loaded = 0
        self.fetched = 0
        self.busy_cycles = 0            # cycles the walker issued an item

    @property
    def merged_blocks(self):
        """Blocks decompressed: their GOBO banks are free for the fetcher."""
        return self.loaded

    @property
    def finished(self):
        return self.mac.finished

    @property
    def s0_go(self):
        return self.mac.s0_go

    @property
    def stall_memory(self):
        return self.mac.stall_memory

    def comb(self, fetched):
        self.fetched = fetched
        self.mac.comb(self.loaded)

    def clock(self):
        merged = self.mac.merged_blocks
        s1, s2 = self.s1, self.s2
        issued = None
        if self.state == _ISSUE:
            self.busy_cycles += 1
            issued = self.left == 1
            self.left -= 1
            if not self.left:
                self.block += 1
                self.state = _GATE if self.block < len(self.items) else _IDLE
        elif self.state == _GATE and self.block < self.fetched and self.block <= merged + 1:
            self.state, self.left = _ISSUE, self.items[self.block]
        if s2:
            self.loaded += 1
        self.s1, self.s2 = issued, s1
        self.mac.clock()


def compressed_stream_tile_cycles(layer, tokens, memory, base=0, max_cycles=None):
    """Predict every counter of a streaming memory-compression tile run of ``layer`` (a
    memory-compression :class:`~golden.hwmodel.mac_tile.MacLayer`) over ``tokens`` with
    ``o.ready`` always high, its GOBO form in the GOBO layout
    (:func:`~golden.hwmodel.offchip.offchip_layout` of
    :func:`~golden.hwmodel.mac_tile.compressed_image`) at byte ``base`` of ``memory``.

    Returns
    -------
    dict
        :func:`~golden.hwmodel.mac_tile.mac_tile_cycles`'s counters with ``cycles`` streamed,
        plus ``stall_memory`` (the broadcast's wait for a decompressed block), ``bytes_read``,
        ``error`` (0), ``first_fill``, ``ideal_cycles``, ``utilization`` (as :func:`golden.hwmodel.
        mac_stream_tile.mac_stream_tile_cycles`) and ``decompress_cycles`` (cycles the
        decompression walker issued an item; a model figure, not a counter of the RTL).

    Raises
    ------
    ValueError
        As :func:`~golden.hwmodel.mac_tile.compressed_image`.
    RuntimeError
        If the run does not finish within ``max_cycles``.
    """
    config = layer.config
    image = compressed_image(layer)
    static = mac_tile_cycles(layer, tokens)
    words = image.words_per_block()
    head, totals = block_beats(config, memory.bus_bytes, layer.chunks, words)
    steps = DecompressSteps(config, blocks=layer.blocks, chunks=layer.chunks, tokens=tokens,
                            words=words)
    if max_cycles is None:
        max_cycles = stream_max_cycles(static["cycles"] + sum(steps.items), totals, memory)
    cycles, first_fill, port = stream_steps(
        steps, memory, head=head, totals=totals, words=words,
        outlier_beats=word_beats(config, memory.bus_bytes)["outlier"], base=base,
        max_cycles=max_cycles)
    return {**static, "cycles": cycles, "stall_memory": steps.stall_memory,
            "bytes_read": port.bytes_read, "first_fill": first_fill,
            # the layout checks refuse what sets an error bit (packing.STREAM_ERRORS)
            "error": 0,
            "ideal_cycles": steps.ideal, "utilization": steps.ideal / cycles,
            "decompress_cycles": steps.busy_cycles}
