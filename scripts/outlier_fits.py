"""GOBO's outlier fit (per-matrix mean/std) against the robust fit and the per-layer pooled fit.

Quantizes a BERT (default: the real all-MiniLM-L6-v2) as ``gobo model`` does, once per
combination of ``--outlier-fit`` and ``--outlier-scope``, and prints one Markdown table over its
encoder FC matrices: outlier share, pooled compression ratio (FP32 bytes / stored bytes),
weight-count-weighted mean relative RMSE, matrices with warnings, and, with ``--sentences N``, the
whole-model mean cosine of sentence embeddings against FP32 (docs/model.md; the same figure as
``gobo model --sentences N``). The table is in docs/quantizer.md.

    .venv/bin/python scripts/outlier_fits.py --bits 3 --sentences 100
"""

import argparse
import itertools
import pathlib
import sys
import time

from golden.nlp.bert import BertEncoder, fc_names
from golden.nlp.corpus import load_sentences
from golden.nlp.model_report import model_report
from golden.nlp.quantized_model import QuantSpec, quantize_model
from golden.nlp.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer
from golden.nlp.weights import minilm_dir
from golden.quant.outliers import OUTLIER_FITS, OUTLIER_SCOPES
from golden.quant.quantizer import aggregate_stats


def measure(encoder, bits, *, threshold=-4.0, tokenizer=None, sentences=()):
    """One row per (outlier_fit, outlier_scope): the FC aggregates and, given sentences, the
    accuracy proxies."""
    reference = encoder.encode(sentences, tokenizer) if sentences else None
    rows = []
    for fit, scope in itertools.product(OUTLIER_FITS, OUTLIER_SCOPES):
        spec = QuantSpec(bits=bits, outlier_fit=fit, outlier_scope=scope,
                         outlier_log_prob=threshold)
        start = time.perf_counter()
        model = quantize_model(encoder, spec)
        seconds = time.perf_counter() - start
        stats = [model.layers[name].stats for name in fc_names(encoder.config)]
        row = {"outlier_fit": fit, "outlier_scope": scope, "seconds": seconds,
               "warned": sum(bool(s.warnings) for s in stats), **aggregate_stats(stats)}
        if sentences:
            report = model_report(model, encoder, tokenizer, sentences,
                                  reference_embeddings=reference)
            row["mean_cos"] = report["accuracy"]["mean_cos"]
        rows.append(row)
        print(f"{fit}/{scope}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return rows


def markdown(rows, matrices):
    cos = "mean_cos" in rows[0]
    lines = [f"| outlier fit | scope | outliers | compression | rel RMSE | warned "
             f"({matrices}) |" + (" mean cos |" if cos else ""),
             "|---|---|---|---|---|---|" + ("---|" if cos else "")]
    for r in rows:
        line = (f"| {r['outlier_fit']} | {r['outlier_scope']} | "
                f"{100 * r['outlier_fraction']:.3f} % | {r['compression_ratio']:.2f}x | "
                f"{r['rel_rmse']:.4f} | {r['warned']} |")
        if cos:
            line += f" {r['mean_cos']:.4f} |"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=pathlib.Path, default=None,
                        help="a BERT .safetensors with config.json and tokenizer beside it "
                             "(default: all-MiniLM-L6-v2)")
    parser.add_argument("--bits", type=int, default=3, help="FC index bits (default 3)")
    parser.add_argument("--threshold", type=float, default=-4.0,
                        help="the outlier log-density threshold of every row (default -4)")
    parser.add_argument("--sentences", type=int, default=0,
                        help="also measure the mean cosine on this many corpus sentences")
    args = parser.parse_args(argv)
    weights = args.weights or minilm_dir() / "model.safetensors"
    encoder = BertEncoder.from_files(weights, weights.parent / "config.json")
    tokenizer, sentences = None, ()
    if args.sentences:
        tokenizer = Tokenizer(weights.parent, max_length=min(
            DEFAULT_MAX_LENGTH, encoder.config.max_position_embeddings))
        sentences = load_sentences(args.sentences)
    rows = measure(encoder, args.bits, threshold=args.threshold, tokenizer=tokenizer,
                   sentences=sentences)
    print(markdown(rows, len(fc_names(encoder.config))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
