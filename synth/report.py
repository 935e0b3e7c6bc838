"""``synth.json`` (data first) and ``synth.md`` (a readable table) from the flow's results."""

import json
from pathlib import Path

__all__ = ["NOTE", "write_reports", "markdown"]

NOTE = ("Open-tool estimates, not sign-off: Yosys/ABC mapping to the academic OSU 0.18 um library "
        "(typical corner) with no placement, wire load or clock tree; OpenSTA on that netlist with "
        "ideal clock and no wire parasitics; nextpnr-ecp5 out of context with one seed.")


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
        "# Synthesis of the GOBO PE presets",
        "",
        f"> {report['note']}",
        "",
        "| design | lanes | index bits | OSU area (um^2) | sequential share | OSU cells | "
        "transistors (CMOS) | OSU min period (ns) | OSU Fmax (MHz) | ECP5 device | LUT4 + CCU2C | "
        "TRELLIS_COMB | TRELLIS_FF | MULT18X18D | ECP5 Fmax (MHz) |",
        "|" + "---|" * 15,
    ]
    for name, d in report["designs"].items():
        cfg = d.get("config", {})
        share = _get(d, "asic_area", "sequential_share")
        lut = _get(d, "ecp5_synth", "LUT4")
        ccu = _get(d, "ecp5_synth", "CCU2C")
        lines.append("| " + " | ".join([
            name, _fmt(cfg.get("lanes")), _fmt(cfg.get("index_bits")),
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
        ]) + " |")
    lines += ["", "How each figure was obtained (tool labels from the first design):", ""]
    first = next(iter(report["designs"].values()), {})
    for key, title in [("asic_area", "OSU area"), ("transistors", "Transistors"),
                       ("timing", "OSU timing"), ("ecp5_synth", "ECP5 LUT4/CCU2C"),
                       ("ecp5", "ECP5 place and route")]:
        tool = _get(first, key, "tool")
        if tool:
            lines.append(f"- {title}: `{tool}`")
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


def write_reports(report, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "synth.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (out_dir / "synth.md").write_text(md)
    return md
