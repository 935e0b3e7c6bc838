"""The power path (docs/synthesis.md, "Power"), fast: the netlist reader and the part split on a
hand-written netlist, OpenSTA's output parser, the waveform activity on a written VCD, the
pre-flight tool check of ``gobo synth``, and OSU timing + OpenSTA power on the registered
``a * b + a`` stand-in (a few seconds): both give numbers, and power follows the activity.

The tiles' real-activity run is ``make power`` (minutes; docs/synthesis.md)."""

import json

import pytest
from amaranth.back import verilog

from sim.activity import end_time, first_high, net_activity
from sim.gate_level import simulation_netlist
from synth.flow import run_sta, run_yosys_asic
from synth.parse import ToolOutputError
from synth.power import (
    cell_activity,
    cell_outputs,
    design_parts,
    parse_netlist,
    parse_power_output,
    run_power,
)
from synth.run import needed_tools, synthesize
from synth.tools import LIBERTY_NAME, ToolError, fetch_osu018_liberty, require_tools
from tests.test_synth import RegisteredMulAdd

NETLIST = r"""
module t(clk, a, y);
  input clk;
  input [1:0] a;
  output y;
  NAND2X1 _1_ (
    .A(a[0]),
    .B(\pe0.accumulators.bin[0] ),
    .Y(_5_)
  );
  INVX1 _2_ (
    .A(_5_),
    .Y(_6_)
  );
  DFFPOSX1 _3_ (
    .CLK(clk),
    .D(_6_),
    .Q(\pe0.accumulators.bin[0] )
  );
  DFFPOSX1 _4_ (
    .CLK(clk),
    .D(\pe0.accumulators.bin[0] ),
    .Q(y)
  );
endmodule
"""

CELLS = """
module NAND2X1(A, B, Y);
  input A;
  input B;
  output Y;
endmodule
module INVX1(A, Y);
  input A;
  output Y;
endmodule
module DFFPOSX1(CLK, D, Q);
  input CLK;
  input D;
  output Q;
endmodule
"""


def test_netlist_reader_and_parts():
    netlist = parse_netlist(NETLIST)
    assert netlist["cells"]["_1_"] == ("NAND2X1", {"A": "a[0]", "B": "pe0.accumulators.bin[0]",
                                                   "Y": "_5_"})
    assert netlist["inputs"] == ["clk", "a[0]", "a[1]"] and netlist["outputs"] == ["y"]
    outputs = cell_outputs(CELLS)
    assert outputs == {"NAND2X1": {"Y"}, "INVX1": {"Y"}, "DFFPOSX1": {"Q"}}
    # The gates feed the bin register: they belong to the PE's accumulators, as the register.
    assert design_parts(netlist, outputs) == {"_1_": "pe.accumulators", "_2_": "pe.accumulators",
                                              "_3_": "pe.accumulators", "_4_": "top"}
    with pytest.raises(ToolOutputError, match="no cell instances"):
        parse_netlist("module t(a); input a; endmodule")


def test_power_output_parser():
    numbers = " ".join(str(i * 1e-3) for i in range(20))
    found = parse_power_output(f"GOBO_DEFAULT {numbers}\nGOBO_DONE\n")
    assert found["total"] == {"internal": 0.0, "switching": 1e-3, "leakage": 2e-3, "total": 3e-3}
    assert found["combinational"]["leakage"] == 10e-3
    with pytest.raises(ToolOutputError, match="GOBO_DEFAULT"):
        parse_power_output("GOBO_DEFAULT 1 2 3\nGOBO_DONE\n")
    with pytest.raises(ToolOutputError, match="stopped before"):
        parse_power_output(f"GOBO_DEFAULT {numbers}\n")


def test_cell_activity_takes_the_output_nets():
    netlist = parse_netlist(NETLIST)
    nets = {"_5_": (0.5, 0.25), "_6_": (0.5, 0.75), "y": (0.1, 0.5)}
    got = cell_activity(netlist, cell_outputs(CELLS), nets)
    assert got == {"_1_": (0.5, 0.25), "_2_": (0.5, 0.75), "_4_": (0.1, 0.5)}  # _3_: not covered


# clk (period 10000 ps), start (high from 10000); in the netlist: a net A that is high 2000 ps of
# the first 10000 and 4000 of the second (two toggles in each), Y at 1 throughout (both one scope
# down, as Verilator writes dotted names), a 4-bit port whose bits 0 and 2 rise at 12000.
VCD = """$timescale 1 ps $end
$scope module top $end
$var wire 1 ! clk $end
$var wire 1 " start $end
$scope module netlist $end
$var wire 4 % bus $end
$scope module _1_ $end
$var wire 1 # A $end
$var wire 1 $ Y $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
1!
0"
0#
1$
b0000 %
#2000
1#
#4000
0#
#5000
0!
#10000
1!
1"
#12000
1#
b0101 %
#15000
0!
#16000
0#
#20000
1!
"""


def test_activity_from_a_waveform(tmp_path):
    """Toggles per period and duty of cell pins inside windows; the netlist's own nets and
    vectors are not pins."""
    path = tmp_path / "w.vcd"
    path.write_text(VCD)
    import pywellen
    waveform = pywellen.Waveform(str(path))
    assert first_high(waveform, "top.start") == 10000
    assert end_time(waveform, "top.clk") == 20000
    got = net_activity(waveform, "top.netlist", {"first": (0, 10000), "all": (0, 20000)}, 10000,
                       names={"_1_.A": "a_net"})
    assert set(got["all"]) == {"a_net", "_1_.Y", "bus[0]", "bus[1]", "bus[2]", "bus[3]"}
    assert got["first"]["a_net"] == (2.0, 0.2) and got["all"]["a_net"] == (2.0, 0.3)
    assert got["all"]["_1_.Y"] == (0.0, 1.0)
    assert got["all"]["bus[0]"] == got["all"]["bus[2]"] == (0.5, 0.4)
    assert got["all"]["bus[1]"] == got["first"]["bus[0]"] == (0.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        net_activity(waveform, "top.netlist", {"bad": (5, 5)}, 10000)
    with pytest.raises(ValueError, match="no variables"):
        net_activity(waveform, "top.other", {"all": (0, 20000)}, 10000)


def test_simulation_netlist_names_are_traceable():
    text, names = simulation_netlist(NETLIST)
    assert "\\" not in text and " _5_" not in text and "(_5_)" not in text
    assert names["gu_5"] == "_5_" and sorted(names.values()).count("pe0.accumulators.bin[0]") == 1
    assert "input [1:0] a;" in text and ".A(a[0])" in text     # ports keep their names


def test_preflight_stops_at_once_naming_the_missing_tool(tmp_path, monkeypatch, capsys):
    """``gobo synth`` checks every tool before any work: a missing OpenSTA is one line with the
    install command, and nothing is synthesized."""
    with pytest.raises(ToolError, match=r"no-such-x9, sta-x9 failed at step 'check': executable "
                                        r"not found \(pip install no-such-x9; pip install "
                                        r"sta-x9\)"):
        require_tools(["no-such-x9", "sta-x9"], "check")
    monkeypatch.setenv("PATH", str(tmp_path))              # no sta, no apt-get on PATH
    monkeypatch.delenv("OSU018_LIBERTY", raising=False)
    assert {"sta", "apt-get", "dpkg"} <= set(needed_tools([], tmp_path / "tech"))
    with pytest.raises(ToolError, match="apt-get install -y opensta"):
        synthesize(out=tmp_path / "reports", work=tmp_path / "synth", presets=["lanes1"])
    # through the CLI: one line, as every other CLI error, for synthesis and power alike
    from gobo.cli import main
    for extra in ([], ["--power"]):
        status = main(["synth", "--out", str(tmp_path / "reports"), "--work",
                       str(tmp_path / "synth"), *extra, *([] if extra else ["--preset", "lanes1"])])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1, err
        assert err[0].startswith("gobo: error: ") and "sta" in err[0] and "opensta" in err[0]
    assert not (tmp_path / "synth" / "gobo_pe_lanes1").exists()


@pytest.fixture(scope="module")
def liberty():
    from sim.runner import REPO
    try:
        return fetch_osu018_liberty(REPO / "build" / "synth" / "tech")
    except ToolError as e:
        pytest.fail(f"the OSU 0.18 um liberty is needed: {e}", pytrace=False)


def test_timing_and_power_on_stand_in(tmp_path, liberty):
    """OSU mapping, OpenSTA timing and OpenSTA power of the stand-in: every figure is a number,
    dynamic power grows with the activity, leakage does not, and a default-activity run is
    reported beside the annotated one."""
    (tmp_path / "standin.v").write_text(verilog.convert(RegisteredMulAdd(width=4),
                                                        name="standin"))
    (tmp_path / LIBERTY_NAME).write_bytes(liberty.read_bytes())
    area = run_yosys_asic(tmp_path, "standin", "standin.v", LIBERTY_NAME)["asic_area"]
    timing = run_sta(tmp_path, "standin", LIBERTY_NAME)
    assert area["area_um2"] > 0 and 10 < timing["fmax_mhz"] < 2000
    netlist = parse_netlist((tmp_path / "mapped.v").read_text())
    cells = list(netlist["cells"])
    powers = {}
    for a in (0.0, 0.1, 0.5):
        powers[a] = run_power(tmp_path, "standin", LIBERTY_NAME, "mapped.v",
                              timing["min_period_ns"], {c: (a, 0.5) for c in cells})
    assert powers[0.0]["cells_annotated"] == powers[0.0]["cells"] == len(cells) > 20
    # the flip-flops' clock pins keep the clock's activity: dynamic power is never 0
    assert 0 < powers[0.0]["dynamic_mw"] < powers[0.1]["dynamic_mw"] < powers[0.5]["dynamic_mw"]
    assert powers[0.0]["sequential_mw"] > 0 and powers[0.5]["combinational_mw"] > 0
    assert powers[0.0]["leakage_mw"] == powers[0.5]["leakage_mw"] > 0
    assert powers[0.5]["default_activity"]["dynamic_mw"] > 0
    # one cell annotated: the others keep the default, so the total lies between
    one = run_power(tmp_path, "standin", LIBERTY_NAME, "mapped.v", timing["min_period_ns"],
                    {cells[0]: (0.5, 0.5)})
    assert one["cells_annotated"] == 1
    with pytest.raises(ToolError, match="sta failed"):
        run_power(tmp_path, "standin", LIBERTY_NAME, "mapped.v", timing["min_period_ns"],
                  {"no_such_cell": (0.1, 0.5)})


def test_zero_activation_check_fails_when_zero_is_not_lower():
    """make power's check (every tile, real gate-level runs): all-zero activations must give
    lower dynamic power than real ones; equal or higher is a named failure."""
    from gobo.power import zero_check

    def record(zero, real):
        return {"design": "t", "runs": {"zero": {"compute": {"dynamic_mw": zero}},
                                        "real": {"compute": {"dynamic_mw": real}}}}
    assert zero_check(record(56.6, 81.7)) is None
    assert zero_check(record(81.7, 81.7)) == ("t: all-zero activations gave 81.70 mW of dynamic "
                                              "power, not less than the real activations' "
                                              "81.70 mW")
    assert zero_check(record(90.0, 81.7)) is not None


def test_a_partial_power_run_keeps_the_other_tiles_of_the_same_slice(tmp_path, capsys):
    """``--power --tiles``: the tiles not measured are kept from an earlier power.json on the
    same slice (marked, with their date); a different slice, a failed tile or an unknown tile
    keeps nothing; bad --tiles are one-line errors."""
    from gobo.cli import main
    from gobo.power import POWER_TILES, _kept_lines, kept_tiles, power_markdown
    assert {"gobo_tile_p2_l16_a8", "gobo_tile_p2_l16_a4"} < set(POWER_TILES)
    slice_ = {"layer": "L", "rows": 16, "columns": 384, "tokens": 8, "sentence": "s"}
    old = tmp_path / "power.json"
    tile = {"runs": {"real": {"compute": {"dynamic_mw": 1.0}}}}
    old.write_text(json.dumps({**slice_, "generated": "2026-11-30T13:00:54+0000",
                               "tiles": {"gobo_tile_p2_l16_a16": tile,
                                         "mac_tile_p2_l16_w8a8": tile,
                                         "mac_tile_p2_l16_w4a4": tile, "other": tile},
                               "errors": ["mac_tile_p2_l16_w4a4: bench failed"]}))
    kept = kept_tiles(old, slice_, ("mac_tile_p2_l16_w8a8",))
    assert list(kept) == ["gobo_tile_p2_l16_a16"]
    assert kept["gobo_tile_p2_l16_a16"]["measured"] == "2026-11-30T13:00:54+0000"
    assert kept["gobo_tile_p2_l16_a16"]["kept_from"] == str(old)
    assert kept_tiles(old, {**slice_, "rows": 32}, ()) == {}
    assert kept_tiles(tmp_path / "none.json", slice_, ()) == {}
    (tmp_path / "bad.json").write_text("[1]")
    assert kept_tiles(tmp_path / "bad.json", slice_, ()) == {}
    # power.md names each kept tile, where from and its date; a fresh report names none
    assert _kept_lines({"tiles": kept}) == [
        "", f"- gobo_tile_p2_l16_a16: kept from {old}, measured 2026-11-30T13:00:54+0000"]
    assert "kept from" not in power_markdown({**slice_, "generated": "now", "tiles": {},
                                              "errors": []})
    for bad, message in ((["--tiles", "gobo_tile_p2_l16_a8"], "--tiles goes with --power"),
                         (["--power", "--tiles", "mac_tile_x"], "--tiles mac_tile_x: not a power "
                                                                 "tile"),
                         (["--power", "--tiles", "gobo_tile_p2_l16_a8", "gobo_tile_p2_l16_a8"],
                          "names a tile twice")):
        status = main(["synth", "--out", str(tmp_path), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1 and message in err[0], err
