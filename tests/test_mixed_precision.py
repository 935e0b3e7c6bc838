"""Beyond one width per model: GPTQ index choice, row-group dictionaries, the bits-per-weight
count, the per-matrix 3/4-bit mix under a budget, its round trip through the .gobo file, the
4-bit tile running 3-bit matrices, and the `gobo quantize --all` / `gobo run` options
(docs/quantizer.md, "Beyond one width per model")."""

import json

import numpy as np
import pytest

from gobo.cli import main
from golden.config import preset
from golden.hwmodel.layer_image import ImageError, build_layer_image, widen_dictionary
from golden.hwmodel.tile import tile_outputs
from golden.nlp.bert import BertEncoder, fc_names
from golden.nlp.mixed_precision import allocate, fc_bits_per_weight
from golden.nlp.quantized_model import (
    ModelFormatError,
    QuantSpec,
    from_bytes,
    load,
    quantize_model,
    save,
)
from golden.nlp.sentiment import held_out, load_tweets, split
from golden.nlp.tiny_bert import WORDS, write_tiny_model
from golden.nlp.tokenizer import Tokenizer
from golden.quant import stored
from golden.quant.gptq import gram, quantize_gptq
from golden.quant.quantizer import quantize
from golden.quant.row_groups import quantize_row_groups

SENTENCES = [" ".join(WORDS[i:i + 5]) for i in range(0, 15)]


@pytest.fixture
def tiny(tmp_path):
    weights = write_tiny_model(tmp_path / "tiny")
    return weights, BertEncoder.from_files(weights, weights.parent / "config.json"), \
        Tokenizer(weights.parent)


def _correlated(rng, tokens, cols):
    """Activations with strongly correlated features, as a layer's inputs are."""
    mix = rng.normal(size=(cols, cols)) * np.linspace(1, 0.05, cols)
    return rng.normal(size=(tokens, cols)) @ mix


# GPTQ ---------------------------------------------------------------------------------------------

def test_gptq_lowers_the_output_error_and_keeps_the_stored_form():
    rng = np.random.default_rng(3)
    w = 0.05 * rng.standard_t(4, size=(24, 48))
    x = _correlated(rng, 400, 48)
    plain = quantize(w, index_bits=3)
    layer = quantize_gptq(w, gram(x), index_bits=3)
    # same dictionary and outlier positions: only the index choice and outlier values differ
    np.testing.assert_array_equal(layer.centroids, plain.centroids)
    np.testing.assert_array_equal(layer.outlier_positions, plain.outlier_positions)
    assert layer.n_outliers > 0
    assert not np.array_equal(layer.indexes, plain.indexes)

    def output_error(q):
        return np.linalg.norm(x @ (w - q.dequantize()).T)

    assert output_error(layer) < 0.8 * output_error(plain)
    in_order = quantize_gptq(w, gram(x), index_bits=3, act_order=False)
    assert output_error(in_order) < 0.8 * output_error(plain)
    assert not np.array_equal(in_order.indexes, layer.indexes)
    # the weight error is larger: GPTQ trades it for the output error
    assert layer.stats.rel_rmse > plain.stats.rel_rmse
    back = stored.from_bytes(stored.to_bytes(layer))
    np.testing.assert_array_equal(back.dequantize(), layer.dequantize())


def test_gptq_refuses_a_wrong_hessian():
    w = np.ones((4, 6))
    with pytest.raises(ValueError, match=r"hessian must be a finite \[6, 6\] matrix"):
        quantize_gptq(w, np.eye(5))
    with pytest.raises(ValueError, match="damp must be positive"):
        quantize_gptq(w, np.eye(6), damp=0.0)


# Bits per weight, counted by hand ----------------------------------------------------------------

def test_bits_per_weight_matches_a_hand_count():
    w = np.linspace(-1, 1, 4 * 8).reshape(4, 8)
    w[1, 3], w[2, 5] = 40.0, -40.0       # two weights far in the tails: the outliers
    layer = quantize(w, index_bits=3)
    assert layer.n_outliers == 2
    # header 24 + dictionary 8 x 4 + indexes ceil(32 x 3 / 8) = 12 + 2 x (1-byte position + 4)
    hand = 24 + 32 + 12 + 2 * (1 + 4)
    assert len(stored.to_bytes(layer)) == hand
    assert fc_bits_per_weight([layer]) == pytest.approx(8 * hand / 32)
    groups = quantize_row_groups(w, 2, index_bits=3)
    # two groups of 2 x 8: each 24 + 32 + 6 bytes, plus one outlier (1 + 4 bytes) in each
    hand_groups = 2 * (24 + 32 + 6 + 5)
    assert groups.stored_nbytes() == len(groups.to_bytes()) == hand_groups
    assert fc_bits_per_weight([groups]) == pytest.approx(8 * hand_groups / 32)
    np.testing.assert_array_equal(groups.dequantize()[1, 3], 40.0)


# The 3/4-bit mix ----------------------------------------------------------------------------------

def test_allocate_narrows_the_least_sensitive_per_bit_first():
    rng = np.random.default_rng(0)
    mats = {n: rng.normal(size=(16, 16)) for n in "abcd"}
    narrow = {n: quantize(m, index_bits=3) for n, m in mats.items()}
    wide = {n: quantize(m, index_bits=4) for n, m in mats.items()}
    drops = {"a": 0.4, "b": 0.01, "c": 0.02, "d": 0.3}
    low, high = fc_bits_per_weight(narrow.values()), fc_bits_per_weight(wide.values())
    # room for exactly two narrow matrices: b and c, the least sensitive
    budget = (low + high) / 2 + 1e-9
    chosen = allocate(narrow, wide, drops, budget)
    assert {n for n in chosen if chosen[n] is narrow[n]} == {"b", "c"}
    assert fc_bits_per_weight(chosen.values()) <= budget
    assert allocate(narrow, wide, drops, high) == wide     # room for all: nothing narrowed
    with pytest.raises(ValueError, match=r"below the \d\.\d{3} the narrow form alone needs"):
        allocate(narrow, wide, drops, low - 0.01)


def test_budget_model_round_trips_and_is_checked(tiny, tmp_path):
    _, enc, tok = tiny
    fc = fc_names(enc.config)
    with pytest.raises(ValueError, match="need calibration sentences"):
        quantize_model(enc, QuantSpec(bits=3, bits_budget=3.5))
    spec = QuantSpec(bits=3, embedding_bits=None, rounding="gptq", bits_budget=3.9)
    steps = []
    model = quantize_model(enc, spec, calibration=(tok, SENTENCES),
                           progress=lambda label, seconds: steps.append(label))
    # every step is named once: the Gram matrices first, each matrix at both widths, then the
    # sensitivities
    assert steps == ([f"measured GPTQ Gram matrices of the FC inputs on {len(SENTENCES)} "
                      f"sentences"]
                     + [f"quantized {n} at {b} bits" for b in (3, 4) for n in fc]
                     + [f"measured bits-budget sensitivities of {len(fc)} matrices on "
                        f"{len(SENTENCES)} sentences"])
    widths = {model.layers[n].index_bits for n in fc}
    assert widths == {3, 4}
    bits = fc_bits_per_weight(model.layers[n] for n in fc)
    assert bits <= 3.9
    save(model, tmp_path / "m.gobo")
    back = load(tmp_path / "m.gobo")
    assert back.spec == spec
    for n in fc:
        assert back.layers[n].index_bits == model.layers[n].index_bits
        np.testing.assert_array_equal(back.layers[n].dequantize(), model.layers[n].dequantize())
    # a spec whose budget the stored matrices exceed is refused (manifest rewritten, CRC redone)
    data = (tmp_path / "m.gobo").read_bytes()
    tight = _with_spec(data, bits_budget=round(bits - 0.01, 3))
    with pytest.raises(ModelFormatError, match="over the spec's budget"):
        from_bytes(tight)
    # a file written before rounding/bits_budget existed reads with their defaults
    old = _with_spec(save_plain(enc, tmp_path), drop=("rounding", "bits_budget"))
    assert from_bytes(old).spec == QuantSpec(embedding_bits=None)


def save_plain(enc, tmp_path):
    save(quantize_model(enc, QuantSpec(embedding_bits=None)), tmp_path / "plain.gobo")
    return (tmp_path / "plain.gobo").read_bytes()


def _with_spec(data, drop=(), **changes):
    from golden.nlp.quantized_model import HEADER_SIZE, pack_header
    length = int.from_bytes(data[12:16], "little")
    manifest = json.loads(data[HEADER_SIZE:HEADER_SIZE + length])
    manifest["spec"].update(changes)
    for key in drop:
        del manifest["spec"][key]
    text = json.dumps(manifest, separators=(",", ":")).encode()
    return pack_header(text) + text + data[HEADER_SIZE + length:]


def test_spec_options_are_validated():
    for kwargs, message in [({"rounding": "round"}, "rounding must be one of"),
                            ({"bits_budget": -1.0}, "bits_budget must be a number"),
                            ({"bits_budget": float("nan")}, "bits_budget must be a number"),
                            ({"scheme": "uniform", "rounding": "gptq"}, "apply to scheme gobo"),
                            ({"bits": 8, "bits_budget": 8.5}, "bits must be below 8")]:
        with pytest.raises(ValueError, match=message):
            QuantSpec(**kwargs)


# The 4-bit tile running a 3-bit matrix ------------------------------------------------------------

def test_a_wider_tile_runs_a_narrow_matrix_exactly():
    rng = np.random.default_rng(5)
    w = 0.05 * rng.standard_t(4, size=(40, 48))
    layer = quantize(w, index_bits=3)
    narrow_tile = preset("tiny").replace(max_rows=64, max_dot_length=64)
    wide_tile = narrow_tile.replace(index_bits=4)
    acts = rng.integers(-2000, 2000, size=(3, 48))
    y3 = tile_outputs(build_layer_image(narrow_tile, w, act_exponent=-10, layer=layer), acts)
    wide = widen_dictionary(layer, 4)
    assert len(wide.centroids) == 16 and np.all(np.diff(wide.centroids) >= 0)
    np.testing.assert_array_equal(wide.dequantize(), layer.dequantize())
    y4 = tile_outputs(build_layer_image(wide_tile, w, act_exponent=-10, layer=wide), acts)
    np.testing.assert_array_equal(y4, y3)
    # the checker sees a changed output: a 4-bit requantization of the same matrix differs
    other = build_layer_image(wide_tile, w, act_exponent=-10, layer=quantize(w, index_bits=4))
    assert not np.array_equal(tile_outputs(other, acts), y3)
    with pytest.raises(ImageError, match="does not fit a tile of 3-bit"):
        widen_dictionary(quantize(w, index_bits=4), 3)


# Held-out calibration tweets ----------------------------------------------------------------------

def test_held_out_tweets_are_in_no_split():
    data = load_tweets()
    parts = split(data, {"calibration": 16, "train": 1000, "test": 300}, seed=13)
    held = held_out(data, 128, seed=13)
    used = {t for p in parts.values() for t in p.texts}
    assert len(held) == 128 and not used & set(held.texts)


# The command line ---------------------------------------------------------------------------------

def test_cli_quantize_all_with_gptq_and_budget(tiny, tmp_path, capsys):
    weights, _, _ = tiny
    out = tmp_path / "mixed.gobo"
    code = main([str(a) for a in ["quantize", weights, "--all", "--embedding-bits", "none",
                                  "--rounding", "gptq", "--bits-budget", "3.9",
                                  "--weight-calibration", "12", "-o", out, "--json", "--quiet"]])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(stdout)
    assert report["spec"]["rounding"] == "gptq" and report["spec"]["bits_budget"] == 3.9
    assert report["bits_per_weight"]["fc"] <= 3.9
    assert {r["bits_per_weight"] > 3.9 for r in report["layers"]} == {True, False}
    assert load(out).spec.bits_budget == 3.9


@pytest.mark.parametrize("argv, message", [
    (["--bits-budget", "2.0"], "below the"),
    (["--bits-budget", "nan"], "--bits-budget must be a number"),
    (["--scheme", "uniform", "--rounding", "gptq"], "applies to --scheme gobo"),
    (["--weight-calibration", "0", "--rounding", "gptq"], "--weight-calibration must be"),
])
def test_cli_bad_budget_options(tiny, capsys, argv, message):
    weights, _, _ = tiny
    code = main(["quantize", str(weights), "--all", "--quiet", "--weight-calibration", "12",
                 *argv])
    _, err = capsys.readouterr()
    assert code != 0 and message in err and "Traceback" not in err


def test_cli_run_with_a_bits_budget_on_the_wider_tile(tiny, capsys):
    weights, _, _ = tiny
    argv = ["run", weights, "--preset", "tiny", "--rounding", "gptq", "--bits-budget", "3.9",
            "--threshold", "-6", "--weight-calibration", "12", "--sentences", "4", "--train",
            "20", "--calibration", "2", "--act-bits", "16", "--json", "--quiet"]
    code = main([str(a) for a in argv])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(stdout)
    assert report["tile"]["index_bits"] == 4 and report["tile"]["outlier_log_prob"] == -6
    gobo = report["schemes"][1]
    assert gobo["label"] == "GOBO 3/4b <= 3.9 b/w gptq weights only"
    assert report["options"]["bits_budget"] == 3.9
    assert 0 < report["seconds"]["quantize"] < report["seconds"]["wall"]
    # the accelerator runs the mixed matrices: its A16 embeddings stay close to weights-only
    assert report["schemes"][2]["mean_cos_vs_gobo"] > 0.99
    assert report["accelerator"][0]["totals"]["mismatches"] == 0


def test_cli_run_rtl_refuses_calibrated_weights(tiny, capsys):
    weights, _, _ = tiny
    code = main(["run", str(weights), "--rtl", "--rounding", "gptq", "--bits-budget", "3.5"])
    _, err = capsys.readouterr()
    assert code == 2 and "--rounding gptq, --bits-budget cannot be used with --rtl" in err
