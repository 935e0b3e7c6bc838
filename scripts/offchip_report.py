"""Streaming figures from the cycle models (docs/offchip.md, "What the models give"): for each
all-MiniLM-L6-v2 FC shape (layer 0's query 384x384, intermediate 1536x384, output 384x1536; real
weights and biases) at 128, 8 and 1 tokens, per design: the GOBO streaming tile on the
``minilm`` datapath (16 PEs x 16 lanes), the streaming MAC tiles (W16A16, W8A8, W4A4) and the
streaming memory-compression tile at W16A16 (its GOBO form in the GOBO layout, decompressed on
chip for W16A16 MAC PEs; docs/offchip.md section 8) on the same datapath and the same memory
preset: off-chip bytes, cycles, utilization, memory stalls, and the bandwidth below which the
PEs wait for weights beyond the first block's fill (bisection on exact fractions).

Usage: .venv/bin/python scripts/offchip_report.py [--memory ddr4_3200_x64] [--tokens 128 8 1]
       [--designs GOBO COMPRESSED-W16A16]
Writes build/reports/offchip.json and prints Markdown tables.
"""

import argparse
import json
import pathlib
import time
from fractions import Fraction

import numpy as np

from golden.config import MAC_FLAVOURS, mac_flavour, preset
from golden.hwmodel.compressed_stream_tile import compressed_stream_tile_cycles
from golden.hwmodel.layer_image import build_layer_image, output_exponent, quantize_activations
from golden.hwmodel.mac_stream_tile import mac_stream_tile_cycles
from golden.hwmodel.mac_tile import (
    compressed_image,
    compressed_layer_from_float,
    mac_layer_from_float,
)
from golden.hwmodel.offchip import (
    MEMORY_PRESETS,
    mac_offchip_layout,
    memory_preset,
    offchip_layout,
)
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.nlp.weights import load_tensors, minilm_safetensors

SHAPES = {
    "384x384 (layer 0 query)": "encoder.layer.0.attention.self.query.weight",
    "1536x384 (layer 0 intermediate)": "encoder.layer.0.intermediate.dense.weight",
    "384x1536 (layer 0 output)": "encoder.layer.0.output.dense.weight",
}

#: The accelerator clock of the DDR4 and LPDDR4 presets (docs/offchip.md section 5).
CLOCK_HZ = 84.7e6


def stalls_beyond_fill(model, memory):
    """``(memory stalls after the first block's fill, the model's counters)``."""
    counters = model(memory)
    return counters["stall_memory"] - counters["first_fill"], counters


#: The widest AXI data bus (1024 bits): where the bound is sought when the preset's bus is short.
WIDEST_BUS = 128


def memory_bound_below(model, memory, steps=10):
    """``(bytes per cycle, bus bytes)``: the lowest bandwidth (within ``bus/2**steps`` of it) at
    which the broadcast still never waits beyond the first block's fill, on ``memory``'s bus, or
    if that bus is too narrow even at a beat a cycle, on a :data:`WIDEST_BUS`-byte one (same
    latency and refresh; the layout's beats, hence bytes, change a little); ``(None,
    WIDEST_BUS)`` if even that is too narrow."""
    bus = memory.bus_bytes
    if stalls_beyond_fill(model, memory)[0] and memory.bytes_per_cycle >= bus:
        bus = WIDEST_BUS
        memory = memory.replace(bus_bytes=bus, bytes_per_cycle=Fraction(bus))
    low, high = Fraction(1, 64), Fraction(bus)
    if stalls_beyond_fill(model, memory.replace(bytes_per_cycle=high))[0]:
        return None, bus
    for _ in range(steps):
        mid = (low + high) / 2
        if stalls_beyond_fill(model, memory.replace(bytes_per_cycle=mid))[0] == 0:
            high = mid
        else:
            low = mid
    return high, bus


def designs(weights, bias, tokens):
    """``{design: (config, layer, layout function, model function)}`` of one layer at
    ``tokens`` tokens, each quantized at its own datapath's widths from the same float layer and
    seeded activations."""
    acts = np.random.default_rng(0).standard_normal((tokens, weights.shape[1]))
    ref = acts @ weights.T + bias
    out = {}
    config = preset("minilm").replace(max_tokens=tokens)
    x_int, e_x = quantize_activations(config, acts)
    image = build_layer_image(config, weights, bias=bias, act_exponent=e_x,
                              out_exponent=output_exponent(config, ref))
    out["GOBO"] = (image, lambda bus: offchip_layout(image, bus),
                   lambda memory: stream_tile_cycles_of_image(image, tokens, memory))
    for flavour in MAC_FLAVOURS:
        config, weight_bits = mac_flavour(flavour, base="minilm", max_tokens=tokens)
        x_int, e_x = quantize_activations(config, acts)
        layer = mac_layer_from_float(config, weight_bits, weights, bias=bias, act_exponent=e_x,
                                     out_exponent=output_exponent(config, ref))
        out[flavour.upper()] = (
            layer, lambda bus, layer=layer: mac_offchip_layout(layer, bus),
            lambda memory, layer=layer: mac_stream_tile_cycles(layer, tokens, memory))
    # The memory-compression tile: the GOBO form (natural row order: the GOBO tile's image
    # balances rows over the PEs, so its outlier words per block, hence bytes, differ a little).
    config, weight_bits = mac_flavour("w16a16", base="minilm", max_tokens=tokens)
    x_int, e_x = quantize_activations(config, acts)
    layer = compressed_layer_from_float(config, weight_bits, weights, bias=bias, act_exponent=e_x,
                                        out_exponent=output_exponent(config, ref))
    out["COMPRESSED-W16A16"] = (
        layer, lambda bus: offchip_layout(compressed_image(layer), bus),
        lambda memory: compressed_stream_tile_cycles(layer, tokens, memory))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", default="ddr4_3200_x64", choices=list(MEMORY_PRESETS))
    parser.add_argument("--tokens", type=int, nargs="+", default=[128, 8, 1])
    parser.add_argument("--designs", nargs="+", default=None,
                        help="only these designs (GOBO is always run: the ratios need it)")
    parser.add_argument("--out", default="build/reports/offchip.json")
    args = parser.parse_args()
    memory = memory_preset(args.memory)
    tensors = load_tensors(minilm_safetensors())
    rows = []
    for tokens in args.tokens:
        for label, name in SHAPES.items():
            weights = np.asarray(tensors[name], dtype=np.float32)
            bias = np.asarray(tensors[name.replace(".weight", ".bias")], dtype=np.float32)
            for design, (layer, layout, model) in designs(weights, bias, tokens).items():
                if args.designs and design not in {"GOBO", *args.designs}:
                    continue
                start = time.time()
                beyond, counters = stalls_beyond_fill(model, memory)
                size = layout(memory.bus_bytes).size
                bound, bound_bus = memory_bound_below(model, memory)
                rows.append({
                    "shape": label, "tensor": name, "rows": int(weights.shape[0]),
                    "cols": int(weights.shape[1]), "tokens": tokens, "design": design,
                    "memory": memory.name, "bytes_per_cycle": float(memory.bytes_per_cycle),
                    "bus_bytes": memory.bus_bytes, "offchip_bytes": size,
                    "bytes_read": counters["bytes_read"], "cycles": counters["cycles"],
                    "ideal_cycles": counters["ideal_cycles"],
                    "utilization": counters["utilization"],
                    "stall_memory": counters["stall_memory"],
                    "first_fill": counters["first_fill"], "stall_beyond_fill": beyond,
                    "block_bytes": size / layer.blocks,
                    "bytes_per_compute_cycle": size / layer.blocks / (tokens * layer.chunks),
                    "memory_bound_below_bytes_per_cycle": None if bound is None else float(bound),
                    "memory_bound_bus_bytes": bound_bus,
                    "memory_bound_below_gb_per_s": None if bound is None
                    else float(bound) * CLOCK_HZ / 1e9,
                    "model_seconds": round(time.time() - start, 1),
                })
                print(f"# {tokens} tokens, {label}, {design}: {rows[-1]['model_seconds']} s",
                      flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"\n{memory.name}: {memory.bytes_per_cycle} bytes/cycle, {memory.bus_bytes}-byte bus; "
          f"COMPRESSED-W16A16 reads the GOBO form (its own row order) and decompresses it on "
          f"chip\n")
    print("| T | shape | design | off-chip bytes (x GOBO) | cycles (ideal) | utilization | "
          "stall_memory (first fill) | memory-bound below (B/cycle; bus if wider than the "
          "preset's) |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        gobo = next(g for g in rows if g["design"] == "GOBO" and g["shape"] == r["shape"]
                    and g["tokens"] == r["tokens"])
        bound, bus = r["memory_bound_below_bytes_per_cycle"], r["memory_bound_bus_bytes"]
        bound = (f"> {bus} (needs {r['bytes_per_compute_cycle']:.1f})" if bound is None else
                 f"{bound:.3f}" + ("" if bus == r["bus_bytes"] else f" ({bus}-B bus)"))
        print(f"| {r['tokens']} | {r['shape']} | {r['design']} | {r['offchip_bytes']:,} "
              f"({r['offchip_bytes'] / gobo['offchip_bytes']:.2f}) | {r['cycles']:,} "
              f"({r['ideal_cycles']:,}) | {r['utilization']:.4f} | {r['stall_memory']:,} "
              f"({r['first_fill']}) | {bound} |")


if __name__ == "__main__":
    main()
