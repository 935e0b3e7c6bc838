"""A short run of scripts/fuzz_loaders.py: damaged files raise only each loader's own error."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_short_fuzz_run_lets_only_named_errors_escape():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz_loaders.py"),
                          "--cases", "200", "--seed", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for loader in ("weights", "image", "model"):
        assert f"{loader}" in run.stdout and "0 unexpected exceptions" in run.stdout
