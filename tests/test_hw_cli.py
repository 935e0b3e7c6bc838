"""hw.cli: emitted Verilog (ports, timescale), JSON sidecar, Verilator lint."""

import json
import re
import subprocess
import sys

import pytest

from golden.config import PRESETS
from hw.cli import LintError, emit_pe, lint, main
from hw.pe import pe_latency

PORTS = {"clk": 1, "rst": 1, "i__valid": 1, "i__ready": 1, "i__payload": None, "centroids": None,
         "o__valid": 1, "o__ready": 1, "o__payload": None}


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
    assert main(["--out", str(tmp_path), "--preset", name, "--lint"]) == 0
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
    assert sidecar["latency"] == pe_latency(config) == 1 + config.recon_cycles
    assert sidecar["derived"]["out_bits"] == config.out_bits
    assert sidecar["derived"]["input_payload_bits"] == widths["i__payload"]
    assert sidecar["ports"] == list(PORTS)


def test_emit_pe_names_the_top_module():
    text = emit_pe(PRESETS["lanes4"], "my_pe")
    assert re.search(r"^module my_pe\(", text, re.M)


def test_lint_fails_on_a_warning(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input clk, output o);\n  wire floating;\n  assign o = floating;\n"
                   "endmodule\n")
    with pytest.raises(LintError, match="UNDRIVEN"):
        lint(bad, "bad")


def test_help_and_unknown_preset():
    run = [sys.executable, "-m", "hw.cli"]
    result = subprocess.run(run + ["--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--preset" in result.stdout and "--lint" in result.stdout
    result = subprocess.run(run + ["--out", "unused", "--preset", "nope"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr


def test_cli_emits_and_lints_the_mac_tiles(tmp_path, capsys):
    from hw.cli import main
    assert main(["--out", str(tmp_path), "--mac-tile", "--lint"]) == 0
    out = capsys.readouterr().out
    names = ["mac_tile_w16a16_tiny", "mac_tile_w8a8_tiny", "mac_tile_w4a4_tiny",
             "compressed_tile_w16a16_tiny"]
    for name in names:
        text = (tmp_path / f"{name}.v").read_text()
        assert f"module {name}(" in text
        assert f"{name}.v: size=" in out and "lint clean" in out
    compressed = (tmp_path / "compressed_tile_w16a16_tiny.v").read_text()
    assert "packed__payload" in compressed and "outliers__payload" in compressed
