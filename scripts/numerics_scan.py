"""Real text through every encoder FC layer of all-MiniLM-L6-v2 on the bit-exact tile model
(`make test-full`): the numeric contract on real inputs (docs/numerics.md, "Real inputs").

Each corpus sentence (up to 16 tokens) is its own run: the project's NumPy BERT computes the real
input of every FC layer, and each layer is built and run as `gobo simulate --activations` would
(its own activation exponent, its real bias, its output exponent calibrated on FP32), at 16- and
8-bit activations. Writes build/reports/numerics_scan.{json,md}; exit status 1 if any layer is
refused.

    python scripts/numerics_scan.py --out build/reports [--sentences 300] [--act-bits 16 8]
"""

import argparse
import collections
import json
import pathlib
import sys
import time

from golden.accel.fc_layers import check_fc_layer, fc_inputs
from golden.config import preset
from golden.nlp.bert import BertConfig, BertEncoder, fc_names
from golden.nlp.corpus import load_sentences
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir
from golden.quant.quantizer import quantize


def scan(config, encoder, tokenizer, sentences, layers, *, progress=None):
    """``{layer: {runs, refused, needed_bias_shift, max_shift_bias, bias_saturated,
    outputs_saturated, outputs, min_acc_margin_bits, min_bias_headroom_bits, worst_rel_rmse}}``
    over ``sentences``,
    plus the refusals as ``[(sentence index, layer, message)]``."""
    weights = encoder.weights
    table = collections.defaultdict(lambda: {
        "runs": 0, "refused": 0, "needed_bias_shift": [], "max_shift_bias": 0,
        "bias_saturated": 0, "outputs_saturated": 0, "outputs": 0,
        "min_acc_margin_bits": None, "min_bias_headroom_bits": None, "worst_rel_rmse": 0.0})
    refusals = []
    for i, sentence in enumerate(sentences):
        for name, acts in fc_inputs(encoder, tokenizer, sentence).items():
            r = check_fc_layer(config, name, weights[f"{name}.weight"], acts,
                               bias=weights[f"{name}.bias"], layer=layers[f"{name}.weight"])
            row = table[name]
            row["runs"] += 1
            if r.refused:
                row["refused"] += 1
                refusals.append((i, name, r.refused))
                continue
            if r.shift_bias:
                row["needed_bias_shift"].append(i)
            row["max_shift_bias"] = max(row["max_shift_bias"], r.shift_bias)
            row["bias_saturated"] += r.bias_saturated
            row["outputs_saturated"] += r.outputs_saturated
            row["outputs"] += r.outputs
            for key, value in (("min_acc_margin_bits", r.acc_margin_bits),
                               ("min_bias_headroom_bits", r.bias_headroom_bits)):
                row[key] = value if row[key] is None else min(row[key], value)
            row["worst_rel_rmse"] = max(row["worst_rel_rmse"], r.rel_rmse)
        if progress:
            progress(i + 1, len(sentences))
    return dict(table), refusals


def markdown(report):
    lines = ["# Real text through every MiniLM FC layer on the bit-exact tile model", "",
             f"{report['sentences']} corpus sentences (up to {report['max_tokens']} tokens), "
             f"each its own run; `{report['command']}`, {report['seconds']:.0f} s.", ""]
    for run in report["runs"]:
        totals = run["totals"]
        lines += [f"## {run['act_bits']}-bit activations", "",
                  f"- layers refused: **{totals['refused']}** of {totals['runs']} layer runs",
                  f"- runs that needed a bias shift (refused before the bias had one): "
                  f"{totals['needed_bias_shift']} (largest shift {totals['max_shift_bias']})",
                  f"- biases saturated: {totals['bias_saturated']}; outputs saturated: "
                  f"{totals['outputs_saturated']} of {totals['outputs']}",
                  f"- smallest accumulator margin: {totals['min_acc_margin_bits']} bits of "
                  f"acc_bits = {run['acc_bits']}",
                  f"- smallest bias headroom before saturation: "
                  f"{totals['min_bias_headroom_bits']} bits (bias_bits {run['bias_bits']}, bias "
                  f"shift up to {run['max_align_shift']})", "",
                  "| layer | refused | bias shift needed (sentences) | max shift | outputs "
                  "saturated | acc margin (bits) | worst rel RMSE |", "|---|---:|---|---:|---:|"
                  "---:|---:|"]
        for name, row in run["layers"].items():
            lines.append(f"| {name} | {row['refused']} | {row['needed_bias_shift'] or '-'} | "
                         f"{row['max_shift_bias']} | {row['outputs_saturated']} | "
                         f"{row['min_acc_margin_bits']} | {row['worst_rel_rmse']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Real sentences through every MiniLM encoder FC layer on the bit-exact "
                    "tile model: layers refused (must be 0), bias shifts, saturation, margins.",
        epilog="example: python scripts/numerics_scan.py --out build/reports --sentences 300")
    parser.add_argument("--out", type=pathlib.Path, required=True, metavar="DIR")
    parser.add_argument("--sentences", type=int, default=300, metavar="N")
    parser.add_argument("--max-tokens", type=int, default=16, metavar="T",
                        help="tokens per sentence (truncated; default 16)")
    parser.add_argument("--act-bits", type=int, nargs="+", default=[16, 8], metavar="A")
    args = parser.parse_args(argv)
    started = time.monotonic()
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    tokenizer = Tokenizer(folder, max_length=args.max_tokens)
    sentences = load_sentences(args.sentences)
    runs, refused = [], 0
    for act_bits in args.act_bits:
        config = preset("minilm").replace(act_bits=act_bits)
        layers = {n: quantize(encoder.weights[n], index_bits=config.index_bits,
                              outlier_log_prob=config.outlier_log_prob)
                  for n in fc_names(encoder.config)}

        def progress(done, total, act_bits=act_bits):
            if done % 25 == 0 or done == total:
                print(f"[A{act_bits}] {done}/{total} sentences, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

        table, refusals = scan(config, encoder, tokenizer, sentences, layers, progress=progress)
        refused += len(refusals)
        totals = {key: sum(row[key] for row in table.values())
                  for key in ("runs", "refused", "bias_saturated", "outputs_saturated",
                              "outputs")}
        totals["needed_bias_shift"] = sum(len(row["needed_bias_shift"]) for row in table.values())
        totals["max_shift_bias"] = max(row["max_shift_bias"] for row in table.values())
        for key in ("min_acc_margin_bits", "min_bias_headroom_bits"):
            totals[key] = min(row[key] for row in table.values() if row[key] is not None)
        runs.append({"act_bits": act_bits, "acc_bits": config.acc_bits,
                     "bias_bits": config.bias_bits, "max_align_shift": config.max_align_shift,
                     "totals": totals, "layers": table,
                     "refusals": [{"sentence": i, "layer": n, "error": e}
                                  for i, n, e in refusals]})
    report = {"sentences": len(sentences), "max_tokens": args.max_tokens,
              "command": "python scripts/numerics_scan.py " + " ".join(argv or sys.argv[1:]),
              "seconds": time.monotonic() - started, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "numerics_scan.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "numerics_scan.md").write_text(text + "\n")
    print(text)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
