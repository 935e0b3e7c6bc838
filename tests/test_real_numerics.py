"""Real text never breaks the hardware's numbers (docs/numerics.md, "Bias" and "Real inputs").

Named regressions of the inputs that were refused before the bias had its own exponent: the two
corpus sentences whose layer-5 FFN output tripped the 32-bit bias field, the real weights halved
and quartered, and a constant matrix with a real bias. Each layer runs as `gobo simulate
--activations` would (its own activation exponent, real bias, calibrated output exponent) through
image building and the bit-exact tile model. The full 300-sentence scan at 16- and 8-bit
activations is `make test-full` (scripts/numerics_scan.py).
"""


import numpy as np
import pytest

from golden.accel.fc_layers import check_fc_layer, fc_inputs
from golden.config import preset
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
