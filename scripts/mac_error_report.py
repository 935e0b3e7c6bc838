"""What accuracy the MAC baselines buy on all-MiniLM-L6-v2 (docs/tile.md section 6, "What W8A8
buys"): every encoder FC layer's error against FP32 on the bit-exact MAC tile model, beside each
of its roundings alone (golden.hwmodel.mac_error), on seeded Gaussian activations (what `gobo
simulate` feeds without --activations) and on the layer's real inputs for corpus sentences, with
GOBO's tile (A16 and A8) on the same inputs for comparison.

Every layer is calibrated as `gobo simulate --flavour` calibrates it: its own per-tensor
power-of-two exponents for weights, activations and outputs. The real inputs of all sentences
are stacked into one run per layer (one calibration over all their tokens).

`--model N`: the whole model instead, every encoder FC layer on the MAC tile model (or with one
of its roundings alone, in float, or on the GOBO tile model), each sentence its own run with its
own scales (as `gobo simulate --activations` calibrates a layer), embeddings compared with FP32's
on N corpus sentences (golden.nlp.accuracy.proxies; up to 128 tokens each).

    python scripts/mac_error_report.py [--sentences 16] [--tokens 16] [--layers output.dense]
    python scripts/mac_error_report.py --model 200
"""

import argparse
import sys

import numpy as np

from golden.accel.fc_layers import check_fc_layer, fc_inputs
from golden.config import MAC_FLAVOURS, mac_flavour, preset
from golden.hwmodel.fixedpoint import to_fixed
from golden.hwmodel.layer_image import calibrated_image, logical_outputs
from golden.hwmodel.mac_error import mac_error
from golden.hwmodel.mac_tile import mac_tile_outputs
from golden.hwmodel.tile import tile_outputs
from golden.hwmodel.tile_jobs import calibrated_mac_layer
from golden.nlp.accuracy import proxies
from golden.nlp.bert import BertConfig, BertEncoder, fc_names
from golden.nlp.corpus import load_sentences
from golden.nlp.tokenizer import Tokenizer
from golden.nlp.weights import minilm_dir
from golden.quant.quantizer import quantize

#: The MAC baselines' base preset (as in the `gobo simulate` command of docs/tile.md section 6)
#: and GOBO's (its outlier memory holds every MiniLM layer's outliers whole; the numbers are the
#: same at any memory size).
BASE, GOBO = "minilm_stream", "minilm"


def rows(encoder, inputs, names, seed):
    """One dict per (layer, input kind): the MAC flavours' budgets and GOBO's errors."""
    out = []
    for name in names:
        w, b = encoder.weights[f"{name}.weight"], encoder.weights[f"{name}.bias"]
        seeded = np.random.default_rng(seed).standard_normal((len(inputs[name]), w.shape[1]))
        for kind, acts in (("seeded", seeded), ("real", inputs[name])):
            row = {"layer": name, "inputs": kind, "tokens": len(acts)}
            for flavour in MAC_FLAVOURS:
                config, weight_bits = mac_flavour(flavour, base=BASE)
                row[flavour] = mac_error(config, weight_bits, w, acts, bias=b)
            for act_bits in (16, 8):
                check = check_fc_layer(preset(GOBO).replace(act_bits=act_bits), name, w, acts,
                                       bias=b)
                row[f"gobo_a{act_bits}"] = check.refused or check.rel_rmse
            out.append(row)
    return out


def markdown(table):
    lines = ["| layer | inputs | act peak | W8A8 tile | W8A8 weights only | W8A8 acts only | "
             "W8A8 outputs only | W8A8 per-row weights | W8A8 weights / acts to 0 | "
             "W16A16 | W4A4 | GOBO A16 | GOBO A8 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        e = r["w8a8"]
        gobo = [f"{v:.4f}" if isinstance(v, float) else "refused" for v in
                (r["gobo_a16"], r["gobo_a8"])]
        lines.append(
            f"| {r['layer'].removeprefix('encoder.')} | {r['inputs']} ({r['tokens']} tokens) | "
            f"{e.act_peak:.2f} | **{e.tile:.4f}** | {e.weights_only:.4f} | {e.acts_only:.4f} | "
            f"{e.outputs_only:.4f} | {e.weights_per_row:.4f} | "
            f"{100 * e.weights_to_zero:.1f} % / {100 * e.acts_to_zero:.1f} % | "
            f"{r['w16a16'].tile:.4f} | {r['w4a4'].tile:.4f} | {gobo[0]} | {gobo[1]} |")
    return "\n".join(lines)


def _rounded(values, bits):
    ints, exponent = to_fixed(values, bits)
    return ints * 2.0 ** exponent


def _tile_fc(encoder, flavour):
    """The FC hook running every layer on the MAC tile model, calibrated on its own input."""
    config, weight_bits = mac_flavour(flavour, base=BASE)
    w = encoder.weights

    def fc(name, h, mask):
        layer, x_int, _ = calibrated_mac_layer(config, weight_bits, w[f"{name}.weight"], h[0],
                                               bias=w[f"{name}.bias"])
        y = mac_tile_outputs(layer, x_int)[:layer.rows].T * 2.0 ** layer.exponents["outputs"]
        return y[None].astype(h.dtype)
    return fc


def _gobo_fc(encoder, act_bits):
    """The FC hook running every layer on the GOBO tile model (preset ``GOBO``), calibrated on
    its own input as ``gobo simulate --activations`` calibrates it."""
    config = preset(GOBO).replace(act_bits=act_bits)
    w = encoder.weights
    layers = {n.removesuffix(".weight"): quantize(w[n], index_bits=config.index_bits,
                                                   outlier_log_prob=config.outlier_log_prob)
              for n in fc_names(encoder.config)}

    def fc(name, h, mask):
        image, x_int, _ = calibrated_image(config, w[f"{name}.weight"], h[0],
                                           bias=w[f"{name}.bias"], layer=layers[name],
                                           balance_rows=False)
        y = logical_outputs(image, tile_outputs(image, x_int)).T
        return (y * 2.0 ** image.exponents["outputs"])[None].astype(h.dtype)
    return fc


def _float_fc(encoder, *, weights=None, acts=False, outputs=False):
    """The FC hook in float with only the named 8-bit roundings: ``weights`` "tensor" (one
    exponent per matrix, the tile's) or "row" (one per output row), ``acts``, ``outputs``."""
    w = encoder.weights
    names = [n.removesuffix(".weight") for n in fc_names(encoder.config)]
    matrices = {n: np.asarray(w[f"{n}.weight"], dtype=np.float64) for n in names}
    if weights == "tensor":
        matrices = {n: _rounded(m, 8) for n, m in matrices.items()}
    elif weights == "row":
        matrices = {n: np.stack([_rounded(r, 8) for r in m]) for n, m in matrices.items()}

    def fc(name, h, mask):
        x = np.asarray(h[0], dtype=np.float64)
        y = (_rounded(x, 8) if acts else x) @ matrices[name].T + w[f"{name}.bias"]
        return (_rounded(y, 8) if outputs else y)[None].astype(h.dtype)
    return fc


def model_table(encoder, tokenizer, sentences):
    """Markdown: the embedding proxies against FP32 of the MAC tiles and of each 8-bit rounding
    alone, over ``sentences`` (each its own run: batch size 1, no padding)."""
    reference = encoder.encode(sentences, tokenizer, batch_size=1)
    variants = {
        "W16A16 tile": _tile_fc(encoder, "w16a16"),
        "**W8A8 tile**": _tile_fc(encoder, "w8a8"),
        "W4A4 tile": _tile_fc(encoder, "w4a4"),
        "GOBO tile, 3-bit indexes, A16": _gobo_fc(encoder, 16),
        "GOBO tile, 3-bit indexes, A8": _gobo_fc(encoder, 8),
        "8-bit weights per tensor only (float)": _float_fc(encoder, weights="tensor"),
        "8-bit activations only (float)": _float_fc(encoder, acts=True),
        "8-bit outputs only (float)": _float_fc(encoder, outputs=True),
        "8-bit weights per row only (float)": _float_fc(encoder, weights="row"),
        "8-bit weights per row + activations + outputs (float)":
            _float_fc(encoder, weights="row", acts=True, outputs=True),
    }
    lines = [f"{len(sentences)} corpus sentences, each its own run (its own per-tensor scales)",
             "", "| every FC layer as | mean cos | worst cos | NN agreement |",
             "|---|---:|---:|---:|"]
    for label, fc in variants.items():
        p = proxies(reference, encoder.encode(sentences, tokenizer, batch_size=1, fc=fc))
        lines.append(f"| {label} | {p['mean_cos']:.4f} | {p['worst_cos']:.4f} | "
                     f"{100 * p['nn_agreement']:.1f} % |")
        print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="The MAC baselines' error against FP32 on MiniLM's FC layers, and where it "
                    "comes from (weights, activations, outputs), seeded and real inputs.",
        epilog="example: python scripts/mac_error_report.py --sentences 16 --layers output.dense")
    parser.add_argument("--sentences", type=int, default=16, metavar="N",
                        help="corpus sentences whose real inputs are stacked (default 16)")
    parser.add_argument("--tokens", type=int, default=16, metavar="T",
                        help="tokens per sentence, truncated (default 16)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the Gaussian activations")
    parser.add_argument("--layers", nargs="+", default=None, metavar="KIND",
                        help="FC kinds to report, e.g. output.dense query (default: all)")
    parser.add_argument("--model", type=int, default=None, metavar="N",
                        help="the whole model's embedding proxies on N sentences instead")
    args = parser.parse_args(argv)
    for flag, value in (("--sentences", args.sentences), ("--tokens", args.tokens),
                        ("--model", args.model)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be a positive integer, not {value}")
    folder = minilm_dir()
    encoder = BertEncoder.from_files(folder / "model.safetensors",
                                     BertConfig.from_file(folder / "config.json"))
    if args.model is not None:
        print(model_table(encoder, Tokenizer(folder, max_length=128),
                          load_sentences(args.model)))
        return 0
    tokenizer = Tokenizer(folder, max_length=args.tokens)
    names = [n.removesuffix(".weight") for n in fc_names(encoder.config)]
    if args.layers:
        unknown = [k for k in args.layers if not any(n.endswith(f".{k}") for n in names)]
        if unknown:
            parser.error(f"no FC layer ends in {', '.join(unknown)}; kinds: "
                         f"{', '.join(sorted({n.split('.', 3)[3] for n in names}))}")
        names = [n for n in names if any(n.endswith(f".{k}") for k in args.layers)]
    captured = {}
    for sentence in load_sentences(args.sentences):
        for name, acts in fc_inputs(encoder, tokenizer, sentence).items():
            captured.setdefault(name, []).append(acts)
    inputs = {name: np.concatenate(parts) for name, parts in captured.items()}
    print(markdown(rows(encoder, inputs, names, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
