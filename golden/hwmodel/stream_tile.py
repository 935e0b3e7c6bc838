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

__all__ = ["stream_tile_cycles", "stream_tile_cycles_of_image", "block_beats", "stream_steps",
           "stream_max_cycles", "CarrySteps"]

# The fetcher's request walker (hw/weight_fetcher.py).
_IDLE, _HEAD, _WAIT, _OUTL, _GATE = range(5)


def block_beats(config, bus_bytes, chunks, words_per_block):
    """``(head, totals)``: beats of a block's header, biases and index words, and every block's
    total beats (head plus its outlier words)."""
    beats = word_beats(config, bus_bytes)
    head = beats["header"] + beats["bias"] + chunks * beats["index"]
    return head, [head + w * beats["outlier"] for w in words_per_block]


class CarrySteps(TileSteps):
    """:class:`~golden.hwmodel.tile.TileSteps` of a pass that adds carried partial sums
    (``layer.carry_in``, docs/offchip.md section 10): the merge takes slot ``k`` only once the
    ``carry`` stream offers its beat, which ``carry`` (a
    :class:`~golden.hwmodel.passes.CarrySchedule`) says from which cycle of the run (0: the
    first busy cycle) it does; a broadcast stall while the merge waits only for it counts in
    :attr:`stall_carry`."""

    def __init__(self, config, *, carry, **kwargs):
        super().__init__(config, **kwargs)
        self.carry, self.cycle, self.stall_carry = carry, 0, 0

    def carry_ok(self):
        return self.carry.available(self.merged, self.cycle)

    def count_carry_stall(self):
        self.stall_carry += 1

    def clock(self):
        super().clock()
        self.cycle += 1


def stream_tile_cycles(config, memory, *, blocks, chunks, tokens, words_per_block, rows=None,
                       outliers_per_block=None, base=0, max_cycles=None, carry=None):
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
    carry : :class:`~golden.hwmodel.passes.CarrySchedule`, optional
        A pass that adds carried partial sums, offered on this schedule (None: no carry).

    Returns
    -------
    dict
        :func:`~golden.hwmodel.tile.tile_cycles`'s counters plus ``stall_memory``, ``bytes_read``,
        ``error`` (0),
        ``first_beat`` (the cycle of the first broadcast beat: the first block's fill, which
        ``stall_memory`` includes) and ``utilization``; with ``config.max_passes > 1``
        ``stall_carry`` too (0 without ``carry``).
    """
    check_config(config)
    # The checks and the per-PE counts are the whole-layer model's.
    static = tile_cycles(config, blocks=blocks, chunks=chunks, tokens=tokens,
                         words_per_block=words_per_block, rows=rows,
                         outliers_per_block=outliers_per_block, max_cycles=None)
    words = [int(w) for w in words_per_block]
    bus = memory.bus_bytes
    head, totals = block_beats(config, bus, chunks, words)
    shape = dict(blocks=blocks, chunks=chunks, tokens=tokens, words=words)
    if carry is not None and config.max_passes == 1:
        raise ValueError("a carry needs a configuration with max_passes > 1")
    steps = TileSteps(config, **shape) if carry is None else CarrySteps(config, carry=carry,
                                                                         **shape)
    if max_cycles is None:
        max_cycles = stream_max_cycles(static["cycles"], totals, memory)
        if carry is not None:
            max_cycles += carry.last_arrival(blocks * tokens)
    cycles, first_fill, port = stream_steps(
        steps, memory, head=head, totals=totals, words=words,
        outlier_beats=word_beats(config, bus)["outlier"], base=base, max_cycles=max_cycles)
    passes = ({"stall_carry": getattr(steps, "stall_carry", 0)} if config.max_passes > 1
              else {})
    return {**static, "cycles": cycles, "stall_outlier": steps.stall_outlier,
            "stall_recon": steps.stall_recon, "stall_memory": steps.stall_memory,
            "bytes_read": port.bytes_read, "first_fill": first_fill,
            # the layout checks refuse what sets an error bit (packing.STREAM_ERRORS)
            "error": 0,
            "utilization": steps.ideal / cycles, **passes}


def stream_tile_cycles_of_image(image, tokens, memory, base=0, carry=None):
    """:func:`stream_tile_cycles` for a :class:`~golden.hwmodel.layer_image.LayerImage` run over
    ``tokens`` from ``memory``, its image at byte ``base`` (``carry`` as there)."""
    return stream_tile_cycles(image.config, memory, blocks=image.blocks, chunks=image.chunks,
                              tokens=tokens, words_per_block=image.words_per_block(),
                              rows=image.rows, outliers_per_block=records_per_block(image),
                              base=base, carry=carry)


def stream_max_cycles(static_cycles, totals, memory):
    """A generous bound on a streamed run's cycles (the model's guard against a hang): the
    whole-layer run ``static_cycles`` and every block's beats ``totals`` at the memory's rate
    and latency, with margins."""
    return (10 * static_cycles + 20 * sum(totals) * (
        1 + int(memory.bus_bytes / memory.bytes_per_cycle))
        + 100 * len(totals) * memory.latency + 1000)


def stream_steps(steps, memory, *, head, totals, words, outlier_beats, base, max_cycles,
                 header=True):
    """Step a tile's control state ``steps`` (:class:`~golden.hwmodel.tile.TileSteps` or alike:
    ``comb(loaded)``, ``finished``, ``s0_go``, ``merged_blocks``, ``clock()``), the weight
    fetcher's request and data walkers (hw/weight_fetcher.py) and an
    :class:`~golden.hwmodel.offchip.OffchipPort` of ``memory`` together, one cycle at a time,
    until the last output transfers.

    ``head`` is a block's beats before its outliers, ``totals`` every block's beats, ``words``
    every block's outlier words (``W_b``) of ``outlier_beats`` beats each; ``header`` False
    for the dense layout (:func:`~golden.hwmodel.offchip.mac_offchip_layout`: no header, no
    outliers, the walker goes from the head straight to the gate).

    Returns ``(cycles, first_fill, port)``: ``first_fill`` the cycle of the first broadcast beat.

    Raises
    ------
    RuntimeError
        If the run does not finish within ``max_cycles``.
    """
    bus = memory.bus_bytes
    blocks = len(totals)
    port = OffchipPort(memory)
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
                state = _WAIT if state == _HEAD and header else _GATE
            ar_addr += burst * bus
            ar_rem -= burst
        elif state == _WAIT and hdr_count == ar_block + 1:
            ar_rem = words[ar_block] * outlier_beats
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
    return cycles, first_fill, port
