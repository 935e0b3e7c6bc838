"""`gobo simulate`: bad input gets one line and a non-zero exit before any RTL is built; a small
matrix runs end to end on the tiny tile and reports in JSON."""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gobo.cli import main
from gobo.common import CliError
from golden.config import GOBO_ONLY_FIELDS


@pytest.fixture
def small_model(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((40, 60)).astype(np.float32) * 0.05
    weights[3, 7] = 0.9          # a few outliers, as BERT has
    weights[30, 59] = -0.8
    path = tmp_path / "small.npz"
    np.savez(path, w=weights, b=rng.standard_normal(40).astype(np.float32) * 0.1,
             v=np.zeros(5, np.float32), bad=np.full((40, 60), np.nan, np.float32))
    return path


@pytest.mark.parametrize("args, message", [
    (["--tensor", "missing"], "no tensor 'missing' (the file has 4 tensors)"),
    (["--tensor", "ww"], "no tensor 'ww'; did you mean 'w'?"),
    (["--tensor", "w", "--bias", "vv"], "no tensor 'vv'; did you mean 'v'?"),
    (["--tensor", "w", "--seed", "-1"], "--seed must be a non-negative integer, not -1"),
    (["--tensor", "w", "--activations", "{d}/two.npy", "--tokens", "3"],
     "--tokens 3 but {d}/two.npy holds 2 activation rows"),
    (["--tensor", "w", "--activations", "{d}/empty.npy"], "holds 0 activation rows"),
    (["--tensor", "w", "--activations", "{d}"], "is a folder, not a .npy file"),
    (["--tensor", "v"], "v has shape (5,); a 2-D tensor is needed"),
    (["--tensor", "bad"], "bad contains NaN or Inf"),
    (["--tensor", "w", "--bias", "v"], "bias v has 5 values; w has 40 rows"),
    (["--tensor", "w", "--tokens", "9"], "--tokens must be 1..4 for preset tiny, not 9 (with "
     "--memory or a *_stream preset the streaming tile runs them in token groups)"),
    (["--tensor", "w", "--activations", "/nonexistent.npy"], "cannot read activations"),
    (["--tensor", "w", "--tokens", "0"], "--tokens must be at least 1, not 0"),
    (["--tensor", "w", "--tokens", "99999999999", "--memory", "ddr4_3200_x64"],
     "--tokens must be at most 8192 (16 sequences of 512), not 99999999999"),
    (["--tensor", "w", "--flavour", "w8a8", "--outlier-lanes", "2"],
     "--outlier-lanes applies to the GOBO tile, not to --flavour w8a8"),
    (["--tensor", "w", "--flavour", "w4a4", "--outlier-fit", "robust", "--outlier-lanes", "1"],
     "--outlier-lanes and --outlier-fit apply to the GOBO tile, not to --flavour w4a4"),
    (["--tensor", "w", "--flavour", "compressed_w16a16", "--outlier-lanes", "2"],
     "--outlier-lanes sizes the streaming decompressor's outlier words; the whole-layer "
     "--flavour compressed_w16a16 tile has none (add --memory or a *_stream preset)"),
])
def test_bad_input_is_one_line(small_model, capsys, args, message, tmp_path):
    cols = int(np.load(small_model)["w"].shape[1])
    np.save(tmp_path / "two.npy", np.ones((2, cols), np.float32))
    np.save(tmp_path / "empty.npy", np.ones((0, cols), np.float32))
    args = [a.format(d=tmp_path) for a in args]
    message = message.format(d=tmp_path)
    assert main(["simulate", str(small_model), "--preset", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gobo: error: ") and message in err and err.count("\n") == 1


def test_too_many_rows_names_the_limit_that_binds(tmp_path, capsys):
    """On a streaming preset max_rows sizes the row counters: the error says so, and does not
    point at a *_stream preset it is already on."""
    np.save(tmp_path / "tall.npy", np.zeros((70000, 16), np.float32))
    assert main(["simulate", str(tmp_path / "tall.npy"), "--tensor", "tall"]) == 2
    err = capsys.readouterr().err
    assert err == ("gobo: error: tall has 70000 rows; preset minilm_stream holds at most "
                   "max_rows=65536 in its row counters\n"), err
    assert main(["simulate", str(tmp_path / "tall.npy"), "--tensor", "tall", "--preset",
                 "tiny"]) == 2
    assert "max_rows=64 on chip (a *_stream preset takes up to 65536)" in capsys.readouterr().err


def test_a_npy_file_names_its_one_tensor(tmp_path, capsys):
    """A .npy holds one tensor named after the file's stem: a wrong --tensor says that name."""
    np.save(tmp_path / "wide.npy", np.zeros((8, 16), np.float32))
    assert main(["simulate", str(tmp_path / "wide.npy"), "--tensor", "x"]) == 2
    err = capsys.readouterr().err
    assert "no tensor 'x' (the file has 'wide')" in err and err.count("\n") == 1, err


def test_preset_auto_streams_what_does_not_fit_on_chip():
    """auto: the whole-layer minilm tile when the layer fits, else the smallest streaming preset
    whose dot length holds it (more tokens than its activation memory run in token groups), else
    the largest in passes; a named memory streams; too wide for the passes' accumulator: one
    line naming the limit."""
    from gobo.commands.simulate import choose_preset
    assert choose_preset("auto", 1536, 384, 4, None) == ("minilm", False)
    assert choose_preset("auto", 1536, 384, 4, "ddr4_3200_x64") == ("minilm_stream", True)
    assert choose_preset("auto", 384, 1536, 64, None) == ("minilm_stream", True)
    assert choose_preset("auto", 3072, 768, 4, None) == ("minilm_stream", True)
    assert choose_preset("auto", 768, 3072, 4, None) == ("bert_base_stream", True)
    assert choose_preset("auto", 1024, 4096, 4, None) == ("bert_large_stream", True)
    assert choose_preset("tiny", 40, 60, 3, "ulx3s_sdram") == ("tiny", True)
    assert choose_preset("minilm", 40, 60, 3, None) == ("minilm", False)
    # wider than every preset: the largest in passes (docs/offchip.md section 10)
    assert choose_preset("auto", 8, 4097, 1, None) == ("bert_large_stream", True)
    assert choose_preset("auto", 8, 16384, 1, None) == ("bert_large_stream", True)
    with pytest.raises(CliError, match="40000 columns exceed max_dot_length=4096 of the largest "
                                       "streaming preset bert_large_stream; no preset takes it: "
                                       "in 10 passes the tile accumulator would need 66 bits"):
        choose_preset("auto", 8, 40000, 1, None)
    assert choose_preset("auto", 8, 4000, 129, None) == ("bert_large_stream", True)
    assert choose_preset("auto", 384, 384, 9, None) == ("minilm_stream", True)
    assert choose_preset("auto", 1536, 384, 512, None) == ("minilm_stream", True)


def test_simulate_runs_the_tiny_tile(small_model, capsys):
    status = main(["simulate", str(small_model), "--preset", "tiny", "--tensor", "w",
                   "--bias", "b", "--tokens", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["error"]
    assert report["mismatches"] == 0 and report["outputs_checked"] == 3 * 40
    assert report["outliers"] >= 2 and report["counters_match_model"]
    assert report["cycles"] >= report["ideal_cycles"] == 3 * 10 * 15
    assert 0 < report["rel_rmse_vs_fp32"] < 0.5


def test_constant_outputs_have_no_relative_error(tmp_path, capsys):
    """All-zero weights give constant FP32 outputs: the relative RMSE is n/a (null in JSON), not
    nan with a NumPy warning."""
    np.save(tmp_path / "zeros.npy", np.zeros((16, 16), np.float32))
    args = ["simulate", str(tmp_path / "zeros.npy"), "--tensor", "zeros", "--preset", "tiny"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "rel RMSE vs FP32 n/a (the FP32 outputs are constant" in out and "nan" not in out
    assert "RuntimeWarning" not in err, err
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == 0 and report["rel_rmse_vs_fp32"] is None


def test_simulate_streams_a_mac_flavour(small_model, capsys):
    """--flavour w4a4 with a memory: the streaming MAC tile on the layer's dense 4-bit weights,
    6 tokens on a tile of 4 in two token groups, every output and counter checked, the memory's
    report fields; no outliers reported."""
    status = main(["simulate", str(small_model), "--preset", "tiny", "--tensor", "w",
                   "--bias", "b", "--tokens", "6", "--flavour", "w4a4", "--memory",
                   "ulx3s_sdram", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["error"]
    assert report["design"] == "mac_stream_tile" and report["weight_bits"] == 4
    assert report["flavour"] == "w4a4" and report["config"]["act_bits"] == 4
    assert report["mismatches"] == 0 and report["outputs_checked"] == 6 * 40
    assert report["counters_match_model"] and report["memory"] == "ulx3s_sdram"
    groups = report["token_groups"]
    assert [g["tokens"] for g in groups] == [4, 2]
    assert all(g["counters_match_model"] and g["mismatches"] == 0 for g in groups)
    assert report["bytes_read"] == 2 * report["offchip_bytes"] > 0
    assert report["stall_memory"] == report["expected_counters"]["stall_memory"] > 0
    assert report["outliers"] is None and report["row_blocks"] == 10
    # 4-bit activations and per-tensor 4-bit weights (0.9 and -0.8 among 0.05-sized ones set the
    # scale): coarse (0.69 when written), but a result, not noise.
    assert 0 < report["rel_rmse_vs_fp32"] < 0.9


def test_simulate_runs_a_mac_flavour_on_chip(small_model, capsys):
    """--flavour without a memory or *_stream preset: the whole-layer MAC tile."""
    status = main(["simulate", str(small_model), "--preset", "tiny", "--tensor", "w",
                   "--tokens", "2", "--flavour", "w8a8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["error"]
    assert report["design"] == "mac_tile" and report["weight_bits"] == 8 and "memory" not in report
    assert report["mismatches"] == 0 and report["outputs_checked"] == 2 * 40
    assert report["cycles"] == report["expected_counters"]["cycles"] > report["ideal_cycles"]
    # Its config lists the fields a MAC tile uses: none of the GOBO PE's and side path's.
    assert not set(GOBO_ONLY_FIELDS) & set(report["config"])
    assert report["config"]["lanes"] == 4 and report["config"]["act_bits"] == 8


def test_simulate_streams_the_memory_compression_flavour(small_model, capsys):
    """--flavour compressed_w16a16 with a memory: the streaming memory-compression tile on the
    layer's GOBO form, in two token groups, every output and counter checked (the build of
    tests/test_cocotb_compressed_stream_tile.py); its outliers are its GOBO form's; its
    Markdown report says the decompressor writes them."""
    args = ["simulate", str(small_model), "--preset", "tiny", "--tensor", "w", "--bias", "b",
            "--tokens", "6", "--flavour", "compressed_w16a16", "--memory", "ddr4_3200_x64"]
    status = main([*args, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report["error"]
    assert report["design"] == "compressed_stream_tile" and report["weight_bits"] == 16
    assert report["flavour"] == "compressed_w16a16" and report["memory"] == "ddr4_3200_x64"
    assert report["mismatches"] == 0 and report["outputs_checked"] == 6 * 40
    assert report["counters_match_model"] and report["row_blocks"] == 10
    assert [(g["tokens"], g["counters_match_model"]) for g in report["token_groups"]] == \
        [(4, True), (2, True)]
    assert report["bytes_read"] == 2 * report["offchip_bytes"] > 0
    assert report["outliers"] >= 2 and report["outliers_processed"] is None
    assert "outlier_lanes" in report["config"] and "centroid_bits" not in report["config"]
    assert 0 < report["rel_rmse_vs_fp32"] < 0.5
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "compressed_stream_tile W16A16 preset tiny" in text
    assert f"outliers         {report['outliers']} (written by the decompressor)" in text


def test_two_simulations_at_once_both_pass(small_model):
    """Two `gobo simulate` processes on the same tensor at once, with different activations
    (they once shared a run folder keyed on the tensor name, so one read the other's vectors
    and reported false mismatches); one also keeps its waveform (--waves)."""
    common = [sys.executable, "-m", "gobo", "simulate", str(small_model), "--preset", "tiny",
              "--tensor", "w", "--bias", "b", "--tokens", "3", "--json"]
    runs = [subprocess.Popen(common + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for extra in ([], ["--waves", "--seed", "2"])]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        reports.append(json.loads(out))
    for report in reports:
        assert report["error"] is None and report["mismatches"] == 0
        assert report["outputs_checked"] == 3 * 40 and report["counters_match_model"]
    assert reports[0]["waves"] is None
    wave = pathlib.Path(reports[1]["waves"])
    assert wave.name == "dump.fst" and wave.stat().st_size > 1000
    shutil.rmtree(wave.parent)
