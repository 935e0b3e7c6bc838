"""The cycle model of the streaming MAC tile (:class:`hw.mac_stream_tile.MacStreamTile`,
docs/offchip.md section 8): the MAC tile's control state (:class:`MacSteps`), the weight
fetcher and the off-chip memory (:func:`golden.hwmodel.stream_tile.stream_steps`, the GOBO
streaming tile's stepping), one cycle at a time with ``o.ready`` high.

The numbers are the MAC tile's (:func:`golden.hwmodel.mac_tile.mac_tile_outputs`): streaming
changes when a block is computed, never what.
"""

from golden.hwmodel.mac_tile import mac_tile_cycles
from golden.hwmodel.offchip import mac_word_beats
from golden.hwmodel.stream_tile import stream_max_cycles, stream_steps

__all__ = ["MacSteps", "mac_stream_tile_cycles"]


class MacSteps:
    """The MAC tile's control state (broadcast, MAC PEs, merge; no data), stepped as the RTL
    does, with the interface of :class:`golden.hwmodel.tile.TileSteps` (:meth:`comb` with the
    blocks ``loaded``, :attr:`finished`, :meth:`clock`, :attr:`merged_blocks`,
    :attr:`stall_memory`).

    The MAC PE takes a beat every cycle and the merge every result (no outliers, ``o`` ready),
    so a beat only waits for its block's weights: the broadcast issues beat ``i`` once its block
    is loaded; a slot's last beat leaves the PEs ``mac_pe_latency`` cycles after it is
    broadcast, the merge takes it then (``merged`` counts it) and its outputs transfer
    ``merge_latency`` cycles later.
    """

    def __init__(self, config, *, blocks, chunks, tokens):
        self.config, self.chunks, self.tokens = config, chunks, tokens
        self.slots = blocks * tokens
        self.ideal = self.slots * chunks
        self.issued, self.s1_valid, self.s1_last = 0, False, False
        self.pe = [False] * config.mac_pe_latency       # a slot's last beat in the PEs
        self.merge = [None] * config.merge_latency      # None, or whether the run's last slot
        self.merged = 0
        self.stall_memory = self.stall_outlier = self.stall_recon = 0
        self.finished = False

    @property
    def merged_blocks(self):
        return self.merged // self.tokens

    def comb(self, loaded=None):
        more = self.issued < self.ideal
        ready = loaded is None or self.issued // (self.chunks * self.tokens) < loaded
        # The PEs always take the beat on offer, so stage 0 is always free.
        self.s0_go = more and ready
        self.stall_memory += more and not ready
        self.take = self.pe[-1]
        self.finished = bool(self.merge[-1])

    def clock(self):
        self.merge = [(self.merged == self.slots - 1) if self.take else None] + self.merge[:-1]
        self.merged += self.take
        self.pe = [self.s1_valid and self.s1_last] + self.pe[:-1]
        self.s1_valid = self.s0_go
        if self.s0_go:
            self.s1_last = self.issued % self.chunks == self.chunks - 1
            self.issued += 1


def mac_stream_tile_cycles(layer, tokens, memory, base=0, max_cycles=None):
    """Predict every counter of a streaming MAC tile run of ``layer`` (a
    :class:`~golden.hwmodel.mac_tile.MacLayer`) over ``tokens`` with ``o.ready`` always high,
    its dense image (:func:`~golden.hwmodel.offchip.mac_offchip_layout`) at byte ``base`` of
    ``memory``.

    Returns
    -------
    dict
        :func:`~golden.hwmodel.mac_tile.mac_tile_cycles`'s counters with ``cycles`` streamed,
        plus ``stall_memory``, ``bytes_read``, ``error`` (0), ``first_fill``, ``ideal_cycles`` and
        ``utilization`` (as :func:`golden.hwmodel.stream_tile.stream_tile_cycles`).

    Raises
    ------
    RuntimeError
        If the run does not finish within ``max_cycles``.
    """
    config = layer.config
    static = mac_tile_cycles(layer, tokens)
    beats = mac_word_beats(config, layer.weight_bits, memory.bus_bytes)
    head = beats["bias"] + layer.chunks * beats["weight"]
    totals = [head] * layer.blocks
    steps = MacSteps(config, blocks=layer.blocks, chunks=layer.chunks, tokens=tokens)
    if max_cycles is None:
        max_cycles = stream_max_cycles(static["cycles"], totals, memory)
    cycles, first_fill, port = stream_steps(
        steps, memory, head=head, totals=totals, words=[0] * layer.blocks, outlier_beats=0,
        base=base, max_cycles=max_cycles, header=False)
    return {**static, "cycles": cycles, "stall_memory": steps.stall_memory,
            "bytes_read": port.bytes_read, "first_fill": first_fill,
            # the layout checks refuse what sets an error bit (packing.STREAM_ERRORS)
            "error": 0,
            "ideal_cycles": steps.ideal, "utilization": steps.ideal / cycles}
