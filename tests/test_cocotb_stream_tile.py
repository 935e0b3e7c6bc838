"""The streaming tile's Verilog on Verilator through cocotb (sim/stream_tile_bench.py), the
off-chip memory on the bench side stepping the golden memory model: slices of real MiniLM
matrices larger than the tile's two banks of row blocks, under a slow, a fast and a bursty
memory, every output element bit for bit against the golden tile model and every counter equal
to the streaming cycle model; the bench shown to fail on one corrupted bit. (Whole 1536-wide
MiniLM layers on the minilm-sized streaming preset: `gobo simulate --preset minilm_stream`,
docs/offchip.md section 9; too slow to build for `make test`.)"""

import shutil

import pytest

from golden.hwmodel.tile_jobs import stream_tile_job
from hw.designs import Design
from sim.runner import BenchFailed
from sim.simulate import run_design
from tests.test_hw_stream_tile import BASE, BUS, MEMORIES, STREAM, real_layer

# 2 PEs x 2 lanes, one outlier lane: the 4 x 4 datapath is the Amaranth tests'; this one builds
# in about 10 s rather than 50 (make test's budget).
SMALL = STREAM.replace(pes=2, lanes=2, outlier_lanes=1, recon_multipliers=2)
DESIGN = Design("gobo_stream_tile", SMALL, name="gobo_stream_tile_p2_l2", bus_bytes=BUS)


def _jobs(minilm):
    """Layer 5 FFN output slice (19 row blocks, 3 tokens) under every memory, and layer 0's
    FFN input slice (12 blocks, 4 tokens) under the fast one."""
    image, acts = real_layer(minilm, "encoder.layer.5.output.dense.weight", 38, 61, 3,
                             config=SMALL)
    jobs = [stream_tile_job(image, acts, memory, name=f"layer5 output 38x61, {name}", seed=i,
                            base=BASE)
            for i, (name, memory) in enumerate(MEMORIES.items())]
    image, acts = real_layer(minilm, "encoder.layer.0.intermediate.dense.weight", 24, 64, 4,
                             config=SMALL)
    jobs.append(stream_tile_job(image, acts, MEMORIES["fast"], name="layer0 intermediate 24x64",
                                seed=5, base=BASE))
    return jobs


def test_stream_tile_rtl_matches_golden_and_cycle_models(minilm):
    jobs = _jobs(minilm)
    assert all(len(job["expected"]) // job["tokens"] > 2 for job in jobs), "must not fit on chip"
    results = run_design(DESIGN, jobs, name="real")
    for job, observed in zip(jobs, results["jobs"]):
        assert observed["mismatches"] == 0 and observed["outputs"] == job["expected"], job["name"]
        counters = {k: observed["counters"][k] for k in job["expected_counters"]}
        assert counters == job["expected_counters"], job["name"]
        assert counters["bytes_read"] == len(job["offchip"]) // 2
    # The three memories differ where they should: only the slow one waits between blocks.
    stalls = [r["counters"]["stall_memory"] for r in results["jobs"][:3]]
    assert stalls[0] > stalls[2] > stalls[1] > 0, stalls


def test_stream_tile_bench_fails_on_a_corrupted_bit_or_counter(minilm):
    job = _jobs(minilm)[2]
    job["corrupt"] = (4, 1, 0)
    with pytest.raises(BenchFailed, match=r"slot 4 PE 1: hardware -?\d+ != golden -?\d+") as e:
        run_design(DESIGN, [job], name="mutant", waves_on_failure=False)
    shutil.rmtree(e.value.run_dir)
    job = _jobs(minilm)[2]
    job["expected_counters"]["stall_memory"] += 1
    with pytest.raises(BenchFailed, match=r"counter stall_memory = \d+, cycle model \d+") as e:
        run_design(DESIGN, [job], name="mutant_counter", waves_on_failure=False)
    shutil.rmtree(e.value.run_dir)

