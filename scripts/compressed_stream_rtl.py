"""Real layers larger than the streaming memory-compression tile's buffers through its RTL
(Verilator, cocotb: sim.stream_tile_bench): all-MiniLM-L6-v2 layer 0's ``intermediate.dense``
(1536 x 384) and ``output.dense`` (384 x 1536), GOBO-quantized with W16 centroids and outliers,
on the ``minilm_stream`` datapath at W16A16 (16 PEs x 16 lanes, banks of 2 row blocks), from
the DDR4 preset and its contended (bursty) variant. Every output element is checked against
the whole-layer memory-compression model (golden.hwmodel.mac_tile.mac_tile_outputs) and every
counter against golden.hwmodel.compressed_stream_tile. Writes ``<out>/compressed_stream_rtl.json``;
exit status 1 on any mismatch.

Usage: .venv/bin/python scripts/compressed_stream_rtl.py [--tokens 16] [--out build/reports]
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from golden.config import mac_flavour
from golden.hwmodel.layer_image import output_exponent, quantize_activations
from golden.hwmodel.mac_tile import compressed_layer_from_float
from golden.hwmodel.offchip import memory_preset
from golden.hwmodel.tile_jobs import compressed_stream_tile_job
from golden.nlp.weights import load_tensors, minilm_safetensors
from hw.designs import Design
from sim.simulate import run_design

LAYERS = ("encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense")
#: fast, bursty (both on the 16-byte bus of the one design built).
MEMORIES = ("ddr4_3200_x64", "ddr4_3200_x64_contended")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"))
    args = parser.parse_args()
    tensors = load_tensors(minilm_safetensors())
    config, weight_bits = mac_flavour("w16a16", base="minilm_stream")
    design = Design("compressed_stream_tile", config, weight_bits,
                    name="compressed_stream_tile_w16a16_minilm_stream", bus_bytes=16)
    jobs, rows = [], []
    for name in LAYERS:
        w = np.asarray(tensors[name + ".weight"], dtype=np.float64)
        b = np.asarray(tensors[name + ".bias"], dtype=np.float64)
        acts = np.random.default_rng(1).standard_normal((args.tokens, w.shape[1]))
        x_int, e_x = quantize_activations(config, acts)
        layer = compressed_layer_from_float(config, weight_bits, w, bias=b, act_exponent=e_x,
                                            out_exponent=output_exponent(config, acts @ w.T + b))
        for memory in MEMORIES:
            jobs.append(compressed_stream_tile_job(layer, x_int, memory_preset(memory),
                                                   name=f"{name} {memory}", seed=len(jobs)))
            rows.append({"layer": name, "shape": list(w.shape), "memory": memory,
                         "tokens": args.tokens, "blocks": layer.blocks})
    start = time.time()
    results = run_design(design, jobs, name=f"real_t{args.tokens}")
    bad = 0
    for row, job, observed in zip(rows, jobs, results["jobs"]):
        counters = {k: observed["counters"][k] for k in job["expected_counters"]}
        equal = counters == job["expected_counters"]
        mismatches = observed["mismatches"]
        bad += mismatches or not equal or observed["outputs"] != job["expected"]
        row.update(mismatches=mismatches, counters_equal=equal,
                   ideal_cycles=job["ideal_cycles"],
                   utilization=job["ideal_cycles"] / counters["cycles"],
                   **{k: v for k, v in counters.items() if k != "busy"})
        print(f"{row['layer']} {row['shape']} {row['memory']}: {counters['cycles']:,} cycles "
              f"({row['ideal_cycles']:,} ideal, utilization {row['utilization']:.4f}), "
              f"stall_memory {counters['stall_memory']:,}, bytes_read "
              f"{counters['bytes_read']:,}, {mismatches} mismatches, counters "
              f"{'equal' if equal else 'DIFFER'}")
    print(f"build and runs: {time.time() - start:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compressed_stream_rtl.json").write_text(json.dumps(rows, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
