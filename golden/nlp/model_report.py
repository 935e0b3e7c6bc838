"""The whole-model report of a quantized BERT encoder: sizes, per-matrix error and the accuracy
proxies against the FP32 model (what ``gobo model`` prints and scripts/model_accuracy.py
collects). See docs/model.md for every figure's definition.
"""

import time

import numpy as np

from golden.nlp.accuracy import proxies
from golden.nlp.bert import embedding_names
from golden.quant import row_groups, scaled, stored
from golden.quant.outliers import check_layer

__all__ = ["layer_nbytes", "size_report", "model_report", "format_report"]


def layer_nbytes(layer):
    """Bytes of a quantized matrix's stored form, without serializing it."""
    if isinstance(layer, stored.GoboLayer):
        return stored.stored_nbytes(layer.shape, layer.index_bits, layer.n_outliers)
    if isinstance(layer, row_groups.RowGroupLayer):
        return layer.stored_nbytes()
    return scaled.stored_nbytes(layer.shape, layer.bits, layer.block, layer.scale_bytes)


def _rel_rmse(original, approx):
    w = np.asarray(original, dtype=np.float64)
    error = w - approx.astype(np.float64)
    std = float(w.std())
    rmse = float(np.sqrt(np.mean(error * error)))
    return rmse / std if std > 0 else (0.0 if rmse == 0 else float("inf"))


def _warnings(layer, original):
    """The quantizer's warnings about a GOBO matrix; for one read back from a ``.gobo`` file
    (no ``stats``), :func:`~golden.quant.outliers.check_layer` against ``original`` if known."""
    if layer.stats is not None:
        return list(layer.stats.warnings)
    return list(check_layer(layer, original))


def size_report(model, reference_weights=None):
    """Sizes and, given the FP32 ``reference_weights`` (``{name: array}``), per-matrix relative
    RMSE. Sizes are those of the packed ``.gobo`` file (header and manifest included). Each GOBO
    matrix's record carries ``outlier_fraction`` and ``warnings`` (a list of messages about an
    outlier share or compression ratio far from expected, :func:`~golden.quant.outliers.
    check_layer`)."""
    emb = set(embedding_names())
    layers, groups = [], {"fc": [0, 0], "embeddings": [0, 0]}
    for name, layer in model.layers.items():
        nbytes = layer_nbytes(layer)
        record = {"name": name, "shape": list(layer.shape),
                  "bits_per_weight": 8 * nbytes / layer.numel}
        if isinstance(layer, stored.GoboLayer):
            record["outlier_fraction"] = layer.n_outliers / layer.numel
            record["warnings"] = _warnings(
                layer, None if reference_weights is None else reference_weights[name])
        if reference_weights is not None:
            record["rel_rmse"] = _rel_rmse(reference_weights[name], layer.dequantize())
        layers.append(record)
        group = groups["embeddings" if name in emb else "fc"]
        group[0] += nbytes
        group[1] += layer.numel
    packed = len(model.to_bytes())
    numel = model.fp32_bytes() // 4
    return {
        "spec": model.spec.to_dict(), "label": model.spec.label,
        "parameters": numel, "fp32_bytes": model.fp32_bytes(), "stored_bytes": packed,
        "compression_ratio": model.fp32_bytes() / packed,
        "bits_per_weight": {
            "model": 8 * packed / numel,
            **{g: (8 * b / n if n else None) for g, (b, n) in groups.items()},
        },
        "layers": layers,
    }


def model_report(model, reference, tokenizer, sentences, *, reference_embeddings=None):
    """:func:`size_report` plus the accuracy proxies of ``model`` against the FP32 encoder
    ``reference`` on ``sentences``, and timings."""
    report = size_report(model, reference.weights)
    start = time.perf_counter()
    if reference_embeddings is None:
        reference_embeddings = reference.encode(sentences, tokenizer)
    t_ref = time.perf_counter() - start
    start = time.perf_counter()
    quantized = model.encoder().encode(sentences, tokenizer)
    t_q = time.perf_counter() - start
    report["accuracy"] = proxies(reference_embeddings, quantized)
    report["tokens"] = tokenizer.unknown_share(sentences)
    report["seconds"] = {"encode_fp32": t_ref, "encode_quantized": t_q}
    return report


def format_report(report):
    """A human summary of :func:`size_report` / :func:`model_report` output."""
    bpw = report["bits_per_weight"]
    lines = [f"model: {report['label']}",
             f"size: {report['stored_bytes']:,} bytes packed vs {report['fp32_bytes']:,} FP32 "
             f"({report['compression_ratio']:.2f}x), {bpw['model']:.3f} bits/weight over "
             f"{report['parameters']:,} parameters"]
    for group in ("fc", "embeddings"):
        if bpw.get(group) is not None:
            lines.append(f"  {group}: {bpw[group]:.3f} bits/weight")
    has_err = any("rel_rmse" in r for r in report["layers"])
    width = max(len(r["name"]) for r in report["layers"]) if report["layers"] else 4
    lines.append(f"{'matrix':<{width}}  {'shape':>10}  {'bits/w':>6}  {'outlier%':>8}"
                 + ("  rel RMSE" if has_err else ""))
    for r in report["layers"]:
        out = f"{100 * r['outlier_fraction']:.3f}" if "outlier_fraction" in r else "-"
        line = (f"{r['name']:<{width}}  {'x'.join(map(str, r['shape'])):>10}  "
                f"{r['bits_per_weight']:6.3f}  {out:>8}")
        if has_err:
            line += f"  {r['rel_rmse']:8.4f}"
        lines.append(line)
    if "accuracy" in report:
        a = report["accuracy"]
        lines.append(f"accuracy vs FP32 on {a['sentences']} sentences: mean cosine "
                     f"{a['mean_cos']:.4f}, worst {a['worst_cos']:.4f}, nearest-neighbour "
                     f"agreement {100 * a['nn_agreement']:.1f}%")
    if "tokens" in report:
        t = report["tokens"]
        lines.append(f"tokens: {t['tokens']:,}, {100 * t['unknown_fraction']:.1f} % [UNK]")
    if "seconds" in report:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items()))
    return "\n".join(lines)
