"""Real text never breaks the hardware's numbers (docs/numerics.md, "Bias" and "Real inputs").

Named regressions of the inputs that were refused before the bias had its own exponent: the two
corpus sentences whose layer-5 FFN output tripped the 32-bit bias field, the real weights halved
and quartered, and a constant matrix with a real bias. Each layer runs as `gobo simulate
--activations` would (its own activation exponent, real bias, calibrated output exponent) through
image building and the bit-exact tile model. The full 300-sentence scan at 16- and 8-bit
activations is `make test-full` (scripts/numerics_scan.py).
"""

import dataclasses

import numpy as np
import pytest

from golden.accel.fc_layers import check_fc_layer, fc_inputs
from golden.config import preset
from golden.hwmodel.layer_image import (
    ImageError,
    build_layer_image,
    fixed_bias,
    load_image,
    save_image,
)
from golden.hwmodel.tile import tile_accumulators
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir

MINILM = preset("minilm")
FFN_OUT = "encoder.layer.5.output.dense"

#: Sentences 32 and 171 of ``load_sentences(300)``: both made layer 5's FFN output refuse its
#: bias (`bias must fit signed 32-bit integers ... span [-265706144, 2701019904]`).
REFUSED_SENTENCES = [
    "a) Convey the object code in, or embodied in, a physical product (including a physical "
    "distribution medium), accompanied by the Corresponding Source fixed on a durable physical "
    "medium customarily used for software interchange.",
    "Limitations on Grant Scope",
]


@pytest.fixture(scope="module")
def bert():
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    return encoder, Tokenizer(folder, max_length=16)


def _layer_ok(check):
    assert check.refused is None, f"{check.name} refused: {check.refused}"
    assert check.bias_saturated == 0, f"{check.name}: {check.bias_saturated} biases saturated"
    assert check.acc_margin_bits >= 0
    return check


@pytest.mark.parametrize("act_bits", [16, 8])
@pytest.mark.parametrize("sentence", REFUSED_SENTENCES, ids=["sentence32", "sentence171"])
def test_the_sentences_that_overflowed_the_bias_field_now_run(bert, sentence, act_bits):
    encoder, tokenizer = bert
    config = MINILM.replace(act_bits=act_bits)
    acts = fc_inputs(encoder, tokenizer, sentence)[FFN_OUT]
    w = encoder.weights
    check = _layer_ok(check_fc_layer(config, FFN_OUT, w[f"{FFN_OUT}.weight"], acts,
                                     bias=w[f"{FFN_OUT}.bias"]))
    if act_bits == 16:
        # The bias did not fit at the accumulator's exponent: the shift is what fixed it. The
        # error against FP32 is GOBO's 3-bit weight error (about 0.1 on this layer).
        assert check.shift_bias >= 1
        assert check.rel_rmse < 0.2


#: Sentence 0 of ``load_sentences(300)``.
FIRST_SENTENCE = "GNU GENERAL PUBLIC LICENSE Version 3, 29 June 2007"


@pytest.mark.parametrize("scale, refused_before", [(0.5, 2), (0.25, 7)],
                         ids=["halved", "quartered"])
def test_every_layer_runs_with_scaled_real_weights(bert, scale, refused_before):
    """Halved real weights made 2 of the 36 layers refuse their bias on the first corpus
    sentence, quartered ones 7 (the accumulator's exponent gets finer while the bias stays):
    every layer now runs, with a bias shift where the old layout overflowed."""
    encoder, tokenizer = bert
    inputs = fc_inputs(encoder, tokenizer, FIRST_SENTENCE)
    w = encoder.weights
    shifted = 0
    for name, acts in inputs.items():
        check = _layer_ok(check_fc_layer(MINILM, name, w[f"{name}.weight"] * scale, acts,
                                         bias=w[f"{name}.bias"]))
        shifted += check.shift_bias > 0
    assert len(inputs) == 36 and shifted == refused_before


def test_a_constant_matrix_with_a_real_bias_runs(bert):
    encoder, tokenizer = bert
    acts = fc_inputs(encoder, tokenizer, REFUSED_SENTENCES[1])[FFN_OUT]
    weights = np.full((384, 1536), 0.01, dtype=np.float32)
    check = _layer_ok(check_fc_layer(MINILM, FFN_OUT, weights, acts,
                                     bias=encoder.weights[f"{FFN_OUT}.bias"]))
    assert check.shift_bias > 0 and check.rel_rmse < 0.01


def test_fixed_bias_rule():
    """Fits at the accumulator's exponent: shift 0 and the old integers. Too large: the finest
    shift that fits. Beyond max_align_shift: saturated and counted."""
    bias = np.array([1.5, -2.25, 0.0])
    fixed = fixed_bias(MINILM, bias, 3, e_acc=-4, out_exponent=-1)
    assert (fixed.values.tolist(), fixed.shift, fixed.out_shift, fixed.saturated) == \
        ([24, -36, 0], 0, 3, 0)
    # 3.0 at exponent -40 is 3 * 2**40: it fits 32 bits from exponent -29 (3 * 2**29 < 2**31).
    fixed = fixed_bias(MINILM, np.array([3.0, 1.0]), 2, e_acc=-40)
    assert fixed.shift == 11 and fixed.saturated == 0
    assert fixed.values.tolist() == [3 << 29, 1 << 29]
    fixed = fixed_bias(MINILM, np.array([3.0, 1e-12]), 2, e_acc=-60)
    assert fixed.shift == MINILM.max_align_shift and fixed.saturated == 1
    assert fixed.values.tolist() == [(1 << 31) - 1, round(1e-12 * 2.0 ** 44)]   # 18
    assert fixed_bias(MINILM, None, 2, e_acc=-60).shift == 0
    with pytest.raises(ImageError, match="bias contains NaN or Inf"):
        fixed_bias(MINILM, np.array([np.nan, 1.0]), 2, e_acc=0)


def test_the_bias_shift_reaches_the_outputs_exactly():
    """An image whose bias needs a shift gives the outputs of an exact computation in Python
    integers, and a corrupted shift changes them (the check can fail)."""
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((9, 13)) * 1e-3
    acts_int = rng.integers(-(1 << 15), 1 << 15, (2, 13))
    image = build_layer_image(MINILM, weights, act_exponent=-15, bias=rng.standard_normal(9),
                              balance_rows=False)
    assert 0 < image.shift_bias <= MINILM.max_align_shift and image.bias_saturated == 0
    acc = tile_accumulators(image, acts_int)[:9]
    dense = (image.centroids[image.indexes] << image.shift_dot).astype(object)
    for m, n, r in zip(image.outlier_rows, image.outlier_cols, image.outlier_residuals):
        dense[m, n] += int(r) << image.shift_corr
    want = [[sum(int(a) * int(b) for a, b in zip(row, x)) + (int(bias) << image.shift_bias)
             for x in acts_int] for row, bias in zip(dense, image.bias)]
    assert acc.tolist() == want
    wrong = dataclasses.replace(image, shift_bias=image.shift_bias - 1)
    assert tile_accumulators(wrong, acts_int)[:9].tolist() != want


def test_version_1_layer_images_still_load(tmp_path):
    """A file written before the bias shift (format version 1, no shift_bias) loads with shift 0;
    the current version round-trips the shift."""
    import json
    import zipfile
    image = build_layer_image(MINILM, np.random.default_rng(1).standard_normal((5, 7)),
                              act_exponent=-30, bias=np.ones(5), balance_rows=False)
    path = tmp_path / "v2.npz"
    save_image(image, path)
    assert load_image(path).shift_bias == image.shift_bias > 0
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["version"] = 1
    del meta["shift_bias"], meta["bias_saturated"], meta["exponents"]["bias"]
    old = tmp_path / "v1.npz"
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    assert zipfile.is_zipfile(old)
    assert load_image(old).shift_bias == 0
    meta["exponents"]["bias"] = 0     # version 1 had no bias exponent
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ImageError, match="exponents has keys activations, bias, "):
        load_image(old)
