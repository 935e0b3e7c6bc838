"""Calibration-driven weight quantization of a BERT encoder: Gram matrices for GPTQ index choice,
per-matrix sensitivities, and the per-matrix choice of two index widths under a bits budget
(docs/quantizer.md, "Beyond one width per model").

Everything here is measured on *calibration* sentences, which must be kept apart from those an
accuracy figure is measured on (:func:`golden.nlp.sentiment.held_out` gives such a set).

- :func:`gram_matrices`: ``X^T X`` of every encoder FC layer's input over the real tokens of the
  FP32 model on the calibration sentences (what :func:`golden.quant.gptq.quantize_gptq` needs).
- :func:`sensitivities`: for each FC matrix, how much the mean cosine of the sentence embeddings to
  FP32 drops when only that matrix uses the narrow form and every other matrix the wide one.
- :func:`allocate`: start with every matrix wide, narrow the matrices in order of least drop per
  stored bit saved until the FC bits per weight (from the stored form,
  :func:`golden.nlp.model_report.layer_nbytes`) is within the budget, then widen again any that
  still fit (most drop per bit first). Sensitivities are treated as additive, which they are
  only roughly; the measured accuracy of the result is what counts.
"""

import numpy as np

from golden.nlp.accuracy import proxies
from golden.nlp.model_report import layer_nbytes

__all__ = ["gram_matrices", "sensitivities", "allocate", "fc_bits_per_weight"]


def gram_matrices(encoder, tokenizer, sentences):
    """``{weight name: X^T X}`` (float64 ``[in, in]``) of each FC layer's FP32 input ``X`` over
    the real tokens of ``sentences``."""
    grams = {}

    def record(name, h, mask):
        x = np.asarray(h[np.asarray(mask) > 0], dtype=np.float64)
        key = f"{name}.weight"
        grams[key] = grams.get(key, 0.0) + x.T @ x
        return encoder.dense(name, h)

    encoder.encode(sentences, tokenizer, fc=record)
    return grams


def sensitivities(encoder, tokenizer, sentences, narrow, wide, *, progress=None):
    """``({name: drop}, base mean cosine)``: ``drop`` is the mean cosine to FP32 with every
    matrix of ``wide`` (``{name: layer}``) minus that with only ``name`` replaced by its form in
    ``narrow``. ``progress(done, total)`` after each matrix."""
    reference = encoder.encode(sentences, tokenizer)
    wide_weights = {n: layer.dequantize() for n, layer in wide.items()}

    def mean_cos(weights):
        embeddings = encoder.with_weights(weights).encode(sentences, tokenizer)
        return proxies(reference, embeddings)["mean_cos"]

    base = mean_cos(wide_weights)
    drops = {}
    for i, name in enumerate(narrow, 1):
        drops[name] = base - mean_cos({**wide_weights, name: narrow[name].dequantize()})
        if progress:
            progress(i, len(narrow))
    return drops, base


def fc_bits_per_weight(layers):
    """Stored bits per weight of ``{name: layer}``: all stored bytes x 8 / all weights."""
    layers = list(layers)
    return 8 * sum(layer_nbytes(x) for x in layers) / sum(x.numel for x in layers)


def allocate(narrow, wide, drops, budget):
    """``{name: layer}`` taking each matrix from ``wide`` or ``narrow`` (same names) so that the
    stored bits per weight is at most ``budget``, by the greedy rule of the module docstring.

    Raises
    ------
    ValueError
        If even every matrix narrow exceeds ``budget`` (the message gives the least reachable).
    """
    floor = fc_bits_per_weight(narrow.values())
    if floor > budget:
        raise ValueError(f"a bits budget of {budget:g} per weight is below the {floor:.3f} the "
                         f"narrow form alone needs")
    saved = {n: 8 * (layer_nbytes(wide[n]) - layer_nbytes(narrow[n])) for n in wide}
    numel = sum(x.numel for x in wide.values())
    total = 8 * sum(layer_nbytes(x) for x in wide.values())
    order = sorted(wide, key=lambda n: (max(drops[n], 0.0) / max(saved[n], 1), n))
    chosen = dict(wide)
    for name in order:
        if total <= budget * numel:
            break
        chosen[name] = narrow[name]
        total -= saved[name]
    for name in reversed(order):          # the last one narrowed may have overshot: refill
        if chosen[name] is narrow[name] and total + saved[name] <= budget * numel:
            chosen[name] = wide[name]
            total += saved[name]
    return chosen
