"""Switching-activity power of a mapped OSU netlist with OpenSTA: dynamic (internal + switching)
and leakage power from the liberty's tables, with the activity of every pin a waveform gave
(docs/synthesis.md, "Power").

Debian's OpenSTA 2.0.17 has ``report_power`` and ``set_power_activity`` but no ``read_vcd`` or
``read_saif``, and its ``set_power_activity -pins`` is broken (it calls a missing
``get_pins_error``). So the activity goes in through the command underneath,
``sta::set_power_pin_activity PIN ACTIVITY DUTY`` (activity in transitions per clock period,
duty the fraction of time at 1), on every pin the waveform covers, after one ``design_power``
has propagated OpenSTA's default activity to the rest: a pin the waveform does not cover keeps
that default, and :func:`run_power` counts how many nets did. The clock network (``clk`` and the
buffers ABC put on it) keeps the clock's own activity (two transitions per period).
"""

import re
from collections import Counter, defaultdict
from pathlib import Path

from .parse import ToolOutputError
from .tools import ToolError, find_tool, run_tool

__all__ = ["POWER_SCRIPT", "parse_netlist", "cell_outputs", "design_parts", "run_power",
           "parse_power_output", "write_activity_tcl"]

#: OpenSTA script: the default activity is propagated once (``design_power``), then the waveform's
#: pin activities overwrite it, then the totals and every instance's power are written.
POWER_SCRIPT = """\
read_liberty {liberty}
read_verilog {netlist}
link_design {top}
create_clock -name clk -period {period} [get_ports clk]
set corner [sta::cmd_corner]
puts "GOBO_DEFAULT [sta::design_power $corner]"
source {activity}
puts "GOBO_POWER [sta::design_power $corner]"
set f [open instance_power.txt w]
foreach cell [get_cells *] {{
    puts $f "[get_full_name $cell] [sta::instance_power $cell $corner]"
}}
close $f
exit
"""

#: ``design_power``'s 20 numbers (W): total, sequential, combinational, macro, pad, each as
#: internal, switching, leakage, total.
POWER_GROUPS = ("total", "sequential", "combinational", "macro", "pad")
POWER_KINDS = ("internal", "switching", "leakage", "total")

_INSTANCE = re.compile(r"^\s*([A-Za-z]\w*)\s+(\\\S+|\w+)\s*\((.*?)\);", re.S | re.M)
_PIN = re.compile(r"\.(\w+)\(\s*(\\\S+\s*(?:\[\d+\])?|[^()]*?)\s*\)")
_PORTS = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):(\d+)\]\s*)?(\\\S+|\w+)\s*;", re.M)


def _net(text):
    """Canonical net name: no escaping backslash, no spaces (``\\a.b[3] `` and ``p [3]`` ->
    ``a.b[3]``, ``p[3]``)."""
    return text.replace("\\", "").replace(" ", "")


def parse_netlist(text):
    """Cells and ports of a flat Yosys netlist (``write_verilog -noattr -noexpr``).

    Returns
    -------
    dict
        ``cells``: ``{instance: (cell type, {pin: net})}``; ``inputs`` and ``outputs``: the
        top-level port bits (``name`` or ``name[i]``).

    Raises
    ------
    ToolOutputError
        If the text holds no cell instance.
    """
    cells = {}
    for kind, name, body in _INSTANCE.findall(text):
        if kind in ("module", "input", "output", "wire", "assign", "reg"):
            continue
        cells[_net(name)] = (kind, {pin: _net(net) for pin, net in _PIN.findall(body)})
    if not cells:
        raise ToolOutputError("no cell instances in the netlist")
    ports = {"input": [], "output": []}
    for direction, msb, lsb, name in _PORTS.findall(text):
        name = _net(name)
        if msb:
            lo, hi = sorted((int(msb), int(lsb)))
            ports[direction] += [f"{name}[{i}]" for i in range(lo, hi + 1)]
        else:
            ports[direction].append(name)
    return {"cells": cells, "inputs": ports["input"], "outputs": ports["output"]}


def cell_outputs(cells_verilog):
    """``{cell type: set of output pins}`` from the Verilog cell models."""
    outputs = defaultdict(set)
    for module, body in re.findall(r"^module\s+(\w+)\b(.*?)^endmodule", cells_verilog,
                                   re.S | re.M):
        outputs[module].update(re.findall(r"^\s*output\s+(\w+)\s*;", body, re.M))
    return dict(outputs)


def _part(net):
    """The design part a named net belongs to: a top-level name (the merge's and the output's
    registers, ports) is ``top``; in a PE (``pe0``, ``pe1``, ...) the PE's submodule
    (``pe.accumulators``: bins and adder trees; ``pe.reconstruction``); elsewhere the first
    component (``controller``, ``side_path``, ``decompressor``, ...), digits stripped."""
    comps = net.split("[")[0].split(".")
    if len(comps) == 1:
        return "top"
    head = comps[0].rstrip("0123456789_")
    if head == "pe" and len(comps) > 2:
        return f"pe.{comps[1]}"
    return head


def design_parts(netlist, outputs):
    """``{instance: part}``: a flip-flop belongs to the part its output net is named after
    (the register's hierarchical name, e.g. ``pe_0``, ``controller``); a gate to the part that
    most of the flip-flops and output ports its output reaches through gates belong to (its
    logic cone's destination; an output port counts as ``top``)."""
    cells = netlist["cells"]
    loads = defaultdict(list)
    driver_out = {}
    for inst, (kind, pins) in cells.items():
        for pin, net in pins.items():
            if pin in outputs.get(kind, ()):
                driver_out.setdefault(inst, []).append(net)
            else:
                loads[net].append(inst)
    sequential = {inst for inst, (kind, _) in cells.items() if kind.startswith(("DFF", "LATCH"))}
    parts = {inst: _part(driver_out[inst][0]) for inst in sequential}
    output_ports = set(netlist["outputs"])

    def resolve(start):
        """Iterative post-order walk over the fanout (the netlist has no combinational loop)."""
        stack = [start]
        while stack:
            inst = stack[-1]
            if inst in parts:
                stack.pop()
                continue
            pending = [load for net in driver_out.get(inst, ()) for load in loads[net]
                       if load not in parts]
            if pending:
                stack.extend(pending)
                continue
            votes = Counter()
            for net in driver_out.get(inst, ()):
                if net in output_ports:
                    votes["top"] += 1
                for load in loads[net]:
                    votes[parts[load]] += 1
            parts[inst] = votes.most_common(1)[0][0] if votes else "unloaded"
            stack.pop()

    for inst in cells:
        resolve(inst)
    return parts


def write_activity_tcl(path, activity):
    """Write ``sta::set_power_pin_activity`` lines for ``{"inst/PIN": (activity, duty)}``."""
    lines = [f"sta::set_power_pin_activity [get_pins {{{pin}}}] {a:.6g} {d:.6g}"
             for pin, (a, d) in sorted(activity.items())]
    Path(path).write_text("\n".join(lines) + "\n")


def parse_power_output(text):
    """``{"default": {...}, "annotated": {...}}`` of the two ``design_power`` lines, each
    ``{group: {internal, switching, leakage, total}}`` in W.

    Raises
    ------
    ToolOutputError
        If a line is missing or has not 20 numbers.
    """
    found = {}
    for tag, key in (("GOBO_DEFAULT", "default"), ("GOBO_POWER", "annotated")):
        m = re.search(rf"^{tag} (.*)$", text, re.M)
        values = m.group(1).split() if m else []
        if len(values) != len(POWER_GROUPS) * len(POWER_KINDS):
            raise ToolOutputError(f"OpenSTA printed no {tag} line of 20 numbers")
        numbers = iter(float(v) for v in values)
        found[key] = {g: {k: next(numbers) for k in POWER_KINDS} for g in POWER_GROUPS}
    return found


def run_power(workdir, top, liberty_name, netlist_name, period_ns, activity, *, parts=None):
    """OpenSTA power of ``netlist_name`` in ``workdir`` at a clock of ``period_ns`` with the pin
    ``activity`` ``{"inst/PIN": (transitions per period, duty)}``.

    Returns the totals in mW (``dynamic_mw`` = internal + switching, ``leakage_mw``), the same
    with OpenSTA's default activity everywhere (``default_activity``), the sequential /
    combinational split and, with ``parts`` (``{instance: part}``), the power per part.

    Raises
    ------
    ToolError
        If ``sta`` is missing or fails, or its output cannot be read.
    """
    workdir = Path(workdir)
    step = "OpenSTA report_power on the OSU netlist"
    sta = find_tool("sta", step)
    write_activity_tcl(workdir / "activity.tcl", activity)
    (workdir / "power.tcl").write_text(POWER_SCRIPT.format(
        liberty=liberty_name, netlist=netlist_name, top=top, period=period_ns,
        activity="activity.tcl"))
    out = run_tool([sta, "-no_splash", "-exit", "power.tcl"], cwd=workdir, step=step,
                   log_name="power.log")
    errors = [ln for ln in out.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolError("sta", step, "; ".join(errors[:3]))
    try:
        found = parse_power_output(out)
    except ToolOutputError as e:
        raise ToolError("sta", step, str(e)) from None

    def summary(p):
        total = p["total"]
        return {"dynamic_mw": (total["internal"] + total["switching"]) * 1e3,
                "internal_mw": total["internal"] * 1e3,
                "switching_mw": total["switching"] * 1e3,
                "leakage_mw": total["leakage"] * 1e3,
                "sequential_mw": p["sequential"]["total"] * 1e3,
                "combinational_mw": p["combinational"]["total"] * 1e3}

    result = {**summary(found["annotated"]), "default_activity": summary(found["default"]),
              "period_ns": period_ns, "pins_annotated": len(activity)}
    if parts is not None:
        per_part = defaultdict(lambda: [0.0, 0.0, 0.0])
        for line in (workdir / "instance_power.txt").read_text().splitlines():
            name, internal, switching, leakage, _ = line.split()
            acc = per_part[parts.get(name, "unknown")]
            acc[0] += float(internal)
            acc[1] += float(switching)
            acc[2] += float(leakage)
        result["parts"] = {part: {"dynamic_mw": (v[0] + v[1]) * 1e3, "leakage_mw": v[2] * 1e3}
                           for part, v in sorted(per_part.items())}
    return result
