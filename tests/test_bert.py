"""The NumPy BERT encoder: activations, config and weight validation, batching invariance, and
all-MiniLM-L6-v2 against figures computed by PyTorch/transformers (make reference)."""

import json
import math

import numpy as np
import pytest

from golden.nlp.bert import BertConfig, BertEncoder, BertError, erf, fc_names, gelu
from golden.nlp.tiny_bert import TINY, tiny_tensors, write_tiny_model
from golden.nlp.tokenizer import Tokenizer, TokenizerError
from golden.nlp.weights import minilm_dir


def test_erf_matches_math_erf():
    x = np.linspace(-8, 8, 40001)
    exact = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - exact)) < 1.2e-7
    assert np.max(np.abs(erf(x.astype(np.float32)) - exact)) < 5e-7
    assert erf(np.float32(1)).dtype == np.float32


def test_gelu_is_x_times_normal_cdf():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    expected = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(gelu(x), expected, atol=2e-7)


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": None}, "missing key hidden_size"),
    ({"num_hidden_layers": None, "vocab_size": None}, "missing keys vocab_size, num_hidden_layers"),
    ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported"),
    ({"model_type": "distilbert", "hidden_size": None, "num_hidden_layers": None},
     "model_type 'distilbert' is not supported"),
    ({"num_attention_heads": 5}, "hidden_size 32 is not a multiple of num_attention_heads 5"),
    ({"hidden_act": "swish"}, "hidden_act 'swish' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"intermediate_size": 0}, "intermediate_size must be a positive integer, not 0"),
    ({"layer_norm_eps": -1}, "layer_norm_eps must be a positive number"),
])
def test_config_errors_name_the_key(change, message, tmp_path):
    data = {k: v for k, v in {**TINY, **change}.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BertError, match=message) as info:
        BertConfig.from_file(path)
    assert str(path) in str(info.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(BertError, match="cannot read the config"):
        BertConfig.from_file(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BertError, match="not valid JSON"):
        BertConfig.from_file(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(BertError, match="expected a JSON object"):
        BertConfig.from_file(tmp_path / "list.json")


def test_weight_errors_name_the_tensor():
    config = BertConfig.from_dict(TINY)
    tensors = tiny_tensors()
    bad = dict(tensors, **{"encoder.layer.1.output.dense.weight": np.zeros((32, 63), np.float32)})
    with pytest.raises(BertError, match=r"'encoder.layer.1.output.dense.weight' has shape "
                                        r"\(32, 63\), but the config requires \(32, 64\)"):
        BertEncoder(config, bad)
    del tensors["encoder.layer.0.attention.self.key.bias"]
    with pytest.raises(BertError, match="lack tensor 'encoder.layer.0.attention.self.key.bias'"):
        BertEncoder(config, tensors)
    with pytest.raises(BertError, match="not one the encoder uses"):
        BertEncoder(config, tiny_tensors()).with_weights({"pooler.dense.weight": np.zeros(1)})


def test_encoder_tensors_the_config_does_not_use_are_an_error():
    """Issue 11: a config with fewer layers than the weights used to drop the rest silently."""
    one_layer = BertConfig.from_dict({**TINY, "num_hidden_layers": 1})
    with pytest.raises(BertError, match=r"the weights hold 16 encoder tensors that the config "
                                        r"does not use: 'encoder\.layer\.1\..*and 13 more "
                                        r"\(layers? 1: does the config's num_hidden_layers, 1, "
                                        r"match the weights\?\)"):
        BertEncoder(one_layer, tiny_tensors())
    # with the bert. prefix too, and for a stray tensor inside a used layer
    prefixed = {"bert." + k: v for k, v in tiny_tensors().items()}
    with pytest.raises(BertError, match="16 encoder tensors"):
        BertEncoder(one_layer, prefixed)
    stray = dict(tiny_tensors(), **{"encoder.layer.0.attention.self.extra": np.zeros(3)})
    with pytest.raises(BertError, match="1 encoder tensor that the config does not use: "
                                        "'encoder.layer.0.attention.self.extra' \\(layer 0"):
        BertEncoder(BertConfig.from_dict(TINY), stray)


def test_bert_prefix_and_extra_tensors_are_accepted():
    config = BertConfig.from_dict(TINY)
    tensors = tiny_tensors()
    prefixed = {"bert." + k: v for k, v in tensors.items()}
    prefixed["cls.predictions.bias"] = np.zeros(96, np.float32)
    ids = np.array([[2, 9, 10, 3]])
    np.testing.assert_array_equal(BertEncoder(config, prefixed).embed(ids),
                                  BertEncoder(config, tensors).embed(ids))


def test_padding_and_batching_do_not_change_embeddings(tmp_path):
    weights = write_tiny_model(tmp_path)
    enc = BertEncoder.from_files(weights, tmp_path / "config.json")
    tok = Tokenizer(tmp_path)
    sentences = ["the license", "you may copy the program and any work of this software",
                 "that is for the work", "a"]
    together = enc.encode(sentences, tok, batch_size=4)
    alone = np.concatenate([enc.encode([s], tok) for s in sentences])
    np.testing.assert_allclose(together, alone, atol=2e-6)
    ids, mask, types = tok.encode(sentences)
    assert ids.shape[0] == 4 and mask[3].sum() == 3  # [CLS] a [SEP], then padding
    with pytest.raises(ValueError, match="token ids must lie in"):
        enc.embed(np.array([[2, 96]]))
    with pytest.raises(ValueError, match="exceed max_position_embeddings 40"):
        enc.embed(np.full((1, 41), 5))


def test_tokenizer_errors(tmp_path):
    with pytest.raises(TokenizerError, match="neither tokenizer.json nor vocab.txt"):
        Tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(TokenizerError, match="cannot read it as a tokenizer"):
        Tokenizer(tmp_path / "tokenizer.json")


# all-MiniLM-L6-v2 ---------------------------------------------------------------------------------

#: Token ids and the first six mean-pooled embedding values that transformers 5.23.0 / torch
#: 2.13.0 (CPU) compute for these sentences (scripts/torch_reference.py's setup).
TORCH_IDS = [101, 2023, 6105, 12033, 2000, 2151, 2565, 2030, 2060, 2147, 2029, 3397, 1037, 5060,
             1012, 102]
TORCH_HEAD = np.array([
    [-0.22374351, -0.06180904, -0.04353398, -0.33923310, 0.21039528, 0.11965359],
    [-0.10961149, 0.13592465, -0.00304465, 0.06245133, -0.20424750, -0.64508849]])


@pytest.fixture(scope="module")
def minilm_encoder():
    folder = minilm_dir()
    return BertEncoder.from_files(folder / "model.safetensors", folder / "config.json"), \
        Tokenizer(folder)


def test_minilm_matches_transformers(minilm_encoder):
    enc, tok = minilm_encoder
    sentences = ["This License applies to any program or other work which contains a notice.",
                 "Hello world!"]
    ids, mask, types = tok.encode(sentences)
    assert ids[0].tolist() == TORCH_IDS
    assert len(fc_names(enc.config)) == 36
    np.testing.assert_allclose(enc.embed(ids, mask, types)[:, :6], TORCH_HEAD, atol=1e-5)


def test_minilm_embeddings_rank_paraphrases_first(minilm_encoder):
    enc, tok = minilm_encoder
    e = enc.encode(["You may copy and distribute the program.",
                    "Copying and distributing the program is permitted.",
                    "The weather was cold and rainy all week."], tok, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=1e-6)
    assert e[0] @ e[1] > 0.6 > 0.2 > e[0] @ e[2]


def test_torch_check_catches_a_wrong_activation(minilm_encoder):
    """Mutation: the tanh GELU approximation (off by ~7e-4 here) must fail the 1e-5 check."""
    import dataclasses

    enc, tok = minilm_encoder
    mutant = BertEncoder(dataclasses.replace(enc.config, hidden_act="gelu_new"), enc.weights)
    ids, mask, types = tok.encode(["This License applies to any program or other work which "
                                   "contains a notice.", "Hello world!"])
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(mutant.embed(ids, mask, types)[:, :6], TORCH_HEAD, atol=1e-5)


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{", "not valid JSON"),
    (b"[" * 100000, "nested too deeply"),
    (b'{"vocab_size": ' + b"9" * 5000 + b"}", "not valid JSON"),
])
def test_damaged_config_files_are_one_line(tmp_path, content, message):
    from golden.nlp.bert import BertConfig, BertError
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(BertError, match=message):
        BertConfig.from_file(tmp_path / "config.json")
    with pytest.raises(BertError, match="is a folder"):
        BertConfig.from_file(tmp_path)
