"""The generated tile Verilog on Verilator through cocotb: whole real BERT FC layers, every output
element bit for bit against the golden tile model, every counter against the cycle model."""

import json
import pathlib
import re
import shutil

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.layer_image import build_layer_image, make_image, quantize_activations
from golden.hwmodel.tile_jobs import tile_job, tile_vectors
from golden.nlp.weights import MINILM_FC_NAMES
from sim.runner import REPO, BenchFailed, run_bench
from sim.simulate import build_tile, simulate_layer

REPORTS = REPO / "build" / "reports" / "cocotb"
TINY = preset("tiny")


def test_tile_rtl_runs_minilm_layer0_bit_exact(minilm):
    """All six FC matrices of encoder layer 0 with their real biases, 4 tokens, default datapath."""
    config = preset("minilm")
    reports = []
    for name in MINILM_FC_NAMES[:6]:
        report = simulate_layer(config, minilm[name], bias=minilm[name[:-len("weight")] + "bias"],
                                tokens=4, seed=5, name=name, tag="minilm")
        reports.append(report)
        assert report["error"] is None, report["error"]
        assert report["mismatches"] == 0
        assert report["outputs_checked"] == 4 * -(-report["shape"][0] // config.pes) * config.pes
        assert report["counters_match_model"]
        assert report["rel_rmse_vs_fp32"] < 0.3   # 3-bit weights; the RTL adds only rounding
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "tile_minilm_layer0.json").write_text(json.dumps(reports, indent=2))


def _real_slice(minilm, rows, cols):
    w = minilm["encoder.layer.0.attention.self.key.weight"]
    return w[:rows, :cols]


def _pathological_jobs(minilm):
    """Tiny-tile jobs: a real slice with gaps and backpressure, and outlier patterns that stress
    the side path (none, ~5 %, one row, one column, first and last positions)."""
    rng = np.random.default_rng(9)
    x_float = rng.standard_normal((3, 61))
    x_int, e_x = quantize_activations(TINY, x_float)
    real = build_layer_image(TINY, _real_slice(minilm, 50, 61), act_exponent=e_x,
                             bias=rng.standard_normal(50) * 0.1, out_exponent=e_x - 3)
    jobs = [tile_job(real, x_int, name="real slice, gaps + backpressure", seed=1,
                     gap_probability=0.3, backpressure_probability=0.5),
            tile_job(real, x_int, name="real slice, timed", seed=2)]
    rows, cols = 30, 61
    idx = rng.integers(0, 8, (rows, cols))
    patterns = {
        "no outliers": [],
        "5 % outliers": [(p // cols, p % cols) for p in
                         rng.choice(rows * cols, rows * cols // 20, replace=False)],
        "all in one row": [(7, n) for n in range(cols)],
        "all in one column": [(m, 13) for m in range(rows)],
        "first and last": [(0, 0), (rows - 1, cols - 1)],
    }
    for i, (name, positions) in enumerate(patterns.items()):
        image = make_image(TINY, indexes=idx, centroids=rng.integers(-900, 900, 8),
                           outliers=[(m, n, int(rng.integers(-30000, 30000)))
                                     for m, n in positions],
                           bias=rng.integers(-1 << 20, 1 << 20, rows), shift_corr=2, out_shift=9)
        jobs.append(tile_job(image, x_int, name=name, seed=10 + i,
                             backpressure_probability=0.3 if i % 2 else 0.0))
    return jobs


def test_tile_rtl_small_configuration_stress(minilm):
    build_dir, toplevel = build_tile(TINY, "tiny")
    jobs = _pathological_jobs(minilm)
    results = run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(TINY, jobs),
                        name="stress")
    for job, observed in zip(jobs, results["jobs"]):
        assert observed["driver"] == "model"        # sim/tile_driver.py: no per-cycle Python
        assert observed["outputs"] == job["expected"], job["name"]
        if job["expected_counters"] is not None:
            assert {k: observed["counters"][k] for k in job["expected_counters"]} == \
                job["expected_counters"], job["name"]


def test_in_model_gaps_and_backpressure_slow_the_run_and_keep_it_exact(minilm):
    """sim/tile_driver.py's random gaps and backpressure really happen: with idle gaps before
    90 % of the load beats' cycles and o.ready low in 99 % of the run's, the load and the run
    take several times the cycles of the same job without them (whole simulation time, and the
    tile's own cycle counter: its output buffer absorbs milder backpressure), and the outputs
    stay exact."""
    build_dir, toplevel = build_tile(TINY, "tiny")
    job = _pathological_jobs(minilm)[1]
    slow = {**job, "name": "slow", "gap_probability": 0.9, "backpressure_probability": 0.99,
            "expected_counters": None}
    runs = [run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(TINY, [j]),
                      name="gaps") for j in (job, slow)]
    fast, slowed = (r["jobs"][0] for r in runs)
    assert fast["outputs"] == slowed["outputs"] == job["expected"]
    assert fast["counters"]["cycles"] == job["expected_counters"]["cycles"]
    assert slowed["counters"]["cycles"] > 3 * fast["counters"]["cycles"]
    assert runs[1]["cycles_simulated"] > 3 * runs[0]["cycles_simulated"]


def test_tile_needs_no_memory_init(minilm):
    """The tiles' memories are emitted without an initial block (hw.verilog.emit): with every
    register and memory word starting at a random value instead of zero, the tile still matches
    the golden model, so it reads no word that the layer's load did not write."""
    build_dir, toplevel = build_tile(TINY, "tiny")
    jobs = _pathological_jobs(minilm)[:4]
    for seed in (7, 8):
        results = run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(TINY, jobs),
                            name="random_init",
                            sim_args=["+verilator+rand+reset+2", f"+verilator+seed+{seed}"])
        for job, observed in zip(jobs, results["jobs"]):
            assert observed["outputs"] == job["expected"], job["name"]
            if job["expected_counters"] is not None:
                assert {k: observed["counters"][k] for k in job["expected_counters"]} == \
                    job["expected_counters"], job["name"]


def test_tile_bench_fails_on_one_corrupted_output_bit(minilm):
    build_dir, toplevel = build_tile(TINY, "tiny")
    job = _pathological_jobs(minilm)[1]
    job["corrupt"] = (3, 2, 0)
    with pytest.raises(BenchFailed, match=r"slot 3 PE 2: hardware -?\d+ != golden -?\d+") \
            as failure:
        run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(TINY, [job]),
                  name="mutant", waves_on_failure=False)
    assert (failure.value.run_dir / "sim.log").is_file()      # a failing run's folder is kept
    shutil.rmtree(failure.value.run_dir)


def test_planted_mismatch_names_the_element_its_cycle_and_a_waveform(minilm):
    """One golden element of the second job made wrong: the failure names that element, reruns
    the failing job alone on a model built with FST tracing, and names the waveform (which
    exists) with the cycle at which the hardware produced the element."""
    build_dir, toplevel = build_tile(TINY, "tiny")
    jobs = _pathological_jobs(minilm)[:3]
    jobs[1]["expected"][4][1] += 1
    with pytest.raises(BenchFailed) as failure:
        run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(TINY, jobs),
                  name="planted")
    message = str(failure.value)
    assert "real slice, timed slot 4 PE 1: hardware" in message
    first = re.search(r"waveform (\S+\.fst); first mismatch real slice, timed slot 4 PE 1 at "
                      r"cycle (\d+) \(t = ([\d.]+) ns\)", message)
    assert first, message
    wave = pathlib.Path(first.group(1))
    assert wave == failure.value.waves and wave.stat().st_size > 1000
    assert wave.read_bytes()[:1] == b"\x00"        # an FST header block
    # The rerun holds only the failing job: its element appears after that job's load and run.
    assert 0 < int(first.group(2)) == float(first.group(3)) // 10
    shutil.rmtree(failure.value.run_dir)
    shutil.rmtree(wave.parent)
