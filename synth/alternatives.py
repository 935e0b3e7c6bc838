"""``gobo synth --alternatives``: the alternative GOBO PEs of issue 18 item 7 beside the present
PE and the MAC PEs of equal activation width, from one synthesis run (docs/efficiency.md, "PE
alternatives"), written to ``alternatives.json`` and ``alternatives.md``.

The alternatives' throughput comes from their exact cycle models
(:mod:`golden.hwmodel.pe_alternatives`) on the real all-MiniLM-L6-v2 layer-0 FC matrices
(:data:`MATRICES`, quantized by GOBO as the accelerator uses them): their cycles over those of the
present PE (:func:`golden.hwmodel.pe.pe_cycles`) on the same rows is the slowdown folded into
area per operation.
"""

import numpy as np

from golden.hwmodel.pe import pe_cycles
from golden.hwmodel.pe_alternatives import beat_cycles, collision_cycles, spill_cycles
from hw.designs import collision_bin_inputs, spill_beats

from .report import _fmt, _get

__all__ = ["MATRICES", "BIN_INPUTS", "real_indexes", "stall_table", "slowdown",
           "alternatives_report", "alternatives_markdown", "alternatives_plot"]

#: The real matrices the stall rate is measured on: all six FC layers of layer 0.
MATRICES = tuple(f"encoder.layer.0.{part}.weight" for part in (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense"))
#: Adder-tree inputs per bin whose stall rate is reported (16 lanes).
BIN_INPUTS = (4, 5, 6, 8, 16)


def real_indexes(config):
    """``{name: indexes (M, N) int64}``: :data:`MATRICES` of the real all-MiniLM-L6-v2 quantized
    by GOBO at ``config``'s index width and outlier threshold.

    Raises
    ------
    golden.nlp.weights.WeightsError
        If the weights cannot be fetched.
    """
    from golden.nlp.weights import load_tensors, minilm_safetensors
    from golden.quant.quantizer import quantize
    tensors = load_tensors(minilm_safetensors())
    return {name: np.asarray(quantize(np.asarray(tensors[name], dtype=np.float32),
                                      index_bits=config.index_bits,
                                      outlier_log_prob=config.outlier_log_prob).indexes,
                             dtype=np.int64)
            for name in MATRICES}


def stall_table(config, indexes, bin_inputs=BIN_INPUTS):
    """Per matrix and ``K`` in ``bin_inputs``: the share of beats that stall, the mean cycles a
    beat takes and the slowdown of the whole matrix (one token, rows back to back) against the
    present PE, from the collision PE's cycle model."""
    rows = []
    for name, x in indexes.items():
        ideal = pe_cycles(config, x.shape[1], x.shape[0])
        for k in bin_inputs:
            cycles = beat_cycles(config, x, k)
            rows.append({"matrix": name, "shape": list(x.shape), "bin_inputs": k,
                         "beats": int(cycles.size),
                         "stalled_beats": float((cycles > 1).mean()),
                         "cycles_per_beat": float(cycles.mean()),
                         "slowdown": collision_cycles(config, x, k) / ideal})
    return rows


def slowdown(design, indexes):
    """The cycles of ``design`` (a synthesis design) over the present PE's on all the real
    matrices together (one token each, rows back to back; 1.0 for the present and MAC PEs)."""
    c = design.config
    ideal = sum(pe_cycles(c, x.shape[1], x.shape[0]) for x in indexes.values())
    if design.kind == "gobo_pe_collision":
        k = collision_bin_inputs(c)
        return sum(collision_cycles(c, x, k) for x in indexes.values()) / ideal
    if design.kind == "gobo_pe_spill":
        p = spill_beats(c)
        return sum(spill_cycles(c, x.shape[1], x.shape[0], p) for x in indexes.values()) / ideal
    return 1.0


def _figures(result, slow):
    area, fmax = _get(result, "asic_area", "area_um2"), _get(result, "timing", "fmax_mhz")
    lanes = result["config"]["lanes"]
    ops = lanes / slow
    return {"osu_area_um2": area, "osu_fmax_mhz": fmax, "slowdown": slow,
            "ops_per_cycle": ops,
            "area_per_op_um2": None if area is None else area / ops,
            # um^2 per (op/ns): area over throughput, the figure that decides the verdict.
            "area_per_gops_um2": None if area is None or fmax is None else
            area / (ops * fmax / 1e3)}


def alternatives_report(designs, results, indexes):
    """The comparison: per activation width, each design's :func:`_figures` and its ratios to
    the present GOBO PE and to the MAC PE of that width, and the verdict of each alternative;
    ``designs`` the synthesis designs, ``results`` their flow results by name."""
    config = designs[0].config
    groups = {}
    for d in designs:
        groups.setdefault(d.config.act_bits, []).append(d)
    rows, verdicts = [], []
    for act, members in groups.items():
        figures = {d.name: {"kind": d.kind, **_figures(results[d.name], slowdown(d, indexes))}
                   for d in members}
        present = next(f for f in figures.values() if f["kind"] == "gobo_pe")
        mac = next((f for f in figures.values() if f["kind"] == "mac_pe"), None)
        for name, f in figures.items():
            ratio = {}
            for key in ("osu_area_um2", "area_per_op_um2", "area_per_gops_um2", "osu_fmax_mhz"):
                ratio[f"{key}_over_present"] = _ratio(f[key], present[key])
                ratio[f"{key}_over_mac"] = _ratio(f[key], mac[key]) if mac else None
            rows.append({"design": name, "act_bits": act, **f, **ratio})
            if f["kind"] not in ("gobo_pe", "mac_pe"):
                r = ratio["area_per_gops_um2_over_present"]
                verdicts.append({"design": name, "act_bits": act,
                                 "verdict": "n/a" if r is None else
                                 "beats the present PE" if r < 1 else
                                 "does not beat the present PE",
                                 "area_per_gops_over_present": r,
                                 "area_per_op_over_present":
                                     ratio["area_per_op_um2_over_present"]})
    return {"method": "minilm preset (16 lanes, 3-bit indexes, 1 reconstruction multiplier, "
                      "dot products up to 1536); slowdown = the design's cycles over the "
                      "present PE's on the six real layer-0 FC matrices (one token, rows back "
                      "to back, exact cycle models); ops per cycle = lanes / slowdown; area per "
                      "op = OSU area / ops per cycle; area per Gop/s = OSU area / (ops per "
                      "cycle x OSU Fmax); verdict: beats the present PE if its area per Gop/s "
                      "is lower",
            "collision_bin_inputs": collision_bin_inputs(config),
            "spill_beats": spill_beats(config),
            "matrices": list(MATRICES),
            "stalls": stall_table(config, indexes),
            "rows": rows, "verdicts": verdicts}


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def alternatives_plot(report, path):
    """Grouped bars of area per Gop/s of every design of the comparison, by activation width;
    returns ``path``, or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in report["comparison"]["rows"] if r["area_per_gops_um2"] is not None]
    widths = sorted({r["act_bits"] for r in rows}, reverse=True)
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, kind in enumerate(kinds):
        values = [next((r["area_per_gops_um2"] / 1e3 for r in rows
                        if r["kind"] == kind and r["act_bits"] == a), 0) for a in widths]
        ax.bar([w + (i - len(kinds) / 2 + 0.5) * 0.2 for w in range(len(widths))], values,
               width=0.2, label=kind)
    ax.set_xticks(range(len(widths)), [f"A{a}" for a in widths])
    ax.set_ylabel("OSU area per Gop/s (10^3 um^2), stalls included")
    ax.set_title("GOBO PE alternatives against the present PE and the MAC PE", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def alternatives_markdown(report):
    comp = report["comparison"]
    rows = report["designs"].values() if "designs" in report else []
    cached = sum(1 for d in rows if d.get("cached"))
    from_cache = f" ({cached} of {len(rows)} designs from an earlier run's cache)" if cached else ""
    lines = ["# GOBO PE alternatives (issue 18, item 7)", "", f"> {report['note']}", "",
             f"Generated {report['generated']}; wall {report['wall_seconds']:.0f} s{from_cache}. "
             f"Method: {comp['method']}.", "",
             f"Collision PE: {comp['collision_bin_inputs']} adder-tree inputs per bin; spill PE: "
             f"chunks of {comp['spill_beats']} beats.", "",
             "| design | act bits | OSU area (um^2) | OSU Fmax (MHz) | slowdown | ops/cycle | "
             "area/op (um^2) | area per Gop/s (um^2) | area/op vs present | area/op vs MAC | "
             "area per Gop/s vs present | area per Gop/s vs MAC |",
             "|" + "---|" * 12]
    for r in comp["rows"]:
        lines.append("| " + " | ".join([
            r["design"], str(r["act_bits"]), _fmt(r["osu_area_um2"], ",.0f"),
            _fmt(r["osu_fmax_mhz"], ".1f"), f"{r['slowdown']:.4f}",
            f"{r['ops_per_cycle']:.2f}", _fmt(r["area_per_op_um2"], ",.0f"),
            _fmt(r["area_per_gops_um2"], ",.0f"),
            _fmt(r["area_per_op_um2_over_present"], ".3f"),
            _fmt(r["area_per_op_um2_over_mac"], ".3f"),
            _fmt(r["area_per_gops_um2_over_present"], ".3f"),
            _fmt(r["area_per_gops_um2_over_mac"], ".3f")]) + " |")
    lines += ["", "## Verdicts", ""]
    lines += [f"- `{v['design']}` (A{v['act_bits']}): **{v['verdict']}** (area per Gop/s "
              f"{_fmt(v['area_per_gops_over_present'], '.3f')}x, area per op "
              f"{_fmt(v['area_per_op_over_present'], '.3f')}x the present PE's)"
              for v in comp["verdicts"]]
    lines += ["", "## Collisions on real MiniLM index words (16 lanes)", "",
              "| matrix | shape | K (inputs per bin) | beats | stalled beats | cycles per beat | "
              "slowdown |", "|---|---|---:|---:|---:|---:|---:|"]
    for s in comp["stalls"]:
        lines.append(f"| {s['matrix'].replace('encoder.layer.0.', '')} | "
                     f"{s['shape'][0]}x{s['shape'][1]} | {s['bin_inputs']} | {s['beats']:,} | "
                     f"{100 * s['stalled_beats']:.2f} % | {s['cycles_per_beat']:.4f} | "
                     f"{s['slowdown']:.4f} |")
    lines.append("")
    return "\n".join(lines)
