"""The whole model through the accelerator, measured (what ``gobo run`` reports; docs/model.md,
"The whole model on the accelerator").

On the test split of a labelled set, four encoders are compared with the FP32 one: FP32 itself,
GOBO weights only (every encoder FC matrix dequantized from its GOBO form, everything else FP32:
the accuracy study's model with FP32 embeddings), and the accelerator
(:class:`~golden.accel.encoder.AcceleratedEncoder`, the same GOBO matrices) at each activation
width. For each: mean and worst cosine to the FP32 embeddings and nearest-neighbour agreement
(:func:`golden.nlp.accuracy.proxies`), and the task accuracy of one logistic-regression head
trained on FP32 embeddings of the training split (:mod:`golden.nlp.logistic`), with its standard
error and the share of test predictions equal to the FP32 model's. For the accelerator also the
saturation counts of every FC layer and the mean cosine to the GOBO weights-only embeddings (what
the integer activations alone cost).
"""

import hashlib
import time

import numpy as np

from golden.accel.encoder import FC_KINDS, AcceleratedEncoder, calibrate, fc_kind
from golden.nlp.accuracy import cosine_rows, proxies
from golden.nlp.bert import fc_names
from golden.nlp.logistic import accuracy, fit_logistic, select_l2
from golden.nlp.sentiment import CLASSES
from golden.quant.quantizer import quantize

__all__ = ["run_report", "format_run", "SPLITS"]

#: The splits :func:`run_report` needs, in the order they are drawn.
SPLITS = ("calibration", "train", "test")
_COUNTS = ("inputs", "inputs_saturated", "outputs", "outputs_saturated", "mismatches")


def _scheme(name, label, embeddings, reference, head, labels, fp32_predictions):
    predicted = head.predict(embeddings)
    acc, se = accuracy(predicted, labels)
    return {"name": name, "label": label, **proxies(reference, embeddings),
            "accuracy": acc, "accuracy_se": se,
            "prediction_agreement": float(np.mean(predicted == fp32_predictions)),
            "embeddings_sha256": hashlib.sha256(
                np.ascontiguousarray(embeddings, dtype=np.float32).tobytes()).hexdigest()}


def _layer_records(accel):
    records = []
    for name, image in accel.images.items():
        layer, kind = fc_kind(name)
        counts = accel.counts[name]
        records.append({"name": name, "layer": layer, "kind": kind,
                        "act_exponent": image.exponents["activations"],
                        "out_exponent": image.exponents["outputs"],
                        "shift_bias": image.shift_bias, "bias_saturated": image.bias_saturated,
                        **{key: getattr(counts, key) for key in _COUNTS},
                        "rel_rmse": counts.rel_rmse})
    return records


def run_report(encoder, tokenizer, config, splits, *, act_bits=(16, 8), tile=None,
               progress=None):
    """Measure ``encoder`` (FP32 :class:`~golden.nlp.bert.BertEncoder`) on the accelerator of
    ``config`` at each of ``act_bits``.

    ``splits`` is ``{"calibration", "train", "test"}`` of
    :class:`~golden.nlp.sentiment.LabelledSet`; ``tile`` is passed to
    :class:`~golden.accel.encoder.AcceleratedEncoder`; ``progress(stage, done, total)`` is
    called after each batch of sentences. Returns the report (a JSON-ready dict: ``schemes``,
    ``accelerator`` runs with their per-layer counts, ``head``, ``calibration``, ``seconds``).
    """
    seconds, start = {}, time.perf_counter()

    def timed(key, fn, *args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0
        return out

    def encode(model, stage, texts):
        def report(done, total):
            progress(stage, done, total)
        return model.encode(texts, tokenizer, progress=report if progress else None)

    weights = fc_names(encoder.config)
    layers = timed("quantize", lambda: {
        w: quantize(encoder.weights[w], index_bits=config.index_bits,
                    outlier_log_prob=config.outlier_log_prob) for w in weights})
    calibration = timed("calibrate", calibrate, encoder, tokenizer, splits["calibration"].texts)
    train, test = splits["train"], splits["test"]
    fp32_train = timed("fp32", encode, encoder, "FP32 train", train.texts)
    fp32_test = timed("fp32", encode, encoder, "FP32 test", test.texts)
    l2, validation = timed("head", select_l2, fp32_train, train.labels, classes=len(CLASSES))
    head = timed("head", fit_logistic, fp32_train, train.labels, classes=len(CLASSES), l2=l2)
    fp32_predictions = head.predict(fp32_test)

    def scheme(name, label, embeddings):
        return _scheme(name, label, embeddings, fp32_test, head, test.labels, fp32_predictions)

    gobo_model = encoder.with_weights({w: layers[w].dequantize() for w in weights})
    gobo_test = timed("gobo", encode, gobo_model, "GOBO weights", test.texts)
    schemes = [scheme("fp32", "FP32", fp32_test),
               scheme("gobo", f"GOBO {config.index_bits}-bit weights only", gobo_test)]
    runs = []
    for bits in act_bits:
        key = f"a{bits}"
        accel = timed(key, AcceleratedEncoder, config.replace(act_bits=bits), encoder,
                      calibration, layers=layers, tile=tile)
        embeddings = timed(key, encode, accel, f"accelerator A{bits}", test.texts)
        record = scheme(key, f"accelerator A{bits}", embeddings)
        record["mean_cos_vs_gobo"] = float(cosine_rows(gobo_test, embeddings).mean())
        schemes.append(record)
        per_layer = _layer_records(accel)
        runs.append({"act_bits": bits, "tile": "golden" if tile is None else "given",
                     "totals": {key: sum(r[key] for r in per_layer)
                                for key in _COUNTS + ("bias_saturated",)},
                     "layers": per_layer})
    seconds["total"] = time.perf_counter() - start
    lengths = tokenizer.lengths(test.texts)
    tile_fields = ("pes", "lanes", "index_bits", "centroid_bits", "residual_bits", "bias_bits",
                   "max_tokens", "outlier_log_prob")
    return {"tile": {f: getattr(config, f) for f in tile_fields},
            "schemes": schemes, "accelerator": runs,
            "head": {"l2": l2, "validation_accuracy": {str(k): v for k, v in validation.items()},
                     "iterations": head.iterations, "train_accuracy":
                         accuracy(head.predict(fp32_train), train.labels)[0]},
            "calibration": {"sentences": calibration.sentences, "tokens": calibration.tokens},
            "test_tokens": int(sum(lengths)),
            # the tokenizer truncates at max_length: a sentence that reaches it was cut
            "test_truncated": sum(n >= tokenizer.max_length for n in lengths),
            "seconds": seconds}


def _layer_table(run, cell):
    """A layer x FC kind table of ``cell(record)``."""
    by_cell = {(r["layer"], r["kind"]): r for r in run["layers"]}
    layers = sorted({r["layer"] for r in run["layers"]})
    lines = ["| layer | " + " | ".join(FC_KINDS) + " |", "|---:|" + "---:|" * len(FC_KINDS)]
    for layer in layers:
        cells = [cell(by_cell[layer, k]) for k in FC_KINDS]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def format_run(report):
    """The report as Markdown."""
    data, split_sizes = report["data"], report["data"]["splits"]
    cut = (f"; {report['test_truncated']} cut at the tokenizer's limit"
           if report["test_truncated"] else "")
    lines = ["# The whole model through the accelerator", "",
             f"Model `{report['model']['weights']}`; tile preset `{report['preset']}` "
             f"({report['tile']['pes']} PEs x {report['tile']['lanes']} lanes, "
             f"{report['tile']['index_bits']}-bit indexes, {report['tile']['centroid_bits']}-bit "
             f"centroids). Every encoder FC layer on the bit-exact tile model; embeddings, "
             f"attention scores and softmax, LayerNorm, GELU and pooling in float32 on the host.",
             "",
             f"Task: {data['name']} ({data['source']}), {len(CLASSES)} classes; splits drawn with "
             f"seed {data['seed']}: calibration {split_sizes['calibration']['texts']}, train "
             f"{split_sizes['train']['texts']}, test {split_sizes['test']['texts']} texts "
             f"({report['test_tokens']} tokens{cut}). Head: logistic regression on FP32 "
             f"embeddings, l2 = {report['head']['l2']:g} (chosen on a validation fifth of the "
             f"training split), train accuracy {report['head']['train_accuracy']:.3f}.", "",
             "| model | mean cos | worst cos | NN agreement | accuracy ± SE | same prediction "
             "as FP32 |", "|---|---:|---:|---:|---:|---:|"]
    for s in report["schemes"]:
        lines.append(f"| {s['label']} | {s['mean_cos']:.4f} | {s['worst_cos']:.4f} | "
                     f"{100 * s['nn_agreement']:.1f} % | {100 * s['accuracy']:.1f} ± "
                     f"{100 * s['accuracy_se']:.1f} % | {100 * s['prediction_agreement']:.1f} % |")
    for run, s in zip(report["accelerator"], report["schemes"][2:]):
        t = run["totals"]
        lines += ["", f"## A{run['act_bits']}: saturation and per-layer error", "",
                  f"Mean cosine to the GOBO weights-only embeddings {s['mean_cos_vs_gobo']:.6f}. "
                  f"Activations saturated by the host's quantizer: {t['inputs_saturated']:,} of "
                  f"{t['inputs']:,}; outputs clamped by the tile: {t['outputs_saturated']:,} of "
                  f"{t['outputs']:,}; biases saturated: {t['bias_saturated']}"
                  + (f"; tile outputs unlike the golden model: {t['mismatches']}"
                     if run["tile"] != "golden" else "") + ".", "",
                  "Per layer and FC kind, inputs saturated / outputs saturated:", ""]
        lines += _layer_table(run, lambda r: f"{r['inputs_saturated']} / "
                                             f"{r['outputs_saturated']}")
        lines += ["", "Each layer's own error: RMS difference from the FP32 layer on the same "
                      "input over the FP32 output's standard deviation:", ""]
        lines += _layer_table(run, lambda r: f"{r['rel_rmse']:.3f}")
    sec = report["seconds"]
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in sec.items()) + "."]
    return "\n".join(lines)
