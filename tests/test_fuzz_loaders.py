"""A short run of scripts/fuzz_loaders.py (the long one is quoted in the README): damaged files
raise only each loader's own error, quickly and within the memory budget."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_short_fuzz_run_lets_only_named_errors_escape():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz_loaders.py"),
                          "--cases", "200", "--seed", "1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout)
    assert sorted(results) == ["image", "model", "weights"]
    for loader, stats in results.items():
        assert stats["cases"] == 200, loader
        assert stats["unexpected"] == 0 and stats["slow"] == 0, (loader, stats["examples"])
        assert stats["rejected"] > 100, loader     # the damage does reach the parsers
        assert stats["peak_mb"] < 512, loader


def test_the_fuzzer_catches_a_loader_that_leaks(monkeypatch, load_script):
    fuzz = load_script("fuzz_loaders")
    from golden.nlp.weights import WeightsError

    def leaky(path):
        data = pathlib.Path(path).read_bytes()
        if len(data) % 3 == 0:
            raise KeyError("dtype")          # what an unchecked header lookup raises
        raise WeightsError("rejected")

    monkeypatch.setattr(fuzz, "loaders", lambda: {"weights": (leaky, WeightsError)})
    stats = fuzz.fuzz(30, seed=0)["weights"]
    assert stats["unexpected"] > 0 and "KeyError" in stats["examples"][0]
