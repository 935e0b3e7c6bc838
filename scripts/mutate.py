"""Mutation testing of the fast tests (issue 16 item 4; not part of `make test`).

Each mutant of the catalogue below is a list of textual patches ``(file, exact old snippet, new
snippet)`` applied to a fresh copy of the sources under build/mutants/<name>/. A snippet that is
not found exactly once is an error (exit status 2), so the catalogue cannot silently rot when the
sources change. The fast tests (the Amaranth-simulator and golden unit tests; not the cocotb
benches, not the formal proofs) run on each mutant with a wall-clock limit, and the kill matrix
says which tests killed it and how: ``assertion`` (a test failed on a wrong value) or ``timeout``
(a failure whose message mentions "timed out", or the wall-clock limit). The unmutated copy runs
first and must pass. Reports: build/reports/mutants.{json,md}.

    .venv/bin/python scripts/mutate.py --jobs 1          # the whole catalogue
    .venv/bin/python scripts/mutate.py --list
    .venv/bin/python scripts/mutate.py --only merge_half_down
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutants"
REPORTS = ROOT / "build" / "reports"
COPIED = ["golden", "hw", "gobo", "sim", "tests", "pyproject.toml"]
TESTS = ["tests/test_hw_*.py", "tests/test_tile_model.py", "tests/test_layer_image.py",
         "tests/test_tile_cycles.py", "tests/test_mac_tile_model.py", "tests/test_designs.py"]

TC = "hw/tile_controller.py"
OP = "hw/outlier_path.py"
ACC = "hw/accumulators.py"
REC = "hw/reconstruction.py"
DEC = "hw/decompressor.py"

# (name, kind, description, [(file, old, new), ...])
CATALOGUE = [
    ("merge_half_down", "rtl", "the merge rounds half down: half = 2**(s-1) - 1",
     [(TC, "half.eq(Const(1, 1) << s_m1)", "half.eq((Const(1, 1) << s_m1) - 1)")]),
    ("recon_product_short", "rtl", "the reconstruction product register one bit short",
     [(REC, "product = Signal(signed(config.product_bits), name=f\"product{p}\")",
       "product = Signal(signed(config.product_bits - 1), name=f\"product{p}\")")]),
    ("side_extra_command", "rtl", "the command walker offers one extra (repeated) first command",
     [(TC, "        c_base = Signal.like(self.side.payload.act_base, name=\"c_base\")\n",
       "        c_base = Signal.like(self.side.payload.act_base, name=\"c_base\")\n"
       "        c_extra = Signal(name=\"c_extra\")\n"),
      (TC, "        with m.If(self.side.valid & self.side.ready):\n"
           "            with m.If(c_t == tokens - 1):\n",
       "        with m.If(self.side.valid & self.side.ready & c_extra):\n"
       "            m.d.sync += c_extra.eq(0)\n"
       "        with m.Elif(self.side.valid & self.side.ready):\n"
       "            with m.If(c_t == tokens - 1):\n"),
      (TC, "c_more.eq(1), c_t.eq(0)", "c_more.eq(1), c_extra.eq(1), c_t.eq(0)")]),
    ("acc_last_overwrites", "rtl",
     "the accumulators accept `last` while the hand-over register is full",
     [(ACC, "m.d.comb += self.i.ready.eq(~self.i.payload.last | o_free)",
       "m.d.comb += self.i.ready.eq(1)")]),
    ("bc_last_early", "rtl", "the broadcast marks `last` one chunk early (off by one)",
     [(TC, "s1_last.eq(s0_j == chunks - 1),", "s1_last.eq(s0_j == chunks - 2),")]),
    ("busy_count_le", "rtl", "the busy[p] counter counts row `rows` too (< becomes <=)",
     [(TC, "with m.If(s1_row_base + p < layer.rows):",
       "with m.If(s1_row_base + p <= layer.rows):")]),
    ("cycles_count_from_one", "rtl", "the cycles counter starts at 1 (off by one)",
     [(TC, "m.d.sync += [cnt.eq(0),", "m.d.sync += [cnt.eq(0), cnt.cycles.eq(1),")]),
    ("acc_drop_beat", "rtl",
     "the accumulators drop non-last beats while the hand-over register is full",
     [(ACC, "with m.If(self.i.valid & self.i.ready):",
       "with m.If(self.i.valid & self.i.ready & (self.i.payload.last | ~self.o.valid)):")]),
    ("acc_last_twice", "rtl", "the accumulators add the `last` beat twice (a duplicated beat)",
     [(ACC, "m.d.comb += total.eq(acc_bins[k] + adder_tree(terms))",
       "m.d.comb += total.eq(acc_bins[k] + adder_tree(terms)"
       " + Mux(self.i.payload.last, adder_tree(terms), 0))")]),
    ("outlier_residual_short", "rtl", "the side path's residual register one bit short",
     [(OP, "s2_res = [Signal(signed(config.residual_bits), name=f\"s2_res{q}\")",
       "s2_res = [Signal(signed(config.residual_bits - 1), name=f\"s2_res{q}\")")]),
    ("outlier_rows_swapped", "rtl", "the side path swaps the rows of its record lanes",
     [(OP, "s2_row[q].eq(s1_word[q].row),", "s2_row[q].eq(s1_word[q_lanes - 1 - q].row),")]),
    ("merge_rows_swapped", "rtl", "the merge writes PE p's output to row pes-1-p",
     [(TC, "m.d.sync += [self.o.payload[p].eq(y[p]) for p in range(pes)]",
       "m.d.sync += [self.o.payload[p].eq(y[pes - 1 - p]) for p in range(pes)]")]),
    ("recon_valid_stuck", "rtl", "the reconstruction's o.valid never clears (stuck valid)",
     [(REC, "            m.d.sync += self.o.valid.eq(0)\n\n        with m.If(self.i.valid):",
       "            pass\n\n        with m.If(self.i.valid):")]),
    ("decomp_ready_stuck", "rtl", "the decompressor's i.ready is stuck high",
     [(DEC, "self.i.ready.eq(~w_valid | o_taken),", "self.i.ready.eq(1),")]),
    ("merge_bias_shift_ignored", "rtl", "the merge ignores shift_bias",
     [(TC, "bias_sh.eq(self.bias_rd[p].data[:bias_bits].as_signed() << layer.shift_bias),",
       "bias_sh.eq(self.bias_rd[p].data[:bias_bits].as_signed()),")]),
    ("merge_saturate_high", "rtl", "the merge saturates at high - 1 (bound off by one)",
     [(TC, "low, high = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1\n"
           "        bias_bits",
       "low, high = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 2\n"
       "        bias_bits")]),
    ("stall_cause_inverted", "rtl", "a stall is charged to stall_outlier when corr IS valid",
     [(TC, "with m.Elif(self.dots.valid & ~self.corr.valid):",
       "with m.Elif(self.dots.valid & self.corr.valid):")]),
    ("golden_requantize_half_down", "golden", "requantize rounds half down",
     [("golden/hwmodel/tile.py",
       "    return (acc + (1 << (out_shift - 1))) >> out_shift if out_shift > 0 else acc\n",
       "    return (acc + (1 << (out_shift - 1)) - 1) >> out_shift if out_shift > 0 else acc\n")]),
    ("golden_bins_swapped", "golden", "pe_bins swaps centroids k and k^1",
     [("golden/hwmodel/pe.py", "np.stack([(indexes == k).astype(dtype)",
       "np.stack([(indexes == (k ^ 1)).astype(dtype)")]),
    ("golden_bias_shift_short", "golden", "fixed_bias stores the bias one exponent too fine",
     [("golden/hwmodel/layer_image.py",
       "shift = min(max(e_fit - e_acc, 0), config.max_align_shift)",
       "shift = min(max(e_fit - e_acc - 1, 0), config.max_align_shift)")]),
    ("golden_cycles_plus_one", "golden", "tile_cycles reports one cycle too many",
     [("golden/hwmodel/tile.py", '        "cycles": cycles,\n',
       '        "cycles": cycles + 1,\n')]),
    ("golden_pe_cycles_minus_one", "golden", "pe_cycles one cycle short",
     [("golden/hwmodel/pe.py", "return (rows - 1) * interval + beats + latency",
       "return (rows - 1) * interval + beats + latency - 1")]),
]


class CatalogueError(Exception):
    pass


def copy_tree(dest):
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "sim_build", "*.vcd")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def apply_patches(dest, name, patches):
    for file, old, new in patches:
        path = dest / file
        text = path.read_text()
        count = text.count(old)
        if count != 1:
            raise CatalogueError(f"mutant {name}: snippet found {count} times in {file} "
                                 f"(need exactly 1): {old!r}")
        path.write_text(text.replace(old, new))


def check_patches(name, patches):
    """Check every snippet against the real sources (no copy): fail loudly before any run."""
    for file, old, _ in patches:
        count = (ROOT / file).read_text().count(old)
        if count != 1:
            raise CatalogueError(f"mutant {name}: snippet found {count} times in {file} "
                                 f"(need exactly 1): {old!r}")


def classify(message):
    return "timeout" if "timed out" in message.lower() else "assertion"


PLUGIN = """import json, os


def pytest_runtest_logstart(nodeid, location):
    with open(os.environ["MUTATE_RESULTS"] + ".current", "w") as f:
        f.write(nodeid)


def pytest_runtest_logreport(report):
    if report.failed:
        with open(os.environ["MUTATE_RESULTS"], "a") as f:
            f.write(json.dumps({"test": report.nodeid, "when": report.when,
                                "text": str(report.longrepr)[-4000:]}) + "\\n")
"""


def run_tests(dest, limit, first):
    """Run the fast tests in ``dest``; return (status, {test: kind}, seconds, note).

    A small plugin appends every failing test's report to ``failures.jsonl`` as soon as the test
    ends, so the killers found before a wall-clock kill are kept too."""
    results = dest / "failures.jsonl"
    results.unlink(missing_ok=True)
    (dest / "_mutate_plugin.py").write_text(PLUGIN)
    env = dict(os.environ, PYTHONPATH=str(dest), PYTHONDONTWRITEBYTECODE="1",
               MUTATE_RESULTS=str(results))
    tests = sorted(str(p.relative_to(dest)) for pat in TESTS for p in dest.glob(pat))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
           "_mutate_plugin"]
    if first:
        cmd.append("-x")
    # The imports must resolve to the mutated copy, not to the editable install.
    probe = subprocess.run([sys.executable, "-c", "import hw, golden; print(hw.__file__); "
                            "print(golden.__file__)"], cwd=dest, env=env,
                           capture_output=True, text=True, check=True)
    if any(not line.startswith(str(dest)) for line in probe.stdout.split()):
        raise RuntimeError(f"imports do not resolve into {dest}: {probe.stdout}")
    start = time.monotonic()
    proc = subprocess.Popen(cmd + tests, cwd=dest, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
        timed_out = True
    seconds = time.monotonic() - start
    (dest / "pytest.log").write_text(out)
    kills = {}
    if results.exists():
        for line in results.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut by the wall-clock kill
                continue
            kind = classify(record["text"])
            if kills.get(record["test"]) != "assertion":
                kills[record["test"]] = kind
    if timed_out:
        kills["<wall-clock limit>"] = "timeout"
        current = pathlib.Path(str(results) + ".current")
        where = f" in {current.read_text()}" if current.exists() else ""
        return "timeout", kills, seconds, f"killed after {limit} s{where}"
    if proc.returncode == 0:
        return "passed", kills, seconds, ""
    if not kills:
        kills["<pytest exit %d>" % proc.returncode] = "assertion"
    return "failed", kills, seconds, out.strip().splitlines()[-1] if out.strip() else ""


def run_mutant(entry, limit, first):
    name, kind, description, patches = entry
    dest = BUILD / name
    copy_tree(dest)
    apply_patches(dest, name, patches)
    status, kills, seconds, note = run_tests(dest, limit, first)
    if status == "passed":
        verdict = "survived"
    elif all(k == "timeout" for k in kills.values()):
        verdict = "killed (timeout only)"
    else:
        verdict = "killed"
    return {"name": name, "kind": kind, "description": description,
            "files": sorted({p[0] for p in patches}), "verdict": verdict,
            "killers": len(kills),
            "assertion_kills": sum(k == "assertion" for k in kills.values()),
            "timeout_kills": sum(k == "timeout" for k in kills.values()),
            "kills": kills, "seconds": round(seconds, 1), "note": note}


def markdown(results, baseline, args):
    lines = ["# Mutation testing of the fast tests", "",
             f"`scripts/mutate.py --jobs {args.jobs}`"
             + (" -x (first killer only)" if args.first else "")
             + f"; unmutated copy: {baseline['status']} in {baseline['seconds']} s.", "",
             "| mutant | kind | verdict | killers | assertion | timeout | s | description |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| `{r['name']}` | {r['kind']} | {r['verdict']} | {r['killers']} | "
                     f"{r['assertion_kills']} | {r['timeout_kills']} | {r['seconds']} | "
                     f"{r['description']} |")
    lines += ["", "## Killers", ""]
    for r in results:
        lines.append(f"- `{r['name']}`: " + (", ".join(
            f"`{t}` ({k})" for t, k in sorted(r["kills"].items())) or "none")
                     + (f" ({r['note']})" if r.get("note") else ""))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this mutant (repeatable); its rows replace those of "
                             "an existing build/reports/mutants.json")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (1)")
    parser.add_argument("--limit", type=float, default=600,
                        help="wall-clock seconds per mutant (600)")
    parser.add_argument("-x", "--first", action="store_true",
                        help="stop each mutant at its first killing test (faster; the killer "
                             "counts are then 1)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated run (it must pass otherwise)")
    args = parser.parse_args(argv)

    names = [c[0] for c in CATALOGUE]
    assert len(set(names)) == len(names), "duplicate mutant names"
    try:
        for name, _, _, patches in CATALOGUE:
            check_patches(name, patches)
    except CatalogueError as e:
        print(f"catalogue error: {e}", file=sys.stderr)
        return 2
    if args.list:
        for name, kind, description, patches in CATALOGUE:
            files = ", ".join(sorted({p[0] for p in patches}))
            print(f"{name:30s} {kind:6s} {files:40s} {description}")
        return 0
    selected = CATALOGUE
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f"unknown mutant(s): {', '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        selected = [c for c in CATALOGUE if c[0] in args.only]

    baseline = {"status": "skipped", "seconds": 0}
    if not args.no_baseline:
        dest = BUILD / "_unmutated"
        copy_tree(dest)
        status, kills, seconds, note = run_tests(dest, args.limit, args.first)
        baseline = {"status": status, "seconds": round(seconds, 1)}
        print(f"unmutated: {status} in {seconds:.1f} s", flush=True)
        if status != "passed":
            print(f"the unmutated copy fails ({note}): {sorted(kills)}", file=sys.stderr)
            return 1

    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_mutant, c, args.limit, args.first): c[0] for c in selected}
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            results.append(r)
            print(f"{r['name']:30s} {r['verdict']:22s} killers {r['killers']:3d} "
                  f"(assertion {r['assertion_kills']}, timeout {r['timeout_kills']}) "
                  f"{r['seconds']:6.1f} s", flush=True)
    order = {n: i for i, n in enumerate(names)}
    report = REPORTS / "mutants.json"
    if args.only and report.exists():
        # Re-running some mutants updates their rows of the existing report.
        fresh = {r["name"] for r in results}
        previous = json.loads(report.read_text())
        results += [r for r in previous.get("mutants", [])
                    if r["name"] in order and r["name"] not in fresh]
        if args.no_baseline:
            baseline = previous.get("baseline", baseline)
    results.sort(key=lambda r: order[r["name"]])

    killed = [r for r in results if r["verdict"] != "survived"]
    summary = {
        "mutants": len(results), "killed": len(killed),
        "killed_by_assertion": sum(r["assertion_kills"] > 0 for r in results),
        "killed_only_by_timeout": sum(r["verdict"] == "killed (timeout only)" for r in results),
        "survivors": [r["name"] for r in results if r["verdict"] == "survived"],
        "weakest": min(killed, key=lambda r: r["killers"])["name"] if killed else None,
        "weakest_killers": min((r["killers"] for r in killed), default=0),
    }
    print("\nkill matrix:")
    for r in results:
        print(f"  {r['name']}: " + (", ".join(f"{t} [{k}]" for t, k in sorted(
            r["kills"].items())) or "SURVIVED"))
    print(f"\n{summary['killed']}/{summary['mutants']} killed "
          f"({summary['killed_only_by_timeout']} only by a timeout); survivors: "
          f"{', '.join(summary['survivors']) or 'none'}; weakest: {summary['weakest']} "
          f"({summary['weakest_killers']} killers)")
    REPORTS.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(
        {"baseline": baseline, "summary": summary, "first_only": args.first,
         "mutants": results}, indent=2) + "\n")
    (REPORTS / "mutants.md").write_text(markdown(results, baseline, args))
    print(f"wrote {REPORTS / 'mutants.json'} and {REPORTS / 'mutants.md'}")
    return 0 if not summary["survivors"] else 1


if __name__ == "__main__":
    sys.exit(main())
