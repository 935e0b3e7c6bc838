"""Token groups (golden/hwmodel/token_groups.py, docs/offchip.md section 4): a layer over more
tokens than the activation memory holds runs as groups of at most ``max_tokens``; the groups'
outputs are one big run's bit for bit and the layer's counters are the groups' sums, for the
GOBO and the MAC streaming models (a tiny-datapath tile holding 4 tokens, a slice of a real
MiniLM matrix, 10 tokens: 3 groups)."""

import numpy as np
import pytest

from golden.hwmodel.mac_stream_tile import mac_stream_tile_cycles
from golden.hwmodel.mac_tile import mac_tile_cycles, mac_tile_outputs
from golden.hwmodel.offchip import mac_offchip_layout, offchip_layout
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.hwmodel.tile import tile_cycles_of_image, tile_outputs
from golden.hwmodel.tile_jobs import (
    STREAM_COUNTERS,
    logical_beats,
    physical_outputs,
    stream_tile_group_jobs,
)
from golden.hwmodel.token_groups import (
    mac_stream_tile_group_cycles,
    stream_tile_group_cycles,
    sum_counters,
    token_groups,
)
from tests.test_hw_mac_stream_tile import real_mac_layer
from tests.test_hw_stream_tile import BASE, MEMORIES, real_layer

TOKENS = 10     # on a 4-token tile: groups of 4, 4 and 2
LAYER = "encoder.layer.0.intermediate.dense.weight"


def test_token_groups_cover_every_token_once():
    assert token_groups(10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert token_groups(4, 4) == [range(0, 4)]
    assert token_groups(300, 128) == [range(0, 128), range(128, 256), range(256, 300)]
    assert [len(g) for g in token_groups(512, 128)] == [128] * 4
    for tokens, max_tokens in ((0, 4), (3, 0), (2.0, 4), (True, 4)):
        with pytest.raises(ValueError, match="must be a positive integer"):
            token_groups(tokens, max_tokens)


def test_sum_counters_sums_per_pe_and_recomputes_utilization():
    total = sum_counters([{"cycles": 10, "ideal_cycles": 8, "busy": [1, 2], "utilization": 0.8},
                          {"cycles": 30, "ideal_cycles": 24, "busy": [3, 4], "utilization": 0.8}])
    assert total == {"cycles": 40, "ideal_cycles": 32, "busy": [4, 6], "utilization": 0.8}
    with pytest.raises(ValueError, match="no token groups"):
        sum_counters([])


def test_sum_counters_ors_the_error_cause_bits():
    # Two groups each with the header cause (bit 0), one with the load-target cause (bit 2): the
    # layer has both causes once, not a sum that would read as another cause (0b001 + 0b101).
    total = sum_counters([{"cycles": 5, "error": 0b001}, {"cycles": 6, "error": 0b101}])
    assert total == {"cycles": 11, "error": 0b101}


@pytest.fixture(scope="module")
def gobo_layer(minilm):
    image, acts = real_layer(minilm, LAYER, 24, 64, TOKENS)
    assert image.config.max_tokens == 4 and image.blocks == 6
    return image, acts


@pytest.mark.parametrize("memory", ["slow", "bursty"])
def test_gobo_groups_equal_one_big_run_and_sum_the_counters(gobo_layer, memory):
    image, acts = gobo_layer
    memory = MEMORIES[memory]
    jobs = stream_tile_group_jobs(image, acts, memory, name="l0", base=BASE)
    assert [job["tokens"] for job in jobs] == [4, 4, 2]
    assert [job["name"] for job in jobs] == ["l0 tokens 0..3", "l0 tokens 4..7", "l0 tokens 8..9"]
    # Outputs: the groups' physical outputs side by side are one run over all 10 tokens (the
    # golden model has no activation memory to overflow), and so are the logical ones.
    outputs = np.concatenate([physical_outputs(image.blocks, image.config.pes, job["expected"],
                                               job["tokens"]) for job in jobs], axis=1)
    np.testing.assert_array_equal(outputs, tile_outputs(image, acts))
    y = np.concatenate([logical_beats(image, job["expected"], job["tokens"]) for job in jobs])
    np.testing.assert_array_equal(y, logical_beats(
        image, [list(outputs[b * 4:(b + 1) * 4, t]) for b in range(image.blocks)
                for t in range(TOKENS)], TOKENS))
    # Counters: each group's is the cycle model's for its tokens; the layer's are the sums.
    layer = stream_tile_group_cycles(image, TOKENS, memory, base=BASE)
    for job, group in zip(jobs, layer["groups"]):
        model = stream_tile_cycles_of_image(image, job["tokens"], memory, base=BASE)
        assert job["expected_counters"] == {k: model[k] for k in STREAM_COUNTERS}
        assert group == {"tokens": job["tokens"], **model}
    for key in STREAM_COUNTERS:
        assert layer[key] == sum_counters([job["expected_counters"] for job in jobs])[key]
    # The weights are read once per group; busy and outliers grow with the tokens alone, so
    # their sums are one 10-token run's; every group pays its own fill and drain.
    assert layer["bytes_read"] == 3 * offchip_layout(image, memory.bus_bytes, BASE).size
    whole = tile_cycles_of_image(image, TOKENS)
    assert layer["busy"] == whole["busy"] and layer["outliers"] == whole["outliers"]
    assert layer["ideal_cycles"] == whole["ideal_cycles"] == TOKENS * 6 * 16
    assert layer["utilization"] == layer["ideal_cycles"] / layer["cycles"]
    assert layer["cycles"] > whole["cycles"] + 2 * layer["groups"][0]["first_fill"]


@pytest.mark.parametrize("flavour", ["w16a16", "w4a4"])
def test_mac_groups_equal_one_big_run_and_sum_the_counters(minilm, flavour):
    layer, acts = real_mac_layer(minilm, flavour, LAYER, 24, 64, TOKENS)
    memory = MEMORIES["fast"]
    assert layer.config.max_tokens == 4
    groups = token_groups(TOKENS, layer.config.max_tokens)
    outputs = np.concatenate([mac_tile_outputs(layer, acts[g.start:g.stop]) for g in groups],
                             axis=1)
    np.testing.assert_array_equal(outputs, mac_tile_outputs(layer, acts))
    total = mac_stream_tile_group_cycles(layer, TOKENS, memory, base=BASE)
    runs = [mac_stream_tile_cycles(layer, len(g), memory, base=BASE) for g in groups]
    assert [g["tokens"] for g in total["groups"]] == [4, 4, 2]
    for key in ("cycles", "stall_memory", "bytes_read", "ideal_cycles"):
        assert total[key] == sum(run[key] for run in runs), key
    assert total["bytes_read"] == 3 * mac_offchip_layout(layer, memory.bus_bytes, BASE).size
    assert total["busy"] == mac_tile_cycles(layer, TOKENS)["busy"]
    assert total["utilization"] == total["ideal_cycles"] / total["cycles"]
