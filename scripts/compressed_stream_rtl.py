"""Real layers larger than the streaming memory-compression tile's buffers through its RTL
(Verilator, cocotb), as ``gobo simulate --preset minilm_stream --flavour compressed_w16a16``
runs them (sim.simulate.simulate_layer): all-MiniLM-L6-v2 layer 0's ``intermediate.dense``
(1536 x 384) and ``output.dense`` (384 x 1536), GOBO-quantized with W16 centroids and outliers,
on the ``minilm_stream`` datapath at W16A16 (16 PEs x 16 lanes, banks of 2 row blocks), from
the DDR4 preset and its contended (bursty) variant, one build for all four runs. Every output
element is checked against the whole-layer memory-compression model
(golden.hwmodel.mac_tile.mac_tile_outputs) and every counter against
golden.hwmodel.compressed_stream_tile. Writes ``<out>/compressed_stream_rtl.json`` (the
``simulate_layer`` reports); exit status 1 on any mismatch.

Usage: .venv/bin/python scripts/compressed_stream_rtl.py [--tokens 16] [--out build/reports]
"""

import argparse
import json
import pathlib
import sys
import time

from golden.config import COMPRESSED_FLAVOURS, mac_flavour
from golden.hwmodel.offchip import MEMORY_PRESETS
from golden.nlp.weights import load_tensors, minilm_safetensors
from sim.simulate import simulate_layer

LAYERS = ("encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense")
#: fast, bursty (both on the 16-byte bus of the one design built).
MEMORIES = ("ddr4_3200_x64", "ddr4_3200_x64_contended")
FLAVOUR, PRESET = "compressed_w16a16", "minilm_stream"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"))
    args = parser.parse_args()
    tensors = load_tensors(minilm_safetensors())
    mac = COMPRESSED_FLAVOURS[FLAVOUR]
    config, weight_bits = mac_flavour(mac, base=PRESET)
    start, reports, failed = time.monotonic(), [], False
    for name in LAYERS:
        for memory in MEMORIES:
            # Tagged as `gobo simulate` tags it: one build shared with the command.
            r = simulate_layer(config, tensors[name + ".weight"], bias=tensors[name + ".bias"],
                               tokens=args.tokens, seed=1, name=name, tag=f"{mac}_{PRESET}",
                               memory=MEMORY_PRESETS[memory], weight_bits=weight_bits,
                               compressed=True)
            r.update(preset=PRESET, flavour=FLAVOUR)
            reports.append(r)
            equal = r["counters_match_model"] and r["error"] is None
            failed |= bool(r["mismatches"] or not equal)
            print(f"{name} {r['shape']} {memory}: {r['cycles']:,} cycles ({r['ideal_cycles']:,} "
                  f"ideal, utilization {r['utilization']:.4f}), stall_memory "
                  f"{r['stall_memory']:,}, bytes_read {r['bytes_read']:,}, {r['mismatches']} "
                  f"mismatches, counters {'equal' if equal else 'DIFFER'}, {r['wall_s']:.1f} s",
                  flush=True)
    print(f"build and runs: {time.monotonic() - start:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compressed_stream_rtl.json").write_text(json.dumps(reports, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
