"""gobo verilog: emitted Verilog (ports, timescale), JSON sidecar, Verilator lint."""

import json
import re
import subprocess
import sys

import pytest

from gobo.cli import main
from golden.config import PRESETS
from hw.designs import Design
from hw.verilog import LintError, lint

PORTS = {"clk": 1, "rst": 1, "i__payload": None, "i__valid": 1, "i__ready": 1, "centroids": None,
         "o__payload": None, "o__valid": 1, "o__ready": 1}


def top_ports(text, top):
    """``{name: (direction, width)}`` of module ``top`` in Yosys-written Verilog."""
    body = re.search(rf"^module {re.escape(top)}\(.*?^endmodule", text, re.S | re.M).group(0)
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                          body, re.M):
        ports[name] = (direction, int(msb) + 1 if msb else 1)
    return ports


def test_emit_lint_and_ports(tmp_path, capsys):
    name = "lanes1"
    config = PRESETS[name]
    assert main(["verilog", "--out", str(tmp_path), "--kind", "gobo_pe", "--preset", name,
                 "--lint"]) == 0
    assert "lint clean" in capsys.readouterr().out
    text = (tmp_path / f"gobo_pe_{name}.v").read_text()
    assert text.startswith("`timescale 1ns/1ps\n")
    ports = top_ports(text, f"gobo_pe_{name}")
    assert set(ports) == set(PORTS)
    widths = {"i__payload": config.lanes * (config.index_bits + config.act_bits) + 1,
              "centroids": config.n_centroids * config.centroid_bits,
              "o__payload": config.out_bits}
    for port, width in {**PORTS, **widths}.items():
        assert ports[port][1] == width, port
    assert {p for p, (d, _) in ports.items() if d == "output"} == {"i__ready", "o__valid",
                                                                    "o__payload"}
    sidecar = json.loads((tmp_path / f"gobo_pe_{name}.json").read_text())
    assert sidecar["module"] == f"gobo_pe_{name}"
    assert sidecar["config"] == config.to_dict()
    assert sidecar["latency"] == config.pe_latency == 1 + config.recon_cycles
    assert sidecar["derived"]["out_bits"] == config.out_bits
    assert sidecar["ports"] == list(PORTS)
    assert sidecar["port_bits"]["i__payload"] == widths["i__payload"]


def test_emit_and_lint_the_streaming_tile(tmp_path, capsys):
    """The streaming tile at tiny on the default 16-byte AXI port, where every word fits one
    beat (its beat counter once emitted as a [-1:0] vector, a Verilator warning)."""
    assert main(["verilog", "--out", str(tmp_path), "--kind", "gobo_stream_tile", "--preset",
                 "tiny", "--lint"]) == 0
    assert "lint clean" in capsys.readouterr().out
    sidecar = json.loads((tmp_path / "gobo_stream_tile_tiny.json").read_text())
    assert sidecar["bus_bytes"] == 16 and sidecar["port_bits"]["axi__rdata"] == 128
    assert set(sidecar["memories"]) == {"activation", "index", "outlier", "bias"}


def test_emit_and_lint_the_streaming_mac_tile(tmp_path, capsys):
    """The streaming MAC tile at the minilm_stream preset (16 x 16 W16A16 MAC PEs), lint-clean,
    its weight banks sized for one block's 1536-column dense words, not for the layer."""
    assert main(["verilog", "--out", str(tmp_path), "--kind", "mac_stream_tile", "--preset",
                 "minilm_stream", "--lint"]) == 0
    assert "lint clean" in capsys.readouterr().out
    sidecar = json.loads((tmp_path / "mac_stream_tile_w16a16_minilm_stream.json").read_text())
    assert sidecar["bus_bytes"] == 16 and sidecar["weight_bits"] == 16
    assert sidecar["index_bits"] is None
    assert sidecar["memories"]["weight"] == {"width": 16 * 16 * 16, "depth": 2 * 1536 // 16,
                                             "bits": 4096 * 192}
    assert set(sidecar["memories"]) == {"activation", "weight", "bias"}


def test_emit_names_the_top_module():
    text = Design("gobo_pe", PRESETS["lanes4"], name="my_pe").verilog()
    assert re.search(r"^module my_pe\(", text, re.M)


def test_lint_fails_on_a_warning(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input clk, output o);\n  wire floating;\n  assign o = floating;\n"
                   "endmodule\n")
    with pytest.raises(LintError, match="UNDRIVEN"):
        lint(bad, "bad")


def test_help_and_unknown_names():
    run = [sys.executable, "-m", "gobo", "verilog"]
    result = subprocess.run(run + ["--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--preset" in result.stdout and "--lint" in result.stdout
    assert "gobo verilog --out build/verilog --lint" in result.stdout       # a pasteable example
    for args, message in [(["--kind", "gobo_pe", "--preset", "nope"], "unknown preset 'nope'"),
                          (["--kind", "gpu", "--preset", "tiny"], "unknown design kind 'gpu'"),
                          (["--kind", "gobo_pe"], "--kind needs --preset NAME")]:
        result = subprocess.run(run + ["--out", "unused", *args], capture_output=True, text=True)
        assert result.returncode == 2, args
        assert result.stderr.startswith("gobo: error: ") and message in result.stderr, args
        assert "Traceback" not in result.stderr


def test_cli_emits_and_lints_the_mac_tiles(tmp_path, capsys):
    assert main(["verilog", "--out", str(tmp_path), "--kind", "mac_tile", "--preset", "tiny",
                 "--lint"]) == 0
    assert main(["verilog", "--out", str(tmp_path), "--kind", "compressed_tile", "--preset",
                 "tiny", "--lint"]) == 0
    for flavour in ("w8a8", "w4a4"):
        assert main(["verilog", "--out", str(tmp_path), "--kind", "mac_tile", "--preset", "tiny",
                     "--flavour", flavour]) == 0
    out = capsys.readouterr().out
    names = ["mac_tile_w16a16_tiny", "mac_tile_w8a8_tiny", "mac_tile_w4a4_tiny",
             "compressed_tile_w16a16_tiny"]
    for name in names:
        text = (tmp_path / f"{name}.v").read_text()
        assert f"module {name}(" in text
        assert f"{name}.v: " in out
    assert out.count("lint clean") == 2
    compressed = (tmp_path / "compressed_tile_w16a16_tiny.v").read_text()
    assert "packed__payload" in compressed and "outliers__payload" in compressed
