"""A layer longer than max_dot_length through the streaming tile's Verilog on Verilator, as
passes (docs/offchip.md section 10; sim/stream_tile_bench.py): the bench feeds each pass's
output beats, as the RTL emitted them, back on the next pass's ``carry`` stream; every partial
sum and every output bit for bit against the golden passes (whose outputs equal the single-pass
model's: tests/test_passes.py), every counter (``stall_carry`` included) equal to the cycle
model; a corrupted carry (a flipped output bit of a partial pass, fed back) fails the bench."""

import shutil

import numpy as np
import pytest

from gobo.commands.simulate import print_report
from golden.hwmodel.passes import CarrySchedule, single_pass
from golden.hwmodel.tile import tile_outputs
from golden.hwmodel.tile_jobs import physical_outputs, stream_tile_pass_jobs
from hw.designs import Design
from sim.runner import BenchFailed
from sim.simulate import run_design, simulate_layer
from tests.test_cocotb_stream_tile import LAYER5, SMALL, check_runs
from tests.test_hw_stream_tile import BASE, BUS, MEMORIES, real_layer

# The 2 x 2 datapath of the streaming bench, passes of 32 columns: the 61-column slice in 2;
# a slot takes 16 cycles (32 columns on 2 lanes), so a carry beat every 40 cycles holds the merge.
PASSES = SMALL.replace(max_dot_length=32, max_passes=2)
DESIGN = Design("gobo_stream_tile", PASSES, name=f"gobo_stream_tile_p2_l2_passes_bus{BUS}",
                bus_bytes=BUS)


@pytest.fixture(scope="module")
def layer(minilm):
    return real_layer(minilm, LAYER5, 38, 61, 3, config=PASSES)


def test_passes_on_verilator_equal_one_pass_and_every_counter(layer):
    image, acts = layer
    jobs = (stream_tile_pass_jobs(image, acts, MEMORIES["bursty"], name="bursty", base=BASE)
            + stream_tile_pass_jobs(image, acts, MEMORIES["fast"], name="fast, slow carry",
                                    base=BASE, carry=CarrySchedule(latency=30, interval=40)))
    assert [job["name"] for job in jobs] == ["bursty pass 1/2", "bursty pass 2/2",
                                             "fast, slow carry pass 1/2",
                                             "fast, slow carry pass 2/2"]
    results = run_design(DESIGN, jobs, name="passes")
    check_runs(jobs, results)
    carry_waits = [r["counters"]["stall_carry"] for r in results["jobs"]]
    assert carry_waits[0] == carry_waits[1] == carry_waits[2] == 0 < carry_waits[3], carry_waits
    # The last pass's outputs are the single-pass model's, every element.
    y = physical_outputs(image.blocks, PASSES.pes, results["jobs"][1]["outputs"], 3)
    np.testing.assert_array_equal(y, tile_outputs(single_pass(image), acts))


def test_a_corrupted_carry_fails_the_bench(layer):
    image, acts = layer
    jobs = stream_tile_pass_jobs(image, acts, MEMORIES["fast"], name="mutant", base=BASE)
    # One partial sum of pass 1, as the bench feeds it back into pass 2, off by one output step
    # (bit out_shift): pass 1 passes, pass 2's output of that slot and PE fails.
    jobs[1]["corrupt_carry"] = (3, 1, image.out_shift)
    with pytest.raises(BenchFailed, match=r"mutant pass 2/2 slot 3 PE 1: hardware") as e:
        run_design(DESIGN, jobs, name="passes_mutant", waves_on_failure=False)
    assert [job["failed"] for job in e.value.results["jobs"]] == [False, True]
    assert [job["mismatches"] for job in e.value.results["jobs"]] == [0, 1]
    shutil.rmtree(e.value.run_dir)


def test_passes_and_token_groups_through_simulate_layer(minilm, capsys):
    """`gobo simulate`'s path: 61 columns on a tile of 32 run as 2 passes, 5 tokens on a tile
    of 4 as 2 token groups: 4 jobs of one simulation of the build above, each checked; one
    progress line says so; the report's outputs are the last passes', its counters the sums."""
    weights, bias = minilm[LAYER5][:24, :61], minilm[LAYER5.replace("weight", "bias")][:24]
    report = simulate_layer(PASSES, weights, bias=bias, tokens=5, seed=3, name="layer5 24x61",
                            tag="p2_l2_passes", memory=MEMORIES["bursty"], base=BASE)
    assert "[sim] layer5 24x61: 61 columns exceed max_dot_length=32: running 2 passes, " \
        "partial sums carried at acc_bits=" in capsys.readouterr().err
    assert report["error"] is None and report["mismatches"] == 0
    assert report["passes"] == 2 and report["outputs_checked"] == 2 * 5 * 24
    jobs = report["token_groups"]
    assert [j["name"] for j in jobs] == [f"layer5 24x61 tokens {g} pass {k}/2"
                                         for g in ("0..3", "4..4") for k in (1, 2)]
    assert all(j["counters_match_model"] and j["mismatches"] == 0 for j in jobs)
    assert report["cycles"] == sum(j["cycles"] for j in jobs)
    assert report["bytes_read"] == 2 * report["offchip_bytes"]
    # 12 blocks x 5 tokens x a beat of 2 accumulators (2 x 56 bits = 14 bytes), out and back.
    assert PASSES.acc_bits == 56 and report["carry_bytes"] == 2 * 12 * 5 * 14
    assert 0 < report["rel_rmse_vs_fp32"] < 0.5
    print_report({**report, "preset": "small", "flavour": "gobo"})
    text = capsys.readouterr().out
    assert "passes           2 of at most 32 columns" in text
    assert "layer5 24x61 tokens 4..4 pass 2/2: 1 tokens" in text
