"""``python -m synth --out build/reports``: area, transistors, timing and ECP5 figures of every
GOBO PE preset, written to ``synth.json`` and ``synth.md``."""

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from golden.config import PE_PRESETS, PRESETS

from .flow import run_design
from .report import NOTE, write_reports
from .tools import ToolError, fetch_osu018_liberty


def _pe_verilog(preset_name):
    try:
        from hw.cli import emit_pe
    except ImportError as e:
        raise SystemExit(f"synth: cannot import hw.cli.emit_pe ({e}); the PE RTL is needed")
    top = f"gobo_pe_{preset_name}"
    return top, emit_pe(PRESETS[preset_name], top)


def _size(config):
    """Rough cost of a PE: its lanes times its bins (the accumulation fabric)."""
    return config.lanes * config.n_centroids


def _run_one(job):
    name, text, top, workdir, liberty = job
    return run_design(name, text, top, workdir, liberty)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m synth",
        description="Synthesize the GOBO PE presets with open tools: Yosys generic cells, CMOS "
                    "transistor count, OSU 0.18 um area, OpenSTA timing, ECP5 LUT/FF/DSP/Fmax.")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where synth.json and synth.md go")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="per-design working folders, logs and netlists "
                             "(default: DIR/../synth next to --out)")
    parser.add_argument("--preset", action="append", choices=list(PRESETS), metavar="NAME",
                        help=f"preset to run; repeat for several (default: the PE presets "
                             f"{', '.join(PE_PRESETS)})")
    parser.add_argument("--jobs", type=int, default=2, help="designs run in parallel (default 2)")
    args = parser.parse_args(argv)

    work = (args.work or args.out.parent / "synth").resolve()
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    flow_errors = []
    print(f"synth: fetching the OSU 0.18 um liberty into {work / 'tech'}", flush=True)
    try:
        liberty = str(fetch_osu018_liberty(work / "tech"))
    except ToolError as e:
        print(f"synth: ERROR {e}", file=sys.stderr, flush=True)
        flow_errors.append(str(e))
        liberty = None

    names = args.preset or list(PE_PRESETS)
    jobs = []
    for name in names:
        top, text = _pe_verilog(name)
        jobs.append((name, text, top, str(work / name), liberty))
    print(f"synth: {len(jobs)} design(s): {', '.join(names)}; {args.jobs} in parallel; "
          f"logs in {work}", flush=True)
    # Largest designs first, so that the small ones fill in around them: the wall time is then
    # about the largest design's own time rather than its time plus the queue ahead of it.
    order = sorted(range(len(jobs)), key=lambda i: -_size(PRESETS[names[i]]))
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {i: pool.submit(_run_one, jobs[i]) for i in order}
            results = [futures[i].result() for i in range(len(jobs))]
    else:
        results = [_run_one(job) for job in jobs]

    designs = {}
    for name, result in zip(names, results):
        designs[name] = {"config": PRESETS[name].to_dict(), **result}
    report = {
        "note": NOTE,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.monotonic() - start, 1),
        "jobs": args.jobs,
        "workdir": str(work),
        "liberty": liberty,
        "errors": flow_errors,
        "designs": designs,
    }
    md = write_reports(report, args.out)
    print()
    print(md)
    print(f"synth: wrote {args.out / 'synth.json'} and {args.out / 'synth.md'}")
    failed = flow_errors + [e for d in designs.values() for e in d["errors"]]
    if failed:
        print(f"synth: {len(failed)} step(s) failed:", file=sys.stderr)
        for e in failed:
            print(f"  - {e.splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
