"""``synth.json`` (data first), ``synth.md`` (readable tables) and ``synth.png`` (area against
throughput) from the flow's results; the GOBO-versus-baseline comparisons (PEs and tiles) and
the sweep's Pareto fronts are computed here from figures of one run."""

import json
from pathlib import Path

from golden.hwmodel.sram import GF180_SRAM_SOURCE, bitcell_floor_um2, sram

__all__ = ["NOTE", "write_reports", "markdown", "comparison", "tile_comparison", "pareto",
           "memory_area", "tile_memory_comparison", "refresh",
           "write_sweep_reports", "plot", "PLOT_STYLE"]

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
        "# Synthesis of the GOBO PEs, the MAC baselines and their tiles",
        "",
        f"> {report['note']}",
        "",
        "| design | lanes | index bits | OSU area (um^2) | sequential share | OSU cells | "
        "transistors (CMOS) | OSU min period (ns) | OSU Fmax (MHz) | ECP5 device | LUT4 + CCU2C | "
        "TRELLIS_COMB | TRELLIS_FF | MULT18X18D | ECP5 Fmax (MHz) | act bits | weight bits | "
        "ops/cycle | OSU area per op/cycle (um^2) |",
        "|" + "---|" * 19,
    ]
    for name, d in report["designs"].items():
        cfg = d.get("config", {})
        share = _get(d, "asic_area", "sequential_share")
        lut = _get(d, "ecp5_synth", "LUT4")
        ccu = _get(d, "ecp5_synth", "CCU2C")
        na = "skipped" if d.get("ecp5_skipped") else "n/a"
        lines.append("| " + " | ".join([
            name, _fmt(cfg.get("lanes")),
            "-" if d.get("kind") in ("mac_pe", "mac_tile", "mac_stream_tile")
            else _fmt(cfg.get("index_bits")),
            _fmt(_get(d, "asic_area", "area_um2"), ",.0f"),
            "n/a" if share is None else f"{100 * share:.1f}%",
            _fmt(_get(d, "asic_area", "cells"), ","),
            _fmt(_get(d, "transistors", "count"), ","),
            _fmt(_get(d, "timing", "min_period_ns"), ".2f"),
            _fmt(_get(d, "timing", "fmax_mhz"), ".1f"),
            _fmt(_get(d, "ecp5", "device"), none=na).split(" ")[0],
            na if lut is None else f"{lut:,} + {ccu:,}",
            _fmt(_get(d, "ecp5", "TRELLIS_COMB"), ",", na),
            _fmt(_get(d, "ecp5", "TRELLIS_FF"), ",", na),
            _fmt(_get(d, "ecp5", "MULT18X18D"), none=na),
            _fmt(_get(d, "ecp5", "fmax_mhz"), ".1f", na),
            _fmt(cfg.get("act_bits")), _fmt(d.get("weight_bits"), none="-"),
            _fmt(_ops(d)), _fmt(_area_per_op(d), ",.0f"),
        ]) + " |")
    if report.get("comparison"):
        lines += _comparison_md(report["comparison"])
        lines += _tile_md(report["comparison"], report["designs"])
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
        "GOBO PEs, MAC baselines, decompressor and tiles (memories excluded): area against "
        "throughput")
    md = markdown(report)
    (out_dir / "synth.md").write_text(md)
    return md


def _ops(d):
    """MAC-equivalent operations per cycle: lanes for a PE, ``pes * lanes`` for a tile (results
    from before tiles have no ``ops_per_cycle``: their lanes)."""
    return d.get("ops_per_cycle") or _get(d, "config", "lanes")


def _per_op(value, d):
    """``value`` per MAC-equivalent operation per cycle of design ``d`` (per lane for a PE)."""
    ops = _ops(d)
    return value / ops if value is not None and ops else None


def _area_per_op(d):
    return _per_op(_get(d, "asic_area", "area_um2"), d)


def _ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def _figures(d, unit):
    """One side of a pair: OSU area and transistors per MAC-equivalent op per cycle (``unit``
    names it in the keys: ``lane`` for PEs, ``op`` for tiles), Fmax, ECP5 use, memory bits."""
    figures = {
        f"osu_area_per_{unit}_um2": _area_per_op(d),
        f"transistors_per_{unit}": _per_op(_get(d, "transistors", "count"), d),
        "osu_fmax_mhz": _get(d, "timing", "fmax_mhz"),
        "ecp5_fmax_mhz": _get(d, "ecp5", "fmax_mhz"),
        "ecp5_lut_sites": _get(d, "ecp5", "TRELLIS_COMB"),
        "ecp5_dsp": _get(d, "ecp5", "MULT18X18D"),
        "memory_bits_bert_base_layer": _get(d, "memory_bits_bert_base_layer", "total"),
    }
    if unit == "op":
        figures = {"osu_area_um2": _get(d, "asic_area", "area_um2"), **figures,
                   "memory_bits_on_chip": _get(d, "memory_bits_on_chip", "total_bits")}
    return figures


def _pair(row, gobo, mac, unit):
    """``row`` with both sides' :func:`_figures` and their GOBO / MAC ratios."""
    g, m = _figures(gobo, unit), _figures(mac, unit)
    return {**row, "gobo_figures": g, "mac_figures": m,
            "gobo_over_mac": {k: _ratio(g[k], m[k]) for k in g}}


def _tile_shape(d):
    c = d.get("config", {})
    return c.get("act_bits"), c.get("pes"), c.get("lanes")


def _find(designs, kind, like, weight_bits=None):
    """Name and result of the first design of ``kind`` with the tile shape (activation width,
    PEs, lanes) of ``like`` (and ``weight_bits``, if given), or ``(None, None)``."""
    return next(((n, d) for n, d in designs.items() if d.get("kind") == kind
                 and _tile_shape(d) == _tile_shape(like)
                 and weight_bits in (None, d.get("weight_bits"))), (None, None))


def tile_comparison(designs):
    """GOBO tile versus each MAC tile of the same activation width and shape (PEs x lanes, so
    equal MAC-equivalent ops per cycle), and each memory-compression tile beside the GOBO tile
    and the dense MAC tile of its flavour. Tile areas exclude the memories (ports)."""
    pairs, compressed = [], []
    for name, mac in designs.items():
        if mac.get("kind") != "mac_tile":
            continue
        gobo_name, gobo = _find(designs, "gobo_tile", mac)
        if gobo is None:
            continue
        act_bits, pes, lanes = _tile_shape(mac)
        pairs.append(_pair({"flavour": f"w{mac['weight_bits']}a{act_bits}", "gobo": gobo_name,
                            "mac": name, "act_bits": act_bits, "pes": pes, "lanes": lanes,
                            "ops_per_cycle": _ops(mac)}, gobo, mac, "op"))
    for name, d in designs.items():
        if d.get("kind") != "compressed_tile":
            continue
        gobo_name, gobo = _find(designs, "gobo_tile", d)
        mac_name, mac = _find(designs, "mac_tile", d, d.get("weight_bits"))
        area = _get(d, "asic_area", "area_um2")
        compressed.append({
            "compressed": name, "gobo": gobo_name, "mac": mac_name, **_figures(d, "op"),
            "transistors": _get(d, "transistors", "count"),
            "over_gobo_tile_area": _ratio(area, _get(gobo, "asic_area", "area_um2")),
            "over_mac_tile_area": _ratio(area, _get(mac, "asic_area", "area_um2")),
        })
    skipped = sorted({d["ecp5_skipped"] for d in designs.values() if d.get("ecp5_skipped")})
    return {"method": "same PEs x lanes (= MAC-equivalent ops per cycle) and same activation "
                      "width; area per op/cycle = OSU area / (PEs x lanes); ratios are GOBO / "
                      "MAC of figures from this run",
            "memories": "not in the tile areas: each tile is synthesized with its memory ports "
                        "as top-level ports; their bits are each tile's memory_bits_on_chip",
            "ecp5_skipped": skipped[0] if skipped else None,
            "pairs": pairs, "compressed": compressed,
            "with_memories": tile_memory_comparison(designs, pairs)}


def memory_area(on_chip):
    """SRAM area of a tile's on-chip memories (``memory_bits_on_chip``), each memory tiled from
    the GF180MCU macros (:func:`golden.hwmodel.sram.sram`): ``{memories: {name: estimate
    dict}, area_um2, bitcell_floor_um2}``; None for a design without memories."""
    if not on_chip:
        return None
    mems = {name: sram(x["width"], x["depth"]).to_dict() for name, x in on_chip["memories"].items()}
    return {"memories": mems, "area_um2": sum(m["area_um2"] for m in mems.values()),
            "bitcell_floor_um2": bitcell_floor_um2(on_chip["total_bits"])}


def tile_memory_comparison(designs, pairs):
    """Each tile pair's area with its memories: the logic area (OSU), the memories' SRAM area
    (:func:`memory_area`; and the bitcell floor), their sum and the GOBO / MAC ratios of each.
    The memories are those of the whole-layer tiles the synthesis builds (docs/synthesis.md,
    Tiles)."""
    rows = []
    for r in pairs:
        sides = {}
        for side in ("gobo", "mac"):
            d = designs[r[side]]
            logic = _get(d, "asic_area", "area_um2")
            mem = memory_area(d.get("memory_bits_on_chip"))
            sides[side] = {
                "logic_um2": logic,
                "sram_um2": None if mem is None else mem["area_um2"],
                "bitcell_floor_um2": None if mem is None else mem["bitcell_floor_um2"],
                "total_um2": None if logic is None or mem is None else logic + mem["area_um2"],
                "total_floor_um2": None if logic is None or mem is None
                else logic + mem["bitcell_floor_um2"],
                "memories": None if mem is None else mem["memories"]}
        g, m = sides["gobo"], sides["mac"]
        rows.append({"flavour": r["flavour"], "gobo": r["gobo"], "mac": r["mac"],
                     "ops_per_cycle": r["ops_per_cycle"], "gobo_figures": g, "mac_figures": m,
                     "gobo_over_mac": {k: _ratio(g[k], m[k]) for k in
                                       ("logic_um2", "sram_um2", "bitcell_floor_um2",
                                        "total_um2", "total_floor_um2")}})
    return {"source": GF180_SRAM_SOURCE,
            "method": "each memory (width x depth) a grid of GF180MCU 8-bit macros: ceil(width/8) "
                      "side by side, the smallest macro holding the depth or rows of 512-word "
                      "macros (golden.hwmodel.sram); floor = bits x 13.5 um^2 bitcell",
            "pairs": rows}


def comparison(designs):
    """GOBO PE versus each MAC baseline at equal activation width and equal lanes (equal
    multiply-accumulates per cycle), the memory-compression decompressor beside both, and the
    same for tiles (:func:`tile_comparison`)."""
    from .designs import PAIRS
    rows = []
    for flavour, gobo_name in PAIRS.items():
        mac = next((d for n, d in designs.items() if n.startswith(f"mac_pe_{flavour}_")), None)
        gobo = designs.get(gobo_name)
        if mac is None or gobo is None:
            continue
        rows.append(_pair({"flavour": flavour, "gobo": gobo_name, "mac": mac["design"],
                           "act_bits": gobo["config"]["act_bits"],
                           "lanes": gobo["config"]["lanes"]}, gobo, mac, "lane"))
    decomp = {n: d for n, d in designs.items() if d.get("kind") == "decompressor"}
    extra = []
    for name, d in decomp.items():
        area = _get(d, "asic_area", "area_um2")
        w = d.get("weight_bits")
        mac = next((m for n, m in designs.items() if n.startswith(f"mac_pe_w{w}a")), None)
        gobo = designs.get("gobo_pe_bert_large")
        extra.append({"decompressor": name, "osu_area_um2": area,
                      "transistors": _get(d, "transistors", "count"),
                      "osu_fmax_mhz": _get(d, "timing", "fmax_mhz"),
                      "ecp5_fmax_mhz": _get(d, "ecp5", "fmax_mhz"),
                      "over_gobo_pe_bert_large_area": _ratio(area, _get(gobo, "asic_area",
                                                                         "area_um2")),
                      "memory_mode_area_um2": None if area is None or mac is None or
                      _get(mac, "asic_area", "area_um2") is None else
                      area + _get(mac, "asic_area", "area_um2"),
                      "memory_mode_is": f"{name} + {mac['design']}" if mac else None})
    return {"method": "same lanes (= multiply-accumulates per cycle) and same activation width; "
                      "ratios are GOBO / MAC of figures from this run; area per lane = OSU "
                      "area / lanes",
            "pairs": rows, "decompressor": extra, "tiles": tile_comparison(designs)}


def _comparison_md(comp):
    lines = ["", "## GOBO PE versus the MAC baselines (same lanes, same activation width)", "",
             comp["method"] + ".", "",
             "| pair | OSU area/lane GOBO (um^2) | MAC | GOBO/MAC | transistors/lane GOBO | MAC | "
             "GOBO/MAC | OSU Fmax GOBO (MHz) | MAC | ECP5 Fmax GOBO (MHz) | MAC | ECP5 LUT sites "
             "GOBO | MAC (+DSP) | layer memory GOBO (Mbit) | MAC | GOBO/MAC |",
             "|" + "---|" * 16]
    for r in comp["pairs"]:
        g, m, q = r["gobo_figures"], r["mac_figures"], r["gobo_over_mac"]
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
            _mbit(g["memory_bits_bert_base_layer"]), _mbit(m["memory_bits_bert_base_layer"]),
            _fmt(q["memory_bits_bert_base_layer"], ".2f"),
        ]) + " |")
    for x in comp["decompressor"]:
        lines += ["", f"Memory-compression mode: `{x['decompressor']}` is "
                  f"{_fmt(x['osu_area_um2'], ',.0f')} um^2 OSU ({_fmt(x['transistors'], ',')} "
                  f"transistors, OSU Fmax {_fmt(x['osu_fmax_mhz'], '.1f')} MHz, ECP5 "
                  f"{_fmt(x['ecp5_fmax_mhz'], '.1f')} MHz), "
                  f"{_fmt(x['over_gobo_pe_bert_large_area'], '.2f')} x the GOBO PE "
                  f"`gobo_pe_bert_large`; "
                  f"with the MAC it feeds ({x['memory_mode_is']}) "
                  f"{_fmt(x['memory_mode_area_um2'], ',.0f')} um^2."]
    lines += ["", "Memory bits hold one BERT-base 768 x 3072 layer: GOBO = 3-bit indexes + 8 x "
              "32-bit dictionary + 0.3 % outliers as 32-bit value + 22-bit position; W16/W8/W4 = "
              "dense plus one 32-bit scale per row. ECP5 LUT sites of the MACs exclude their "
              "MULT18X18D DSP blocks (in brackets).", ""]
    return lines


def _mbit(bits):
    return _fmt(None if bits is None else bits / 1e6, ".2f")


def _tile_md(comp, designs):
    """The tile section of ``synth.md``: GOBO tile versus MAC tile, the memory-compression tile,
    and the memories the tile areas leave out."""
    tiles = comp.get("tiles") or {}
    if not tiles.get("pairs") and not tiles.get("compressed"):
        return []
    lines = ["", "## GOBO tile versus the MAC tiles (same PEs x lanes, same activation width)", "",
             tiles["method"] + ".", "",
             "**Tile areas exclude the memories**: each tile is synthesized with every memory "
             "port as a top-level port (`memories=\"ports\"`); the memories are listed below in "
             "bits (the OSU 0.18 um library has no SRAM). In the area: the tile controller "
             "(broadcast, merge, requantization, counters), the PEs, the GOBO tile's outlier "
             "side path, and the compressed tile's decompressor and row walker.", ""]
    if tiles.get("ecp5_skipped"):
        lines += [f"ECP5 skipped for tiles: {tiles['ecp5_skipped']}.", ""]
    lines += ["| pair | ops/cycle | OSU area GOBO (um^2) | MAC | OSU area/op GOBO (um^2) | MAC | "
              "GOBO/MAC | transistors/op GOBO | MAC | GOBO/MAC | OSU Fmax GOBO (MHz) | MAC | "
              "ECP5 Fmax GOBO (MHz) | MAC | on-chip memory GOBO (Mbit) | MAC | GOBO/MAC |",
              "|" + "---|" * 17]
    for r in tiles["pairs"]:
        g, m, q = r["gobo_figures"], r["mac_figures"], r["gobo_over_mac"]
        lines.append("| " + " | ".join([
            f"{r['gobo']} vs {r['mac']}", _fmt(r["ops_per_cycle"]),
            _fmt(g["osu_area_um2"], ",.0f"), _fmt(m["osu_area_um2"], ",.0f"),
            _fmt(g["osu_area_per_op_um2"], ",.0f"), _fmt(m["osu_area_per_op_um2"], ",.0f"),
            _fmt(q["osu_area_per_op_um2"], ".2f"),
            _fmt(g["transistors_per_op"], ",.0f"), _fmt(m["transistors_per_op"], ",.0f"),
            _fmt(q["transistors_per_op"], ".2f"),
            _fmt(g["osu_fmax_mhz"], ".1f"), _fmt(m["osu_fmax_mhz"], ".1f"),
            _fmt(g["ecp5_fmax_mhz"], ".1f"), _fmt(m["ecp5_fmax_mhz"], ".1f"),
            _mbit(g["memory_bits_on_chip"]), _mbit(m["memory_bits_on_chip"]),
            _fmt(q["memory_bits_on_chip"], ".2f"),
        ]) + " |")
    for x in tiles["compressed"]:
        lines += ["", f"Memory-compression tile `{x['compressed']}`: "
                  f"{_fmt(x['osu_area_um2'], ',.0f')} um^2 OSU "
                  f"({_fmt(x['osu_area_per_op_um2'], ',.0f')} per op/cycle, "
                  f"{_fmt(x['transistors'], ',')} transistors, OSU Fmax "
                  f"{_fmt(x['osu_fmax_mhz'], '.1f')} MHz, ECP5 {_fmt(x['ecp5_fmax_mhz'], '.1f')} "
                  f"MHz): {_fmt(x['over_gobo_tile_area'], '.2f')} x the GOBO tile `{x['gobo']}` "
                  f"and {_fmt(x['over_mac_tile_area'], '.2f')} x the dense MAC tile "
                  f"`{x['mac']}`. Its on-chip memories are the dense tile's "
                  f"({_mbit(x['memory_bits_on_chip'])} Mbit); only off-chip does it hold the "
                  f"GOBO form ({_mbit(x['memory_bits_bert_base_layer'])} Mbit per BERT-base "
                  f"layer)."]
    lines += ["", "On-chip memories of each tile (not in its area; numbered banks of one shape on "
              "one row):", "", "| tile | memory | (banks x) width x depth | bits | holds |",
              "|---|---|---|---|---|"]
    for name, d in designs.items():
        on_chip = d.get("memory_bits_on_chip")
        if not on_chip:
            continue
        banks = {}
        for mem, x in on_chip["memories"].items():
            banks.setdefault((mem.rstrip("0123456789"), x["width"], x["depth"]), []).append(mem)
        for (_, width, depth), mems in banks.items():
            x = on_chip["memories"][mems[0]]
            label, shape = mems[0], f"{width} x {depth:,}"
            if len(mems) > 1:
                label, shape = f"{mems[0]}..{mems[-1]}", f"{len(mems)} x {shape}"
            lines.append(f"| {name} | {label} | {shape} | {len(mems) * x['bits']:,} | "
                         f"{x.get('holds', '')} |")
        lines.append(f"| {name} | **total** | | **{on_chip['total_bits']:,}** | |")
    return lines + _memory_area_md(tiles.get("with_memories"))


def _mm2(um2):
    return _fmt(None if um2 is None else um2 / 1e6, ",.2f")


def _memory_area_md(comp):
    """The tiles' area with their memories as SRAM (:func:`tile_memory_comparison`)."""
    if not comp or not comp["pairs"]:
        return []
    lines = ["", "## Tile area with the memories (SRAM from published 0.18 um macros)", "",
             f"Method: {comp['method']}. Source: {comp['source']}. The SRAM area is a model "
             "from published figures, not synthesized; the floor counts bitcells alone.", "",
             "| pair | logic GOBO (mm^2) | MAC | SRAM GOBO (mm^2) | MAC | total GOBO (mm^2) | MAC "
             "| total GOBO/MAC | floor total GOBO (mm^2) | MAC | floor GOBO/MAC |",
             "|" + "---|" * 11]
    for r in comp["pairs"]:
        g, m, q = r["gobo_figures"], r["mac_figures"], r["gobo_over_mac"]
        lines.append("| " + " | ".join([
            f"{r['gobo']} vs {r['mac']}", _mm2(g["logic_um2"]), _mm2(m["logic_um2"]),
            _mm2(g["sram_um2"]), _mm2(m["sram_um2"]), _mm2(g["total_um2"]),
            _mm2(m["total_um2"]), _fmt(q["total_um2"], ".2f"), _mm2(g["total_floor_um2"]),
            _mm2(m["total_floor_um2"]), _fmt(q["total_floor_um2"], ".2f")]) + " |")
    return lines


def _annotate(ax, labels, gap=7):
    """Write ``(x, y, text, left)`` labels beside their points, top down; a label closer than
    ``gap`` points to the one above it on the same side of the same x moves down."""
    to_points = 72 / ax.figure.dpi
    ax.autoscale_view()
    above = {}
    for x, y, text, left in sorted(labels, key=lambda label: -label[1]):
        natural = ax.transData.transform((x, y))[1] * to_points
        at = min(natural + 2, above.get((x, left), float("inf")) - gap)
        above[(x, left)] = at
        ax.annotate(text, (x, y), fontsize=6, xytext=(-4 if left else 4, at - natural),
                    textcoords="offset points", ha="right" if left else "left")


#: ``kind: (marker, colour)`` in :func:`plot`.
PLOT_STYLE = {"gobo_pe": ("o", "tab:blue"), "mac_pe": ("s", "tab:orange"),
              "decompressor": ("^", "tab:green"), "gobo_tile": ("D", "tab:purple"),
              "mac_tile": ("P", "tab:brown"), "compressed_tile": ("X", "tab:olive"),
              "gobo_stream_tile": ("d", "tab:pink"), "mac_stream_tile": ("p", "tab:gray"),
              "compressed_stream_tile": ("*", "tab:cyan"),
              "gobo_pe_collision": ("v", "tab:red"), "gobo_pe_spill": ("<", "black")}


def plot(designs, path, title):
    """Area against throughput (MAC-equivalent ops per cycle: lanes for a PE, PEs x lanes for a
    tile; marker and colour by kind) for every design; returns the path or None when matplotlib
    is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    labels = []
    for name, d in designs.items():
        area = _get(d, "asic_area", "area_um2")
        if area is None:
            continue
        marker, color = PLOT_STYLE[d.get("kind", "gobo_pe")]
        ax.scatter(_ops(d), area, marker=marker, color="tab:red" if d.get("pareto") else color,
                   zorder=3)
        # Tiles share the lanes-16 PEs' x: their labels go to the left.
        labels.append((_ops(d), area, name.replace("gobo_pe_", "").replace("mac_pe_", ""),
                       d.get("kind", "").endswith("tile")))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    fig.tight_layout()
    _annotate(ax, labels)
    ax.set_xlabel("throughput: MAC-equivalent ops per cycle (PE: lanes; tile: PEs x lanes)")
    ax.set_ylabel("OSU 0.18 um area (um^2, Yosys/ABC estimate)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    kinds = {d.get("kind", "gobo_pe") for d in designs.values()}
    for kind, (marker, color) in PLOT_STYLE.items():
        if kind in kinds:
            ax.scatter([], [], marker=marker, color=color,
                       label=kind + (" (no memories)" if kind.endswith("tile") else ""))
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
            _fmt(_area_per_op(d), ",.0f"), _fmt(_get(d, "transistors", "count"), ","),
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


def refresh(json_path):
    """Recompute the comparison (e.g. the tile areas with memories) of an existing
    ``synth.json`` from its figures, without synthesizing again, and rewrite ``synth.json``,
    ``synth.md`` and ``synth.png`` beside it; returns the Markdown.

    Raises
    ------
    FileNotFoundError, ValueError
        If ``json_path`` is missing or not a synthesis report (no ``designs``).
    """
    path = Path(json_path)
    report = json.loads(path.read_text())
    if not isinstance(report, dict) or "designs" not in report:
        raise ValueError(f"{path} is not a synth.json (no 'designs')")
    report["comparison"] = comparison(report["designs"])
    return write_reports(report, path.parent)


if __name__ == "__main__":
    import argparse
    import sys
    parser = argparse.ArgumentParser(
        description="Rewrite synth.json/.md/.png from an existing synth.json's figures "
                    "(no synthesis). Example: python -m synth.report build/reports/synth.json")
    parser.add_argument("json_path")
    try:
        print(refresh(parser.parse_args().json_path))
    except (OSError, ValueError) as e:
        sys.exit(f"synth.report: {e}")
