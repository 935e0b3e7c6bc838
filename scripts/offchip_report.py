"""Streaming-tile figures from the cycle model (docs/offchip.md, "What the model gives"): for
each all-MiniLM-L6-v2 FC shape (layer 0's query 384x384, intermediate 1536x384, output
384x1536; real weights and biases), at 128 tokens on the ``minilm`` datapath (16 PEs x 16
lanes) with a memory preset: utilization, memory stalls, off-chip bytes, and the bandwidth below
which the PEs wait for weights beyond the first block's fill (bisection on exact fractions).

Usage: .venv/bin/python scripts/offchip_report.py [--memory ddr4_3200_x64] [--tokens 128]
Writes build/reports/offchip.json and prints a Markdown table.
"""

import argparse
import json
import pathlib
import time
from fractions import Fraction

import numpy as np

from golden.config import preset
from golden.hwmodel.layer_image import build_layer_image, output_exponent, quantize_activations
from golden.hwmodel.offchip import MEMORY_PRESETS, memory_preset, offchip_layout
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.nlp.weights import load_tensors, minilm_safetensors

SHAPES = {
    "384x384 (layer 0 query)": "encoder.layer.0.attention.self.query.weight",
    "1536x384 (layer 0 intermediate)": "encoder.layer.0.intermediate.dense.weight",
    "384x1536 (layer 0 output)": "encoder.layer.0.output.dense.weight",
}


def stalls_beyond_fill(image, tokens, memory):
    model = stream_tile_cycles_of_image(image, tokens, memory)
    return model["stall_memory"] - model["first_fill"], model


def memory_bound_below(image, tokens, memory, steps=10):
    """The lowest bytes per cycle (within 1/2**steps of the upper bracket) at which the
    broadcast still never waits beyond the first block's fill."""
    low, high = Fraction(1, 64), Fraction(memory.bus_bytes)
    assert stalls_beyond_fill(image, tokens, memory.replace(bytes_per_cycle=high))[0] == 0
    for _ in range(steps):
        mid = (low + high) / 2
        if stalls_beyond_fill(image, tokens, memory.replace(bytes_per_cycle=mid))[0] == 0:
            high = mid
        else:
            low = mid
    return high


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", default="ddr4_3200_x64", choices=list(MEMORY_PRESETS))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--out", default="build/reports/offchip.json")
    args = parser.parse_args()
    memory = memory_preset(args.memory)
    config = preset("minilm").replace(max_tokens=args.tokens)
    tensors = load_tensors(minilm_safetensors())
    rows = []
    for label, name in SHAPES.items():
        start = time.time()
        weights = np.asarray(tensors[name], dtype=np.float32)
        bias = np.asarray(tensors[name.replace(".weight", ".bias")], dtype=np.float32)
        acts = np.random.default_rng(0).standard_normal((args.tokens, weights.shape[1]))
        x_int, e_x = quantize_activations(config, acts)
        e_y = output_exponent(config, acts @ weights.T + bias)
        image = build_layer_image(config, weights, bias=bias, act_exponent=e_x,
                                  out_exponent=e_y)
        beyond, model = stalls_beyond_fill(image, args.tokens, memory)
        layout = offchip_layout(image, memory.bus_bytes)
        bound = memory_bound_below(image, args.tokens, memory)
        m, n = weights.shape
        block_bytes = layout.size / image.blocks
        rows.append({
            "shape": label, "tensor": name, "rows": m, "cols": n, "tokens": args.tokens,
            "memory": memory.name, "bytes_per_cycle": float(memory.bytes_per_cycle),
            "bus_bytes": memory.bus_bytes, "cycles": model["cycles"],
            "ideal_cycles": model["ideal_cycles"], "utilization": model["utilization"],
            "stall_memory": model["stall_memory"], "first_fill": model["first_fill"],
            "stall_beyond_fill": beyond, "stall_outlier": model["stall_outlier"],
            "stall_recon": model["stall_recon"], "outliers": image.n_outliers,
            "offchip_bytes": layout.size, "block_bytes": block_bytes,
            "bytes_per_compute_cycle": block_bytes / (args.tokens * image.chunks),
            "memory_bound_below_bytes_per_cycle": float(bound),
            "memory_bound_below_gb_per_s_at_84_7_mhz": float(bound) * 84.7e6 / 1e9,
            "dense_bytes": {f"w{w}": m * n * w // 8 + 4 * m for w in (16, 8, 4)},
            "model_seconds": round(time.time() - start, 1),
        })
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("| shape | T | utilization | stall_memory (first fill) | off-chip bytes (GOBO) | "
          "W16 / W8 / W4 bytes (dense arithmetic) | memory-bound below (B/cycle) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        d = r["dense_bytes"]
        print(f"| {r['shape']} | {r['tokens']} | {r['utilization']:.5f} | {r['stall_memory']} "
              f"({r['first_fill']}) | {r['offchip_bytes']:,} | {d['w16']:,} / {d['w8']:,} / "
              f"{d['w4']:,} | {r['memory_bound_below_bytes_per_cycle']:.3f} |")


if __name__ == "__main__":
    main()
