"""The efficiency models (docs/efficiency.md): the SRAM model reproduces its published macros,
the off-chip energy per bit its memspec arithmetic, the access counts the streaming cycle
model's structure, the energy sums add up, and the synthesis report's tile area with memories."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from golden.hwmodel.energy import (
    LayerWork,
    LogicPower,
    inference_energy,
    layer_energy,
    stream_accesses,
)
from golden.hwmodel.offchip import MEMORY_PRESETS, OffchipMemory, offchip_layout
from golden.hwmodel.offchip_energy import (
    DRAM_PARTS,
    PRESET_PARTS,
    offchip_energy_source,
    offchip_pj_per_bit,
)
from golden.hwmodel.sram import BITCELL_UM2, GF180_SRAM_MACROS, bitcell_floor_um2, sram
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image

# The GF180MCU datasheets' published points, typed from their tables (TT, 1.8 V, 25 C):
# words, section 6.0 width x height (um), section 4.3 AC Write and AC Read (uW at 1 MHz).
PUBLISHED = {
    64: (431.86, 232.88, 92.043, 84.3399),
    128: (431.86, 268.88, 96.498, 88.7733),
    256: (431.86, 340.88, 102.006, 93.51),
    512: (431.86, 484.88, 112.563, 103.176),
}


@pytest.mark.parametrize("words", sorted(PUBLISHED))
def test_sram_reproduces_the_published_macros(words):
    width_um, height_um, write_uw, read_uw = PUBLISHED[words]
    e = sram(8, words)
    assert (e.columns, e.rows, e.macro.words) == (1, 1, words)
    assert e.area_um2 == pytest.approx(width_um * height_um, rel=1e-9)
    # uW at 1 MHz is pJ per access
    assert e.read_pj == pytest.approx(read_uw) and e.write_pj == pytest.approx(write_uw)


def test_sram_tiles_macros_for_width_and_depth():
    big = GF180_SRAM_MACROS[-1]
    e = sram(16, 1024)                       # 2 x 2 of the 512-word macro
    assert (e.macro, e.columns, e.rows, e.macros) == (big, 2, 2, 4)
    assert e.area_um2 == pytest.approx(4 * big.area_um2)
    assert e.read_pj == pytest.approx(2 * big.read_pj)        # one row of macros enabled
    assert sram(8, 100).macro.words == 128                    # the smallest that holds it
    assert sram(9, 513).columns == 2 and sram(9, 513).rows == 2
    assert sram(8, 512).area_per_bit_um2 == pytest.approx(big.area_um2 / 4096)
    assert sram(96, 73728).to_dict()["bitcell_floor_um2"] == 96 * 73728 * BITCELL_UM2
    assert bitcell_floor_um2(10) == 135.0
    # the published heights grow by one 4.5 um row of 8 words (mux 8) per 8 words: the table
    # is consistent with itself (a typo in an area would break this)
    for small, large in zip(GF180_SRAM_MACROS, GF180_SRAM_MACROS[1:]):
        rows_added = (large.words - small.words) // 8
        assert (large.area_um2 - small.area_um2) / 431.86 == pytest.approx(4.5 * rows_added)
    with pytest.raises(ValueError, match="width must be a positive integer, not 0"):
        sram(0, 8)
    with pytest.raises(TypeError, match="depth must be a positive integer"):
        sram(8, 2.0)


def test_offchip_energy_per_bit_from_the_memspecs():
    ddr4 = DRAM_PARTS["MICRON_4Gb_DDR4-2400_8bit_A"]
    # 1.2 V x (184.5 - 44.0) mA x (1/1.2 GHz) per clock of 2 x 8 bits
    assert ddr4.burst_pj_per_bit == pytest.approx(1.2 * 140.5 / 1.2 / 16)
    assert ddr4.activation_pj == pytest.approx(60.75 * 55 - 44.0 * 39 - 38.25 * 16)
    assert ddr4.pj_per_bit == pytest.approx(8.78125 + 1013.25 / 8192)
    lp4 = DRAM_PARTS["MICRON_6Gb_LPDDR4-3200_32bit_A"]
    assert lp4.burst_pj_per_bit == pytest.approx((1.1 * 245.0) * 0.625 / 32)
    act = 1.8 * (3.5 * 97 - 2.25 * 68 - 2.0 * 29) + 1.1 * (45.0 * 97 - 30.0 * 68 - 27.0 * 29)
    assert lp4.activation_pj == pytest.approx(act * 0.625)
    assert lp4.pj_per_bit == pytest.approx(lp4.burst_pj_per_bit + act * 0.625 / 16384)
    assert offchip_pj_per_bit("ddr4_3200_x64") == offchip_pj_per_bit("ddr4_3200_x64_contended")
    assert offchip_pj_per_bit("lpddr4_4266_x32") < offchip_pj_per_bit("ddr4_3200_x64")
    assert "DRAMPower" in offchip_energy_source("ddr4_3200_x64")["source"]
    # every memory preset has a decision (a part or an explicit None), one place per fact
    assert set(PRESET_PARTS) == set(MEMORY_PRESETS)
    with pytest.raises(ValueError, match="no sourced off-chip energy per bit for 'ulx3s_sdram'"):
        offchip_pj_per_bit("ulx3s_sdram")
    with pytest.raises(ValueError, match="unknown memory preset 'hbm'"):
        offchip_pj_per_bit("hbm")


def test_stream_accesses_by_hand():
    # 5 rows x 7 columns, 3 tokens, 2 PEs x 4 lanes: B = 3 blocks, C = 2 chunks
    mac = stream_accesses("mac", 5, 7, 3, 2, 4)
    assert mac == {"activation": {"reads": 18, "writes": 6}, "bias": {"reads": 9, "writes": 3},
                   "output": {"reads": 0, "writes": 9}, "weight": {"reads": 18, "writes": 6}}
    gobo = stream_accesses("gobo", 5, 7, 3, 2, 4, outlier_words=[0, 2, 1], outlier_lanes=2)
    issued = 3 * (1 + 2 + 1)                 # an empty block still issues one word per slot
    assert gobo["outlier"] == {"reads": issued, "writes": 3}
    assert gobo["activation"]["reads"] == 18 + 2 * issued
    assert gobo["index"] == mac["weight"]
    with pytest.raises(ValueError, match="one count per row block \\(3\\), not 2"):
        stream_accesses("gobo", 5, 7, 3, 2, 4, outlier_words=[0, 1])
    with pytest.raises(ValueError, match="design must be one of 'gobo', 'mac', not 'tpu'"):
        stream_accesses("tpu", 5, 7, 3, 2, 4)


def test_stream_accesses_match_the_cycle_models_structure():
    """The broadcast's reads are the cycle model's ideal cycles, the outlier words per block the
    layout's, and the off-chip bytes the reader's ``bytes_read``."""
    from tests.test_offchip import TINY, small_image
    image = small_image(seed=3)
    tokens = 3
    memory = OffchipMemory(bytes_per_cycle=Fraction(8), latency=3, bus_bytes=8)
    counters = stream_tile_cycles_of_image(image, tokens, memory)
    layout = offchip_layout(image, memory.bus_bytes)
    acc = stream_accesses("gobo", image.rows, image.cols, tokens, TINY.pes, TINY.lanes,
                          outlier_words=layout.outlier_words, outlier_lanes=TINY.outlier_lanes)
    assert acc["index"]["reads"] == counters["ideal_cycles"]
    assert acc["activation"]["reads"] - TINY.outlier_lanes * acc["outlier"]["reads"] == \
        counters["ideal_cycles"]
    assert list(layout.outlier_words) == [int(w) for w in image.words_per_block()]
    assert acc["outlier"]["writes"] == sum(image.words_per_block()) > 0
    assert counters["bytes_read"] == layout.size


class _Mem:
    def __init__(self, read_pj, write_pj):
        self.read_pj, self.write_pj = read_pj, write_pj


def _layer(count=1, cycles=None):
    return LayerWork(name="fc", ops=1000, offchip_bytes=100, cycles=cycles, count=count,
                     accesses={"activation": {"reads": 10, "writes": 2},
                               "weight": {"reads": 5, "writes": 1}})


def test_energy_sums():
    mems = {"activation": _Mem(3.0, 4.0), "weight": _Mem(10.0, 20.0)}
    e = layer_energy(_layer(), mems, 2.0, LogicPower(pj_per_op=0.5))
    assert e["onchip_pj"] == {"activation": 38.0, "weight": 70.0}
    assert e["offchip_pj"] == 1600.0 and e["logic_pj"] == 500.0
    assert e["total_pj"] == 38.0 + 70.0 + 1600.0 + 500.0
    total = inference_energy([_layer(count=6), _layer(count=2)], mems, 2.0,
                             LogicPower(pj_per_op=0.5))
    assert total["total_pj"] == 8 * e["total_pj"]
    assert total["logic_pj"] + total["onchip_pj"] + total["offchip_pj"] == total["total_pj"]
    # mW at a clock: 2 mW x 1000 cycles / 100 MHz = 20 nJ
    power = LogicPower(mw=2.0, clock_mhz=100.0)
    assert layer_energy(_layer(cycles=1000), mems, 2.0, power)["logic_pj"] == \
        pytest.approx(20000.0)
    with pytest.raises(ValueError, match="has no cycles"):
        layer_energy(_layer(), mems, 2.0, power)
    # the logic is never defaulted
    with pytest.raises(ValueError, match="logic power missing"):
        inference_energy([_layer()], mems, 2.0, None)
    alone = inference_energy([_layer()], mems, 2.0, None, without_logic=True)
    assert alone["logic_pj"] is None and alone["total_pj"] == 38.0 + 70.0 + 1600.0
    with pytest.raises(ValueError, match="no energy per access for memory weight"):
        layer_energy(_layer(), {"activation": mems["activation"]}, 2.0, None)
    with pytest.raises(ValueError, match="either pj_per_op or mw"):
        LogicPower()


def _tile_pair():
    """A made-up GOBO tile and W16A16 MAC tile (4 x 4) with their real memory specs."""
    from tests.test_synth import _fake
    tile = {"pes": 4, "ecp5_skipped": "skipped"}
    designs = {"gobo_tile_p4_l4_a16": _fake("gobo_tile", 4, 16, 3200.0, 80.0, 6400, **tile),
               "mac_tile_w16a16_p4_l4": _fake("mac_tile", 4, 16, 6400.0, 40.0, 3200, 16,
                                              **tile)}
    for name, d in designs.items():
        d["design"] = name
        d.pop("ecp5", None)
    return designs


def test_synth_report_tile_area_with_memories(tmp_path):
    from synth.report import NOTE, comparison, write_reports
    designs = _tile_pair()
    comp = comparison(designs)
    r = comp["tiles"]["with_memories"]["pairs"][0]
    g, m = r["gobo_figures"], r["mac_figures"]
    for side, d in ((g, designs["gobo_tile_p4_l4_a16"]), (m, designs["mac_tile_w16a16_p4_l4"])):
        mems = d["memory_bits_on_chip"]["memories"]
        assert side["sram_um2"] == pytest.approx(
            sum(sram(x["width"], x["depth"]).area_um2 for x in mems.values()))
        assert side["total_um2"] == side["logic_um2"] + side["sram_um2"]
        assert side["bitcell_floor_um2"] == 13.5 * d["memory_bits_on_chip"]["total_bits"]
    assert r["gobo_over_mac"]["total_um2"] == g["total_um2"] / m["total_um2"]
    assert math.isclose(r["gobo_over_mac"]["logic_um2"], 0.5)
    md = write_reports({"note": NOTE, "designs": designs, "comparison": comp, "errors": []},
                       tmp_path)
    assert "## Tile area with the memories" in md and "GF180MCU" in md
    line = next(x for x in md.splitlines() if x.startswith("| gobo_tile_p4_l4_a16 vs mac_tile"
                                                           "_w16a16_p4_l4 | 0.00 |"))
    assert f"| {r['gobo_over_mac']['total_um2']:.2f} |" in line


def test_sram_energy_of_a_real_buffer_is_its_macros():
    """A streaming buffer's word read costs its ceil(width/8) macros: the minilm_stream index
    word (768 bits = 96 macros) reads at 96 x one macro's read."""
    from golden.config import preset
    from golden.hwmodel.packing import format_bits, index_word_fields
    config = preset("minilm_stream")
    width = format_bits(index_word_fields(config))
    e = sram(width, 2 * config.chunks_max)
    assert e.columns == math.ceil(width / 8)
    assert e.read_pj == pytest.approx(e.columns * e.macro.read_pj)
    assert np.isclose(e.read_pj / width, e.macro.read_pj / 8)


def test_synth_report_refresh_rewrites_an_existing_report(tmp_path):
    import json

    from synth.report import NOTE, refresh
    designs = _tile_pair()
    path = tmp_path / "synth.json"
    path.write_text(json.dumps({"note": NOTE, "designs": designs, "errors": []}))
    md = refresh(path)
    assert "## Tile area with the memories" in md and (tmp_path / "synth.md").read_text() == md
    assert json.loads(path.read_text())["comparison"]["tiles"]["with_memories"]["pairs"]
    path.write_text("[]")
    with pytest.raises(ValueError, match="is not a synth.json"):
        refresh(path)


def test_energy_report_refuses_missing_or_bad_logic_figures(load_script):
    script = load_script("energy_report")
    with pytest.raises(SystemExit, match="no logic energy for gobo_a8, gobo_a4, w16a16"):
        script.main(["--logic-pj-per-op", "gobo=1.5"])
    with pytest.raises(SystemExit, match="'gobo=x' is not DESIGN=NUMBER"):
        script.main(["--logic-pj-per-op", "gobo=x"])
    with pytest.raises(SystemExit, match="'tpu=1' is not DESIGN=NUMBER"):
        script.main(["--logic-pj-per-op", "tpu=1"])
    for bad in ("gobo=-1", "gobo=nan", "gobo=inf"):
        with pytest.raises(SystemExit, match=f"'{bad}': an energy must be a finite number"):
            script.main(["--logic-pj-per-op", bad])
    with pytest.raises(SystemExit, match="gives gobo twice"):
        script.main(["--logic-pj-per-op", "gobo=1", "--logic-pj-per-op", "gobo=2"])
    with pytest.raises(SystemExit, match="exclude each other"):
        script.main(["--without-logic", "--logic-pj-per-op", "gobo=1"])
    # the streaming tiles' buffers: GOBO's index words are 3/16 of W16A16's weight words
    rows = {r["design"]: r for r in script.streaming_area(None)}
    assert rows["gobo"]["memories"]["index"]["width"] * 16 == \
        rows["w16a16"]["memories"]["weight"]["width"] * 3
    assert rows["gobo"]["logic_um2"] is None and rows["gobo"]["total_um2"] is None


def test_energy_report_takes_the_logic_from_a_power_report(tmp_path, load_script):
    script = load_script("energy_report")
    tile = {"runs": {"real": {"bench_passed": True, "compute": {"energy_per_op_pj": 34.1}}}}
    failed = {"runs": {"real": {"bench_passed": False, "compute": {"energy_per_op_pj": 1.0}}}}
    power = tmp_path / "power.json"
    a8 = {"runs": {"real": {"bench_passed": True, "compute": {"energy_per_op_pj": 23.8}}}}
    power.write_text(json.dumps({"tiles": {"gobo_tile_p2_l16_a16": tile,
                                           "gobo_tile_p2_l16_a8": a8,
                                           "mac_tile_p2_l16_w8a8": failed}}))
    logic, source = script.power_logic(power)
    # only a tile whose gate-level run passed gives a figure; the rest are absent, not defaulted;
    # GOBO A8 (make power's A8 tile) is the design W8A8 is paired with
    assert logic == {"gobo": 34.1, "gobo_a8": 23.8} and str(power) in source
    assert script.PAIRED_GOBO["w8a8"] == "gobo_a8"
    with pytest.raises(SystemExit, match="no such file .*make power"):
        script.power_logic(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(SystemExit, match="not a power report"):
        script.power_logic(tmp_path / "bad.json")
    with pytest.raises(SystemExit, match="exclude each other"):
        script.main(["--without-logic", "--power", str(power)])
    power.write_text(json.dumps({"tiles": {"mac_tile_p2_l16_w8a8": tile}}))
    with pytest.raises(SystemExit, match="no GOBO A16 tile"):
        script.main(["--power", str(power), "--out", str(tmp_path)])
