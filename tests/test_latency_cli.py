"""``gobo latency`` (gobo/commands/latency.py) on a small case: clocks from a synthesis report or
--fmax-mhz, the JSON's microseconds are its cycles at those clocks and its totals the layers'
sums, the counters are the latency model's; one-line errors."""

import json

import numpy as np
import pytest

from gobo.cli import main
from gobo.commands.latency import clock_tiles, clocks_from_synth
from golden.accel.latency_report import (
    NOT_MODELLED,
    compressed_outlier_words,
    fc_layers,
    layer_latency,
    memory_at_clock,
    outlier_words,
)
from golden.nlp.weights import load_tensors

SMALL = ["--models", "minilm", "--tokens", "32", "--memory", "ddr4_3200_x64", "--layers", "1",
         "--designs", "gobo", "w4a4", "--no-plot"]


def _run(argv, capsys):
    code = main(["latency", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _synth(path, osu, ecp5=None):
    designs = {clock_tiles(d)[0]: {"timing": {"fmax_mhz": mhz},
                                "ecp5": {"fmax_mhz": (ecp5 or {}).get(d)}}
               for d, mhz in osu.items()}
    path.write_text(json.dumps({"designs": designs}))
    return path


def test_small_case_from_a_synthesis_report(tmp_path, capsys, minilm_path):
    osu = {"gobo": 80.0, "w16a16": 90.0, "w8a8": 95.0, "w4a4": 100.0}
    synth = _synth(tmp_path / "synth.json", osu)
    ecp5 = _synth(tmp_path / "ecp5.json", osu, {"gobo": 40.0, "w4a4": 50.0})
    code, out, err = _run([*SMALL, "--out", tmp_path, "--synth-report", synth,
                           "--ecp5-report", ecp5], capsys)
    assert code == 0, err
    assert "| 32 | GOBO |" in out and "| 32 | W4A4 |" in out
    assert "w4a4 OSU 100 (`mac_stream_tile_p2_l16_w4a4`), ECP5 50 (" in out
    report = json.loads((tmp_path / "latency.json").read_text())
    assert report["clocks"] == {"osu": {"gobo": 80.0, "w4a4": 100.0},
                                "ecp5": {"gobo": 40.0, "w4a4": 50.0}}
    assert report["clock_tiles"]["osu"] == {"gobo": "gobo_stream_tile_p2_l16_a16",
                                            "w4a4": "mac_stream_tile_p2_l16_w4a4"}
    layers = report["layers"]
    assert len(layers) == 6 * 2 * 2            # 6 FC layers x 2 designs x 2 clocks
    for total in report["totals"]:
        mine = [r for r in layers if all(r[k] == total[k] for k in
                                          ("design", "clock", "memory", "tokens"))]
        assert total["cycles"] == sum(r["cycles"] for r in mine)
        assert total["microseconds"] == pytest.approx(total["cycles"] / total["mhz"])
        assert total["memory_bound"] == (total["stall_memory"] > 0.1 * total["cycles"])
    # One row against the model called directly (the memory at the design's clock).
    row = next(r for r in layers if r["design"] == "gobo" and r["clock"] == "ecp5"
               and r["fc"] == "output")
    tensors = load_tensors(minilm_path)
    words, records, label = outlier_words(tensors, "minilm", 0, "output")
    assert label == row["outlier_source"] == "MiniLM encoder.layer.0.output.dense"
    want = layer_latency("minilm", "gobo", memory_at_clock("ddr4_3200_x64", 40.0), rows=384,
                         cols=1536, tokens=32, words=words, records=records)
    assert (row["cycles"], row["stall_memory"], row["bytes_read"]) == (
        want["cycles"], want["stall_memory"], want["bytes_read"])


def test_memory_compression_rows_are_the_stepping_models(tmp_path, capsys, minilm_path):
    """The memory-compression design in the report: its layer 0 query row (384 x 384, 32
    tokens, DDR4 at its clock) equals the stepping cycle model of its own GOBO form, built as
    the report builds it; nothing is left out as not modelled."""
    from golden.config import mac_flavour
    from golden.hwmodel.compressed_stream_tile import compressed_stream_tile_cycles
    from golden.hwmodel.layer_image import quantize_activations
    from golden.hwmodel.mac_tile import compressed_image, compressed_layer_from_float
    assert NOT_MODELLED == {}
    code, out, err = _run([*SMALL[:-4], "--designs", "compressed_w16a16", "--no-plot",
                           "--fmax-mhz", "87.81", "--out", tmp_path], capsys)
    assert code == 0, err
    assert "| 32 | COMPRESSED_W16A16 |" in out and "Not modelled" not in out
    row = next(r for r in json.loads((tmp_path / "latency.json").read_text())["layers"]
               if r["fc"] == "query")
    tensors = load_tensors(minilm_path)
    config, weight_bits = mac_flavour("w16a16", base="minilm_stream")
    w = tensors["encoder.layer.0.attention.self.query.weight"]
    _, e_x = quantize_activations(config, np.random.default_rng(1).standard_normal((8, 384)))
    layer = compressed_layer_from_float(config, weight_bits, w, act_exponent=e_x,
                                        bias=tensors["encoder.layer.0.attention.self.query.bias"])
    words, _, label = compressed_outlier_words(tensors, "minilm", 0, "query",
                                               "compressed_w16a16")
    assert list(words) == list(compressed_image(layer).words_per_block())
    assert label == row["outlier_source"] == "MiniLM encoder.layer.0.attention.self.query"
    want = compressed_stream_tile_cycles(layer, 32, memory_at_clock("ddr4_3200_x64", 87.81))
    assert (row["cycles"], row["stall_memory"], row["bytes_read"]) == (
        want["cycles"], want["stall_memory"], want["bytes_read"])
    direct = layer_latency("minilm", "compressed_w16a16",
                           memory_at_clock("ddr4_3200_x64", 87.81), rows=384, cols=384,
                           tokens=32, words=words)
    assert direct["cycles"] == want["cycles"]


def test_shapes_and_memory_rescaling():
    assert len(fc_layers("bert_large")) == 24 * 6
    assert fc_layers("bert_base")[4] == (0, "intermediate", 3072, 768)
    ddr4 = memory_at_clock("ddr4_3200_x64", 84.7)
    assert ddr4.name == "ddr4_3200_x64"                     # the preset's own clock
    fast = memory_at_clock("ddr4_3200_x64", 169.4)          # twice the clock
    assert fast.bytes_per_cycle == ddr4.bytes_per_cycle / 2
    assert (fast.latency, fast.refresh_interval, fast.refresh_cycles) == (18, 1322, 60)


def test_errors_are_one_line(tmp_path, capsys):
    missing = tmp_path / "none.json"
    code, _, err = _run([*SMALL, "--out", tmp_path, "--synth-report", missing], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"no synthesis report at {missing}: run `make synth`" in err
    for bad, message in ((["--fmax-mhz", "fast"], "not a number of MHz"),
                         (["--fmax-mhz", "-3"], "the clock must be 1 to 2000 MHz"),
                         (["--fmax-mhz", "inf"], "the clock must be 1 to 2000 MHz"),
                         (["--fmax-mhz", "nan"], "the clock must be 1 to 2000 MHz"),
                         (["--fmax-mhz", "1e-9"], "the clock must be 1 to 2000 MHz"),
                         (["--fmax-mhz", "80", "--fmax-mhz", "gobo=90"],
                          "a clock for gobo is given twice"),
                         (["--fmax-mhz", "80", "--tokens", "32", "32"], "--tokens names 32 twice"),
                         (["--fmax-mhz", "80", "--layers", "7"],
                          "--layers 7 exceeds the 6 encoder layers of minilm"),
                         (["--fmax-mhz", "80", "--ecp5-report", str(tmp_path / "no.json")],
                          "no.json: no such file"),
                         (["--fmax-mhz", "w9a9=80"], "unknown design 'w9a9'"),
                         (["--fmax-mhz", "gobo=80"], "gives no clock for w4a4"),
                         (["--fmax-mhz", "80", "--layers", "0"], "--layers must be a positive"),
                         (["--fmax-mhz", "80", "--tokens", "0"], "--tokens must be positive"),
                         (["--fmax-mhz", "80", "--tokens", "999999999999"],
                          "--tokens 999999999999 exceeds the 512 positions")):
        code, _, err = _run([*SMALL, "--out", tmp_path, *bad], capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, err
    listed = tmp_path / "list.json"
    listed.write_text('{"designs": []}')
    code, _, err = _run([*SMALL, "--out", tmp_path, "--synth-report", listed], capsys)
    assert code == 2 and err.count("\n") == 1 and "not a synthesis report" in err, err
    partial = _synth(tmp_path / "partial.json", {"gobo": 80.0})
    code, _, err = _run([*SMALL, "--out", tmp_path, "--synth-report", partial], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "no OSU Fmax of mac_stream_tile_p2_l16_w4a4 or mac_tile_p2_l16_w4a4" in err


def test_clocks_prefer_the_streaming_tile_and_name_the_fallback(tmp_path):
    """Each design's clock is its streaming tile's Fmax; a report without it (or without its
    figure) gives the whole-layer tile's, and the tile used is returned; ECP5 needs a figure for
    every design or gives none."""
    assert clock_tiles("gobo") == ("gobo_stream_tile_p2_l16_a16", "gobo_tile_p2_l16_a16")
    assert clock_tiles("compressed_w16a16") == ("compressed_stream_tile_p2_l16_w16a16",
                                                "compressed_tile_p2_l16_w16a16")
    report = tmp_path / "synth.json"
    report.write_text(json.dumps({"designs": {
        "gobo_stream_tile_p2_l16_a16": {"timing": {"fmax_mhz": 84.0}},
        "gobo_tile_p2_l16_a16": {"timing": {"fmax_mhz": 86.0}, "ecp5": {"fmax_mhz": 40.0}},
        "mac_stream_tile_p2_l16_w4a4": {"timing": {"fmax_mhz": None}},
        "mac_tile_p2_l16_w4a4": {"timing": {"fmax_mhz": 104.0}}}}))
    assert clocks_from_synth(report, ["gobo", "w4a4"], "timing") == (
        {"gobo": 84.0, "w4a4": 104.0},
        {"gobo": "gobo_stream_tile_p2_l16_a16", "w4a4": "mac_tile_p2_l16_w4a4"})
    assert clocks_from_synth(report, ["gobo"], "ecp5") == (
        {"gobo": 40.0}, {"gobo": "gobo_tile_p2_l16_a16"})
    assert clocks_from_synth(report, ["gobo", "w4a4"], "ecp5") == (None, None)
    assert clocks_from_synth(tmp_path / "none.json", ["gobo"], "timing") == (None, None)
