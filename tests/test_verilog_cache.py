"""Emit once, the same bytes everywhere: the Verilog cache (hw.verilog_cache) hits and misses on
the right keys, and the same sources emit byte-identical Verilog in two folders, free of absolute
paths and of the memories' all-zero initial blocks."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from golden.config import preset
from hw import verilog_cache
from hw.designs import Design
from hw.verilog import relative_src

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GOBO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_emits_once_per_key(cache, monkeypatch):
    calls = []

    def make(text):
        return lambda: calls.append(text) or text

    key = {"name": "d", "config": {"lanes": 4}}
    assert verilog_cache.cached_text(key, make("one")) == "one"
    assert verilog_cache.cached_text(key, make("two")) == "one"          # a hit: not emitted
    assert calls == ["one"]
    assert verilog_cache.cached_text({**key, "config": {"lanes": 8}}, make("three")) == "three"
    monkeypatch.setattr(verilog_cache, "source_digest", lambda: "an edited hw/ file")
    assert verilog_cache.cached_text(key, make("four")) == "four"        # new source: emitted
    monkeypatch.setattr(verilog_cache, "_tool_versions", lambda: {"amaranth": "0.6"})
    assert verilog_cache.cached_text(key, make("five")) == "five"        # new tool: emitted
    assert calls == ["one", "three", "four", "five"]
    assert len(list((cache / "verilog").glob("d-*.v"))) == 4


def test_source_digest_covers_hw_and_golden_but_not_nlp():
    digest = verilog_cache.source_digest()
    assert len(digest) == 64
    files = [p.relative_to(REPO).as_posix() for p in (REPO / "golden").rglob("*.py")]
    assert any(f.startswith("golden/hwmodel/") for f in files)
    assert verilog_cache._NOT_SOURCES == ("hw/formal/", "hw/cluster.py", "golden/nlp/",
                                          "golden/accel/")


def test_relative_src_refuses_a_path_outside_the_known_folders():
    assert relative_src(f'(* src = "{REPO}/hw/pe.py:3" *)') == '(* src = "hw/pe.py:3" *)'
    with pytest.raises(ValueError, match="absolute source path '/elsewhere/x.py'"):
        relative_src('(* src = "/elsewhere/x.py:3" *)')


def _emit_in_copy(folder):
    """Copy the packages into ``folder`` and emit the tiny tile there, from there, with a cache
    of its own; returns the file's bytes."""
    for package in ("gobo", "golden", "hw", "sim", "synth"):
        shutil.copytree(REPO / package, folder / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(folder), "GOBO_CACHE": str(folder / "cache")}
    script = ("import sys, hw; from gobo.cli import main; "
              f"assert hw.__file__.startswith({str(folder)!r}), hw.__file__; "
              "sys.exit(main(['verilog', '--out', 'out', '--kind', 'gobo_tile', "
              "'--preset', 'tiny']))")
    subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, check=True,
                   capture_output=True)
    return (folder / "out" / "gobo_tile_tiny.v").read_bytes()


def test_same_sources_emit_identical_bytes_in_two_folders(tmp_path):
    first = _emit_in_copy(tmp_path / "clone_a")
    second = _emit_in_copy(tmp_path / "a_longer_folder_name" / "clone_b")
    assert first == second
    here = Design("gobo_tile", preset("tiny"), name="gobo_tile_tiny").verilog().encode()
    assert first == here
    text = first.decode()
    for path in (str(tmp_path), str(REPO), sys.prefix, "/usr/"):
        assert path not in text
    assert 'src = "hw/tile.py:' in text and 'src = "amaranth/lib/memory.py:' in text
    # The tile's memories are loaded at run time: no per-word zero initial block.
    assert "initial begin" not in text and "reg [63:0] activation_mem" in text
