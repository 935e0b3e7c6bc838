"""Real layers larger than the streaming tile's buffers through its RTL (Verilator, cocotb):
all-MiniLM-L6-v2 layer 0's ``intermediate.dense`` (1536 x 384) and ``output.dense`` (384 x 1536)
on the ``minilm_stream`` preset (its banks hold 2 of their 96 / 24 row blocks) under a slow, a
fast and a bursty memory preset, and the BERT-base- and BERT-large-shaped FFN output layers
(768 x 3072, 1024 x 4096) assembled by tiling MiniLM layer 0's ``output.dense`` as ``gobo
latency`` does (:func:`golden.accel.latency_report.source_matrix`; labelled as such: not real
BERT weights) on ``bert_base_stream`` and ``bert_large_stream`` under the same three memories.
Every output element and every counter is checked (sim.simulate), and the
cycle model's utilization at 128 tokens is given beside each run. Writes
``<out>/stream_rtl.json``; exit status 1 on any mismatch.

Usage: .venv/bin/python scripts/stream_rtl_report.py [--tokens 16] [--out build/reports]
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from golden.accel.latency_report import MODELS, source_matrix
from golden.config import preset
from golden.hwmodel.layer_image import calibrated_image
from golden.hwmodel.offchip import MEMORY_PRESETS
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image
from golden.nlp.weights import load_tensors, minilm_safetensors
from sim.simulate import simulate_layer

#: slow, fast, bursty.
MEMORIES = ("ulx3s_sdram", "ddr4_3200_x64", "ddr4_3200_x64_contended")
LAYER = "encoder.layer.0."


def runs(tensors):
    """``[(label, preset, weights, bias, memories)]``."""
    out = []
    for name in ("intermediate.dense", "output.dense"):
        w, b = tensors[LAYER + name + ".weight"], tensors[LAYER + name + ".bias"]
        out.append((LAYER + name, "minilm_stream", w, b, MEMORIES))
    for model in ("bert_base", "bert_large"):      # FFN output layers: the widest dot products
        w, b, label = source_matrix(tensors, model, 0, "output")
        out.append((f"{MODELS[model].label} {w.shape[0]}x{w.shape[1]} output layer: {label}",
                    MODELS[model].preset, w, b, MEMORIES))
    return out


def model_utilization(config, weights, bias, tokens, memory):
    """The cycle model's utilization of ``weights`` at ``tokens`` tokens from ``memory``."""
    acts = np.random.default_rng(1).standard_normal((tokens, weights.shape[1]))
    image, _, _ = calibrated_image(config.replace(max_tokens=max(tokens, config.max_tokens)),
                                   weights, acts, bias=bias, streamed=True)
    return stream_tile_cycles_of_image(image, tokens, memory)["utilization"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"))
    parser.add_argument("--only", help="run only the labels containing this text")
    args = parser.parse_args()
    tensors = load_tensors(minilm_safetensors())
    reports, failed = [], False
    for label, preset_name, w, b, memories in runs(tensors):
        if args.only and args.only not in label:
            continue
        config = preset(preset_name)
        for memory_name in memories:
            memory = MEMORY_PRESETS[memory_name]
            started = time.monotonic()
            r = simulate_layer(config, w, bias=b, tokens=args.tokens, seed=1, name=label,
                               tag=preset_name, memory=memory)
            r.update(preset=preset_name, wall_s=time.monotonic() - started,
                     utilization_model_128_tokens=model_utilization(config, w, b, 128, memory))
            reports.append(r)
            failed |= bool(r["mismatches"] or r["error"])
            print(f"{label} {w.shape[0]}x{w.shape[1]} {preset_name} {memory_name} "
                  f"T={r['tokens']}: mismatches {r['mismatches']} of {r['outputs_checked']}, "
                  f"counters equal {r['counters_match_model'] and r['error'] is None}, cycles "
                  f"{r['cycles']} (ideal {r['ideal_cycles']}), stall_memory "
                  f"{r['stall_memory']}, bytes_read {r['bytes_read']}, utilization "
                  f"{r['utilization']:.4f} (model at 128 tokens "
                  f"{r['utilization_model_128_tokens']:.5f}), {r['wall_s']:.1f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stream_rtl.json").write_text(json.dumps(reports, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
