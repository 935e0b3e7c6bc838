"""sim.runner without a simulator: when waves are on, and which ports the control file makes
public."""

import pytest

from sim import runner


@pytest.mark.parametrize("env, given, expected", [
    (None, None, False), ("1", None, True), ("yes", None, True), ("0", None, False),
    ("", None, False), ("1", False, False), (None, True, True),
])
def test_waves_follow_the_argument_then_the_environment(monkeypatch, env, given, expected):
    if env is None:
        monkeypatch.delenv("WAVES", raising=False)
    else:
        monkeypatch.setenv("WAVES", env)
    assert runner.waves_requested(given) is expected


VERILOG = """`timescale 1ns/1ps
module inner(a, b);
  input a;
  output b;
endmodule
module top(clk, rst, i__valid, i__payload, o__ready);
  input clk;
endmodule
"""


def test_only_the_top_module_ports_are_public():
    assert runner.top_ports(VERILOG, "top") == ["clk", "rst", "i__valid", "i__payload",
                                                "o__ready"]
    control = runner._public_ports(VERILOG, "top")
    assert control.startswith("`verilator_config\n")
    assert 'public_flat_rw -module "top" -var "i__payload"' in control
    assert "inner" not in control and control.count("public_flat_rw") == 5
    with pytest.raises(ValueError, match="no module 'missing'"):
        runner.top_ports(VERILOG, "missing")


TILE = """module core_sub(a);
  input a;
endmodule
module t(clk, rst, start, layer, load__payload, load__valid, load__ready, o__payload, o__valid,
         o__ready, busy, counters);
  input clk;
  input rst;
  input start;
  input [9:0] layer;
  input [99:0] load__payload;
  input load__valid;
  output load__ready;
  output [63:0] o__payload;
  output o__valid;
  input o__ready;
  output busy;
  output [287:0] counters;
endmodule
"""


def test_the_bench_wrapper_takes_only_whole_layer_tiles_and_keeps_their_name():
    from sim.tile_driver import BENCH_PORTS, load_file_bytes, wrap_tile, wrappable
    assert wrappable(TILE, "t") and not wrappable(VERILOG, "top")
    assert not wrappable(TILE, "missing")
    wrapped = wrap_tile(TILE, "t")
    assert "module t__core(" in wrapped and "t__core core(" in wrapped
    assert runner.top_ports(wrapped, "t") == ["clk", "rst", "layer", "busy", "counters",
                                              *BENCH_PORTS]
    assert "localparam BEAT_BYTES = 13;" in wrapped and "raw[99:0]" in wrapped
    with pytest.raises(ValueError, match="not a whole-layer tile's"):
        wrap_tile(VERILOG, "top")
    # Big-endian, fixed width: the wrapper's $fread reads BEAT_BYTES bytes per beat.
    assert load_file_bytes(["1", "a0b"], 3) == b"\x00\x00\x01\x00\x0a\x0b"
