"""The cycle model of the streaming tile (:class:`hw.stream_tile.StreamTile`, docs/offchip.md):
the tile's control state (:class:`golden.hwmodel.tile.TileSteps`), the weight fetcher's request
and data walkers, and the off-chip memory (:class:`golden.hwmodel.offchip.OffchipPort`, the
same object the bench drives), stepped together one cycle at a time with ``o.ready`` high.

The numbers are the tile's (:func:`golden.hwmodel.tile.tile_outputs`): streaming changes when
a block is computed, never what.
"""

from golden.config import check_config
from golden.hwmodel.offchip import AXI_BOUNDARY, AXI_MAX_BURST, OffchipPort, word_beats
from golden.hwmodel.tile import TileSteps, records_per_block, tile_cycles

__all__ = ["stream_tile_cycles", "stream_tile_cycles_of_image", "block_beats"]

# The fetcher's request walker (hw/weight_fetcher.py).
_IDLE, _HEAD, _WAIT, _OUTL, _GATE = range(5)


def block_beats(config, bus_bytes, chunks, words_per_block):
    """``(head, totals)``: beats of a block's header, biases and index words, and every block's
    total beats (head plus its outlier words)."""
    beats = word_beats(config, bus_bytes)
    head = beats["header"] + beats["bias"] + chunks * beats["index"]
    return head, [head + w * beats["outlier"] for w in words_per_block]


def stream_tile_cycles(config, memory, *, blocks, chunks, tokens, words_per_block, rows=None,
                       outliers_per_block=None, base=0, max_cycles=None):
    """Predict every counter of a streaming tile run with ``o.ready`` always high.

    Parameters
    ----------
    config : GoboConfig
    memory : :class:`~golden.hwmodel.offchip.OffchipMemory`
        Its ``bus_bytes`` is the tile's.
    blocks, chunks, tokens, words_per_block, rows, outliers_per_block
        As :func:`golden.hwmodel.tile.tile_cycles`.
    base : int
        Byte address of the layer's off-chip image (where the 4 KiB boundaries fall).

    Returns
    -------
    dict
        :func:`~golden.hwmodel.tile.tile_cycles`'s counters plus ``stall_memory``, ``bytes_read``,
        ``first_beat`` (the cycle of the first broadcast beat: the first block's fill, which
        ``stall_memory`` includes) and ``utilization``.
    """
    check_config(config)
    # The checks and the per-PE counts are the whole-layer model's.
    static = tile_cycles(config, blocks=blocks, chunks=chunks, tokens=tokens,
                         words_per_block=words_per_block, rows=rows,
                         outliers_per_block=outliers_per_block, max_cycles=None)
    words = [int(w) for w in words_per_block]
    bus = memory.bus_bytes
    beats = word_beats(config, bus)
    head, totals = block_beats(config, bus, chunks, words)
    port = OffchipPort(memory)
    steps = TileSteps(config, blocks=blocks, chunks=chunks, tokens=tokens, words=words)
    if max_cycles is None:
        max_cycles = 10 * static["cycles"] + 20 * sum(totals) * (
            1 + int(bus / memory.bytes_per_cycle)) + 100 * blocks * memory.latency + 1000

    state, ar_block, ar_addr, ar_rem, hdr_count = _HEAD, 0, base, head, 0
    loaded, rx = 0, 0
    cycles, first_fill = 0, None
    while True:
        cycles += 1
        if cycles > max_cycles:
            raise RuntimeError(f"the cycle model did not finish within {max_cycles} cycles")
        arready, beat = port.outputs()
        steps.comb(loaded)
        if steps.finished:
            break
        if first_fill is None and steps.s0_go:
            first_fill = cycles - 1
        arvalid = state in (_HEAD, _OUTL)
        burst = min(ar_rem, AXI_MAX_BURST, (AXI_BOUNDARY - ar_addr % AXI_BOUNDARY) // bus)
        port.clock(arvalid, ar_addr, burst - 1, True)
        # Request walker.
        if arvalid and arready:
            if ar_rem == burst:
                state = _WAIT if state == _HEAD else _GATE
            ar_addr += burst * bus
            ar_rem -= burst
        elif state == _WAIT and hdr_count == ar_block + 1:
            ar_rem = words[ar_block] * beats["outlier"]
            state = _GATE if words[ar_block] == 0 else _OUTL
        elif state == _GATE:
            if ar_block + 1 == blocks:
                state = _IDLE
            elif ar_block <= steps.merged_blocks:
                state, ar_block, ar_rem = _HEAD, ar_block + 1, head
        # Data walker (rready is always high).
        if beat is not None:
            rx += 1
            if rx == 1:
                hdr_count += 1
            if rx == totals[loaded]:
                loaded, rx = loaded + 1, 0
        steps.clock()

    return {**static, "cycles": cycles, "stall_outlier": steps.stall_outlier,
            "stall_recon": steps.stall_recon, "stall_memory": steps.stall_memory,
            "bytes_read": port.bytes_read, "first_fill": first_fill,
            "utilization": steps.ideal / cycles}


def stream_tile_cycles_of_image(image, tokens, memory, base=0):
    """:func:`stream_tile_cycles` for a :class:`~golden.hwmodel.layer_image.LayerImage` run over
    ``tokens`` from ``memory``, its image at byte ``base``."""
    return stream_tile_cycles(image.config, memory, blocks=image.blocks, chunks=image.chunks,
                              tokens=tokens, words_per_block=image.words_per_block(),
                              rows=image.rows, outliers_per_block=records_per_block(image),
                              base=base)
