"""``synth.json`` (data first), ``synth.md`` (readable tables) and ``synth.png`` (area against
throughput) from the flow's results; the GOBO-versus-baseline comparison and the sweep's Pareto
fronts are computed here from figures of one run."""

import json
from pathlib import Path

__all__ = ["NOTE", "write_reports", "markdown", "comparison", "pareto", "write_sweep_reports",
           "plot"]

NOTE = ("Open-tool estimates, not sign-off: Yosys/ABC mapping to the academic OSU 0.18 um library "
        "(typical corner) with no placement, wire load or clock tree; OpenSTA on that netlist with "
        "ideal clock and no wire parasitics; nextpnr-ecp5 out of context, with one seed (three "
        "in the sweep).")


def _fmt(value, spec="", none="n/a"):
    return none if value is None else format(value, spec)


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def markdown(report):
    lines = [
        "# Synthesis of the GOBO PEs and the MAC baselines",
        "",
        f"> {report['note']}",
        "",
        "| design | lanes | index bits | OSU area (um^2) | sequential share | OSU cells | "
        "transistors (CMOS) | OSU min period (ns) | OSU Fmax (MHz) | ECP5 device | LUT4 + CCU2C | "
        "TRELLIS_COMB | TRELLIS_FF | MULT18X18D | ECP5 Fmax (MHz) | act bits | weight bits | "
        "OSU area per lane (um^2) |",
        "|" + "---|" * 18,
    ]
    for name, d in report["designs"].items():
        cfg = d.get("config", {})
        share = _get(d, "asic_area", "sequential_share")
        lut = _get(d, "ecp5_synth", "LUT4")
        ccu = _get(d, "ecp5_synth", "CCU2C")
        lines.append("| " + " | ".join([
            name, _fmt(cfg.get("lanes")),
            "-" if d.get("kind") == "mac" else _fmt(cfg.get("index_bits")),
            _fmt(_get(d, "asic_area", "area_um2"), ",.0f"),
            "n/a" if share is None else f"{100 * share:.1f}%",
            _fmt(_get(d, "asic_area", "cells"), ","),
            _fmt(_get(d, "transistors", "count"), ","),
            _fmt(_get(d, "timing", "min_period_ns"), ".2f"),
            _fmt(_get(d, "timing", "fmax_mhz"), ".1f"),
            _fmt(_get(d, "ecp5", "device")).split(" ")[0],
            "n/a" if lut is None else f"{lut:,} + {ccu:,}",
            _fmt(_get(d, "ecp5", "TRELLIS_COMB"), ","),
            _fmt(_get(d, "ecp5", "TRELLIS_FF"), ","),
            _fmt(_get(d, "ecp5", "MULT18X18D")),
            _fmt(_get(d, "ecp5", "fmax_mhz"), ".1f"),
            _fmt(cfg.get("act_bits")), _fmt(d.get("weight_bits"), none="-"),
            _fmt(_per_lane(d), ",.0f"),
        ]) + " |")
    if report.get("comparison"):
        lines += _comparison_md(report["comparison"])
    lines += ["", "How each figure was obtained (tool labels from the first design):", ""]
    first = next(iter(report["designs"].values()), {})
    for key, title in [("asic_area", "OSU area"), ("transistors", "Transistors"),
                       ("timing", "OSU timing"), ("ecp5_synth", "ECP5 LUT4/CCU2C"),
                       ("ecp5", "ECP5 place and route")]:
        tool = _get(first, key, "tool")
        if tool:
            lines.append(f"- {title}: `{tool}`")
    others = [n for n, d in report["designs"].items()
              if _get(d, "ecp5_synth", "tool") not in (None, _get(first, "ecp5_synth", "tool"))]
    for n in others:
        tool = _get(report["designs"][n], "ecp5_synth", "tool")
        lines.append(f"- ECP5 LUT4/CCU2C of {n}: `{tool}`")
    lines += [
        "- Sequential share = area of DFFPOSX1 cells / total cell area. OSU has no enable or "
        "sync-reset flip-flop, so that logic is in the combinational share.",
        "- ECP5 Fmax: post-route, register-to-register paths only; LUT4 + CCU2C from `synth_ecp5` "
        "(a CCU2C is a 2-bit carry cell occupying two LUT4 sites); TRELLIS_COMB is nextpnr's "
        "count of used LUT4 sites after packing.",
        "",
    ]
    errors = [(n, e) for n, d in report["designs"].items() for e in d.get("errors", [])]
    errors += [("flow", e) for e in report.get("errors", [])]
    if errors:
        lines += ["## Errors", ""] + [f"- {n}: {e.splitlines()[0]}" for n, e in errors] + [""]
    lines.append(f"Wall time of the run: {report.get('wall_seconds', 0):.0f} s "
                 f"({report.get('jobs', 1)} parallel job(s)). Details: `synth.json`; logs and "
                 f"netlists under `{report.get('workdir', '')}`.")
    return "\n".join(lines) + "\n"


def _write_plot_and_json(report, out_dir, stem, title):
    """Create ``out_dir``, plot ``report["designs"]`` into ``<stem>.png`` (recording it, or its
    absence, in ``report["plot"]``) and write the report to ``<stem>.json``; returns
    ``out_dir`` as a :class:`~pathlib.Path`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(report["designs"], out_dir / f"{stem}.png", title)
    report["plot"] = str(png) if png else "matplotlib missing: no plot"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    return out_dir


def write_reports(report, out_dir):
    out_dir = _write_plot_and_json(
        report, out_dir, "synth",
        "GOBO PEs, MAC baselines and decompressor: area against throughput")
    md = markdown(report)
    (out_dir / "synth.md").write_text(md)
    return md


def _per_lane(d):
    area = _get(d, "asic_area", "area_um2")
    lanes = _get(d, "config", "lanes")
    return area / lanes if area is not None and lanes else None


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def comparison(designs):
    """GOBO PE versus each MAC baseline at equal activation width and equal lanes (equal
    multiply-accumulates per cycle), and the memory-compression decompressor beside both."""
    from .designs import PAIRS
    rows = []
    for flavour, gobo_name in PAIRS.items():
        mac = next((d for n, d in designs.items() if n.startswith(f"mac_pe_{flavour}_")), None)
        gobo = designs.get(gobo_name)
        if mac is None or gobo is None:
            continue
        row = {"flavour": flavour, "gobo": gobo_name, "mac": mac["design"],
               "act_bits": gobo["config"]["act_bits"], "lanes": gobo["config"]["lanes"]}
        for side, d in (("gobo", gobo), ("mac", mac)):
            lanes = d["config"]["lanes"]
            tr = _get(d, "transistors", "count")
            row[side + "_figures"] = {
                "osu_area_per_lane_um2": _per_lane(d),
                "transistors_per_lane": None if tr is None else tr / lanes,
                "osu_fmax_mhz": _get(d, "timing", "fmax_mhz"),
                "ecp5_fmax_mhz": _get(d, "ecp5", "fmax_mhz"),
                "ecp5_lut_sites": _get(d, "ecp5", "TRELLIS_COMB"),
                "ecp5_dsp": _get(d, "ecp5", "MULT18X18D"),
                "memory_bits_bert_base_layer": _get(d, "memory_bits_bert_base_layer", "total"),
            }
        g, m = row["gobo_figures"], row["mac_figures"]
        row["gobo_over_mac"] = {k: _ratio(g[k], m[k]) for k in g}
        rows.append(row)
    decomp = {n: d for n, d in designs.items() if d.get("kind") == "decompressor"}
    extra = []
    for name, d in decomp.items():
        area = _get(d, "asic_area", "area_um2")
        w = d.get("weight_bits")
        mac = next((m for n, m in designs.items() if n.startswith(f"mac_pe_w{w}a")), None)
        gobo = designs.get("gobo_pe_paper")
        extra.append({"decompressor": name, "osu_area_um2": area,
                      "transistors": _get(d, "transistors", "count"),
                      "osu_fmax_mhz": _get(d, "timing", "fmax_mhz"),
                      "ecp5_fmax_mhz": _get(d, "ecp5", "fmax_mhz"),
                      "over_gobo_pe_paper_area": _ratio(area, _get(gobo, "asic_area", "area_um2")),
                      "memory_mode_area_um2": None if area is None or mac is None or
                      _get(mac, "asic_area", "area_um2") is None else
                      area + _get(mac, "asic_area", "area_um2"),
                      "memory_mode_is": f"{name} + {mac['design']}" if mac else None})
    return {"method": "same lanes (= multiply-accumulates per cycle) and same activation width; "
                      "ratios are GOBO / MAC of figures from this run; area per lane = OSU "
                      "area / lanes",
            "pairs": rows, "decompressor": extra}


def _comparison_md(comp):
    lines = ["", "## GOBO PE versus the MAC baselines (same lanes, same activation width)", "",
             comp["method"] + ".", "",
             "| pair | OSU area/lane GOBO (um^2) | MAC | GOBO/MAC | transistors/lane GOBO | MAC | "
             "GOBO/MAC | OSU Fmax GOBO (MHz) | MAC | ECP5 Fmax GOBO (MHz) | MAC | ECP5 LUT sites "
             "GOBO | MAC (+DSP) | layer memory GOBO (Mbit) | MAC | GOBO/MAC |",
             "|" + "---|" * 16]
    for r in comp["pairs"]:
        g, m, q = r["gobo_figures"], r["mac_figures"], r["gobo_over_mac"]

        def mb(v):
            return _fmt(None if v is None else v / 1e6, ".2f")
        lines.append("| " + " | ".join([
            f"{r['gobo']} vs {r['mac']}",
            _fmt(g["osu_area_per_lane_um2"], ",.0f"), _fmt(m["osu_area_per_lane_um2"], ",.0f"),
            _fmt(q["osu_area_per_lane_um2"], ".2f"),
            _fmt(g["transistors_per_lane"], ",.0f"), _fmt(m["transistors_per_lane"], ",.0f"),
            _fmt(q["transistors_per_lane"], ".2f"),
            _fmt(g["osu_fmax_mhz"], ".1f"), _fmt(m["osu_fmax_mhz"], ".1f"),
            _fmt(g["ecp5_fmax_mhz"], ".1f"), _fmt(m["ecp5_fmax_mhz"], ".1f"),
            _fmt(g["ecp5_lut_sites"], ","),
            f"{_fmt(m['ecp5_lut_sites'], ',')} (+{_fmt(m['ecp5_dsp'])})",
            mb(g["memory_bits_bert_base_layer"]), mb(m["memory_bits_bert_base_layer"]),
            _fmt(q["memory_bits_bert_base_layer"], ".2f"),
        ]) + " |")
    for x in comp["decompressor"]:
        lines += ["", f"Memory-compression mode: `{x['decompressor']}` is "
                  f"{_fmt(x['osu_area_um2'], ',.0f')} um^2 OSU ({_fmt(x['transistors'], ',')} "
                  f"transistors, OSU Fmax {_fmt(x['osu_fmax_mhz'], '.1f')} MHz, ECP5 "
                  f"{_fmt(x['ecp5_fmax_mhz'], '.1f')} MHz), "
                  f"{_fmt(x['over_gobo_pe_paper_area'], '.2f')} x the GOBO PE `gobo_pe_paper`; "
                  f"with the MAC it feeds ({x['memory_mode_is']}) "
                  f"{_fmt(x['memory_mode_area_um2'], ',.0f')} um^2."]
    lines += ["", "Memory bits hold one BERT-base 768 x 3072 layer: GOBO = 3-bit indexes + 8 x "
              "32-bit dictionary + 0.3 % outliers as 32-bit value + 22-bit position; W16/W8/W4 = "
              "dense plus one 32-bit scale per row. ECP5 LUT sites of the MACs exclude their "
              "MULT18X18D DSP blocks (in brackets).", ""]
    return lines


def plot(designs, path, title):
    """Area against throughput (MACs per cycle = lanes) for every design; returns the path or
    None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = {"gobo": "o", "mac": "s", "decompressor": "^"}
    for name, d in designs.items():
        area = _get(d, "asic_area", "area_um2")
        if area is None:
            continue
        kind = d.get("kind", "gobo")
        color = "tab:red" if d.get("pareto") else {"gobo": "tab:blue", "mac": "tab:orange",
                                                   "decompressor": "tab:green"}[kind]
        ax.scatter(d["config"]["lanes"], area, marker=markers[kind], color=color, zorder=3)
        ax.annotate(name.replace("gobo_pe_", "").replace("mac_pe_", ""),
                    (d["config"]["lanes"], area), fontsize=6, xytext=(4, 2),
                    textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("throughput: multiply-accumulates per cycle (lanes)")
    ax.set_ylabel("OSU 0.18 um area (um^2, Yosys/ABC estimate)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    kinds = {d.get("kind", "gobo") for d in designs.values()}
    for kind, marker in markers.items():
        if kind in kinds:
            ax.scatter([], [], marker=marker, color="gray", label=kind)
    if any(d.get("pareto") for d in designs.values()):
        ax.scatter([], [], marker="o", color="tab:red", label="Pareto-optimal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _front(points, better):
    """Names of the points no other point dominates; ``better(a, b)`` is a-dominates-b."""
    return sorted(n for n, p in points.items()
                  if not any(better(q, p) for m, q in points.items() if m != n))


def pareto(designs):
    """Pareto fronts of the sweep: (OSU area per lane down, OSU Fmax up) and (OSU area down,
    MACs per second = lanes x Fmax up). Marks ``pareto`` on the designs on either front."""
    pts = {}
    for name, d in designs.items():
        area, fmax = _get(d, "asic_area", "area_um2"), _get(d, "timing", "fmax_mhz")
        if area is not None and fmax is not None:
            lanes = d["config"]["lanes"]
            pts[name] = (area / lanes, fmax, area, lanes * fmax)

    def dom(i, j):
        def better(a, b):
            return (a[i] <= b[i] and a[j] >= b[j]) and (a[i] < b[i] or a[j] > b[j])
        return better
    fronts = {"area_per_lane_vs_fmax": _front(pts, dom(0, 1)),
              "area_vs_macs_per_second": _front(pts, dom(2, 3))}
    for name in set().union(*fronts.values()):
        designs[name]["pareto"] = [f for f, names in fronts.items() if name in names]
    return fronts


def write_sweep_reports(report, out_dir):
    out_dir = _write_plot_and_json(report, out_dir, "sweep",
                                   "GOBO PE design-space sweep (red: Pareto-optimal)")
    lines = ["# GOBO PE design-space sweep", "",
             f"> {report['note']}", "",
             "| point | lanes | index bits | act bits | recon mults | OSU area (um^2) | area/lane "
             "| transistors | OSU Fmax (MHz) | MAC/s (G) | ECP5 LUT4 + CCU2C | ECP5 DSP | ECP5 "
             "Fmax min (MHz) | ECP5 Fmax median (MHz) | Pareto | cached |",
             "|" + "---|" * 16]
    for name, d in report["designs"].items():
        c = d.get("config", {})
        fmax = _get(d, "timing", "fmax_mhz")
        lut, ccu = _get(d, "ecp5_synth", "LUT4"), _get(d, "ecp5_synth", "CCU2C")
        lines.append("| " + " | ".join([
            name, _fmt(c.get("lanes")), _fmt(c.get("index_bits")), _fmt(c.get("act_bits")),
            _fmt(c.get("recon_multipliers")), _fmt(_get(d, "asic_area", "area_um2"), ",.0f"),
            _fmt(_per_lane(d), ",.0f"), _fmt(_get(d, "transistors", "count"), ","),
            _fmt(fmax, ".1f"), _fmt(None if fmax is None else c["lanes"] * fmax / 1e3, ".2f"),
            "n/a" if lut is None else f"{lut:,} + {ccu:,}",
            _fmt(_get(d, "ecp5_synth", "MULT18X18D")),
            _fmt(_get(d, "ecp5_seeds", "fmax_mhz_min"), ".1f"),
            _fmt(_get(d, "ecp5_seeds", "fmax_mhz_median"), ".1f"),
            ", ".join(d.get("pareto", [])) or "", "yes" if d.get("cached") else ""]) + " |")
    first = next(iter(report["designs"].values()), {})
    lines += ["", f"Pareto fronts (OSU figures): {json.dumps(report['pareto'])}", "",
              f"ECP5 Fmax: `{_get(first, 'ecp5_seeds', 'tool')}`; post-route, "
              f"register-to-register paths only. Wall time {report['wall_seconds']:.0f} s "
              f"({report['jobs']} parallel jobs).", ""]
    md = "\n".join(lines)
    (out_dir / "sweep.md").write_text(md)
    return md
