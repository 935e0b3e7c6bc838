"""Off-chip memory: the timing model the streaming tile's bench and cycle model share, its named
presets, and the off-chip layout of a layer image (docs/offchip.md).

The model (:class:`OffchipMemory`, parameters; :class:`OffchipPort`, one run's state) is an AXI4
read slave seen from the accelerator's clock, cycle by cycle:

- **AR**: ``arready`` is high while fewer than ``max_outstanding`` requests wait; a request is an
  INCR burst of ``arlen + 1`` beats of ``bus_bytes`` from a ``bus_bytes``-aligned address that
  does not cross a 4 KiB boundary (AXI4, ARM IHI 0022, A3.4.1); anything else is refused with an
  error (a reader bug, never silently served).
- **Latency**: a request accepted in cycle ``c`` offers its first beat in cycle ``c + latency``
  at the earliest; requests are served in order (one AXI ID).
- **Bandwidth**: a token bucket, exact (:class:`fractions.Fraction`): it gains
  ``bytes_per_cycle`` every cycle, a beat takes ``bus_bytes`` from it, and it holds at most
  ``bus_bytes + bytes_per_cycle`` (one beat and one cycle's income: a backlogged memory never
  hits the cap, so no fraction of the rate is lost, and an idle one saves at most one beat). So
  the sustained rate is ``min(bytes_per_cycle, bus_bytes)`` bytes a cycle (one beat a cycle at
  most).
- **Irregularity**: in a stalled cycle no new beat is offered. Stalls are the refresh (the last
  ``refresh_cycles`` of every ``refresh_interval``) and seeded random stalls (bank conflicts,
  controller turnarounds): each unstalled cycle starts a stall with probability
  ``stall_probability``, of 1 to ``stall_max_cycles`` cycles. The sequence is a function of the
  seed and the cycle number alone (:class:`StallSequence`), so the bench and the cycle model see
  the same one.
- **R**: a beat on offer stays on offer, unchanged, until ``rready`` takes it (the AXI rule).

Cycle 0 is the first cycle of a run (the tile's ``busy`` high); the bucket starts full.

Presets (:data:`MEMORY_PRESETS`) turn a part's peak GB/s into bytes per accelerator cycle at a
stated clock; the data width of the AXI port (``bus_bytes``) is the accelerator's choice, and
caps the rate.
"""

import collections
import dataclasses
from fractions import Fraction

import numpy as np

from golden.config import check_config, check_int
from golden.hwmodel.packing import (
    bias_block_fields,
    format_bits,
    index_word_fields,
    offchip_header_fields,
    outlier_word_fields,
    pack,
)

__all__ = ["OffchipMemory", "OffchipPort", "StallSequence", "MEMORY_PRESETS", "memory_preset",
           "AXI_MAX_BURST", "AXI_BOUNDARY", "word_beats", "OffchipLayout", "offchip_layout",
           "burst_lengths", "check_bus_bytes"]

#: AXI4 INCR bursts: at most 256 beats, never across a 4 KiB boundary (IHI 0022, A3.4.1).
AXI_MAX_BURST = 256
AXI_BOUNDARY = 4096


@dataclasses.dataclass(frozen=True)
class OffchipMemory:
    """An off-chip memory as the accelerator's clock sees it (the module docstring gives the
    rules).

    Parameters
    ----------
    bytes_per_cycle : Fraction, int or str
        Bandwidth in bytes per accelerator cycle, exact (``Fraction("3/2")``); positive.
    latency : int
        Cycles from an accepted read request to its first beat, at least 1.
    bus_bytes : int
        Bytes of one R beat (the AXI data width / 8): a power of two, 1 to 128.
    max_outstanding : int
        Read requests the memory accepts before ``arready`` falls.
    refresh_interval, refresh_cycles : int
        A refresh stall of ``refresh_cycles`` at the end of every ``refresh_interval`` cycles
        (0, 0: none).
    stall_probability : Fraction, float or str
        Chance that an unstalled cycle starts a random stall, in [0, 1).
    stall_max_cycles : int
        Longest random stall (its length is uniform in 1 .. this).
    seed : int
        Seed of the random stalls.
    name, source : str
        A label and where the numbers come from.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, for a wrong type or value.
    """

    bytes_per_cycle: Fraction
    latency: int
    bus_bytes: int = 8
    max_outstanding: int = 8
    refresh_interval: int = 0
    refresh_cycles: int = 0
    stall_probability: Fraction = Fraction(0)
    stall_max_cycles: int = 1
    seed: int = 0
    name: str = "custom"
    source: str = ""

    def __post_init__(self):
        for name in ("bytes_per_cycle", "stall_probability"):
            value = getattr(self, name)
            try:
                value = Fraction(value)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be a number (a Fraction, int, float or 'p/q'), "
                                f"not {value!r}") from None
            object.__setattr__(self, name, value)
        if self.bytes_per_cycle <= 0:
            raise ValueError(f"bytes_per_cycle must be positive, not {self.bytes_per_cycle}")
        if not 0 <= self.stall_probability < 1:
            raise ValueError(f"stall_probability must lie in [0, 1), not "
                             f"{self.stall_probability}")
        check_int("latency", self.latency, 1)
        check_bus_bytes(self.bus_bytes)
        check_int("max_outstanding", self.max_outstanding, 1)
        check_int("refresh_interval", self.refresh_interval, 0)
        check_int("refresh_cycles", self.refresh_cycles, 0,
                  max(self.refresh_interval - 1, 0))
        check_int("stall_max_cycles", self.stall_max_cycles, 1)
        check_int("seed", self.seed, 0)

    @property
    def sustained_bytes_per_cycle(self):
        """``min(bytes_per_cycle, bus_bytes)`` before stalls (a Fraction)."""
        return min(self.bytes_per_cycle, Fraction(self.bus_bytes))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def check_bus_bytes(bus_bytes, config=None):
    """Return ``bus_bytes`` if it is a power of two in 1 .. 128 (AXI data widths of 8 to 1024
    bits) and, given a ``config``, wide enough for a block header in one beat.

    Raises
    ------
    TypeError, ValueError
        ``"bus_bytes must be a power of two, not 12"``.
    """
    check_int("bus_bytes", bus_bytes, 1, 128)
    if bus_bytes & (bus_bytes - 1):
        raise ValueError(f"bus_bytes must be a power of two, not {bus_bytes}")
    if config is not None and 8 * bus_bytes < format_bits(offchip_header_fields(config)):
        raise ValueError(f"bus_bytes={bus_bytes} cannot hold a block header of "
                         f"{format_bits(offchip_header_fields(config))} bits in one beat")
    return bus_bytes


def _per_cycle(gb_per_s, mhz):
    """Peak GB/s (10**9 bytes) at an accelerator clock of ``mhz`` MHz, in bytes per cycle."""
    return Fraction(gb_per_s) * 1000 / Fraction(mhz)


#: The accelerator clocks the presets assume (MHz, as Fractions): the GOBO A16 tile's measured
#: Fmax (docs/synthesis.md, "What the tiles measured", make synth of 2026-11-30): 84.7 MHz with
#: the OSU 0.18 um library (an ASIC next to DDR4/LPDDR4) and 40.8 MHz post-route on an ECP5
#: (``gobo_tile_p2_l16_a16``, LFE5U-25F: the FPGA board's clock).
ASIC_MHZ = Fraction("84.7")
FPGA_MHZ = Fraction("40.8")

#: Named memories. Peak rates are the parts' transfer rate times their data width; latencies are
#: round numbers for a controller round trip (not from a datasheet: say so when quoting them);
#: refresh from the JEDEC average refresh interval tREFI and refresh cycle time tRFC.
MEMORY_PRESETS = {
    "ddr4_3200_x64": OffchipMemory(
        name="ddr4_3200_x64", bytes_per_cycle=_per_cycle("25.6", ASIC_MHZ), latency=9,
        bus_bytes=16, refresh_interval=661, refresh_cycles=30,
        source="DDR4-3200 (JEDEC JESD79-4): 3200 MT/s x 8 bytes = 25.6 GB/s, at the OSU tile "
               "Fmax 84.7 MHz = 302.2 B/cycle (the 16-byte AXI port caps it at 16); ~100 ns "
               "controller round trip = 9 cycles; tREFI 7.8 us = 661 cycles, tRFC 350 ns (8 Gb "
               "die) = 30 cycles"),
    "lpddr4_4266_x32": OffchipMemory(
        name="lpddr4_4266_x32", bytes_per_cycle=_per_cycle("17.064", ASIC_MHZ), latency=11,
        bus_bytes=16, refresh_interval=331, refresh_cycles=24,
        source="LPDDR4-4266 (JEDEC JESD209-4): 4266 MT/s x 4 bytes = 17.1 GB/s, at 84.7 MHz = "
               "201.5 B/cycle (capped at 16 by the AXI port); ~130 ns round trip = 11 cycles; "
               "tREFIab 3.9 us = 331 cycles, tRFCab 280 ns (8 Gb) = 24 cycles"),
    "ulx3s_sdram": OffchipMemory(
        name="ulx3s_sdram", bytes_per_cycle=_per_cycle("0.286", FPGA_MHZ), latency=4,
        bus_bytes=8, refresh_interval=318, refresh_cycles=3,
        source="ULX3S board (radiona.org/ulx3s, rev 3.x): 32 MB 16-bit SDR SDRAM, Alliance "
               "AS4C32M16SB-7TCN (IS42S16160 on some boards), 143 MHz at CL3 x 2 bytes = 286 MB/s "
               "peak, at the ECP5 tile Fmax 40.8 MHz = 7.01 B/cycle; ~90 ns round trip = 4 "
               "cycles; 8192 refreshes per 64 ms (7.8 us = 318 cycles), tRC 63 ns = 3 cycles"),
}


def memory_preset(name):
    try:
        return MEMORY_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown memory preset {name!r}; choose one of "
                         f"{', '.join(MEMORY_PRESETS)}") from None


class StallSequence:
    """``stalled(c)`` of an :class:`OffchipMemory`: refresh, then seeded random stalls. The
    random part is drawn in fixed chunks of :attr:`CHUNK` cycles from one generator, so cycle
    ``c``'s value never depends on how far anyone has asked."""

    CHUNK = 4096

    def __init__(self, memory):
        self._memory = memory
        self._rng = np.random.default_rng(memory.seed)
        self._random = np.zeros(0, dtype=bool)
        self._left = 0

    def _extend(self):
        m = self._memory
        draws = self._rng.random(self.CHUNK)
        lengths = self._rng.integers(1, m.stall_max_cycles + 1, self.CHUNK)
        p = float(m.stall_probability)
        out = np.zeros(self.CHUNK, dtype=bool)
        for i in range(self.CHUNK):
            if self._left == 0 and p and draws[i] < p:
                self._left = int(lengths[i])
            if self._left:
                out[i] = True
                self._left -= 1
        self._random = np.concatenate([self._random, out])

    def __call__(self, cycle):
        m = self._memory
        if m.refresh_interval and cycle % m.refresh_interval >= \
                m.refresh_interval - m.refresh_cycles:
            return True
        if not m.stall_probability:
            return False
        while cycle >= len(self._random):
            self._extend()
        return bool(self._random[cycle])


class OffchipPort:
    """One run of an :class:`OffchipMemory` behind AXI4 read channels, cycle by cycle.

    Each cycle, call :meth:`outputs` once (what the memory drives in this cycle: ``arready`` and
    the beat on offer), then :meth:`clock` with what the reader drove (sampled at the edge).
    ``data`` (bytes), if given, is the memory's contents from byte ``base``: :meth:`beat_data`
    reads beats from it.

    Raises
    ------
    ValueError
        From :meth:`clock`, for a request that breaks the AXI rules above or reads beyond
        ``data``.
    """

    def __init__(self, memory, data=None, base=0):
        self.memory = memory
        self.data = data
        self.base = base
        self.cycle = 0
        self.bytes_read = 0
        self._credit = Fraction(memory.bus_bytes)
        self._queue = collections.deque()   # [accepted cycle, next beat address, beats left]
        self._offer = None                  # (address, last) of the beat on offer
        self._stalled = StallSequence(memory)
        self._arready = False

    def outputs(self):
        """``(arready, beat)`` of this cycle: ``beat`` is None or ``(address, last)``."""
        m = self.memory
        self._arready = len(self._queue) < m.max_outstanding
        if self._offer is None and self._queue:
            accepted, address, left = self._queue[0]
            if (accepted + m.latency <= self.cycle and self._credit >= m.bus_bytes
                    and not self._stalled(self.cycle)):
                self._offer = (address, left == 1)
        return self._arready, self._offer

    def beat_data(self, address):
        """The beat at ``address`` as an integer, little-endian."""
        at = address - self.base
        return int.from_bytes(self.data[at:at + self.memory.bus_bytes], "little")

    def clock(self, arvalid, araddr, arlen, rready):
        """The clock edge: take the request if ``arvalid`` (and ``arready``), the beat on offer
        if ``rready``."""
        m = self.memory
        if arvalid and self._arready:
            beats = int(arlen) + 1
            end = araddr + beats * m.bus_bytes
            if araddr % m.bus_bytes or beats > AXI_MAX_BURST or \
                    araddr // AXI_BOUNDARY != (end - 1) // AXI_BOUNDARY:
                raise ValueError(f"cycle {self.cycle}: read burst of {beats} beats at "
                                 f"{araddr:#x} is unaligned, over {AXI_MAX_BURST} beats or "
                                 f"crosses a 4 KiB boundary")
            if self.data is not None and not \
                    self.base <= araddr < end <= self.base + len(self.data):
                raise ValueError(f"cycle {self.cycle}: read burst {araddr:#x}..{end:#x} beyond "
                                 f"the {len(self.data)}-byte image")
            self._queue.append([self.cycle, araddr, beats])
        if self._offer is not None and rready:
            head = self._queue[0]
            head[1] += m.bus_bytes
            head[2] -= 1
            if head[2] == 0:
                self._queue.popleft()
            self._offer = None
            self._credit -= m.bus_bytes
            self.bytes_read += m.bus_bytes
        self._credit = min(self._credit + m.bytes_per_cycle, m.bus_bytes + m.bytes_per_cycle)
        self.cycle += 1


# The off-chip layout of a layer image ----------------------------------------------------------

def word_beats(config, bus_bytes):
    """``{section: beats of one word}`` on a bus of ``bus_bytes``: ``header`` (1), ``bias`` (the
    block's ``P`` biases), ``index`` (one index word), ``outlier`` (one outlier word). A word
    starts on a beat; beat ``i`` holds its bits ``[i*8*bus_bytes, (i+1)*8*bus_bytes)``."""
    bus_bits = 8 * bus_bytes
    beats = {name: -(-format_bits(fields) // bus_bits) for name, fields in (
        ("header", offchip_header_fields(config)), ("bias", bias_block_fields(config)),
        ("index", index_word_fields(config)), ("outlier", outlier_word_fields(config)))}
    beats["header"] = 1
    return beats


def burst_lengths(address, beats, bus_bytes):
    """The AXI4 INCR bursts, ``[(address, beats)]``, that read ``beats`` beats from ``address``:
    each as long as it can be, at most :data:`AXI_MAX_BURST` beats and never across a 4 KiB
    boundary (the streaming tile's reader splits them the same way)."""
    out = []
    while beats:
        to_boundary = (AXI_BOUNDARY - address % AXI_BOUNDARY) // bus_bytes
        n = min(beats, AXI_MAX_BURST, to_boundary)
        out.append((address, n))
        address += n * bus_bytes
        beats -= n
    return out


@dataclasses.dataclass(frozen=True)
class OffchipLayout:
    """A layer image in off-chip memory: ``data`` (bytes from ``base``), ``blocks`` (per row
    block ``{header, bias, index, outlier, end}`` byte addresses, ``end`` the next block's
    header), ``outlier_words`` (``W_b``) and ``beats`` (:func:`word_beats`)."""
    data: bytes
    base: int
    bus_bytes: int
    blocks: tuple
    outlier_words: tuple
    beats: dict

    @property
    def size(self):
        return len(self.data)

    def head_beats(self, chunks):
        """Beats of a block's header, bias and index words (read before its outliers)."""
        b = self.beats
        return b["header"] + b["bias"] + chunks * b["index"]


def offchip_layout(image, bus_bytes, base=0):
    """The off-chip byte image of ``image`` (a :class:`~golden.hwmodel.layer_image.LayerImage`)
    for a bus of ``bus_bytes``, from byte ``base``; docs/offchip.md section 2.

    Per row block ``b``, contiguous, every word starting on a beat: the header (``W_b``), the
    block's ``P`` biases (padding rows 0), its ``C`` index words (``image.index_words()[b*C:
    (b+1)*C]``), its ``W_b`` outlier words (``image.outlier_words()``). Blocks follow each
    other without a gap, so the reader walks the layer from ``base`` alone.

    Raises
    ------
    ValueError
        If ``base`` is not aligned to ``bus_bytes``, or a block has more outlier words than one
        bank of the streaming tile's outlier buffer (``max_outlier_words // 2``).
    """
    config = check_config(image.config)
    check_bus_bytes(bus_bytes, config)
    check_int("base", base, 0)
    if base % bus_bytes:
        raise ValueError(f"base {base:#x} is not aligned to the {bus_bytes}-byte bus")
    beats = word_beats(config, bus_bytes)
    words, offsets = image.outlier_words()
    per_block = [offsets[b + 1] - offsets[b] for b in range(image.blocks)]
    bank = config.max_outlier_words // 2
    if max(per_block) > bank:
        worst = int(np.argmax(per_block))
        raise ValueError(f"row block {worst} has {per_block[worst]} outlier words; a bank of the "
                         f"outlier buffer holds max_outlier_words // 2 = {bank}")
    index = image.index_words()
    bias = np.zeros(image.blocks * config.pes, dtype=np.int64)
    bias[:image.rows] = image.bias
    out = bytearray()
    blocks = []

    def put(word, n):
        out.extend(int(word).to_bytes(n * bus_bytes, "little"))

    for b in range(image.blocks):
        start = base + len(out)
        put(pack(offchip_header_fields(config), {"outlier_words": per_block[b]}),
            beats["header"])
        bias_at = base + len(out)
        put(pack(bias_block_fields(config),
                 {"bias": bias[b * config.pes:(b + 1) * config.pes]}), beats["bias"])
        index_at = base + len(out)
        for j in range(image.chunks):
            put(index[b * image.chunks + j], beats["index"])
        outlier_at = base + len(out)
        for word in words[offsets[b]:offsets[b + 1]]:
            put(word, beats["outlier"])
        blocks.append({"header": start, "bias": bias_at, "index": index_at,
                       "outlier": outlier_at, "end": base + len(out)})
    return OffchipLayout(data=bytes(out), base=base, bus_bytes=bus_bytes, blocks=tuple(blocks),
                         outlier_words=tuple(per_block), beats=beats)
