"""The accuracy-per-bit frontier of weights-only quantization of all-MiniLM-L6-v2, no retraining.

Every point quantizes the 36 encoder FC matrices one way (embeddings, biases and LayerNorms stay
FP32, as in ``gobo run``'s "GOBO weights only"), embeds the ``gobo run`` test split of the tweet
sentiment set, and reports against the FP32 model: mean and worst cosine of the sentence
embeddings, and the accuracy (± standard error) of the logistic head trained on FP32 embeddings
of the training split (golden.accel.run_report, docs/model.md). Bits per weight = all stored
bytes of the FC matrices (indexes, dictionaries, outliers with their positions, scales, headers;
golden.nlp.model_report.layer_nbytes) x 8 / FC weights.

Anything calibrated (GPTQ's Gram matrices, the per-matrix sensitivities that choose a 3/4-bit
mix) uses the held-out tweets of golden.nlp.sentiment.held_out, never the test split.

Each point also says whether the present tile runs it (preset minilm, or the same tile with
4-bit indexes), predicted tile cycles for every FC layer over one run of ``max_tokens`` tokens
(golden.hwmodel.tile.tile_cycles_of_image) and what it would need if not. With ``--accelerator``
the best point at or below 3.5 bits per weight is also run through the bit-exact tile model at
A16.

Writes frontier.json, frontier.md and frontier.png to --out; progress on stderr. About 15
minutes on one core with the defaults (a third of it the A16 run).
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from golden.accel.encoder import AcceleratedEncoder, calibrate
from golden.config import preset
from golden.hwmodel.layer_image import ImageError, build_layer_image, widen_dictionary
from golden.hwmodel.tile import tile_cycles_of_image
from golden.nlp.accuracy import proxies
from golden.nlp.bert import BertEncoder, fc_names
from golden.nlp.logistic import accuracy, fit_logistic, select_l2
from golden.nlp.mixed_precision import allocate, fc_bits_per_weight, gram_matrices, sensitivities
from golden.nlp.model_report import layer_nbytes
from golden.nlp.sentiment import CLASSES, held_out, load_tweets, split
from golden.nlp.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer
from golden.nlp.weights import minilm_dir
from golden.quant import scaled
from golden.quant.gptq import quantize_gptq
from golden.quant.layer import GoboLayer
from golden.quant.outliers import scope_fits
from golden.quant.quantizer import quantize
from golden.quant.row_groups import RowGroupLayer, quantize_row_groups

BUDGETS = (3.25, 3.5, 3.75)
THRESHOLDS = (-3.0, -2.0, -1.0)
#: Fewer outliers leave more of a budget for 4-bit matrices (an outlier costs 64 bits).
GPTQ_THRESHOLDS = (-6.0, -10.0)
ROW_GROUPS = (64, 16)
GOAL = {"bits": 3.5, "mean_cos": 0.97, "accuracy_points": 1.0}
FAMILIES = {"gobo": "tab:green", "gptq": "tab:red", "mixed": "tab:olive",
            "mixed gptq": "tab:purple", "threshold": "tab:cyan", "scope": "tab:brown",
            "row groups": "tab:pink", "uniform": "tab:blue", "blockwise": "tab:orange"}


def _say(message):
    print(message, file=sys.stderr, flush=True)


def _hardware(layers, config):
    """``(runs as is?, note, cycles)`` of a scheme on the tile of ``config`` (its index width is
    raised to the widest matrix's): every FC matrix laid out as images (one per row group), and
    the predicted cycles of one run of ``max_tokens`` tokens summed over them."""
    kinds = {type(x) for x in layers.values()}
    if kinds - {GoboLayer, RowGroupLayer}:
        return False, ("no: the GOBO tile has one dictionary per matrix and the MAC tile one "
                       "power-of-two weight exponent per matrix (docs/tile.md section 6); a "
                       "float scale per row or per block needs a scale memory and a multiply "
                       "of each row's (or block's) partial dot product"), None
    images = {n: list(x.groups) if isinstance(x, RowGroupLayer) else [x]
              for n, x in layers.items()}
    widest = max(g.index_bits for parts in images.values() for g in parts)
    narrowest = min(g.index_bits for parts in images.values() for g in parts)
    tile = config.replace(index_bits=max(widest, config.index_bits))
    cycles = 0
    for name, parts in images.items():
        for part in parts:
            try:
                image = build_layer_image(tile, part.dequantize(), act_exponent=0,
                                          layer=widen_dictionary(part, tile.index_bits),
                                          balance_rows=False)
            except ImageError as e:
                return False, f"no: {name}: {e}", None
            cycles += tile_cycles_of_image(image, tile.max_tokens)["cycles"]
    runs = sum(len(p) for p in images.values())
    if runs > len(images):
        return False, (f"needs a dictionary reload per row group: {runs} tile runs instead of "
                       f"{len(images)} (each reloads {2 ** tile.index_bits} centroids of "
                       f"{tile.centroid_bits} bits and refills the pipeline; cycles counted so)"
                       ), cycles
    if widest != narrowest:
        return True, (f"yes, on a {widest}-bit tile: the {narrowest}-bit matrices use "
                      f"{2 ** narrowest} of its {2 ** widest} centroids; the index memory holds "
                      f"{widest} bits per weight for every matrix"), cycles
    return True, f"yes, on a {widest}-bit tile", cycles


class Frontier:
    """The FP32 references, the head and the calibration data the points share."""

    def __init__(self, args):
        folder = args.model_dir or minilm_dir()
        self.encoder = BertEncoder.from_files(folder / "model.safetensors",
                                              folder / "config.json")
        self.tokenizer = Tokenizer(folder, max_length=min(
            DEFAULT_MAX_LENGTH, self.encoder.config.max_position_embeddings))
        data = load_tweets()
        # gobo run's splits (same sizes and seed), and the quantizer's held-out sentences
        self.splits = split(data, {"calibration": 16, "train": args.train,
                                   "test": args.sentences}, seed=args.seed)
        self.calibration = held_out(data, args.calibration, seed=args.seed)
        self.fc = fc_names(self.encoder.config)
        train, test = self.splits["train"], self.splits["test"]
        start = time.perf_counter()
        fp32_train = self.encoder.encode(train.texts, self.tokenizer)
        self.reference = self.encoder.encode(test.texts, self.tokenizer)
        l2, _ = select_l2(fp32_train, train.labels, classes=len(CLASSES))
        self.head = fit_logistic(fp32_train, train.labels, classes=len(CLASSES), l2=l2)
        self.fp32_predictions = self.head.predict(self.reference)
        self.fp32_accuracy = accuracy(self.fp32_predictions, test.labels)
        _say(f"FP32: head l2 {l2:g}, test accuracy {100 * self.fp32_accuracy[0]:.1f} ± "
             f"{100 * self.fp32_accuracy[1]:.1f} %, {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        self.grams = gram_matrices(self.encoder, self.tokenizer, self.calibration.texts)
        _say(f"Gram matrices on {len(self.calibration)} held-out tweets, "
             f"{time.perf_counter() - start:.0f} s")
        self.points = []

    def each(self, fn):
        return {name: fn(name, self.encoder.weights[name]) for name in self.fc}

    def evaluate(self, name, family, layers, config=None):
        start = time.perf_counter()
        weights = {n: x.dequantize() for n, x in layers.items()}
        embeddings = self.encoder.with_weights(weights).encode(self.splits["test"].texts,
                                                               self.tokenizer)
        predicted = self.head.predict(embeddings)
        acc, se = accuracy(predicted, self.splits["test"].labels)
        runs, note, cycles = _hardware(layers, preset("minilm"))
        bits = {}
        for layer in layers.values():
            for part in (layer.groups if isinstance(layer, RowGroupLayer) else [layer]):
                width = getattr(part, "index_bits", getattr(part, "bits", None))
                bits[width] = bits.get(width, 0) + part.numel
        point = {"name": name, "family": family, "config": config or {},
                 "bits_per_weight": fc_bits_per_weight(layers.values()),
                 "stored_bytes": sum(layer_nbytes(x) for x in layers.values()),
                 "weights_at_bits": {str(k): v for k, v in sorted(bits.items())},
                 "outliers": sum(getattr(x, "n_outliers", 0) for x in layers.values()),
                 **proxies(self.reference, embeddings), "accuracy": acc, "accuracy_se": se,
                 "accuracy_drop_points": 100 * (self.fp32_accuracy[0] - acc),
                 "prediction_agreement": float(np.mean(predicted == self.fp32_predictions)),
                 "hardware_runs_it": runs, "hardware": note, "tile_cycles": cycles,
                 "seconds": time.perf_counter() - start}
        self.points.append(point)
        _say(f"{name:34s} {point['bits_per_weight']:.3f} b/w  mean cos {point['mean_cos']:.4f}  "
             f"worst {point['worst_cos']:.4f}  acc {100 * acc:.1f} ± {100 * se:.1f} %  "
             f"({point['seconds']:.0f} s)")
        return point


def _mixed(f, tables, key, label, family):
    """The 3/4-bit mixes of table ``key`` (its 3- and 4-bit layers) at every budget."""
    table = tables[key]
    start = time.perf_counter()
    drops, base = sensitivities(f.encoder, f.tokenizer, f.calibration.texts, table[3], table[4])
    _say(f"sensitivities{label}: all 4-bit mean cos {base:.4f} on held-out tweets, "
         f"{time.perf_counter() - start:.0f} s")
    for budget in BUDGETS:
        chosen = allocate(table[3], table[4], drops, budget)
        f.evaluate(f"mixed 3/4b <= {budget:g}{label}", family, chosen,
                   {"budget": budget, "table": key,
                    "four_bit": sorted(n for n in chosen if chosen[n].index_bits == 4),
                    "drops": drops})


def _sweep(f, args):
    tables = {"nearest": {b: f.each(lambda n, w, b=b: quantize(w, index_bits=b))
                          for b in (3, 4)}}
    for threshold in (-4.0, *GPTQ_THRESHOLDS):
        tables[f"gptq {threshold:g}"] = {b: f.each(
            lambda n, w, b=b, t=threshold: quantize_gptq(w, f.grams[n], index_bits=b,
                                                         outlier_log_prob=t)) for b in (3, 4)}
    for b in (3, 4):
        f.evaluate(f"GOBO {b}b", "gobo", tables["nearest"][b], {"bits": b, "table": "nearest"})
        f.evaluate(f"GOBO {b}b GPTQ", "gptq", tables["gptq -4"][b],
                   {"bits": b, "table": "gptq -4"})
    for threshold in GPTQ_THRESHOLDS:
        key = f"gptq {threshold:g}"
        for b in (3, 4):
            f.evaluate(f"GOBO {b}b GPTQ threshold {threshold:g}", "gptq", tables[key][b],
                       {"bits": b, "table": key})
    _mixed(f, tables, "nearest", "", "mixed")
    _mixed(f, tables, "gptq -4", " GPTQ", "mixed gptq")
    for threshold in GPTQ_THRESHOLDS:
        _mixed(f, tables, f"gptq {threshold:g}", f" GPTQ threshold {threshold:g}", "mixed gptq")
    for threshold in THRESHOLDS:
        f.evaluate(f"GOBO 3b threshold {threshold:g}", "threshold",
                   f.each(lambda n, w, t=threshold: quantize(w, index_bits=3,
                                                             outlier_log_prob=t)),
                   {"bits": 3, "outlier_log_prob": threshold})
    fits = scope_fits({n: f.encoder.weights[n] for n in f.fc}, "gaussian", "layer")
    for b in (3, 4):
        f.evaluate(f"GOBO {b}b layer outlier fit", "scope",
                   f.each(lambda n, w, b=b: quantize(w, index_bits=b, fit=fits[n])),
                   {"bits": b, "outlier_scope": "layer"})
    for rows in ROW_GROUPS:
        f.evaluate(f"GOBO 3b dictionary per {rows} rows", "row groups",
                   f.each(lambda n, w, r=rows: quantize_row_groups(w, r, index_bits=3)),
                   {"bits": 3, "rows_per_group": rows})
    for b in (3, 4):
        f.evaluate(f"uniform {b}b per-channel", "uniform",
                   f.each(lambda n, w, b=b: scaled.quantize_uniform(w, bits=b)), {"bits": b})
    for b, block in ((3, 32), (3, 64), (4, 64)):
        f.evaluate(f"blockwise {b}b B={block}", "blockwise",
                   f.each(lambda n, w, b=b, k=block: scaled.quantize_blockwise(w, bits=b,
                                                                               block=k)),
                   {"bits": b, "block": block})
    return tables


def _tile_costs(f, layers):
    """What running 3-bit matrices on a 4-bit tile costs against a 3-bit tile: index memory
    bits (the memory's depth x word, docs/tile.md section 2) and predicted cycles over every FC
    layer for one run of ``max_tokens`` tokens."""
    out = {}
    for bits in (3, 4):
        tile = preset("minilm").replace(index_bits=bits)
        depth = -(-tile.max_rows // tile.pes) * -(-tile.max_dot_length // tile.lanes)
        cycles = sum(tile_cycles_of_image(build_layer_image(
            tile, x.dequantize(), act_exponent=0, layer=widen_dictionary(x, bits),
            balance_rows=False), tile.max_tokens)["cycles"] for x in layers.values())
        out[f"tile_{bits}bit"] = {"index_memory_bits": depth * tile.pes * tile.lanes * bits,
                                  "cycles_of_3bit_matrices": cycles}
    return out


def _best(points):
    within = [p for p in points if p["bits_per_weight"] <= GOAL["bits"]]
    return max(within, key=lambda p: p["mean_cos"]) if within else None


def _accelerator(f, point, tables):
    """A16 numerics of ``point`` on the bit-exact tile model (4-bit tile if it mixes widths)."""
    c = point["config"]
    table = tables[c["table"]]
    if "budget" in c:
        layers = {n: table[4][n] if n in c["four_bit"] else table[3][n] for n in f.fc}
    else:
        layers = table[c["bits"]]
    widest = max(x.index_bits for x in layers.values())
    config = preset("minilm").replace(act_bits=16, index_bits=widest)
    start = time.perf_counter()
    calibration = calibrate(f.encoder, f.tokenizer, f.splits["calibration"].texts)
    accel = AcceleratedEncoder(config, f.encoder, calibration,
                               layers={n: widen_dictionary(x, widest) for n, x in layers.items()})
    embeddings = accel.encode(f.splits["test"].texts, f.tokenizer)
    predicted = f.head.predict(embeddings)
    acc, se = accuracy(predicted, f.splits["test"].labels)
    totals = {k: sum(getattr(x, k) for x in accel.counts.values())
              for k in ("inputs_saturated", "outputs_saturated")}
    return {"point": point["name"], "act_bits": 16, "index_bits": widest,
            **proxies(f.reference, embeddings), "accuracy": acc, "accuracy_se": se,
            **totals, "seconds": time.perf_counter() - start}


def _markdown(meta, points, best, a16):
    fp32_acc, fp32_se = meta["fp32_accuracy"]
    lines = [
        "# Accuracy per bit: weights-only quantization of all-MiniLM-L6-v2, no retraining", "",
        f"Test: {meta['sentences']} tweets of `gobo run`'s test split (seed {meta['seed']}); head "
        f"trained on {meta['train']} FP32 training embeddings; FP32 accuracy "
        f"{100 * fp32_acc:.1f} ± {100 * fp32_se:.1f} %. Calibration (GPTQ, sensitivities): "
        f"{meta['calibration']} held-out tweets, never in any split. Only the 36 encoder FC "
        f"matrices are quantized; bits per weight = their stored bytes x 8 / "
        f"{meta['fc_weights']:,}. Tile cycles: every FC layer once over {meta['tokens']} "
        f"tokens (one run of preset minilm's max_tokens), predicted by the cycle model.", "",
        f"Goal: <= {GOAL['bits']} bits per weight, mean cosine >= {GOAL['mean_cos']}, accuracy "
        f"within {GOAL['accuracy_points']:g} point of FP32.", "",
        "| scheme | bits/w | mean cos | worst cos | accuracy ± SE | drop (points) | "
        "tile cycles | present hardware |",
        "|---|---:|---:|---:|---:|---:|---:|---|"]
    for p in sorted(points, key=lambda p: p["bits_per_weight"]):
        cycles = f"{p['tile_cycles']:,}" if p["tile_cycles"] else "-"
        lines.append(f"| {p['name']} | {p['bits_per_weight']:.3f} | {p['mean_cos']:.4f} | "
                     f"{p['worst_cos']:.4f} | {100 * p['accuracy']:.1f} ± "
                     f"{100 * p['accuracy_se']:.1f} | {p['accuracy_drop_points']:+.1f} | "
                     f"{cycles} | {p['hardware']} |")
    if best:
        short = []
        if best["mean_cos"] < GOAL["mean_cos"]:
            short.append(f"mean cosine short by {GOAL['mean_cos'] - best['mean_cos']:.4f}")
        if best["accuracy_drop_points"] > GOAL["accuracy_points"]:
            short.append(f"accuracy {best['accuracy_drop_points']:.1f} points below FP32, "
                         f"{best['accuracy_drop_points'] - GOAL['accuracy_points']:.1f} more "
                         f"than allowed (the standard error is "
                         f"{100 * best['accuracy_se']:.1f} points; "
                         f"{100 * best['prediction_agreement']:.1f} % of the predictions equal "
                         f"FP32's)")
        lines += ["", f"Best at <= {GOAL['bits']} bits per weight (by mean cosine): "
                      f"**{best['name']}**, {best['bits_per_weight']:.3f} bits per weight, mean "
                      f"cosine {best['mean_cos']:.4f}, worst {best['worst_cos']:.4f}, accuracy "
                      f"{100 * best['accuracy']:.1f} ± {100 * best['accuracy_se']:.1f} % "
                      f"(FP32 {100 * meta['fp32_accuracy'][0]:.1f} %); present "
                      f"hardware: {best['hardware']}. Goal "
                      + ("met." if not short else f"not met: {'; '.join(short)}.")]
    if a16:
        lines += ["", f"On the bit-exact tile model at A16 ({a16['index_bits']}-bit tile): mean "
                      f"cosine {a16['mean_cos']:.4f}, worst {a16['worst_cos']:.4f}, accuracy "
                      f"{100 * a16['accuracy']:.1f} ± {100 * a16['accuracy_se']:.1f} %; "
                      f"activations saturated {a16['inputs_saturated']}, outputs clamped "
                      f"{a16['outputs_saturated']} ({a16['seconds']:.0f} s)."]
    t3, t4 = meta["tile_costs"]["tile_3bit"], meta["tile_costs"]["tile_4bit"]
    lines += ["", f"The 3-bit GOBO matrices on preset minilm (3-bit tile) and on the same tile "
                  f"with 4-bit indexes (8 of 16 centroids used): index memory "
                  f"{t3['index_memory_bits']:,} vs {t4['index_memory_bits']:,} bits, cycles "
                  f"{t3['cycles_of_3bit_matrices']:,} vs {t4['cycles_of_3bit_matrices']:,} "
                  f"(every FC layer once over {meta['tokens']} tokens)."]
    lines += ["", "Wall time " + f"{meta['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _plot(points, best, path, fp32_accuracy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2))
    panels = [(lambda p: p["mean_cos"], "mean cosine to FP32 (worst: hollow)"),
              (lambda p: 100 * p["accuracy"], "task accuracy, % (± SE)")]
    for ax, (value, title) in zip(axes, panels):
        for family, colour in FAMILIES.items():
            mine = sorted((p for p in points if p["family"] == family),
                          key=lambda p: p["bits_per_weight"])
            if not mine:
                continue
            xs = [p["bits_per_weight"] for p in mine]
            if title.startswith("task"):
                ax.errorbar(xs, [value(p) for p in mine],
                            yerr=[100 * p["accuracy_se"] for p in mine], fmt="o-",
                            color=colour, label=family, capsize=2)
            else:
                ax.plot(xs, [value(p) for p in mine], "o-", color=colour, label=family)
                ax.plot(xs, [p["worst_cos"] for p in mine], "o", mfc="none", color=colour)
        ax.axvline(GOAL["bits"], color="grey", ls=":")
        if best:
            ax.annotate(best["name"], (best["bits_per_weight"], value(best)),
                        textcoords="offset points", xytext=(6, -12), fontsize=8)
        ax.set_xlabel("FC bits per weight (stored form: indexes, dictionaries, outliers, scales)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].axhline(GOAL["mean_cos"], color="grey", ls=":")
    axes[1].axhline(100 * fp32_accuracy, color="black", lw=0.8, label="FP32")
    axes[1].axhline(100 * fp32_accuracy - GOAL["accuracy_points"], color="grey", ls=":")
    axes[0].set_ylim(0.8, 1.0)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("all-MiniLM-L6-v2, encoder FC matrices quantized (weights only), no retraining")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=300, help="test tweets (default 300)")
    parser.add_argument("--model-dir", type=pathlib.Path, default=None,
                        help="folder with model.safetensors, config.json and a tokenizer "
                             "(default: the cached all-MiniLM-L6-v2)")
    parser.add_argument("--train", type=int, default=1000, help="training tweets for the head")
    parser.add_argument("--calibration", type=int, default=128,
                        help="held-out tweets for GPTQ and the sensitivities (default 128)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--accelerator", action="store_true",
                        help="also run the best point at <= 3.5 bits on the bit-exact tile at A16")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("build/reports/frontier"))
    parser.add_argument("--render", action="store_true",
                        help="only write frontier.md and .png again from --out's frontier.json")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads((args.out / "frontier.json").read_text())
        best = next((p for p in saved["points"] if p["name"] == saved["best"]), None)
        (args.out / "frontier.md").write_text(_markdown(saved["meta"], saved["points"], best,
                                                        saved["a16"]))
        _plot(saved["points"], best, args.out / "frontier.png", saved["meta"]["fp32_accuracy"][0])
        return 0
    started = time.perf_counter()
    f = Frontier(args)
    tables = _sweep(f, args)
    best = _best(f.points)
    tile_costs = _tile_costs(f, tables["nearest"][3])
    _say(f"3-bit matrices on a 3-bit vs a 4-bit tile: {tile_costs}")
    a16 = _accelerator(f, best, tables) if args.accelerator and best else None
    if a16:
        _say(f"A16 on the tile model: mean cos {a16['mean_cos']:.4f}, accuracy "
             f"{100 * a16['accuracy']:.1f} %")
    meta = {"model": str(args.model_dir or minilm_dir()), "sentences": args.sentences,
            "train": args.train, "calibration": args.calibration, "seed": args.seed,
            "fp32_accuracy": list(f.fp32_accuracy), "tokens": preset("minilm").max_tokens,
            "fc_weights": sum(f.encoder.weights[n].size for n in f.fc), "goal": GOAL,
            "numpy": np.__version__, "seconds": time.perf_counter() - started,
            "tile_costs": tile_costs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "frontier.json").write_text(json.dumps(
        {"meta": meta, "points": f.points, "best": best and best["name"], "a16": a16},
        indent=1) + "\n")
    (args.out / "frontier.md").write_text(_markdown(meta, f.points, best, a16))
    _plot(f.points, best, args.out / "frontier.png", f.fp32_accuracy[0])
    _say(f"wrote {args.out}/frontier.json, .md and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
