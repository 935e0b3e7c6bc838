"""The generated MAC baseline Verilog (W16A16, W8A8, W4A4), run on Verilator through cocotb with
the same bench as the GOBO PE (sim.pe_bench), against golden.hwmodel.mac, bit for bit, on real
all-MiniLM-L6-v2 rows quantized uniformly (symmetric, per row) to the flavour's weight width."""

import json
import shutil

import pytest

from golden.config import MAC_FLAVOURS, mac_flavour
from golden.hwmodel.pe_jobs import mac_job, mac_vectors
from hw.designs import Design
from sim.runner import BenchFailed, build_design, run_bench
from tests.test_cocotb_pe import FFN_IN, QUERY, REPORTS

LANES = 4   # small and fast to build; the synthesis compares at lanes 16


def built_mac(name):
    config, weight_bits = mac_flavour(name, lanes=LANES, max_dot_length=1536)
    toplevel = f"mac_pe_{name}_lanes{LANES}"
    return (build_design(Design("mac_pe", config, weight_bits, name=toplevel).verilog(),
                         toplevel), toplevel, config,
            weight_bits, config.mac_pe_latency)


@pytest.mark.parametrize("name", MAC_FLAVOURS)
def test_mac_rtl_matches_golden_on_real_bert_rows(name, minilm):
    build_dir, toplevel, config, weight_bits, latency = built_mac(name)
    jobs = [
        mac_job(config, weight_bits, QUERY, minilm[QUERY], rows=32, seed=31, latency=latency),
        mac_job(config, weight_bits, FFN_IN, minilm[FFN_IN], rows=12, seed=32, latency=latency,
                gap_probability=0.3, backpressure_probability=0.4),
    ]
    results = run_bench(build_dir, toplevel, "sim.pe_bench",
                        mac_vectors(config, weight_bits, jobs), name="real_rows")
    for job, observed in zip(jobs, results["jobs"]):
        assert observed["outputs"] == job["expected"], job["name"]
        if job["expected_cycles"] is not None:
            assert observed["cycles"] == job["expected_cycles"], job["name"]
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"mac_{name}.json").write_text(json.dumps({
        "config": config.to_dict(), "weight_bits": weight_bits, "latency": latency,
        "rows_checked": sum(j["rows"] for j in results["jobs"]),
        "jobs": [{k: v for k, v in j.items() if k != "outputs"} for j in results["jobs"]]},
        indent=2))


def test_mac_bench_fails_on_one_corrupted_output_bit(minilm):
    """Mutation check: flipping one bit of one observed output must fail the bench."""
    build_dir, toplevel, config, weight_bits, latency = built_mac("w8a8")
    job = mac_job(config, weight_bits, QUERY, minilm[QUERY], rows=6, seed=41, latency=latency,
                  corrupt=(4, 3))
    with pytest.raises(BenchFailed, match=r"row 4: hardware -?\d+ != golden -?\d+") as failure:
        run_bench(build_dir, toplevel, "sim.pe_bench", mac_vectors(config, weight_bits, [job]),
                  name="mutant", waves_on_failure=False)
    assert (failure.value.run_dir / "sim.log").is_file()      # a failing run's folder is kept
    shutil.rmtree(failure.value.run_dir)
    observed = failure.value.results["jobs"][0]
    assert observed["mismatches"] == 1
    assert abs(observed["outputs"][4] - job["expected"][4]) == 1 << 3
