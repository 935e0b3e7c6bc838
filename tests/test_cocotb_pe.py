"""The generated PE Verilog, run on Verilator through cocotb, against the golden model, bit for bit,
on real all-MiniLM-L6-v2 rows, with its cycle count checked against the golden cycle model."""

import json
import shutil

import pytest

from golden.config import GoboConfig
from golden.hwmodel.pe_jobs import pe_job, pe_vectors
from hw.designs import Design
from sim.runner import REPO, BenchFailed, build_design, run_bench

CONFIGS = {
    "lanes1_idx3": GoboConfig(lanes=1, index_bits=3),
    "lanes4_idx3": GoboConfig(lanes=4, index_bits=3),
    "lanes16_idx3": GoboConfig(lanes=16, index_bits=3),
    "lanes16_idx4_mul4": GoboConfig(lanes=16, index_bits=4, recon_multipliers=4),
}
QUERY = "encoder.layer.0.attention.self.query.weight"          # 384 inputs
OUTPUT = "encoder.layer.0.output.dense.weight"                  # 1536 inputs
FFN_IN = "encoder.layer.1.intermediate.dense.weight"            # 384 inputs
REPORTS = REPO / "build" / "reports" / "cocotb"


def built_pe(config, tag):
    toplevel = f"gobo_pe_{tag}"
    design = Design("gobo_pe", config, name=toplevel)
    return build_design(design.verilog(), toplevel), toplevel, config.pe_latency


@pytest.mark.parametrize("tag", CONFIGS)
def test_pe_rtl_matches_golden_on_real_bert_rows(tag, minilm):
    config = CONFIGS[tag]
    build_dir, toplevel, latency = built_pe(config, tag)
    jobs = [
        pe_job(config, QUERY, minilm[QUERY], rows=64, seed=11, latency=latency),
        pe_job(config, OUTPUT, minilm[OUTPUT], rows=64, seed=12, latency=latency),
        # Random input gaps and output backpressure: same checks, no cycle expectation.
        pe_job(config, FFN_IN, minilm[FFN_IN], rows=16, seed=13, latency=latency,
               gap_probability=0.3, backpressure_probability=0.4),
    ]
    results = run_bench(build_dir, toplevel, "sim.pe_bench", pe_vectors(config, jobs),
                        name="real_rows")
    # The bench asserts; check again here on every element, independently of the bench.
    for job, observed in zip(jobs, results["jobs"]):
        assert observed["outputs"] == job["expected"], job["name"]
        assert observed["mismatches"] == 0
        if job["expected_cycles"] is not None:
            assert observed["cycles"] == job["expected_cycles"], job["name"]
    REPORTS.mkdir(parents=True, exist_ok=True)
    summary = {"config": config.to_dict(), "latency": latency,
               "rows_checked": sum(j["rows"] for j in results["jobs"]),
               "mismatches": sum(j["mismatches"] for j in results["jobs"]),
               "cycles_simulated": results["cycles_simulated"],
               "sim_cycles_per_s": results["sim_cycles_per_s"],
               "jobs": [{k: v for k, v in j.items() if k != "outputs"} for j in results["jobs"]]}
    (REPORTS / f"pe_{tag}.json").write_text(json.dumps(summary, indent=2))


def test_pe_bench_fails_on_one_corrupted_output_bit(minilm):
    """Mutation check: flipping one bit of one observed output must fail the bench."""
    config = CONFIGS["lanes4_idx3"]
    build_dir, toplevel, latency = built_pe(config, "lanes4_idx3")
    job = pe_job(config, QUERY, minilm[QUERY], rows=8, seed=21, latency=latency,
                 corrupt=(5, 7))
    with pytest.raises(BenchFailed, match=r"row 5: hardware -?\d+ != golden -?\d+") as failure:
        run_bench(build_dir, toplevel, "sim.pe_bench", pe_vectors(config, [job]), name="mutant",
                  waves_on_failure=False)
    assert (failure.value.run_dir / "sim.log").is_file()      # a failing run's folder is kept
    shutil.rmtree(failure.value.run_dir)
    observed = failure.value.results["jobs"][0]
    assert observed["mismatches"] == 1
    assert abs(observed["outputs"][5] - job["expected"][5]) == 1 << 7
