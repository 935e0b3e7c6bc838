"""The streaming tiles' latency at any size: every counter of
:func:`golden.hwmodel.stream_tile.stream_tile_cycles` (GOBO),
:func:`golden.hwmodel.mac_stream_tile.mac_stream_tile_cycles` (W16A16 / W8A8 / W4A4) and
:func:`golden.hwmodel.compressed_stream_tile.compressed_stream_tile_cycles` (the
memory-compression mode), equal to them, in time that grows with the row blocks and the
memory's bursts and stalls rather than the cycles (docs/latency.md).

The stepping models run the tile's control state, the weight fetcher and the
:class:`~golden.hwmodel.offchip.OffchipPort` together, a cycle at a time. The two halves only
meet at two sequences of cycles (docs/offchip.md section 4):

- ``A[b]``: the cycle in which block ``b``'s last beat is taken (the broadcast and the
  side-path commands may take block ``b`` from cycle ``A[b] + 1`` on);
- ``G[k]``: the first cycle in which the merge has finished ``k`` blocks (the reader may ask
  for block ``k + 1`` from then on; ``G[0] = 0``).

So this model runs them as two event simulations, each with the other's sequence as its input,
interleaved by block (block ``b``'s requests need ``G[b - 1]``, its compute needs ``A[b]``; the
beats of a block whose requests are all made do not depend on ``G`` at all, so ``A[b]`` can be
read ahead):

- **Memory** (:class:`_Reader`): the fetcher's request walker is stepped a cycle at a time only
  when it can act (a request to make, the header to read, the gate to pass); while it waits,
  the beats of the queued bursts are delivered in closed form: one a cycle when the memory's
  rate is a beat a cycle or more, else the token bucket's ``k(m) = floor((X + (m - 1) P) / B)``
  beats in ``m`` backlogged unstalled cycles from credit ``X`` (``P`` bytes a cycle, ``B`` a
  beat, ``X < 2B``; the bucket's cap never binds there), up to the next stall of the memory's
  :class:`~golden.hwmodel.offchip.StallSequence`, the end of the head burst or of a block.
- **Compute** (:func:`_compute`): the tile's own control state
  (:class:`~golden.hwmodel.tile.TileSteps`, :class:`~golden.hwmodel.mac_stream_tile.MacSteps`,
  :class:`~golden.hwmodel.compressed_stream_tile.DecompressSteps`: the stepping models' code)
  with two exact jumps: (1) a cycle whose only effect is one more broadcast beat (and one less
  side-path word or decompression item) repeats until a beat is a slot's last or the side
  path's last word or the block's last item issues; a cycle with no effect but stall counts
  repeats until the next block arrives; (2) when the whole state, its pointers taken relative
  to the slot, is the same at the first beat of two consecutive slots, and every slot the
  pointers will touch is loaded and in the same block, the period repeats slot after slot, so
  it is applied ``k`` times at once. The decompression walker reads the fetched blocks in any
  state, so for it the period must also see no block arrive, and the jump ends before the next
  arrival.

The memory-compression tile's fetcher and memory are the GOBO tile's (the same
:class:`_Reader`); its compute half is the decompression walker with the MAC control state
behind it, whose blocks are the decompressed ones (part of the state the jumps compare), and
``G[k]`` is the first cycle with ``k`` blocks decompressed (their GOBO banks free).

Both jumps are exact by construction (a deterministic step of the same state with the same
inputs gives the same result); ``tests/test_latency.py`` checks every counter against the
stepping models on every shape and memory the test suite simulates and on a seeded sweep.

Token groups (:func:`stream_latency`, :func:`mac_stream_latency`,
:func:`compressed_stream_latency`): ``T`` above the tile's
``max_tokens`` runs as ``ceil(T / max_tokens)`` back-to-back tile jobs
(:func:`golden.hwmodel.token_groups.group_cycles`, the stepping models' rule), each reading the
whole layer again from its own cycle 0; the layer's counters are the jobs' sums.
"""

import collections
import dataclasses
import math
import operator
from fractions import Fraction

import numpy as np

from golden.config import check_config, check_int
from golden.hwmodel.compressed_stream_tile import DecompressSteps
from golden.hwmodel.mac_stream_tile import MacSteps
from golden.hwmodel.offchip import (
    AXI_BOUNDARY,
    AXI_MAX_BURST,
    StallSequence,
    mac_word_beats,
    word_beats,
)
from golden.hwmodel.stream_tile import CarrySteps, block_beats
from golden.hwmodel.tile import TileSteps, tile_static_counts
from golden.hwmodel.token_groups import group_cycles

__all__ = ["stream_tile_latency", "mac_stream_tile_latency",
           "compressed_stream_tile_latency", "stream_latency", "mac_stream_latency",
           "compressed_stream_latency", "STEP_STATE"]

#: The fields of each control state that change while it runs; :func:`_compute` compares and
#: moves exactly these, and a test checks that they are all the class's run-time attributes. A
#: dotted name is a field of a part (the memory-compression tile's MAC control state).
STEP_STATE = {
    TileSteps: ("issued", "s1_valid", "s1_last", "ho_valid", "step", "rec_o", "cmd_next", "rem",
                "sp_stages", "sp_o", "merged", "merge"),
    MacSteps: ("issued", "s1_valid", "s1_last", "pe", "merge", "merged"),
}
STEP_STATE[DecompressSteps] = ("state", "block", "left", "s1", "s2", "loaded",
                               *("mac." + f for f in STEP_STATE[MacSteps]))
# A pass's carry: its cycle is set from the model's (not moved by the jumps).
STEP_STATE[CarrySteps] = STEP_STATE[TileSteps]


@dataclasses.dataclass(frozen=True)
class _Roles:
    """What :func:`_compute`'s jumps need to know of a control state's fields: the broadcast's
    beat count (``issued``), the slot pointers besides it, the fields that count down one a
    cycle while a run of items issues (a run ends the cycle they are 1), the counters, where
    ``slots`` and ``merged`` live, and whether the blocks the MAC computes on are the control
    state's own (``inner_loaded``: the decompressed blocks) rather than the fetched ones."""

    issued: str
    pointers: tuple
    countdowns: tuple
    counters: tuple
    part: str = ""
    inner_loaded: bool = False


_ROLES = {
    TileSteps: _Roles("issued", ("cmd_next", "merged"), ("rem",),
                      ("stall_outlier", "stall_recon", "stall_memory")),
    MacSteps: _Roles("issued", ("merged",), (), ("stall_memory",)),
    DecompressSteps: _Roles("mac.issued", ("mac.merged",), ("left",),
                            ("mac.stall_memory", "busy_cycles"), part="mac",
                            inner_loaded=True),
    CarrySteps: _Roles("issued", ("cmd_next", "merged"), ("rem",),
                       ("stall_outlier", "stall_recon", "stall_memory", "stall_carry")),
}

# The fetcher's request walker (hw/weight_fetcher.py; as golden.hwmodel.stream_tile).
_IDLE, _HEAD, _WAIT, _OUTL, _GATE = range(5)
_NEVER = math.inf


class _Stalls:
    """:class:`~golden.hwmodel.offchip.StallSequence` with the two searches the jumps need."""

    def __init__(self, memory):
        self.memory = memory
        self.seq = StallSequence(memory)

    def __call__(self, cycle):
        return self.seq(cycle)

    def _random(self, cycle, value):
        """The first cycle ``>= cycle`` whose random stall bit is ``value``."""
        seq = self.seq
        while True:
            seq(cycle + StallSequence.CHUNK)      # draws far enough
            hits = np.flatnonzero(seq._random[cycle:] == value)
            if len(hits):
                return cycle + int(hits[0])
            cycle = len(seq._random)

    def next_stall(self, cycle):
        """The first stalled cycle ``>= cycle`` (inf: none)."""
        m = self.memory
        out = _NEVER
        if m.refresh_interval and m.refresh_cycles:
            start = m.refresh_interval - m.refresh_cycles
            phase = cycle % m.refresh_interval
            out = cycle if phase >= start else cycle + start - phase
        if m.stall_probability:
            out = min(out, self._random(cycle, True))
        return out

    def next_free(self, cycle):
        """The first unstalled cycle ``>= cycle``."""
        while self(cycle):
            m = self.memory
            nxt = cycle + 1
            if m.refresh_interval and cycle % m.refresh_interval >= \
                    m.refresh_interval - m.refresh_cycles:
                nxt = (cycle // m.refresh_interval + 1) * m.refresh_interval
            elif m.stall_probability:
                nxt = self._random(cycle, False)
            cycle = nxt
        return cycle


@dataclasses.dataclass
class _Reader:
    """The weight fetcher and the off-chip memory (``stream_steps``'s request walker, data walker
    and :class:`~golden.hwmodel.offchip.OffchipPort`), as an event simulation. ``gate(k)`` is
    ``G[k]`` or None while unknown; :attr:`arrivals` collects ``A[b]``."""

    memory: object
    head: int
    totals: list
    words: list
    outlier_beats: int
    base: int
    header: bool
    gate: object
    stalls: object = None

    def __post_init__(self):
        m = self.memory
        q = Fraction(m.bytes_per_cycle).denominator
        # The token bucket in units of 1/q byte: exact integers.
        self.P = int(m.bytes_per_cycle * q)
        self.Bq = m.bus_bytes * q
        self.cap = self.Bq + self.P
        self.X = self.Bq
        self.n = 0
        self.queue = collections.deque()          # [accepted cycle, beats left]
        self.state, self.ar_block, self.ar_addr, self.ar_rem = _HEAD, 0, self.base, self.head
        self.hdr_count = self.loaded = self.rx = self.beats = 0
        self.arrivals = []
        if self.stalls is None:
            self.stalls = _Stalls(m)

    def clone(self):
        twin = dataclasses.replace(self, stalls=self.stalls)
        twin.__dict__.update(self.__dict__)
        twin.queue = collections.deque([list(e) for e in self.queue])
        twin.arrivals = list(self.arrivals)
        return twin

    @property
    def bytes_read(self):
        return self.beats * self.memory.bus_bytes

    def _step(self):
        """One cycle, exactly as ``stream_steps``; the walker's gate is known to be decided."""
        m, n, q = self.memory, self.n, self.queue
        arready = len(q) < m.max_outstanding
        beat = bool(q) and q[0][0] + m.latency <= n and self.X >= self.Bq and not self.stalls(n)
        arvalid = self.state in (_HEAD, _OUTL)
        if arvalid:
            burst = min(self.ar_rem, AXI_MAX_BURST,
                        (AXI_BOUNDARY - self.ar_addr % AXI_BOUNDARY) // m.bus_bytes)
            if arready:
                q.append([n, burst])
        if beat:
            q[0][1] -= 1
            if q[0][1] == 0:
                q.popleft()
            self.X -= self.Bq
            self.beats += 1
        self.X = min(self.X + self.P, self.cap)
        if arvalid and arready:
            if self.ar_rem == burst:
                self.state = _WAIT if self.state == _HEAD and self.header else _GATE
            self.ar_addr += burst * m.bus_bytes
            self.ar_rem -= burst
        elif self.state == _WAIT and self.hdr_count == self.ar_block + 1:
            self.ar_rem = self.words[self.ar_block] * self.outlier_beats
            self.state = _GATE if self.words[self.ar_block] == 0 else _OUTL
        elif self.state == _GATE:
            if self.ar_block + 1 == len(self.totals):
                self.state = _IDLE
            elif n >= self.gate(self.ar_block):
                self.state, self.ar_block, self.ar_rem = _HEAD, self.ar_block + 1, self.head
        if beat:
            self._took(1, n)
        self.n = n + 1

    def _took(self, count, last):
        """The data walker after ``count`` beats of one block, the last in cycle ``last``."""
        if self.rx == 0:
            self.hdr_count += 1
        self.rx += count
        if self.rx == self.totals[self.loaded]:
            self.arrivals.append(last)
            self.loaded, self.rx = self.loaded + 1, 0

    def _horizon(self, peek):
        """The first cycle at which the waiting walker may act (None: it may act now)."""
        state = self.state
        if state == _IDLE:
            return _NEVER
        if state in (_HEAD, _OUTL):
            return _NEVER if len(self.queue) >= self.memory.max_outstanding else None
        if state == _WAIT:
            return None if self.hdr_count == self.ar_block + 1 else _NEVER
        if self.ar_block + 1 == len(self.totals):
            return None
        if peek:
            return _NEVER
        g = self.gate(self.ar_block)
        if g is None:
            return "unknown"
        return None if self.n >= g else g

    def _deliver(self, until):
        """Deliver the head burst's beats while the walker waits (before cycle ``until``),
        stopping after the burst's last beat, a block's last beat or, if the walker waits for
        it, a header."""
        m, stalls = self.memory, self.stalls
        if not self.queue:
            if until is _NEVER:
                return False
            self.X = min(self.X + (until - self.n) * self.P, self.cap)
            self.n = until
            return True
        head = self.queue[0]
        want = min(head[1], self.totals[self.loaded] - self.rx)
        if self.state == _WAIT and self.rx == 0 and self.loaded == self.ar_block:
            want = 1
        t = self.n
        ready = head[0] + m.latency
        if ready > t:
            stop = min(ready, until)
            self.X = min(self.X + (stop - t) * self.P, self.cap)
            t = stop
        got, last = 0, None
        while got < want and t < until:
            if stalls(t):
                free = min(stalls.next_free(t), until)
                self.X = min(self.X + (free - t) * self.P, self.cap)
                t = free
                continue
            end = min(stalls.next_stall(t), until)
            need = want - got
            if self.P >= self.Bq:
                k = min(need, end - t)
                self.X = min(self.X + k * (self.P - self.Bq), self.cap)
                last, t = t + k - 1, t + k
            else:
                span = end - t if end is not _NEVER else None
                avail = need if span is None else min(need, (self.X + (span - 1) * self.P)
                                                      // self.Bq)
                if avail == need:
                    c = max(0, -(-(need * self.Bq - self.X) // self.P))
                    self.X += (c + 1) * self.P - need * self.Bq
                    k, last, t = need, t + c, t + c + 1
                else:
                    if avail:
                        c = max(0, -(-(avail * self.Bq - self.X) // self.P))
                        last = t + c
                    self.X += span * self.P - avail * self.Bq
                    k, t = avail, end
            got += k
        self.n = t
        if got:
            head[1] -= got
            if head[1] == 0:
                self.queue.popleft()
            self.beats += got
            self._took(got, last)
        return True

    def advance(self, target=None, peek=False):
        """Run until block ``target`` has arrived (None: to the end), or the walker waits at a
        gate not yet known (``peek``: the walker never passes the gate). Returns False if it
        stopped at an unknown gate."""
        while target is None or len(self.arrivals) <= target:
            if self.loaded == len(self.totals) and self.state == _IDLE:
                return True
            h = self._horizon(peek)
            if h is None:
                self._step()
            elif h == "unknown":
                return False
            elif not self._deliver(h):
                return True
        return True


def _get(steps, path):
    return operator.attrgetter(path)(steps)


def _set(steps, path, value):
    owner, _, name = path.rpartition(".")
    setattr(_get(steps, owner) if owner else steps, name, value)


def _add(steps, path, delta):
    _set(steps, path, _get(steps, path) + delta)


def _state(steps, fields):
    return tuple(tuple(v) if isinstance(v, list) else v
                 for v in (_get(steps, f) for f in fields))


def _compute(steps, reader, *, blocks, chunks, tokens, max_cycles):
    """Run a tile's control state ``steps`` against ``reader`` (the two interleaved as the
    module docstring says). Returns ``(cycles, first_fill, gates)``."""
    cls = type(steps)
    fields = STEP_STATE[cls]
    roles = _ROLES[cls]
    pointers = roles.pointers
    i_issued = fields.index(roles.issued)
    i_countdowns = {fields.index(c) for c in roles.countdowns}
    part = _get(steps, roles.part) if roles.part else steps
    per_block = chunks * tokens
    gates = [0]
    arrivals = {}           # A[b], including reads ahead
    state = {"loaded": 0, "twin": None}

    def gate(k):
        return gates[k] if k < len(gates) else None

    reader.gate = gate

    def arrival(b):
        """``A[b]``, or None while the reader cannot have asked for block ``b`` yet."""
        if b in arrivals:
            return arrivals[b]
        if b >= blocks:
            return None
        reader.advance(b)
        for i, a in enumerate(reader.arrivals):
            arrivals[i] = a
        if b in arrivals:
            return arrivals[b]
        if reader.ar_block < b:
            return None
        # Every request of block b is made: its beats no longer depend on the gate.
        twin = reader.clone()
        twin.advance(b, peek=True)
        for i, a in enumerate(twin.arrivals):
            arrivals.setdefault(i, a)
        return arrivals[b]

    def loaded_at(n):
        while state["loaded"] < blocks:
            a = arrival(state["loaded"])
            if a is None or a >= n:
                break
            state["loaded"] += 1
        return state["loaded"]

    def counters():
        return tuple(_get(steps, c) for c in roles.counters)

    carry = getattr(steps, "carry", None)

    def carry_wake():
        """The cycle (after ``n``) from which the merge's next carry beat is offered, or None
        (no carry, or it is offered already)."""
        if carry is None or steps.merged >= steps.slots:
            return None
        c = carry.latency + steps.merged * carry.interval
        return c if c > n else None

    def wake(a):
        """The first cycle after ``n`` at which a time input changes: block arrival ``a`` (the
        block is loaded from ``a + 1``) or the next carry beat; None if neither."""
        times = [t for t in (None if a is None else a + 1, carry_wake())
                 if t is not None and t > n]
        return min(times) if times else None

    def add_counters(delta, times):
        for c, d in zip(roles.counters, delta):
            if d:
                _add(steps, c, d * times)

    n, first_fill = 0, None
    last_snap = None    # (relative state, n, counters, pointers, computable blocks, fetched)
    while True:
        if n >= max_cycles:
            raise RuntimeError(f"the latency model did not finish within {max_cycles} cycles")
        loaded = loaded_at(n)
        before, before_c = _state(steps, fields), counters()
        if carry is not None:
            steps.cycle = n
        steps.comb(loaded)
        if steps.finished:
            return n + 1, first_fill, gates
        go = steps.s0_go
        if first_fill is None and go:
            first_fill = n
        merged_blocks = steps.merged_blocks
        steps.clock()
        n += 1
        while steps.merged_blocks > len(gates) - 1:
            gates.append(n)
        if steps.merged_blocks != merged_blocks:
            continue
        after, after_c = _state(steps, fields), counters()
        delta = tuple(a - b for a, b in zip(after_c, before_c))
        # (1) A cycle that only issued a beat (and a side-path word), or did nothing at all.
        diff = [i for i, (a, b) in enumerate(zip(after, before)) if a != b]
        if not diff:
            t = wake(arrival(loaded))
            if t is not None:
                add_counters(delta, t - n)
                n = t
            continue
        if set(diff) <= {i_issued} | i_countdowns and (
                i_issued not in diff or after[i_issued] == before[i_issued] + 1) and all(
                after[i] == before[i] - 1 for i in i_countdowns.intersection(diff)):
            # The next cycles repeat this one until a slot's last beat, the side path's last
            # word or the next block's arrival (which may wake the command walker).
            jump = _NEVER
            if i_issued in diff:
                jump = chunks - 1 - after[i_issued] % chunks
            for i in i_countdowns.intersection(diff):
                jump = min(jump, after[i] - 1)
            a = arrival(loaded)
            if a is not None:
                jump = min(jump, a + 1 - n)
            c = carry_wake()
            if c is not None:
                jump = min(jump, c - n)
            if 0 < jump < _NEVER:
                if i_issued in diff:
                    part.issued += jump
                for i in i_countdowns.intersection(diff):
                    _add(steps, fields[i], -jump)
                add_counters(delta, jump)
                n += jump
            continue
        # (2) Slot periodicity, checked at each slot's first beat (with a carry, only once its
        # every beat is offered: its arrivals need not repeat with the slots' period).
        if not (go and (part.issued - 1) % chunks == 0):
            continue
        if carry is not None and carry.last_arrival(steps.slots) > n:
            continue
        slot = (part.issued - 1) // chunks
        rel = list(after)
        rel[i_issued] -= slot * chunks
        for p in pointers:
            rel[fields.index(p)] -= slot
        ptrs = (part.issued - 1,) + tuple(_get(steps, p) * chunks for p in pointers)
        snap = (tuple(rel), n, after_c, ptrs, steps.loaded if roles.inner_loaded else loaded,
                loaded)
        prev, last_snap = last_snap, snap
        if prev is None or prev[0] != snap[0] or prev[3][0] != ptrs[0] - chunks:
            continue
        # Every pointer (in beats) stays in the block it was in at the previous snapshot, that
        # block was loaded then, and the run's last slot is not reached.
        k = _NEVER
        for lo, hi in zip(prev[3], ptrs):
            block = lo // per_block
            if block != hi // per_block or block >= prev[4]:
                k = 0
                break
            k = min(k, ((block + 1) * per_block - 1 - hi) // chunks - 1)
        k = min(k, part.slots - 2 - part.merged)
        period = n - prev[1]
        if roles.inner_loaded:
            # The decompression walker reads the fetched blocks: no block may arrive in the
            # period seen nor in the jump.
            a = arrival(loaded)
            if prev[5] != loaded:
                k = 0
            elif a is not None:
                k = min(k, (a + 1 - n) // period)
        if k <= 0:
            continue
        part.issued += k * chunks
        for p in pointers:
            _add(steps, p, k)
        add_counters(tuple(a - b for a, b in zip(after_c, prev[2])), k)
        n += k * period
        last_snap = None


def _max_cycles(ideal, totals, memory):
    """A guard against a hang, as ``stream_max_cycles``."""
    return (10 * ideal + 20 * sum(totals) * (1 + int(memory.bus_bytes / memory.bytes_per_cycle))
            + 100 * len(totals) * memory.latency + 1000 + 100 * len(totals))


def _gobo_reader(config, memory, chunks, words, base):
    """The fetcher and memory of an image in the GOBO layout (``words`` outlier words a row
    block) at byte ``base``: the GOBO and the memory-compression tiles'."""
    head, totals = block_beats(config, memory.bus_bytes, chunks, words)
    return _Reader(memory, head, totals, words, word_beats(config, memory.bus_bytes)["outlier"],
                   base, True, None)


def stream_tile_latency(config, memory, *, blocks, chunks, tokens, words_per_block, rows=None,
                        outliers_per_block=None, base=0, carry=None):
    """Every counter of :func:`golden.hwmodel.stream_tile.stream_tile_cycles` (same parameters
    and result; one tile job, ``tokens <= max_tokens`` not required here), from the event
    model of the module docstring.

    ``carry``: a pass's :class:`~golden.hwmodel.passes.CarrySchedule`, as there (the control
    state is then :class:`~golden.hwmodel.stream_tile.CarrySteps`; the jumps end at the
    merge's next carry arrival, and the slot-period jump waits until every carry beat is
    offered)."""
    check_config(config)
    if carry is not None and config.max_passes == 1:
        raise ValueError("a carry needs a configuration with max_passes > 1")
    static = tile_static_counts(config, blocks=blocks, chunks=chunks, tokens=tokens,
                                words_per_block=words_per_block, rows=rows,
                                outliers_per_block=outliers_per_block)
    words = [int(w) for w in words_per_block]
    reader = _gobo_reader(config, memory, chunks, words, base)
    totals = reader.totals
    shape = dict(blocks=blocks, chunks=chunks, tokens=tokens, words=words)
    steps = TileSteps(config, **shape) if carry is None else CarrySteps(config, carry=carry,
                                                                         **shape)
    guard = _max_cycles(steps.ideal, totals, memory)
    if carry is not None:
        guard += carry.last_arrival(steps.slots)
    cycles, first_fill, _ = _compute(steps, reader, blocks=blocks, chunks=chunks,
                                     tokens=tokens, max_cycles=guard)
    return {**static, "cycles": cycles, "stall_outlier": steps.stall_outlier,
            "stall_recon": steps.stall_recon, "stall_memory": steps.stall_memory,
            "bytes_read": reader.bytes_read, "first_fill": first_fill,
            "error": 0,     # as the cycle models': packing.STREAM_ERRORS, none on a legal image
            "utilization": steps.ideal / cycles,
            **({"stall_carry": getattr(steps, "stall_carry", 0)} if config.max_passes > 1
               else {})}


def mac_stream_tile_latency(config, weight_bits, memory, *, rows, cols, tokens, base=0):
    """Every counter of :func:`golden.hwmodel.mac_stream_tile.mac_stream_tile_cycles` for a
    ``rows`` x ``cols`` layer of ``weight_bits``-bit weights (the counters do not depend on the
    values), from the event model of the module docstring."""
    check_config(config)
    check_int("rows", rows, 1, config.max_rows)
    check_int("cols", cols, 1, config.max_dot_length)
    check_int("tokens", tokens, 1)
    blocks, chunks = -(-rows // config.pes), -(-cols // config.lanes)
    beats = mac_word_beats(config, weight_bits, memory.bus_bytes)
    head = beats["bias"] + chunks * beats["weight"]
    totals = [head] * blocks
    steps = MacSteps(config, blocks=blocks, chunks=chunks, tokens=tokens)
    reader = _Reader(memory, head, totals, [0] * blocks, 0, base, False, None)
    cycles, first_fill, _ = _compute(steps, reader, blocks=blocks, chunks=chunks,
                                     tokens=tokens,
                                     max_cycles=_max_cycles(steps.ideal, totals, memory))
    return _mac_counters(config, steps, reader, rows=rows, chunks=chunks, tokens=tokens,
                         cycles=cycles, first_fill=first_fill)


def _mac_counters(config, steps, reader, *, rows, chunks, tokens, cycles, first_fill):
    """The MAC tile's counters (:func:`golden.hwmodel.mac_tile.mac_tile_cycles`'s, streamed)
    after a run of its control state ``steps`` (or the decompression walker in front of it)."""
    busy_beats = tokens * chunks
    blocks = -(-rows // config.pes)
    return {"cycles": cycles,
            "busy": [busy_beats * sum(b * config.pes + p < rows for b in range(blocks))
                     for p in range(config.pes)],
            "stall_outlier": 0, "stall_recon": 0, "stall_output": 0, "outliers": 0,
            "stall_memory": steps.stall_memory, "bytes_read": reader.bytes_read, "error": 0,
            "first_fill": first_fill, "ideal_cycles": steps.ideal,
            "utilization": steps.ideal / cycles}


def compressed_stream_tile_latency(config, memory, *, rows, cols, tokens, words_per_block,
                                   base=0):
    """Every counter of :func:`golden.hwmodel.compressed_stream_tile.
    compressed_stream_tile_cycles` for a ``rows`` x ``cols`` memory-compression layer on the MAC
    flavour ``config`` whose GOBO form has ``words_per_block`` outlier words in each row block
    (the counters depend on nothing else), from the event model of the module docstring: the
    GOBO tile's reader and memory, the decompression walker and the MAC control state
    (:class:`~golden.hwmodel.compressed_stream_tile.DecompressSteps`) as the compute half."""
    check_config(config)
    check_int("rows", rows, 1, config.max_rows)
    check_int("cols", cols, 1, config.max_dot_length)
    check_int("tokens", tokens, 1)
    blocks, chunks = -(-rows // config.pes), -(-cols // config.lanes)
    if len(words_per_block) != blocks:
        raise ValueError(f"words_per_block must hold {blocks} counts (one a row block), "
                         f"not {len(words_per_block)}")
    words = [int(w) for w in words_per_block]
    reader = _gobo_reader(config, memory, chunks, words, base)
    totals = reader.totals
    steps = DecompressSteps(config, blocks=blocks, chunks=chunks, tokens=tokens, words=words)
    cycles, first_fill, _ = _compute(
        steps, reader, blocks=blocks, chunks=chunks, tokens=tokens,
        max_cycles=_max_cycles(steps.ideal + sum(steps.items), totals, memory))
    return {**_mac_counters(config, steps, reader, rows=rows, chunks=chunks, tokens=tokens,
                            cycles=cycles, first_fill=first_fill),
            "decompress_cycles": steps.busy_cycles}


def stream_latency(config, memory, *, rows, cols, tokens, words_per_block,
                   outliers_per_block=None, base=0):
    """The GOBO streaming tile's counters for one layer of ``rows`` x ``cols`` with outlier
    words ``words_per_block`` over ``tokens`` tokens, run as token groups of at most
    ``config.max_tokens`` (the module docstring): the groups' sums, plus ``groups`` (each
    group's counters with its ``tokens``)."""
    check_int("rows", rows, 1, config.max_rows)
    check_int("cols", cols, 1, config.max_dot_length)
    blocks, chunks = -(-rows // config.pes), -(-cols // config.lanes)
    bank = config.max_outlier_words // 2
    if len(words_per_block) == blocks and max(words_per_block) > bank:
        worst = int(np.argmax(words_per_block))
        raise ValueError(f"row block {worst} has {words_per_block[worst]} outlier words; a bank "
                         f"of the outlier buffer holds max_outlier_words // 2 = {bank}")

    def job(t):
        return stream_tile_latency(config, memory, blocks=blocks, chunks=chunks, tokens=t,
                                   words_per_block=words_per_block, rows=rows,
                                   outliers_per_block=outliers_per_block, base=base)
    return group_cycles(job, tokens, config.max_tokens)


def mac_stream_latency(config, weight_bits, memory, *, rows, cols, tokens, base=0):
    """:func:`stream_latency` for a streaming MAC tile of ``weight_bits``-bit weights."""
    return group_cycles(lambda t: mac_stream_tile_latency(config, weight_bits, memory,
                                                          rows=rows, cols=cols, tokens=t,
                                                          base=base),
                        tokens, config.max_tokens)


def compressed_stream_latency(config, memory, *, rows, cols, tokens, words_per_block, base=0):
    """:func:`stream_latency` for the streaming memory-compression tile
    (:func:`compressed_stream_tile_latency`'s parameters)."""
    return group_cycles(lambda t: compressed_stream_tile_latency(
        config, memory, rows=rows, cols=cols, tokens=t, words_per_block=words_per_block,
        base=base), tokens, config.max_tokens)
