"""Parsers of the open tools' outputs: Yosys ``stat -json``, OpenSTA ``report_checks`` and
nextpnr-ecp5 ``--report`` JSON / logs.

They take text (not files) so that the tests can feed them captured snippets.
"""

import json
import re

__all__ = [
    "CMOS_TRANSISTORS", "ToolOutputError",
    "parse_yosys_stat", "transistor_count", "parse_sta_checks", "parse_nextpnr_report",
    "parse_nextpnr_log_fmax", "yosys_version",
]


class ToolOutputError(ValueError):
    """A tool's output does not have the shape the flow expects."""


#: Transistors per Yosys internal gate, as ``stat -tech cmos`` counts them (``kernel/cost.h``,
#: ``CellCosts::cmos_gate_cost``). Any cell outside this table is an "unknown cell" that ``stat``
#: would leave out of its total, so the flow refuses a netlist that contains one.
CMOS_TRANSISTORS = {
    "$_BUF_": 1, "$_NOT_": 2,
    "$_AND_": 6, "$_NAND_": 4, "$_OR_": 6, "$_NOR_": 4,
    "$_ANDNOT_": 6, "$_ORNOT_": 6, "$_XOR_": 12, "$_XNOR_": 12,
    "$_AOI3_": 6, "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8,
    "$_MUX_": 12, "$_NMUX_": 10,
    "$_DFF_P_": 16, "$_DFF_N_": 16,
}


def yosys_version(text):
    """``"0.70"`` from a Yosys banner or a ``stat -json`` ``creator`` field."""
    m = re.search(r"Yosys (\d+\.\d+(?:\+\d+)?)", text)
    if not m:
        raise ToolOutputError(f"no Yosys version in {text[:120]!r}")
    return m.group(1)


def parse_yosys_stat(text):
    """Summarize the output of ``stat -json`` (optionally with ``-tech cmos`` or ``-liberty``).

    Returns a dict with ``cells`` (total), ``cells_by_type``, and, when present, ``transistors``
    (with ``transistors_complete``, false when Yosys met cells it has no count for),
    ``area`` and ``sequential_area`` (liberty units, um^2 for OSU), plus ``creator``.
    """
    try:
        data = json.loads(text)
        design = data["design"]
        by_type = {str(k): int(v) for k, v in design["num_cells_by_type"].items()}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ToolOutputError(f"not the output of Yosys `stat -json`: {e}") from None
    out = {
        "creator": data.get("creator", ""),
        "cells": int(design["num_cells"]),
        "cells_by_type": dict(sorted(by_type.items())),
    }
    if "estimated_num_transistors" in design:
        # Yosys appends "+" when some cells have no known count (they are left out of the sum).
        count = str(design["estimated_num_transistors"])
        out["transistors"] = int(count.rstrip("+"))
        out["transistors_complete"] = not count.endswith("+")
    if "area" in design:
        out["area"] = float(design["area"])
    if "sequential_area" in design:
        out["sequential_area"] = float(design["sequential_area"])
    return out


def transistor_count(cells_by_type):
    """Transistors of a netlist of Yosys internal gates, refusing any cell ``stat -tech cmos``
    does not know (it would silently count it as zero)."""
    unknown = sorted(set(cells_by_type) - set(CMOS_TRANSISTORS))
    if unknown:
        raise ToolOutputError(
            f"cells without a CMOS transistor count: {', '.join(unknown)}; "
            f"legalize flip-flops to $_DFF_P_/$_DFF_N_ before `stat -tech cmos`")
    return sum(CMOS_TRANSISTORS[t] * n for t, n in cells_by_type.items())


_ARRIVAL = re.compile(r"^\s*(-?[\d.]+)\s+data arrival time\s*$", re.M)
_REQUIRED = re.compile(r"^\s*(-?[\d.]+)\s+data required time\s*$", re.M)
_SLACK = re.compile(r"^\s*(-?[\d.]+)\s+slack \((MET|VIOLATED)\)", re.M)
_START = re.compile(r"^Startpoint:\s*(.+?)\s*$", re.M)
_END = re.compile(r"^Endpoint:\s*(.+?)\s*$", re.M)
_SETUP = re.compile(r"^\s*(-?[\d.]+)\s+-?[\d.]+\s+library setup time\s*$", re.M)


def parse_sta_checks(text, period):
    """Worst setup path of an OpenSTA ``report_checks -path_delay max`` report.

    ``period`` is the clock period the report was made with (ns). The minimum period is
    ``period - slack``: it holds for register-to-register paths (arrival + setup) and for paths
    from or to a port with zero external delay, which is how the flow constrains the ports.
    """
    if "No paths found" in text:
        raise ToolOutputError("OpenSTA found no constrained path (is the clock on port clk?)")
    found = {k: rx.search(text) for k, rx in
             [("arrival", _ARRIVAL), ("slack", _SLACK), ("start", _START), ("end", _END)]}
    missing = [k for k, m in found.items() if m is None]
    if missing:
        raise ToolOutputError(f"no {', '.join(missing)} in the OpenSTA report:\n{text[-800:]}")
    slack = float(found["slack"].group(1))
    setup = _SETUP.search(text)
    min_period = period - slack
    return {
        "startpoint": found["start"].group(1),
        "endpoint": found["end"].group(1),
        "arrival_ns": float(found["arrival"].group(1)),
        "setup_ns": float(setup.group(1)) if setup else None,
        "slack_ns": slack,
        "clock_period_ns": period,
        "min_period_ns": round(min_period, 4),
        "fmax_mhz": round(1000.0 / min_period, 2) if min_period > 0 else None,
    }


def parse_nextpnr_report(text):
    """Utilization and Fmax from the JSON that ``nextpnr-ecp5 --report`` writes.

    Returns ``utilization`` ``{bel: {"used", "available"}}`` for the bels in use (plus the
    logic, FF and DSP bels even when unused) and ``fmax_mhz`` (the slowest clock's achieved
    frequency, None when nextpnr found no register-to-register path).
    """
    try:
        data = json.loads(text)
        util = data["utilization"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ToolOutputError(f"not a nextpnr --report JSON: {e}") from None
    keep = {"TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "ALU54B", "DP16KD", "TRELLIS_RAMW"}
    utilization = {bel: {"used": int(u["used"]), "available": int(u["available"])}
                   for bel, u in sorted(util.items()) if u["used"] or bel in keep}
    clocks = {name: {"achieved_mhz": round(float(f["achieved"]), 2),
                     "constraint_mhz": round(float(f["constraint"]), 2)}
              for name, f in data.get("fmax", {}).items()}
    fmax = min((c["achieved_mhz"] for c in clocks.values()), default=None)
    return {"utilization": utilization, "clocks": clocks, "fmax_mhz": fmax}


_LOG_FMAX = re.compile(
    r"Max frequency for clock\s+'([^']+)':\s*([\d.]+)\s*MHz\s*\((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_nextpnr_log_fmax(text):
    """``{clock: MHz}`` of the *last* (post-route) "Max frequency for clock" lines of a log."""
    result = {}
    for m in _LOG_FMAX.finditer(text):
        result[m.group(1)] = float(m.group(2))    # later (post-route) lines overwrite earlier
    return result
