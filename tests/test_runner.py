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
