"""The streaming tiles' Verilog on Verilator through cocotb, one bench for both
(sim/stream_tile_bench.py), the off-chip memory on the bench side cocotbext-axi's AxiRamRead
timed cycle by cycle by the golden memory model: slices of real MiniLM matrices larger than the
tiles' two banks of row blocks, under a slow, a fast and a bursty memory, every output element
bit for bit against the golden model (GOBO: the tile model; MAC W16A16, W8A8, W4A4:
golden.hwmodel.mac_tile) and every counter equal to the streaming cycle model (stall_memory and
bytes_read included); the bench shown to fail on one corrupted output element, on a counter off
by one and on one flipped bit in the AXI RAM's image; the RAM on its own random timing still
gives exact outputs. (Whole 1536-wide MiniLM layers on the minilm-sized streaming preset: `gobo
simulate --preset minilm_stream [--flavour F]`, docs/offchip.md section 9; too slow to build for
`make test`.)"""

import re
import shutil

import pytest

from gobo.commands.simulate import print_report
from golden.config import MAC_FLAVOURS, mac_flavour
from golden.hwmodel.offchip import offchip_layout
from golden.hwmodel.tile_jobs import stream_tile_group_jobs, stream_tile_job
from golden.hwmodel.token_groups import stream_tile_group_cycles
from hw.designs import Design
from sim.runner import BenchFailed
from sim.simulate import run_design, simulate_layer
from sim.stream_tile_bench import AXI_RAM_LATENCY
from tests.test_hw_mac_stream_tile import real_mac_layer
from tests.test_hw_stream_tile import BASE, BUS, MEMORIES, STREAM, real_layer

# 2 PEs x 2 lanes, one outlier lane: the 4 x 4 datapath is the Amaranth tests'; this one builds
# in about 10 s rather than 50 (make test's budget). Named as sim.simulate.simulate_layer names
# it (tag p2_l2), so that the token-group run through simulate_layer shares the build.
SMALL = STREAM.replace(pes=2, lanes=2, outlier_lanes=1, recon_multipliers=2)
TAG = "p2_l2"
DESIGN = Design("gobo_stream_tile", SMALL, name=f"gobo_stream_tile_{TAG}_bus{BUS}",
                bus_bytes=BUS)
LAYER0 = "encoder.layer.0.intermediate.dense"
LAYER5 = "encoder.layer.5.output.dense.weight"
#: The streaming MAC tile on the same 2 x 2 datapath, per flavour.
MAC_DESIGNS = {
    flavour: Design("mac_stream_tile", *mac_flavour(flavour, base="tiny", max_rows=STREAM.max_rows,
                                                    pes=2, lanes=2),
                    name=f"mac_stream_tile_{flavour}_p2_l2", bus_bytes=BUS)
    for flavour in MAC_FLAVOURS}


def _jobs(minilm):
    """Layer 5 FFN output slice (19 row blocks, 3 tokens) under every memory, and layer 0's
    FFN input slice (12 blocks, 4 tokens) under the fast one."""
    image, acts = real_layer(minilm, LAYER5, 38, 61, 3, config=SMALL)
    jobs = [stream_tile_job(image, acts, memory, name=f"layer5 output 38x61, {name}", seed=i,
                            base=BASE)
            for i, (name, memory) in enumerate(MEMORIES.items())]
    image, acts = real_layer(minilm, "encoder.layer.0.intermediate.dense.weight", 24, 64, 4,
                             config=SMALL)
    jobs.append(stream_tile_job(image, acts, MEMORIES["fast"], name="layer0 intermediate 24x64",
                                seed=5, base=BASE))
    return jobs


def _mac_jobs(minilm, flavour):
    """Layer 5 FFN output slice, quantized to the flavour, under every memory, and layer 0's
    FFN input slice (12 blocks, 4 tokens) under the bursty one."""
    config = MAC_DESIGNS[flavour].config
    layer, acts = real_mac_layer(minilm, flavour, LAYER5, 38, 61, 3, config=config)
    jobs = [stream_tile_job(layer, acts, memory, name=f"{flavour} layer5 output 38x61, {name}",
                            seed=i, base=BASE)
            for i, (name, memory) in enumerate(MEMORIES.items())]
    layer, acts = real_mac_layer(minilm, flavour, "encoder.layer.0.intermediate.dense.weight",
                                 24, 64, 4, config=config)
    jobs.append(stream_tile_job(layer, acts, MEMORIES["bursty"],
                                name=f"{flavour} layer0 intermediate 24x64", seed=5, base=BASE))
    return jobs


def check_runs(jobs, results):
    """Every output element and counter of every run equals the models'; ``bytes_read`` is
    the off-chip image's size. Returns each run's ``stall_memory``."""
    for job, observed in zip(jobs, results["jobs"], strict=True):
        assert observed["mismatches"] == 0 and observed["outputs"] == job["expected"], job["name"]
        counters = {k: observed["counters"][k] for k in job["expected_counters"]}
        assert counters == job["expected_counters"], job["name"]
        assert counters["bytes_read"] == len(job["offchip"]) // 2
    return [r["counters"]["stall_memory"] for r in results["jobs"]]


def test_stream_tile_rtl_matches_golden_and_cycle_models(minilm):
    jobs = _jobs(minilm)
    assert all(len(job["expected"]) // job["tokens"] > 2 for job in jobs), "must not fit on chip"
    stalls = check_runs(jobs, run_design(DESIGN, jobs, name="real"))
    # The three memories differ where they should: only the slow one waits between blocks.
    assert stalls[0] > stalls[2] > stalls[1] > 0, stalls


@pytest.mark.parametrize("flavour", list(MAC_FLAVOURS))
def test_mac_stream_tile_rtl_matches_golden_and_cycle_models(minilm, flavour):
    jobs = _mac_jobs(minilm, flavour)
    assert all(len(job["expected"]) // job["tokens"] > 2 for job in jobs), "must not fit on chip"
    stalls = check_runs(jobs, run_design(MAC_DESIGNS[flavour], jobs, name="real"))
    assert stalls[0] > stalls[2] > stalls[1] > 0, stalls[:3]


def _fails(design, jobs, *patterns):
    """The bench fails on ``jobs`` with every one of ``patterns`` in its message, each job
    marked failed."""
    with pytest.raises(BenchFailed) as e:
        run_design(design, jobs, name="mutant", waves_on_failure=False)
    for pattern in patterns:
        assert re.search(pattern, str(e.value)), (pattern, str(e.value))
    assert [job["failed"] for job in e.value.results["jobs"]] == [True] * len(jobs)
    shutil.rmtree(e.value.run_dir)


def test_stream_tile_bench_fails_on_a_corrupted_bit_or_counter(minilm):
    corrupt, counter = _jobs(minilm)[2], _jobs(minilm)[2]
    corrupt["corrupt"] = (4, 1, 0)
    counter["expected_counters"]["stall_memory"] += 1
    _fails(DESIGN, [corrupt, counter], r"slot 4 PE 1: hardware -?\d+ != golden -?\d+",
           r"counter stall_memory = \d+, cycle model \d+")


def test_mac_stream_tile_bench_fails_on_a_corrupted_element_or_counter(minilm):
    corrupt, counter = _mac_jobs(minilm, "w4a4")[2], _mac_jobs(minilm, "w4a4")[2]
    corrupt["corrupt"] = (7, 0, 2)
    counter["expected_counters"]["bytes_read"] -= 1
    _fails(MAC_DESIGNS["w4a4"], [corrupt, counter], r"slot 7 PE 0: hardware -?\d+ != golden -?\d+",
           r"counter bytes_read = \d+, cycle model \d+")


def test_token_groups_through_simulate_layer(minilm, capsys):
    """10 tokens on a tile of 4 (docs/offchip.md section 4): 3 token groups, jobs of one
    simulation of one build; every output element and every group's counters checked; the
    report's counters are the groups' sums, the weights read once per group."""
    weights, bias = minilm[LAYER0 + ".weight"][:24, :64], minilm[LAYER0 + ".bias"][:24]
    report = simulate_layer(SMALL, weights, bias=bias, tokens=10, seed=3, name="layer0 24x64",
                            tag=TAG, memory=MEMORIES["bursty"], base=BASE)
    assert report["error"] is None and report["mismatches"] == 0
    assert report["outputs_checked"] == 10 * 24        # 12 blocks of 2 PEs, every token
    groups = report["token_groups"]
    assert [g["tokens"] for g in groups] == [4, 4, 2]
    assert all(g["counters_match_model"] and g["mismatches"] == 0 for g in groups)
    for key in ("cycles", "stall_memory", "bytes_read", "ideal_cycles"):
        assert report[key] == sum(g[key] for g in groups), key
    assert report["bytes_read"] == 3 * report["offchip_bytes"]
    assert report["expected_counters"]["cycles"] == report["cycles"]
    assert report["ideal_cycles"] == 10 * 12 * 32
    assert report["utilization"] == report["ideal_cycles"] / report["cycles"] < 1
    assert 0 < report["rel_rmse_vs_fp32"] < 0.5
    print_report({**report, "preset": "small"})
    text = capsys.readouterr().out
    assert "token groups     3 (tokens 4 + 4 + 2); counters below are sums" in text
    assert f"utilization {report['utilization']:.4f})\n" in text, text
    assert f"group 2: 2 tokens, {groups[2]['cycles']} cycles" in text
    # Under random output backpressure the groups are untimed, their outputs still exact.
    report = simulate_layer(SMALL, weights, bias=bias, tokens=5, seed=4, name="layer0 24x64 bp",
                            tag=TAG, memory=MEMORIES["fast"], base=BASE,
                            backpressure_probability=0.3)
    assert report["error"] is None and report["mismatches"] == 0
    assert report["outputs_checked"] == 5 * 24 and report["expected_counters"] is None
    assert [(g["tokens"], g["counters_match_model"]) for g in report["token_groups"]] == \
        [(4, None), (1, None)]


def test_a_corrupted_token_group_fails_the_bench(minilm):
    """The group jobs straight through the bench: every group's outputs are the golden split's,
    the cycles sum to the grouped model's; a flipped bit in the last group's outputs fails the
    bench, named with its group."""
    image, acts = real_layer(minilm, LAYER0 + ".weight", 24, 64, 10, config=SMALL)
    jobs = stream_tile_group_jobs(image, acts, MEMORIES["fast"], name="groups", base=BASE)
    totals = stream_tile_group_cycles(image, 10, MEMORIES["fast"], base=BASE)
    assert [job["tokens"] for job in jobs] == [4, 4, 2]
    results = run_design(DESIGN, jobs, name="groups")
    assert [r["outputs"] for r in results["jobs"]] == [job["expected"] for job in jobs]
    assert sum(r["counters"]["cycles"] for r in results["jobs"]) == totals["cycles"]
    assert all(r["mismatches"] == 0 for r in results["jobs"])
    jobs[2]["corrupt"] = (5, 1, 0)
    with pytest.raises(BenchFailed, match=r"groups tokens 8\.\.9 slot 5 PE 1: hardware") as e:
        run_design(DESIGN, jobs, name="groups_mutant", waves_on_failure=False)
    shutil.rmtree(e.value.run_dir)


def test_axi_ram_pipeline_is_two_cycles(minilm):
    """cocotbext-axi's AxiRamRead offers a request's first beat two cycles after the request at
    the earliest (sim.stream_tile_bench.AXI_RAM_LATENCY): a memory of latency 2 at a beat a
    cycle runs exact; a memory of latency 1 is refused in one line, not run with wrong
    counters."""
    image, acts = real_layer(minilm, LAYER0 + ".weight", 24, 64, 4, config=SMALL)
    quick = MEMORIES["fast"].replace(latency=AXI_RAM_LATENCY)
    jobs = [stream_tile_job(image, acts, quick, name="latency 2", base=BASE)]
    check_runs(jobs, run_design(DESIGN, jobs, name="latency2"))
    jobs = [stream_tile_job(image, acts, quick.replace(latency=1), name="latency 1", base=BASE)]
    with pytest.raises(ValueError, match=r"^memory latency 1 is shorter than cocotbext-axi "
                                         r"AxiRamRead's AR-to-R pipeline of 2 cycles; the bench "
                                         r"cannot reproduce it exactly$"):
        run_design(DESIGN, jobs, name="latency1")


def test_a_corrupted_word_in_the_axi_ram_fails_the_bench(minilm):
    """One bit of block 3's first index word flipped in the AXI RAM's copy of the image (the
    models keep the true one): the bench reports the outputs of that block's PE 0 as differing
    from the golden model's; the counters, which do not depend on the data, still equal the
    cycle model's."""
    image, acts = real_layer(minilm, LAYER0 + ".weight", 24, 64, 4, config=SMALL)
    job = stream_tile_job(image, acts, MEMORIES["fast"], name="corrupt ram", base=BASE)
    job["corrupt_offchip"] = (offchip_layout(image, BUS, base=BASE).blocks[3]["index"] - BASE, 0)
    with pytest.raises(BenchFailed, match=r"corrupt ram slot \d+ PE 0: hardware -?\d+ != "
                                          r"golden -?\d+") as e:
        run_design(DESIGN, [job], name="corrupt_ram", waves_on_failure=False)
    observed = e.value.results["jobs"][0]
    assert observed["failed"] and observed["mismatches"] > 0
    assert {k: observed["counters"][k] for k in job["expected_counters"]} == \
        job["expected_counters"]
    shutil.rmtree(e.value.run_dir)


def test_a_corrupt_header_in_the_axi_ram_ends_the_run_with_one_error_line(minilm):
    """Bit 5 of block 1's header flipped in the AXI RAM's copy: ``W_b`` above a bank, which
    ``offchip_layout`` refuses. The tile used to hang with ``busy`` high (the bench's timeout);
    now the run ends and the bench reports the ``header`` error bit in one line, nothing else."""
    image, acts = real_layer(minilm, LAYER0 + ".weight", 24, 64, 4, config=SMALL)
    job = stream_tile_job(image, acts, MEMORIES["fast"], name="corrupt header", base=BASE)
    job["corrupt_offchip"] = (offchip_layout(image, BUS, base=BASE).blocks[1]["header"] - BASE, 5)
    with pytest.raises(BenchFailed) as e:
        run_design(DESIGN, [job], name="corrupt_header", waves_on_failure=False)
    assert re.search(r"corrupt header: hardware error 0b1: header \(a row block header's "
                     r"outlier count W_b exceeds a bank", str(e.value))
    assert "counter" not in str(e.value) and "golden" not in str(e.value)
    assert e.value.results["jobs"][0]["counters"]["error"] == 0b1
    shutil.rmtree(e.value.run_dir)


def test_axi_ram_on_its_own_timing(minilm):
    """cocotbext-axi's RAM on its own timing rather than the memory model's: its AR and R
    channels paused at random (each cycle with probability 0.4, seeded) on top of its own queues
    and AR-to-R pipeline. Every output element is still the golden model's; `bytes_read`, `busy`
    and `outliers`, which the timing cannot change, are the cycle model's; every cycle the tile
    did not compute is in `stall_memory` (`cycles - stall_memory` is the model's), and there are
    more of them than from the fast memory."""
    image, acts = real_layer(minilm, LAYER0 + ".weight", 24, 64, 4, config=SMALL)
    model = stream_tile_job(image, acts, MEMORIES["fast"], name="own timing", base=BASE)
    expected = model["expected_counters"]
    job = {**model, "axi_pauses": {"seed": 3, "probability": 0.4},
           "expected_counters": {k: expected[k] for k in ("busy", "outliers", "bytes_read")}}
    observed = run_design(DESIGN, [job], name="own_timing")["jobs"][0]
    assert observed["mismatches"] == 0 and observed["outputs"] == job["expected"]
    counters = observed["counters"]
    assert counters["cycles"] - counters["stall_memory"] == \
        expected["cycles"] - expected["stall_memory"]
    assert counters["stall_memory"] > expected["stall_memory"], counters
    print(f"own timing: {counters['cycles']} cycles, stall_memory {counters['stall_memory']} "
          f"(fast memory model: {expected['cycles']}, {expected['stall_memory']})")
