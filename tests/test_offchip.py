"""The off-chip memory model and layout (golden/hwmodel/offchip.py): exact bandwidth, latency,
stalls shared by construction, AXI rules enforced, presets' arithmetic, and the byte image of a
layer image read back word for word; and the streaming tile's cycle model on its own."""

from fractions import Fraction

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.layer_image import make_image
from golden.hwmodel.offchip import (
    MEMORY_PRESETS,
    OffchipMemory,
    OffchipPort,
    StallSequence,
    burst_lengths,
    memory_preset,
    offchip_layout,
    word_beats,
)
from golden.hwmodel.packing import (
    bias_block_fields,
    offchip_header_fields,
    unpack,
)
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.hwmodel.tile import tile_cycles_of_image

TINY = preset("tiny").replace(max_rows=4096, max_outlier_words=32)


def beat_cycles(memory, beats, request_at=0):
    """Cycles (from 0) in which a memory serving one burst of ``beats`` offers them, ``rready``
    high, the request made in cycle ``request_at``."""
    port = OffchipPort(memory)
    got = []
    while len(got) < beats:
        ready, beat = port.outputs()
        if beat is not None:
            got.append(port.cycle)
        request = port.cycle == request_at
        assert ready or not request
        port.clock(request, 0, beats - 1, True)
    return got


def test_bandwidth_is_exact_and_capped_by_the_bus():
    # 3/2 bytes a cycle on an 8-byte bus: a beat every 16/3 cycles, exactly, on average.
    memory = OffchipMemory(bytes_per_cycle=Fraction(3, 2), latency=4, bus_bytes=8)
    cycles = beat_cycles(memory, 256)
    assert cycles[0] == 4                     # latency; the bucket starts full
    # Backlogged, no credit is lost: 254 beats after the second take 254*16/3 = 1354.67 cycles.
    assert cycles[-1] - cycles[1] == 1354
    assert cycles[:8] == [4, 9, 14, 19, 25, 30, 35, 41]
    fast = OffchipMemory(bytes_per_cycle=100, latency=1, bus_bytes=8)
    assert beat_cycles(fast, 5) == [1, 2, 3, 4, 5]
    assert fast.sustained_bytes_per_cycle == 8


def test_stalls_are_a_function_of_seed_and_cycle():
    memory = OffchipMemory(bytes_per_cycle=8, latency=1, bus_bytes=8, refresh_interval=10,
                           refresh_cycles=3, stall_probability=Fraction(1, 5),
                           stall_max_cycles=4, seed=3)
    sequence = StallSequence(memory)
    forward = [sequence(c) for c in range(9000)]
    late = StallSequence(memory)
    assert [late(c) for c in range(8999, -1, -1)][::-1] == forward
    assert all(forward[c] for c in range(7, 9000, 10))          # refresh: cycles 7..9 of 10
    share = np.mean(forward)
    assert 0.4 < share < 0.7
    other_sequence = StallSequence(memory.replace(seed=4))
    other = [other_sequence(c) for c in range(9000)]
    assert other != forward
    # A stalled cycle offers no new beat.
    cycles = beat_cycles(memory, 50)
    assert not any(forward[c] for c in cycles)


def test_axi_rules_are_enforced():
    port = OffchipPort(OffchipMemory(bytes_per_cycle=8, latency=1, bus_bytes=8),
                       data=bytes(8192))
    port.outputs()
    with pytest.raises(ValueError, match="crosses a 4 KiB boundary"):
        port.clock(True, 4096 - 16, 2, True)
    port = OffchipPort(OffchipMemory(bytes_per_cycle=8, latency=1, bus_bytes=8), data=bytes(64))
    port.outputs()
    with pytest.raises(ValueError, match="beyond the 64-byte image"):
        port.clock(True, 32, 7, True)
    assert burst_lengths(4096 - 16, 600, 8) == [(4080, 2), (4096, 256), (6144, 256),
                                                (8192, 86)]


def test_memory_parameters_are_checked():
    with pytest.raises(ValueError, match="bytes_per_cycle must be positive, not 0"):
        OffchipMemory(bytes_per_cycle=0, latency=1)
    with pytest.raises(ValueError, match="bus_bytes must be a power of two, not 24"):
        OffchipMemory(bytes_per_cycle=1, latency=1, bus_bytes=24)
    with pytest.raises(ValueError, match="latency must be a positive integer, not 0"):
        OffchipMemory(bytes_per_cycle=1, latency=0)
    with pytest.raises(TypeError, match="bytes_per_cycle must be a number"):
        OffchipMemory(bytes_per_cycle="fast", latency=1)
    with pytest.raises(ValueError, match="unknown memory preset 'hbm'; choose one of ddr4"):
        memory_preset("hbm")


def test_presets_turn_gb_per_s_into_bytes_per_cycle():
    ddr4 = MEMORY_PRESETS["ddr4_3200_x64"]
    assert ddr4.bytes_per_cycle == Fraction(25_600, 1) / Fraction("84.7")
    assert round(float(ddr4.bytes_per_cycle), 1) == 302.2
    assert round(float(MEMORY_PRESETS["lpddr4_4266_x32"].bytes_per_cycle), 1) == 201.5
    assert round(float(MEMORY_PRESETS["ulx3s_sdram"].bytes_per_cycle), 2) == 7.01
    for memory in MEMORY_PRESETS.values():
        assert memory.source and memory.name in MEMORY_PRESETS


def small_image(seed=0, rows=13, cols=11):
    rng = np.random.default_rng(seed)
    outliers = {(int(rng.integers(rows)), int(rng.integers(cols))) for _ in range(9)}
    outliers = [(m, n, int(rng.integers(-99, 99))) for m, n in outliers if m >= 4]
    return make_image(TINY, indexes=rng.integers(0, 8, (rows, cols)),
                      centroids=rng.integers(-99, 99, 8), outliers=outliers,
                      bias=rng.integers(-999, 999, rows))


def test_layout_reads_back_word_for_word():
    image = small_image()
    bus = 8
    layout = offchip_layout(image, bus, base=0x100)
    beats = word_beats(TINY, bus)
    index = image.index_words()
    words, offsets = image.outlier_words()
    assert layout.outlier_words[0] == 0 and max(layout.outlier_words) > 0

    def word(address, n):
        at = address - layout.base
        assert address % bus == 0
        return int.from_bytes(layout.data[at:at + n * bus], "little")

    for b, block in enumerate(layout.blocks):
        assert block["header"] == (layout.blocks[b - 1]["end"] if b else 0x100)
        head = unpack(offchip_header_fields(TINY), word(block["header"], 1))
        assert head["outlier_words"] == offsets[b + 1] - offsets[b]
        bias = unpack(bias_block_fields(TINY), word(block["bias"], beats["bias"]))["bias"]
        want = list(image.bias[b * 4:(b + 1) * 4]) + [0] * (4 - len(image.bias[b * 4:]))
        assert bias == want[:4]
        for j in range(image.chunks):
            assert word(block["index"] + j * beats["index"] * bus, beats["index"]) == \
                index[b * image.chunks + j]
        for i in range(head["outlier_words"]):
            assert word(block["outlier"] + i * beats["outlier"] * bus, beats["outlier"]) == \
                words[offsets[b] + i]
    assert layout.blocks[-1]["end"] == 0x100 + layout.size


def test_layout_refuses_what_the_tile_cannot_hold():
    image = small_image()
    with pytest.raises(ValueError, match="base 0x4 is not aligned to the 8-byte bus"):
        offchip_layout(image, 8, base=4)
    crowded = make_image(TINY.replace(max_outlier_words=2), indexes=np.zeros((4, 8), int),
                         centroids=np.arange(8), outliers=[(0, n, 1) for n in range(8)])
    with pytest.raises(ValueError, match="row block 0 has 2 outlier words; a bank of the "
                                         "outlier buffer holds max_outlier_words // 2 = 1"):
        offchip_layout(crowded, 8)


def test_cycle_model_with_unlimited_bandwidth_is_the_tile_plus_the_first_fill():
    """Streaming changes nothing but the waits for weights: with a memory far faster than the
    PEs need, the counters are the whole-layer tile's plus the first block's fill."""
    image = small_image(rows=30, cols=40)
    memory = OffchipMemory(bytes_per_cycle=64, latency=3, bus_bytes=64)
    streamed = stream_tile_cycles_of_image(image, 4, memory)
    whole = tile_cycles_of_image(image, 4)
    assert streamed["stall_memory"] == streamed["first_fill"] > 0
    assert streamed["cycles"] == whole["cycles"] + streamed["first_fill"]
    for key in ("busy", "outliers", "stall_outlier", "stall_recon"):
        assert streamed[key] == whole[key]
    assert streamed["bytes_read"] == offchip_layout(image, 64).size
