"""Every encoder FC matrix of all-MiniLM-L6-v2 through the tile RTL (`make test-full`).

Runs `gobo simulate`'s flow on each of the 36 matrices (real weights and biases, seeded
activations), checks every output bit for bit and every counter against the cycle model, and
writes build/reports/tile_all.{json,md}. It also sweeps the outlier side path's multipliers on
the densest matrix with the cycle model (which the benches prove equal to the RTL's counters).
Exit status 1 on any mismatch.

The matrices run in parallel on a Dask cluster (:mod:`hw.cluster`: a LocalCluster with a worker
per core, or ``--scheduler ADDRESS``). Each matrix's report is stored in
``<out>/tile_all/<matrix>.json`` as it arrives; a rerun skips the matrices whose stored report
passed with the same preset, tokens, seed and hardware sources (an interrupted run resumes).
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from golden.config import preset
from golden.hwmodel.layer_image import build_layer_image
from golden.hwmodel.tile import tile_cycles_of_image
from golden.nlp.weights import MINILM_FC_NAMES, load_tensors, minilm_safetensors
from golden.quant.quantizer import quantize
from hw.cluster import ClusterError, run_jobs
from hw.verilog_cache import source_digest
from sim.simulate import simulate_layer


def outlier_lane_sweep(config, weights, tokens, lanes=(1, 2, 4, 8)):
    layer = quantize(weights, index_bits=config.index_bits)
    rows = []
    for q in lanes:
        c = config.replace(outlier_lanes=q)
        for balance in (False, True):
            image = build_layer_image(c, weights, act_exponent=0, layer=layer,
                                      balance_rows=balance)
            model = tile_cycles_of_image(image, tokens)
            rows.append({"outlier_lanes": q, "balanced_rows": balance,
                         "cycles": model["cycles"], "ideal_cycles": model["ideal_cycles"],
                         "utilization": model["ideal_cycles"] / model["cycles"],
                         "stall_outlier": model["stall_outlier"]})
    return rows


def simulate_matrix(preset_name, name, tokens, seed):
    """One MiniLM matrix through the tile RTL (run by a cluster worker); its report."""
    tensors = load_tensors(minilm_safetensors(), names={name, name[:-6] + "bias"})
    return simulate_layer(preset(preset_name), tensors[name], bias=tensors[name[:-6] + "bias"],
                          tokens=tokens, seed=seed, name=name, tag=preset_name)


def _stored(path, key):
    """The report stored at ``path`` if it passed with this ``key``, else None."""
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    passed = stored.get("mismatches") == 0 and stored.get("error") is None
    return stored["report"] if passed and stored.get("key") == key else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"))
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--preset", default="minilm")
    parser.add_argument("--tensor", action="append", help="only these matrices (repeatable)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler to run the matrices on (default: a LocalCluster "
                             "on this machine)")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster workers (default: every core)")
    args = parser.parse_args(argv)
    config = preset(args.preset)
    tensors = load_tensors(minilm_safetensors())
    names = args.tensor or MINILM_FC_NAMES
    unknown = sorted(set(names) - set(MINILM_FC_NAMES))
    if unknown:
        parser.error(f"not MiniLM encoder FC matrices: {', '.join(unknown)}")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers must be a positive integer, not {args.workers}")
    store = args.out / "tile_all"
    store.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    seeds = {name: MINILM_FC_NAMES.index(name) + 1 for name in names}
    # Through JSON, as stored (tuples become lists), so that equal keys compare equal.
    keys = {name: json.loads(json.dumps({"config": config.to_dict(), "tokens": args.tokens,
                                         "seed": seeds[name], "sources": source_digest()}))
            for name in names}
    done = {name: report for name in names
            if (report := _stored(store / f"{name}.json", keys[name])) is not None}
    if done:
        print(f"simulate_all: {len(done)} matrices passed before with the same inputs; "
              f"{len(names) - len(done)} to run", file=sys.stderr, flush=True)

    def arrived(name, report):
        done[name] = report
        (store / f"{name}.json").write_text(json.dumps(
            {"key": keys[name], "mismatches": report["mismatches"], "error": report["error"],
             "report": report}))
        print(f"[{len(done)}/{len(names)}] {name}: mismatches {report['mismatches']} of "
              f"{report['outputs_checked']}, utilization {report['utilization']:.4f}, stalls "
              f"{report['stall_cycles']}, {report['wall_s']:.0f} s", file=sys.stderr, flush=True)

    jobs = {name: (args.preset, name, args.tokens, seeds[name]) for name in names
            if name not in done}
    try:
        run_jobs(simulate_matrix, jobs, scheduler=args.scheduler, workers=args.workers,
                 on_result=arrived)
    except ClusterError as e:
        print(f"simulate_all: {e}", file=sys.stderr)
        return 1
    reports = [done[name] for name in names]
    densest = max(reports, key=lambda r: r["outliers"] / (r["shape"][0] * r["shape"][1]))["name"]
    worst = min(reports, key=lambda r: r["utilization"] or 0)
    sweeps = {name: outlier_lane_sweep(config, tensors[name], args.tokens)
              for name in dict.fromkeys([densest, worst["name"]])}
    summary = {
        "preset": args.preset, "tokens": args.tokens, "matrices": len(reports),
        "mismatches": sum(r["mismatches"] for r in reports),
        "outputs_checked": sum(r["outputs_checked"] for r in reports),
        "counters_match_model": all(r["counters_match_model"] for r in reports),
        "worst": {"name": worst["name"], "utilization": worst["utilization"],
                  "stall_cycles": worst["stall_cycles"]},
        "sim_cycles_per_s_mean": float(np.mean([r["sim_cycles_per_s"] for r in reports])),
        "wall_s": time.monotonic() - started, "resumed": len(names) - len(jobs),
        "densest": densest, "outlier_lane_sweeps": sweeps, "layers": reports,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tile_all.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# Tile RTL on all {len(reports)} MiniLM encoder FC matrices ({args.tokens} tokens, "
             f"preset {args.preset})", "",
             f"Mismatches: **{summary['mismatches']}** of {summary['outputs_checked']} outputs; "
             f"counters equal to the cycle model: {summary['counters_match_model']}.", "",
             "| matrix | shape | outliers | cycles | ideal | utilization | stalls (outlier/recon/"
             "output) | rel RMSE vs FP32 |", "|---|---|---:|---:|---:|---:|---|---:|"]
    for r in reports:
        s = r["stall_cycles"]
        rmse = r.get("rel_rmse_vs_fp32")     # None: constant FP32 outputs, no relative error
        lines.append(f"| {r['name'].replace('encoder.layer.', 'L').replace('.weight', '')} | "
                     f"{r['shape'][0]}x{r['shape'][1]} | {r['outliers']} | {r['cycles']} | "
                     f"{r['ideal_cycles']} | {r['utilization']:.4f} | {s['outlier']}/{s['recon']}/"
                     f"{s['output']} | {'n/a' if rmse is None else f'{rmse:.4f}'} |")
    for name, sweep in sweeps.items():
        why = "densest in outliers" if name == densest else "lowest utilization"
        lines += ["", f"Outlier side path on {name} ({why}), cycle model (equal to the RTL's "
                  "counters wherever both ran):", "",
                  "| outlier multipliers | balanced rows | cycles | utilization | outlier stalls |",
                  "|---:|---|---:|---:|---:|"]
        lines += [f"| {r['outlier_lanes']} | {r['balanced_rows']} | {r['cycles']} | "
                  f"{r['utilization']:.4f} | {r['stall_outlier']} |" for r in sweep]
    (args.out / "tile_all.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if summary["mismatches"] == 0 and summary["counters_match_model"] else 1


if __name__ == "__main__":
    sys.exit(main())
