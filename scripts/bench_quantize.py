#!/usr/bin/env python3
"""Benchmark: GOBO vs k-means on the 36 encoder FC matrices of the real all-MiniLM-L6-v2.

Writes ``quantize.json`` (data first), ``quantize.md`` (summary table) and ``quantize.png`` (per
matrix outlier fraction, relative RMSE and L1 of both methods) to ``--out``, and prints the
summary. ``make report`` runs it.
"""

import argparse
import json
import pathlib
import sys
import time

import matplotlib

matplotlib.use("Agg")  # headless: CI and build machines have no display
import matplotlib.pyplot as plt  # noqa: E402

from golden.config import GoboConfig  # noqa: E402
from golden.nlp.weights import MINILM_FC_NAMES, load_tensors, minilm_safetensors  # noqa: E402
from golden.quant.quantizer import METHODS, aggregate_stats, quantize  # noqa: E402

_DEFAULTS = GoboConfig()


def _short(name):
    """``encoder.layer.3.attention.self.query.weight`` -> ``L3.query``."""
    parts = name.split(".")
    part = {"intermediate": "ffn_in", "output": "ffn_out"}.get(parts[3], parts[-2])
    if parts[3] == "attention" and parts[4] == "output":
        part = "attn_out"
    return f"L{parts[2]}.{part}"


def run(tensors, *, bits, threshold, progress=True):
    """Quantize every FC matrix with each method; return the report dict."""
    per_tensor = []
    totals = {m: {"stats": [], "seconds": 0.0} for m in METHODS}
    for i, name in enumerate(MINILM_FC_NAMES, 1):
        entry = {"name": name, "shape": list(tensors[name].shape)}
        for method in METHODS:
            start = time.perf_counter()
            layer = quantize(tensors[name], index_bits=bits, outlier_log_prob=threshold,
                             method=method)
            seconds = time.perf_counter() - start
            totals[method]["stats"].append(layer.stats)
            totals[method]["seconds"] += seconds
            entry[method] = {**layer.stats.to_dict(), "seconds": seconds}
        per_tensor.append(entry)
        if progress:
            print(f"[{i}/{len(MINILM_FC_NAMES)}] {name}: outliers "
                  f"{100 * entry['gobo']['outlier_fraction']:.3f} %, L1 gobo "
                  f"{entry['gobo']['l1']:.1f} / kmeans {entry['kmeans']['l1']:.1f}",
                  file=sys.stderr, flush=True)
    aggregate = {}
    for method in METHODS:
        stats = totals[method]["stats"]
        agg = aggregate_stats(stats)
        worst = min(range(len(stats)), key=lambda j: stats[j].compression_ratio)
        aggregate[method] = {
            **agg,
            "min_compression_tensor": MINILM_FC_NAMES[worst],
            "mean_rel_rmse": sum(s.rel_rmse for s in stats) / len(stats),
            "max_iterations": max(s.iterations for s in stats),
            "seconds": totals[method]["seconds"],
        }
    return {"model": "all-MiniLM-L6-v2", "index_bits": bits, "threshold": threshold,
            "tensors": per_tensor, "aggregate": aggregate}


def markdown(report):
    g, k = report["aggregate"]["gobo"], report["aggregate"]["kmeans"]
    rows = [
        ("outlier fraction (all weights)", f"{100 * g['outlier_fraction']:.3f} %",
         f"{100 * k['outlier_fraction']:.3f} %"),
        ("compression, pooled", f"{g['compression_ratio']:.2f}x", f"{k['compression_ratio']:.2f}x"),
        ("compression, lowest matrix", f"{g['min_compression_ratio']:.2f}x "
         f"({_short(g['min_compression_tensor'])})", f"{k['min_compression_ratio']:.2f}x"),
        ("rel RMSE, mean of matrices", f"{g['mean_rel_rmse']:.4f}", f"{k['mean_rel_rmse']:.4f}"),
        ("L1, total", f"{g['l1']:.1f}", f"{k['l1']:.1f}"),
        ("iterations, total (max)", f"{g['iterations']} ({g['max_iterations']})",
         f"{k['iterations']} ({k['max_iterations']})"),
        ("wall time, 36 matrices", f"{g['seconds']:.2f} s", f"{k['seconds']:.2f} s"),
    ]
    lines = [
        f"# GOBO quantizer on all-MiniLM-L6-v2 ({report['index_bits']}-bit indexes, "
        f"outliers below log-density {report['threshold']:g})",
        "",
        f"{g['matrices']} encoder FC matrices, {g['numel']:,} weights. Compression counts the "
        "whole stored form (header, dictionary, packed indexes, outlier positions and values); "
        "see docs/quantizer.md.",
        "",
        "| | GOBO | k-means |",
        "|---|---:|---:|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "| matrix | shape | outliers % | compression | rel RMSE gobo / kmeans "
        "| L1 gobo / kmeans | iterations gobo / kmeans |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for t in report["tensors"]:
        tg, tk = t["gobo"], t["kmeans"]
        lines.append(
            f"| {_short(t['name'])} | {'x'.join(map(str, t['shape']))} "
            f"| {100 * tg['outlier_fraction']:.3f} | {tg['compression_ratio']:.2f}x "
            f"| {tg['rel_rmse']:.4f} / {tk['rel_rmse']:.4f} | {tg['l1']:.1f} / {tk['l1']:.1f} "
            f"| {tg['iterations']} / {tk['iterations']} |")
    return "\n".join(lines) + "\n"


def plot(report, path):
    labels = [_short(t["name"]) for t in report["tensors"]]
    x = range(len(labels))
    fig, axes = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    axes[0].bar(x, [100 * t["gobo"]["outlier_fraction"] for t in report["tensors"]])
    axes[0].set_ylabel("outliers (%)")
    for method, marker in (("gobo", "o"), ("kmeans", "x")):
        axes[1].plot(x, [t[method]["rel_rmse"] for t in report["tensors"]], marker, label=method)
        axes[2].plot(x, [t[method]["l1_mean"] for t in report["tensors"]], marker, label=method)
    axes[1].set_ylabel("rel RMSE")
    axes[2].set_ylabel("mean |w - w'|")
    axes[1].legend()
    axes[2].legend()
    axes[2].set_xticks(list(x), labels, rotation=90, fontsize=7)
    fig.suptitle(f"GOBO vs k-means, all-MiniLM-L6-v2 encoder FC, "
                 f"{report['index_bits']}-bit indexes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"),
                        help="output folder (default build/reports)")
    parser.add_argument("--bits", type=int, default=_DEFAULTS.index_bits,
                        help=f"index bits, 2..8 (default {_DEFAULTS.index_bits})")
    parser.add_argument("--threshold", type=float, default=_DEFAULTS.outlier_log_prob,
                        help=f"outlier log-density threshold (default "
                             f"{_DEFAULTS.outlier_log_prob:g})")
    args = parser.parse_args(argv)
    if not 2 <= args.bits <= 8:
        parser.error(f"--bits must be between 2 and 8, not {args.bits}")

    print("loading all-MiniLM-L6-v2 (fetched and cached on first use)", file=sys.stderr)
    tensors = load_tensors(minilm_safetensors())
    report = run(tensors, bits=args.bits, threshold=args.threshold)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quantize.json").write_text(json.dumps(report, indent=1) + "\n")
    summary = markdown(report)
    (args.out / "quantize.md").write_text(summary)
    plot(report, args.out / "quantize.png")
    print(summary.split("\n\n| matrix")[0])
    print(f"\nwrote {args.out / 'quantize.json'}, quantize.md, quantize.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
