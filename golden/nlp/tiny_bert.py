"""A tiny random BERT (weights, config.json, vocab.txt) written to disk: a fast stand-in for a
real model in tests and examples of the encoder, the whole-model quantizer and ``gobo model``."""

import json
import struct

import numpy as np

from golden.nlp.bert import BertConfig, expected_shapes

TINY = {"model_type": "bert", "vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 40,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}

WORDS = ["the", "license", "software", "you", "may", "copy", "program", "work", "of", "and",
         "to", "any", "or", "this", "a", "in", "that", "is", "for", "by"]


def tiny_tensors(seed=0, config=TINY):
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in expected_shapes(BertConfig.from_dict(config)).items():
        if name.endswith("LayerNorm.weight"):
            tensors[name] = (1 + 0.1 * rng.normal(size=shape)).astype(np.float32)
        else:
            # heavy-ish tails, as in real BERT weights, so that GOBO finds some outliers
            tensors[name] = (0.05 * rng.standard_t(4, size=shape)).astype(np.float32)
    tensors["pooler.dense.weight"] = np.zeros((32, 32), np.float32)  # unused: must be ignored
    return tensors


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def write_tiny_model(folder, seed=0, config=TINY, tensors=None):
    """Write model.safetensors, config.json and vocab.txt into ``folder``; return the weights
    path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", tensors or tiny_tensors(seed, config))
    (folder / "config.json").write_text(json.dumps(config))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "(", ")", *WORDS]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += list("abcdefghijklmnopqrstuvwxyz")
    assert len(vocab) <= config["vocab_size"]
    (folder / "vocab.txt").write_text("\n".join(vocab[:config["vocab_size"]]) + "\n")
    return folder / "model.safetensors"
