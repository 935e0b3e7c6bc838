"""``gobo run --rtl``: a sentence through every encoder FC layer on the tile RTL (cocotb on
Verilator), layer by layer with the host in between, checked against the bit-exact model.

Kept small for ``make test``: a one-layer tiny BERT (6 FC layers, 13 tokens in 4 runs of the
``tiny`` tile's 4 tokens), on the ``gobo_tile_tiny`` build that tests/test_cocotb_tile.py shares.
The whole MiniLM sentence is ``make test-full``'s (docs/model.md, "A sentence through the RTL").
"""

import contextlib
import io
import json
import pathlib
import re
import shutil

import numpy as np
import pytest

from gobo.cli import main
from golden.accel.encoder import calibrate
from golden.config import preset
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.tiny_bert import TINY, write_tiny_model
from golden.nlp.tokenizer import Tokenizer
from sim.rtl_sentence import format_rtl_sentence, rtl_sentence_report

SENTENCE = "you may copy the software and any work of this program"   # 13 tokens with CLS, SEP
ONE_LAYER = {**TINY, "num_hidden_layers": 1}


@pytest.fixture(scope="module")
def one_layer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny1")
    write_tiny_model(folder, config=ONE_LAYER)
    return folder


def test_cli_sentence_through_the_rtl_matches_to_the_last_bit(one_layer, tmp_path):
    out = tmp_path / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", str(one_layer / "model.safetensors"), "--preset", "tiny", "--rtl",
                     "--text", SENTENCE, "--calibration", "3", "--json", "--out", str(out)])
    assert code == 0, stderr.getvalue()
    report = json.loads(stdout.getvalue())
    assert report == json.loads((out / "rtl_sentence.json").read_text())
    assert report["sentences"] == [SENTENCE] and report["tokens"] == [13]
    assert report["tile"]["design"] == "gobo_tile_tiny" and report["tile"]["act_bits"] == 16
    layers = report["layers"]
    assert [(r["layer"], r["kind"]) for r in layers] == [
        (0, k) for k in ("query", "key", "value", "attention.output", "intermediate", "output")]
    for r in layers:
        assert r["tokens"] == 13 and r["runs"] == 4   # 4 + 4 + 4 + 1 tokens
        assert r["elements"] == -(-r["shape"][0] // 4) * 4 * 13
        assert r["mismatches"] == 0 and r["bench_mismatches"] == 0 and r["error"] is None
        assert r["first_mismatch"] is None
        assert r["ideal_cycles"] <= r["cycles"] < 2 * r["ideal_cycles"]
    totals = report["totals"]
    assert totals["layers"] == 6 and totals["runs"] == 24 and totals["mismatches"] == 0
    assert totals["elements"] == sum(r["elements"] for r in layers)
    assert report["embeddings"]["equal"] and report["embeddings"]["max_abs_difference"] == 0
    assert report["embeddings"]["rtl_sha256"] == report["embeddings"]["golden_sha256"]
    text = (out / "rtl_sentence.md").read_text()
    assert "0 mismatches" in text and "equal to the golden model's to the last bit" in text
    progress = stderr.getvalue()
    assert "sentence of 13 tokens (4 tile runs of at most 4 per layer)" in progress
    assert "[rtl] 6/6 encoder.layer.0.output.dense: 13 tokens in 4 runs" in progress


def test_one_corrupted_rtl_output_is_caught_and_named(one_layer):
    """The bench flips the lowest bit of one output of the value layer as it reads it from the
    RTL: the bench fails and names the element and a waveform; the host's own check counts
    exactly that element and names it; the later layers (fed by the corrupted host) still agree
    with the golden model on their own inputs; the embedding is no longer the golden one."""
    config = preset("tiny")
    encoder = BertEncoder.from_files(one_layer / "model.safetensors",
                                     BertConfig.from_file(one_layer / "config.json"))
    tokenizer = Tokenizer(one_layer)
    calibration = calibrate(encoder, tokenizer, ["the program is free software",
                                                 "you may copy it"])
    value = "encoder.layer.0.attention.self.value"
    report = rtl_sentence_report(encoder, tokenizer, config, calibration, [SENTENCE],
                                 tag="tiny", corrupt=(value, 5, 9))
    by_name = {r["name"]: r for r in report["layers"]}
    assert report["totals"]["mismatches"] == 1 and report["totals"]["bench_failures"] == 1
    bad = by_name[value]
    row, token, got, want = bad["first_mismatch"]
    assert (row, token) == (5, 9) and got == want ^ 1 and bad["mismatches"] == 1
    # token 9 is token 1 of the third run (tokens 8..11); row 5 is block 1, PE 1: slot 1 * 4 + 1
    assert bad["bench_mismatches"] == 1
    assert f"{value} tokens 8..11 slot 5 PE 1: hardware {got} != golden {want}" in bad["error"]
    wave = pathlib.Path(bad["waves"])
    assert wave.suffix == ".fst" and wave.stat().st_size > 1000 and str(wave) in bad["error"]
    shutil.rmtree(wave.parent)
    shutil.rmtree(re.search(r"run folder (\S+)", bad["error"]).group(1))  # kept on failure
    for r in report["layers"]:
        if r["name"] != value:
            assert r["mismatches"] == r["bench_mismatches"] == 0 and r["error"] is None
    assert not report["embeddings"]["equal"]
    assert report["embeddings"]["rtl_sha256"] != report["embeddings"]["golden_sha256"]
    text = format_rtl_sentence(report)
    assert f"{value}: 1 mismatches, the first at physical row 5 (output " \
        f"{bad['first_mismatch_row']} of the layer), token 9: RTL {got}, golden {want}; " \
        f"waveform {wave}" in text
    assert 0 <= bad["first_mismatch_row"] < 32


@pytest.mark.parametrize("argv, message", [
    (["--rtl", "--act-bits", "16", "8"], "--rtl runs one activation width, not 16 8"),
    (["--rtl", "--sentences", "5"], "--sentences has no effect with --rtl"),
    (["--rtl", "--train", "5"], "--train has no effect with --rtl"),
    (["--rtl", "--text", "  "], "--text is empty"),
    (["--text", "hello"], "--text needs --rtl"),
    (["--rtl", "--text", " ".join(["word"] * 300)], "--text reaches the tokenizer's limit of "
                                                    "256 tokens and would be cut"),
])
def test_rtl_bad_input_is_one_line(argv, message, minilm_path, capsys):
    code = main(["run", str(minilm_path), "--quiet", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("gobo: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_rtl_tile_shape_is_checked():
    """The beats-to-outputs conversion refuses a run with missing beats."""
    from golden.hwmodel.tile_jobs import physical_outputs
    beats = np.arange(2 * 3 * 4).reshape(6, 4)
    y = physical_outputs(2, 4, beats, 3)
    assert y.shape == (8, 3) and y[4 + 1, 2] == beats[1 * 3 + 2, 1]
    with pytest.raises(ValueError, match="5 output beats"):
        physical_outputs(2, 4, beats[:5], 3)
