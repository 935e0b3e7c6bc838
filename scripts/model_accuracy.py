"""Whole-model accuracy of GOBO against uniform per-channel and block-wise quantization.

Quantizes every encoder FC matrix and embedding table of a BERT (default: the real
all-MiniLM-L6-v2) with each scheme over a sweep of bit widths, embeds real English sentences (the
Debian license texts, golden/nlp/corpus.py) with the FP32 and each quantized model, and writes
build/reports/model_accuracy.json (data), .md (summary table) and .png (accuracy proxies against
bits per weight). See docs/model.md.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from golden.nlp.bert import BertEncoder
from golden.nlp.corpus import load_sentences
from golden.nlp.model_report import model_report
from golden.nlp.quantized_model import QuantSpec, quantize_model
from golden.nlp.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer
from golden.nlp.weights import minilm_dir

#: The sweep. Embedding tables use the same scheme at 4 bits (8 for the 8-bit points), so the
#: FC bits per weight is the variable; "gobo 3b / emb fp32" isolates the FC matrices.
SWEEP = [
    QuantSpec(scheme="gobo", bits=2),
    QuantSpec(scheme="gobo", bits=3),
    QuantSpec(scheme="gobo", bits=3, embedding_bits=None),
    QuantSpec(scheme="gobo", bits=3, embedding_bits=3),
    QuantSpec(scheme="gobo", bits=4),
    QuantSpec(scheme="uniform", bits=3),
    QuantSpec(scheme="uniform", bits=4),
    QuantSpec(scheme="uniform", bits=8, embedding_bits=8),
    QuantSpec(scheme="blockwise", bits=2, block=32),
    QuantSpec(scheme="blockwise", bits=3, block=32),
    QuantSpec(scheme="blockwise", bits=3, block=64),
    QuantSpec(scheme="blockwise", bits=3, block=128),
    QuantSpec(scheme="blockwise", bits=4, block=64),
]

COLOURS = {"gobo": "tab:green", "uniform": "tab:blue", "blockwise": "tab:orange"}


def _markdown(results, meta):
    lines = [
        "# Whole-model accuracy: GOBO vs uniform and block-wise quantization",
        "",
        f"Model `{meta['model']}`, {meta['sentences']} sentences from {meta['corpus']}; "
        f"FP32 size {meta['fp32_bytes']:,} bytes ({meta['parameters']:,} parameters the "
        f"encoder uses). Proxies compare each model's mean-pooled sentence embeddings with the "
        f"FP32 model's (docs/model.md). Sizes are those of the packed `.gobo` file.",
        "",
        "| scheme | FC bits | emb bits | FC bits/w | model bits/w | compression | mean cos "
        "| worst cos | NN agree | quantize s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, b, a = r["spec"], r["bits_per_weight"], r["accuracy"]
        scheme = s["scheme"] + (f" B={s['block']}" if s["scheme"] == "blockwise" else "")
        emb = "fp32" if s["embedding_bits"] is None else s["embedding_bits"]
        lines.append(
            f"| {scheme} | {s['bits']} | {emb} | {b['fc']:.3f} | {b['model']:.3f} | "
            f"{r['compression_ratio']:.2f}x | {a['mean_cos']:.4f} | {a['worst_cos']:.4f} | "
            f"{100 * a['nn_agreement']:.1f}% | {r['seconds']['quantize']:.1f} |")
    lines += ["", f"FP32 embedding of the sentences took {meta['encode_fp32_seconds']:.1f} s.", ""]
    return "\n".join(lines)


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = [("mean_cos", "mean cosine to FP32"), ("worst_cos", "worst cosine to FP32"),
              ("nn_agreement", "nearest-neighbour agreement")]
    for ax, (key, title) in zip(axes, panels):
        for scheme, colour in COLOURS.items():
            mine = [r for r in results if r["spec"]["scheme"] == scheme]
            # the line joins the standard points (embeddings at 4 bits, 8 for 8-bit FC); other
            # embedding widths are hollow markers off the line
            line = sorted((r["bits_per_weight"]["fc"], r["accuracy"][key], r) for r in mine
                          if r["spec"]["embedding_bits"] == max(4, r["spec"]["bits"]))
            if line:
                xs, ys, _ = zip(*line)
                ax.plot(xs, ys, "o-", color=colour, label=scheme)
            for r in mine:
                s = r["spec"]
                x, y = r["bits_per_weight"]["fc"], r["accuracy"][key]
                standard = s["embedding_bits"] == max(4, s["bits"])
                if not standard:
                    ax.plot([x], [y], "o", mfc="none", color=colour)
                tag = f"{s['bits']}b" + (f"/B{s['block']}" if scheme == "blockwise" else "")
                tag += " e" + ("32" if s["embedding_bits"] is None else str(s["embedding_bits"]))
                ax.annotate(tag, (x, y), textcoords="offset points",
                            xytext=(4, -10 if standard else 4), fontsize=7, color=colour)
        ax.set_xlabel("FC bits per weight (stored form, scales/dictionary/outliers included)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle("all-MiniLM-L6-v2, every FC matrix and embedding table quantized, "
                 "no retraining (e = embedding bits, same scheme; e32 = FP32)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="folder with model.safetensors, config.json and a tokenizer "
                             "(default: the cached all-MiniLM-L6-v2)")
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--corpus", type=pathlib.Path, default=None,
                        help="text file or folder (default: /usr/share/common-licenses)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports"))
    args = parser.parse_args(argv)

    folder = args.model_dir or minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors", folder / "config.json")
    tokenizer = Tokenizer(folder, max_length=min(DEFAULT_MAX_LENGTH,
                                                 encoder.config.max_position_embeddings))
    sentences = load_sentences(args.sentences, source=args.corpus)
    start = time.perf_counter()
    reference = encoder.encode(sentences, tokenizer)
    t_ref = time.perf_counter() - start
    print(f"FP32: {len(sentences)} sentences in {t_ref:.1f} s", file=sys.stderr, flush=True)

    results = []
    for spec in SWEEP:
        start = time.perf_counter()
        model = quantize_model(encoder, spec)
        t_q = time.perf_counter() - start
        report = model_report(model, encoder, tokenizer, sentences,
                              reference_embeddings=reference)
        report["seconds"] = {"quantize": t_q, "encode_quantized":
                             report["seconds"]["encode_quantized"]}
        results.append(report)
        a = report["accuracy"]
        print(f"{spec.label:28s} {report['bits_per_weight']['fc']:.3f} b/w FC, "
              f"{report['compression_ratio']:.2f}x, mean cos {a['mean_cos']:.4f}, worst "
              f"{a['worst_cos']:.4f}, NN {100 * a['nn_agreement']:.1f}%", file=sys.stderr,
              flush=True)

    first = results[0]
    meta = {"model": str(folder), "sentences": len(sentences),
            "corpus": str(args.corpus or "/usr/share/common-licenses"),
            "fp32_bytes": first["fp32_bytes"], "parameters": first["parameters"],
            "encode_fp32_seconds": t_ref, "numpy": np.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_accuracy.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    (args.out / "model_accuracy.md").write_text(_markdown(results, meta))
    _plot(results, args.out / "model_accuracy.png")
    print(f"wrote {args.out}/model_accuracy.json, .md and .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
