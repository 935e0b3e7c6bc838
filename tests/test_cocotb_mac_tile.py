"""The generated MAC baseline tiles (W16A16, W8A8, W4A4) and the memory-compression tile on
Verilator through cocotb, with the GOBO tile's bench (sim.tile_bench): real all-MiniLM-L6-v2
weights, every output element bit for bit against golden.hwmodel.mac_tile, every counter against
its cycle model."""

import json
import shutil

import numpy as np
import pytest

from golden.config import MAC_FLAVOURS, mac_flavour
from golden.hwmodel.layer_image import output_exponent, quantize_activations
from golden.hwmodel.mac_tile import compressed_layer_from_float, mac_layer_from_float
from golden.hwmodel.tile_jobs import mac_tile_job, tile_vectors
from golden.quant.quantizer import GoboLayer, quantize
from sim.runner import REPO, BenchFailed, run_bench
from sim.simulate import build_tile

REPORTS = REPO / "build" / "reports" / "cocotb"
SMALL = dict(pes=4, lanes=4, max_rows=64, max_dot_length=64, max_tokens=4)
KEY = "encoder.layer.0.attention.self.key.weight"


def _real_case(minilm, config, seed, rows=50, cols=61, tokens=3):
    """A real 50 x 61 slice of layer 0's key matrix with its bias, seeded activations."""
    rng = np.random.default_rng(seed)
    w = minilm[KEY][:rows, :cols].astype(np.float64)
    bias = minilm[KEY[:-len("weight")] + "bias"][:rows].astype(np.float64)
    x = rng.standard_normal((tokens, cols))
    x_int, e_x = quantize_activations(config, x)
    return w, bias, x_int, e_x, output_exponent(config, x @ w.T + bias)


def _run(config, weight_bits, jobs, tag, *, compressed=False, name="real"):
    build_dir, toplevel = build_tile(config, tag, weight_bits=weight_bits, compressed=compressed)
    results = run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(config, jobs),
                        name=name)
    for job, observed in zip(jobs, results["jobs"]):
        assert observed["outputs"] == job["expected"], job["name"]
        assert observed["mismatches"] == 0 and observed["elements"] == len(job["expected"]) * \
            config.pes
        if job["expected_counters"] is not None:
            assert {k: observed["counters"][k] for k in job["expected_counters"]} == \
                job["expected_counters"], job["name"]
    return results


@pytest.mark.parametrize("flavour", MAC_FLAVOURS)
def test_mac_tile_rtl_bit_exact_on_real_weights(flavour, minilm):
    config, weight_bits = mac_flavour(flavour, **SMALL)
    w, bias, x_int, e_x, e_y = _real_case(minilm, config, seed=3)
    layer = mac_layer_from_float(config, weight_bits, w, bias=bias, act_exponent=e_x,
                                 out_exponent=e_y)
    jobs = [mac_tile_job(layer, x_int, name=f"{flavour} real slice, timed", seed=1),
            mac_tile_job(layer, x_int, name=f"{flavour} real slice, gaps + backpressure",
                         seed=2, gap_probability=0.3, backpressure_probability=0.5)]
    results = _run(config, weight_bits, jobs, f"{flavour}_p4_l4")
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"mac_tile_{flavour}.json").write_text(json.dumps({
        "config": config.to_dict(), "weight_bits": weight_bits,
        "jobs": [{k: v for k, v in j.items() if k != "outputs"} for j in results["jobs"]]},
        indent=2))


def _gobo_window(full, rows, cols):
    """The GOBO form of ``full`` (the whole matrix quantized, as a model would be) restricted
    to ``rows`` x the first ``cols`` columns."""
    keep = np.zeros(full.shape, dtype=bool)
    keep[np.ix_(rows, np.arange(cols))] = True
    flat = full.outlier_positions[keep.reshape(-1)[full.outlier_positions]]
    r, c = np.divmod(flat, full.shape[1])
    new_row = {int(m): i for i, m in enumerate(rows)}
    positions = np.array(sorted(new_row[int(m)] * cols + int(n) for m, n in zip(r, c)),
                         dtype=np.int64)
    values = full.dequantize()[np.ix_(rows, np.arange(cols))].reshape(-1)[positions]
    return GoboLayer(shape=(len(rows), cols), index_bits=full.index_bits,
                     indexes=full.indexes[np.ix_(rows, np.arange(cols))],
                     centroids=full.centroids, outlier_positions=positions,
                     outlier_values=values.astype(np.float32))


def test_memory_compression_tile_rtl_bit_exact_on_real_weights(minilm):
    """GOBO form of real weights (3-bit indexes, 16-bit dictionary and outliers) through the
    decompressor into the W16A16 MAC tile's weight memory; then the dense run. The rows are the
    50 of layer 0's key matrix with the most outliers in its first 61 columns."""
    config, weight_bits = mac_flavour("w16a16", **SMALL)
    full = quantize(minilm[KEY], index_bits=config.index_bits)
    counts = np.zeros(full.shape[0], dtype=np.int64)
    r, c = np.divmod(full.outlier_positions, full.shape[1])
    np.add.at(counts, r[c < 61], 1)
    rows = np.sort(np.argsort(-counts, kind="stable")[:50])
    gobo = _gobo_window(full, rows, 61)
    w = minilm[KEY][rows, :61].astype(np.float64)
    bias = minilm[KEY[:-len("weight")] + "bias"][rows].astype(np.float64)
    x = np.random.default_rng(4).standard_normal((3, 61))
    x_int, e_x = quantize_activations(config, x)
    layer = compressed_layer_from_float(config, weight_bits, w, bias=bias, act_exponent=e_x,
                                        out_exponent=output_exponent(config, x @ w.T + bias),
                                        gobo=gobo)
    assert len(layer.compressed["outliers"]) >= 20
    jobs = [mac_tile_job(layer, x_int, name="compressed real slice, timed", seed=1),
            mac_tile_job(layer, x_int, name="compressed real slice, gaps + backpressure",
                         seed=2, gap_probability=0.4, backpressure_probability=0.5)]
    results = _run(config, weight_bits, jobs, "w16a16_p4_l4", compressed=True)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "compressed_tile_w16a16.json").write_text(json.dumps({
        "config": config.to_dict(), "weight_bits": weight_bits,
        "outliers": len(layer.compressed["outliers"]),
        "jobs": [{k: v for k, v in j.items() if k != "outputs"} for j in results["jobs"]]},
        indent=2))


def test_mac_tile_bench_fails_on_one_corrupted_output_bit(minilm):
    config, weight_bits = mac_flavour("w8a8", **SMALL)
    w, bias, x_int, e_x, e_y = _real_case(minilm, config, seed=5)
    layer = mac_layer_from_float(config, weight_bits, w, bias=bias, act_exponent=e_x,
                                 out_exponent=e_y)
    job = mac_tile_job(layer, x_int, name="mutant", seed=1, corrupt=(5, 1, 2))
    build_dir, toplevel = build_tile(config, "w8a8_p4_l4", weight_bits=weight_bits)
    with pytest.raises(BenchFailed, match=r"slot 5 PE 1: hardware -?\d+ != golden -?\d+") \
            as failure:
        run_bench(build_dir, toplevel, "sim.tile_bench", tile_vectors(config, [job]),
                  name="mutant", waves_on_failure=False)
    assert (failure.value.run_dir / "sim.log").is_file()      # a failing run's folder is kept
    shutil.rmtree(failure.value.run_dir)
