"""The event latency model (golden/hwmodel/latency.py) against the stepping cycle models
(golden.hwmodel.stream_tile, golden.hwmodel.mac_stream_tile,
golden.hwmodel.compressed_stream_tile): every counter equal on every shape and memory the
streaming tiles' tests simulate (tests/test_hw_stream_tile.py, tests/test_hw_mac_stream_tile.py,
tests/test_hw_compressed_stream_tile.py, tests/test_offchip.py) and on a seeded sweep of small
layers and memories; token groups; the state the jumps move is the whole state."""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from golden.config import MAC_FLAVOURS, mac_flavour, preset
from golden.hwmodel.compressed_stream_tile import DecompressSteps, compressed_stream_tile_cycles
from golden.hwmodel.latency import (
    STEP_STATE,
    compressed_stream_latency,
    compressed_stream_tile_latency,
    mac_stream_latency,
    mac_stream_tile_latency,
    stream_latency,
    stream_tile_latency,
)
from golden.hwmodel.layer_image import calibrated_image
from golden.hwmodel.mac_stream_tile import MacSteps, mac_stream_tile_cycles
from golden.hwmodel.mac_tile import MacLayer, compressed_image
from golden.hwmodel.offchip import MEMORY_PRESETS, OffchipMemory
from golden.hwmodel.stream_tile import stream_tile_cycles, stream_tile_cycles_of_image
from golden.hwmodel.tile import TileSteps, records_per_block
from golden.hwmodel.token_groups import group_cycles
from hw.designs import example_memory
from tests import test_hw_compressed_stream_tile as compressed_bench
from tests import test_hw_mac_stream_tile as mac_bench
from tests import test_hw_stream_tile as bench
from tests.test_hw_mac_tile import random_compressed
from tests.test_offchip import small_image

#: Memories of the tests that simulate: the benches' slow, fast and bursty ones, test_offchip's
#: unlimited one, the registry's example memory, and the presets.
MEMORIES = {**bench.MEMORIES, "unlimited": OffchipMemory(bytes_per_cycle=64, latency=3,
                                                        bus_bytes=64),
            "example": example_memory(8), **MEMORY_PRESETS}


def latency_of_image(image, tokens, memory, base=0):
    return stream_tile_latency(image.config, memory, blocks=image.blocks, chunks=image.chunks,
                               tokens=tokens, words_per_block=image.words_per_block(),
                               rows=image.rows, outliers_per_block=records_per_block(image),
                               base=base)


def latency_of_mac(layer, tokens, memory, base=0):
    return mac_stream_tile_latency(layer.config, layer.weight_bits, memory, rows=layer.rows,
                                   cols=layer.cols, tokens=tokens, base=base)


def latency_of_compressed(layer, tokens, memory, base=0):
    return compressed_stream_tile_latency(
        layer.config, memory, rows=layer.rows, cols=layer.cols, tokens=tokens,
        words_per_block=compressed_image(layer).words_per_block(), base=base)


def check_equal(model, fast):
    assert fast == model, {k: (model[k], fast.get(k)) for k in model if model[k] != fast.get(k)}


@pytest.fixture(scope="module")
def slices(minilm):
    """The benches' real slices: layer 5's output.dense 38 x 61 at 3 tokens and layer 0's
    intermediate.dense 24 x 64 at 4 tokens."""
    return [bench.real_layer(minilm, "encoder.layer.5.output.dense.weight", 38, 61, 3),
            bench.real_layer(minilm, "encoder.layer.0.intermediate.dense.weight", 24, 64, 4)]


def test_gobo_equals_the_stepping_model_on_the_benches_slices(slices):
    for image, acts in slices:
        for name in ("slow", "fast", "bursty", "example", "ddr4_3200_x64_contended"):
            memory = MEMORIES[name].replace(bus_bytes=bench.BUS)
            model = stream_tile_cycles_of_image(image, acts.shape[0], memory, base=bench.BASE)
            check_equal(model, latency_of_image(image, acts.shape[0], memory, base=bench.BASE))


def test_mac_equals_the_stepping_model_on_the_benches_slices(minilm):
    for flavour in MAC_FLAVOURS:
        for name, rows, cols, tokens in (("encoder.layer.5.output.dense.weight", 38, 61, 3),
                                         ("encoder.layer.0.intermediate.dense.weight", 24, 64,
                                          4)):
            layer, acts = mac_bench.real_mac_layer(minilm, flavour, name, rows, cols, tokens)
            for memory in ("slow", "fast", "bursty"):
                memory = MEMORIES[memory]
                check_equal(mac_stream_tile_cycles(layer, tokens, memory, base=bench.BASE),
                            latency_of_mac(layer, tokens, memory, base=bench.BASE))


@pytest.mark.parametrize("seed, wide", bench.RANDOM_CASES)
def test_gobo_equals_the_stepping_model_on_the_benches_random_cases(seed, wide):
    image, acts, memory, base = bench.random_case(seed, wide)
    check_equal(stream_tile_cycles_of_image(image, acts.shape[0], memory, base=base),
                latency_of_image(image, acts.shape[0], memory, base=base))


@pytest.mark.parametrize("seed, wide", mac_bench.RANDOM_CASES)
def test_mac_equals_the_stepping_model_on_the_benches_random_cases(seed, wide):
    layer, acts, memory, base = mac_bench.random_case(seed, wide)
    check_equal(mac_stream_tile_cycles(layer, acts.shape[0], memory, base=base),
                latency_of_mac(layer, acts.shape[0], memory, base=base))


def test_equal_on_test_offchips_layers():
    image = small_image(rows=30, cols=40)
    memory = MEMORIES["unlimited"]
    check_equal(stream_tile_cycles_of_image(image, 4, memory), latency_of_image(image, 4, memory))
    config, w = mac_flavour("w4a4", base="tiny", max_rows=64)
    layer = MacLayer(config, w, np.random.default_rng(6).integers(-8, 8, (30, 40)), np.zeros(30))
    check_equal(mac_stream_tile_cycles(layer, 4, memory), latency_of_mac(layer, 4, memory))


def random_memory(rng, seed):
    """A seeded memory: every knob of OffchipMemory, rates below and above a beat a cycle."""
    bus = int(rng.choice([4, 8, 16]))
    interval = int(rng.choice([0, 50, 97, 661]))
    return OffchipMemory(
        bytes_per_cycle=Fraction(int(rng.integers(1, 40)), int(rng.integers(1, 8))),
        latency=int(rng.integers(1, 30)), bus_bytes=bus, max_outstanding=int(rng.integers(1, 9)),
        refresh_interval=interval, refresh_cycles=int(rng.integers(0, 12)) if interval else 0,
        stall_probability=Fraction(int(rng.choice([0, 1, 3])), 32),
        stall_max_cycles=int(rng.integers(1, 41)), seed=seed)


@pytest.mark.parametrize("seed", range(24))
def test_equal_on_a_seeded_sweep(seed):
    """Small layers (1-4 PEs, 1-5 lanes, 1-4 outlier lanes, 1-8 reconstruction multipliers,
    1-11 tokens, 0-15 outlier words a block) under seeded memories, the image at 0 or just
    below a 4 KiB boundary: GOBO and a MAC flavour."""
    rng = np.random.default_rng(seed)
    pes, lanes = int(rng.choice([1, 3, 4])), int(rng.choice([1, 2, 4, 5]))
    config = bench.STREAM.replace(pes=pes, lanes=lanes, max_dot_length=700,
                                  outlier_lanes=int(rng.choice([1, 2, 4])),
                                  recon_multipliers=int(rng.choice([1, 2, 8])))
    rows, cols = int(rng.integers(1, 12 * pes + 1)), int(rng.integers(1, 300))
    tokens = int(rng.integers(1, 12))
    blocks, chunks = -(-rows // pes), -(-cols // lanes)
    words = [int(w) for w in rng.integers(0, int(rng.choice([1, 3, 8, 16])), blocks)]
    memory = random_memory(rng, seed)
    base = int(rng.choice([0, 4096 - 3 * memory.bus_bytes]))
    kwargs = dict(blocks=blocks, chunks=chunks, tokens=tokens, words_per_block=words, rows=rows,
                  base=base)
    check_equal(stream_tile_cycles(config, memory, **kwargs),
                stream_tile_latency(config, memory, **kwargs))
    mac, w = mac_flavour(str(rng.choice(list(MAC_FLAVOURS))), base="tiny", max_rows=4096,
                         pes=pes, lanes=lanes, max_dot_length=700)
    layer = MacLayer(mac, w, np.zeros((rows, cols), dtype=np.int64), np.zeros(rows))
    check_equal(mac_stream_tile_cycles(layer, tokens, memory, base=base),
                latency_of_mac(layer, tokens, memory, base=base))


def test_minilm_datapath_on_the_presets():
    """The minilm_stream datapath (16 x 16, 4 outlier lanes) on 48 x 160 at 8 tokens under
    every memory preset, GOBO (outlier-heavy blocks) and W16A16."""
    config = preset("minilm_stream")
    words = [0, 40, 3, 17]
    for memory in MEMORY_PRESETS.values():
        kwargs = dict(blocks=4, chunks=10, tokens=8, words_per_block=words, rows=60)
        check_equal(stream_tile_cycles(config, memory, **kwargs),
                    stream_tile_latency(config, memory, **kwargs))
        mac, w = mac_flavour("w16a16", base="minilm_stream")
        layer = MacLayer(mac, w, np.zeros((60, 160), dtype=np.int64), np.zeros(60))
        check_equal(mac_stream_tile_cycles(layer, 8, memory), latency_of_mac(layer, 8, memory))


def test_token_groups_are_the_stepping_models_groups():
    """T above max_tokens: the groups and sums of golden.hwmodel.token_groups.group_cycles over
    the stepping models, counter for counter (7 tokens on a tile of 3: 3 + 3 + 1)."""
    config = bench.STREAM.replace(max_tokens=3)
    memory = MEMORIES["bursty"]
    words = [1, 0, 4, 2]
    got = stream_latency(config, memory, rows=14, cols=9, tokens=7, words_per_block=words)
    want = group_cycles(lambda t: stream_tile_cycles(config, memory, blocks=4, chunks=3,
                                                     tokens=t, words_per_block=words, rows=14),
                        7, 3)
    assert [g["tokens"] for g in got["groups"]] == [3, 3, 1]
    check_equal(want, got)
    mac, w = mac_flavour("w8a8", base="tiny", max_tokens=3)
    layer = MacLayer(mac, w, np.zeros((14, 9), dtype=np.int64), np.zeros(14))
    check_equal(group_cycles(lambda t: mac_stream_tile_cycles(layer, t, memory), 7, 3),
                mac_stream_latency(mac, w, memory, rows=14, cols=9, tokens=7))


def test_a_wrong_count_fails_the_comparison(slices):
    """The comparison can fail: a model result with one counter off by one is caught."""
    image, acts = slices[0]
    memory = MEMORIES["bursty"]
    fast = latency_of_image(image, acts.shape[0], memory)
    for key in ("cycles", "stall_memory", "bytes_read"):
        with pytest.raises(AssertionError, match=key):
            check_equal(stream_tile_cycles_of_image(image, acts.shape[0], memory),
                        dict(fast, **{key: fast[key] + 1}))


def test_the_jumps_move_the_whole_run_time_state():
    """STEP_STATE lists every attribute of the control states that changes while they run
    (besides the counters and the cycle's decisions): a field added to TileSteps or MacSteps
    must be added there, or the jumps would leave it behind."""
    config = preset("tiny")
    decisions = {"take", "rec_accept", "bc_xfer", "s0_go", "advance", "cmd_xfer", "finished"}
    fixed = {"config", "blocks", "chunks", "tokens", "words", "slots", "ideal",
             "stall_outlier", "stall_recon", "stall_memory"}
    for steps in (TileSteps(config, blocks=2, chunks=2, tokens=2, words=[1, 1]),
                  MacSteps(config, blocks=2, chunks=2, tokens=2)):
        steps.comb(1)
        assert set(vars(steps)) - decisions - fixed == set(STEP_STATE[type(steps)])
    # The decompression walker: its own fields (besides its MAC part, its inputs and counters)
    # and its MAC part's, as MacSteps'.
    steps = DecompressSteps(config, blocks=2, chunks=2, tokens=2, words=[1, 0])
    steps.comb(1)
    own = set(vars(steps)) - {"mac", "items", "ideal", "fetched", "busy_cycles"}
    assert own | {"mac." + f for f in set(vars(steps.mac)) - decisions - fixed} == set(
        STEP_STATE[DecompressSteps])


def test_bad_parameters_are_named():
    config, w = mac_flavour("w8a8", base="tiny")
    with pytest.raises(ValueError, match="rows must be"):
        mac_stream_tile_latency(config, w, MEMORIES["fast"], rows=0, cols=4, tokens=1)
    with pytest.raises(ValueError, match="words_per_block must hold 2"):
        stream_tile_latency(preset("tiny"), MEMORIES["fast"], blocks=2, chunks=1, tokens=1,
                            words_per_block=[1])
    with pytest.raises(ValueError, match="tokens must be"):
        stream_latency(preset("tiny"), MEMORIES["fast"], rows=4, cols=4, tokens=0,
                       words_per_block=[0])


def test_equal_on_a_whole_real_layer_under_every_preset(minilm):
    """MiniLM layer 5's attention query (384 x 384, 24 row blocks) at 8 tokens on the
    minilm_stream preset under every memory preset, GOBO and W16A16."""
    config = preset("minilm_stream")
    name = "encoder.layer.5.attention.self.query"
    weights = np.asarray(minilm[name + ".weight"], dtype=np.float32)
    acts = np.random.default_rng(1).standard_normal((8, weights.shape[1]))
    image, _, _ = calibrated_image(config, weights, acts, bias=minilm[name + ".bias"],
                                   streamed=True)
    mac, w = mac_flavour("w16a16", base="minilm_stream")
    layer = MacLayer(mac, w, np.zeros(weights.shape, dtype=np.int64), np.zeros(384))
    for memory in MEMORY_PRESETS.values():
        check_equal(stream_tile_cycles_of_image(image, 8, memory),
                    latency_of_image(image, 8, memory))
        check_equal(mac_stream_tile_cycles(layer, 8, memory), latency_of_mac(layer, 8, memory))


# The streaming memory-compression tile (golden.hwmodel.compressed_stream_tile).

@pytest.fixture(scope="module")
def compressed_slices(minilm):
    """The compressed bench's real slices (layer 5's output.dense 38 x 61 at 3 tokens) and layer
    0's intermediate.dense 24 x 64 at 4 tokens, GOBO-quantized at W8A8 on the tiny datapath."""
    return [compressed_bench.real_compressed_layer(minilm, name, rows, cols, tokens)
            for name, rows, cols, tokens in (
                ("encoder.layer.5.output.dense.weight", 38, 61, 3),
                ("encoder.layer.0.intermediate.dense.weight", 24, 64, 4))]


def test_compressed_equals_the_stepping_model_on_the_benches_slices(compressed_slices):
    for layer, acts in compressed_slices:
        for name in ("slow", "fast", "bursty", "example", "ddr4_3200_x64_contended"):
            memory = MEMORIES[name].replace(bus_bytes=bench.BUS)
            check_equal(compressed_stream_tile_cycles(layer, acts.shape[0], memory,
                                                      base=bench.BASE),
                        latency_of_compressed(layer, acts.shape[0], memory, base=bench.BASE))


@pytest.mark.parametrize("seed", range(24))
def test_compressed_equal_on_a_seeded_sweep(seed):
    """Seeded outlier-heavy integer layers (the compressed bench's: ~5 % outliers, a row of
    only outliers, a whole beat of them) on 1-4 PEs, 1-5 lanes, 1-4 outlier lanes, W8 or W4,
    1-11 tokens, under the sweep's seeded memories, the image at 0 or just below 4 KiB."""
    rng = np.random.default_rng(seed)
    pes, lanes = int(rng.choice([1, 3, 4])), int(rng.choice([1, 2, 4, 5]))
    config, weight_bits = mac_flavour(str(rng.choice(["w8a8", "w4a4"])), base="tiny",
                                      max_rows=4096, pes=pes, lanes=lanes, max_dot_length=700,
                                      max_outlier_words=1024,
                                      outlier_lanes=int(rng.choice([1, 2, 4])))
    tokens = int(rng.integers(1, 12))
    layer, _ = random_compressed(config, weight_bits, rng, rows=int(rng.integers(2, 12 * pes + 1)),
                                 cols=int(rng.integers(2, 200)), tokens=tokens)
    memory = random_memory(rng, seed)
    base = int(rng.choice([0, 4096 - 3 * memory.bus_bytes]))
    check_equal(compressed_stream_tile_cycles(layer, tokens, memory, base=base),
                latency_of_compressed(layer, tokens, memory, base=base))


def test_compressed_on_a_real_layer_under_every_preset(minilm):
    """The minilm_stream datapath at W16A16 (the report's memory-compression design) on a 64 x
    384 slice of MiniLM layer 5's query at 24 tokens under every memory preset."""
    config, weight_bits = mac_flavour("w16a16", base="minilm_stream")
    layer, acts = compressed_bench.real_compressed_layer(
        minilm, "encoder.layer.5.attention.self.query.weight", 64, 384, 24, config=config,
        weight_bits=weight_bits)
    assert max(compressed_image(layer).words_per_block()) > 0
    for memory in MEMORY_PRESETS.values():
        check_equal(compressed_stream_tile_cycles(layer, 24, memory),
                    latency_of_compressed(layer, 24, memory))


def test_compressed_token_groups_are_the_stepping_models_groups(compressed_slices):
    """7 tokens on a tile of 3: the groups and sums of group_cycles over the stepping model."""
    layer, _ = compressed_slices[0]
    layer = dataclasses.replace(layer, config=layer.config.replace(max_tokens=3))
    memory = MEMORIES["bursty"]
    got = compressed_stream_latency(layer.config, memory, rows=layer.rows, cols=layer.cols,
                                    tokens=7,
                                    words_per_block=compressed_image(layer).words_per_block())
    assert [g["tokens"] for g in got["groups"]] == [3, 3, 1]
    check_equal(group_cycles(lambda t: compressed_stream_tile_cycles(layer, t, memory), 7, 3),
                got)


def test_a_wrong_compressed_count_fails_the_comparison(compressed_slices):
    layer, acts = compressed_slices[0]
    memory = MEMORIES["bursty"]
    fast = latency_of_compressed(layer, acts.shape[0], memory)
    for key in ("cycles", "stall_memory", "bytes_read", "first_fill", "decompress_cycles"):
        with pytest.raises(AssertionError, match=key):
            check_equal(compressed_stream_tile_cycles(layer, acts.shape[0], memory),
                        dict(fast, **{key: fast[key] + 1}))


@pytest.mark.parametrize("seed", range(12))
def test_equal_with_a_pass_carry(seed):
    """A pass adding carried partial sums (golden.hwmodel.passes.CarrySchedule) under seeded
    memories and carry schedules, from none to one that holds the merge for most slots: every
    counter, stall_carry included, equal to the stepping model (CarrySteps)."""
    from golden.hwmodel.passes import CarrySchedule
    rng = np.random.default_rng(100 + seed)
    pes, lanes = int(rng.choice([1, 2, 4])), int(rng.choice([1, 2, 4]))
    config = bench.STREAM.replace(pes=pes, lanes=lanes, max_dot_length=64, max_passes=3,
                                  outlier_lanes=int(rng.choice([1, 2])))
    rows, cols = int(rng.integers(1, 10 * pes + 1)), int(rng.integers(1, 65))
    tokens = int(rng.integers(1, 9))
    blocks, chunks = -(-rows // pes), -(-cols // lanes)
    words = [int(w) for w in rng.integers(0, int(rng.choice([1, 4, 9])), blocks)]
    memory = random_memory(rng, seed)
    carry = CarrySchedule(latency=int(rng.choice([0, 5, 200])),
                          interval=int(rng.choice([0, 1, chunks, 3 * chunks + 7])))
    kwargs = dict(blocks=blocks, chunks=chunks, tokens=tokens, words_per_block=words, rows=rows,
                  carry=carry)
    model = stream_tile_cycles(config, memory, **kwargs)
    check_equal(model, stream_tile_latency(config, memory, **kwargs))
    if carry.interval > 3 * chunks:
        assert model["stall_carry"] > 0
