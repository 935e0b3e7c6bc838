"""``gobo quantize``: GOBO-quantize weight matrices (or, with ``--all``, a whole BERT) and print
statistics."""

import argparse
import math
import pathlib
import sys
import time

import numpy as np

from gobo.commands.model import (
    add_model_options,
    find_config,
    find_tokenizer,
    folder_of,
    load_encoder,
    progress_printer,
    spec_from_args,
    weight_calibration,
)
from gobo.common import (
    CliError,
    add_outlier_options,
    example,
    no_such_tensor,
    note,
    print_json,
    print_warnings,
    writable_file,
)
from golden.config import GoboConfig
from golden.nlp.weights import WEIGHT_FORMATS, load_tensors
from golden.quant.outliers import scope_fits
from golden.quant.quantizer import METHODS, aggregate_stats, quantize

__all__ = ["add"]

_DEFAULTS = GoboConfig()
_MINILM = "~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors"

def add(subparsers):
    p = subparsers.add_parser(
        "quantize", help="quantize weight matrices with GOBO and print statistics",
        description="Quantize the 2-D weight matrices of a weight file or checkpoint with "
                    "GOBO (Gaussian outliers kept exact, the rest as indexes into a dictionary of "
                    "2**BITS centroids) and print, per matrix, the outlier fraction, compression "
                    "ratio of the stored form, relative RMSE and L1 error. Progress goes to "
                    "stderr.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="aggregate line: outliers over all weights, compression = total FP32 bytes / total\n"
               "stored bytes, rel RMSE = weight-count-weighted mean of the matrices' values.\n"
               "A matrix with more than 5 % outliers, or compressed less than 4x because of\n"
               "them, gets a line `gobo: warning: NAME: ...` on stderr naming the likely cause.\n"
               "See docs/quantizer.md.\n\n"
               + example(f"gobo quantize {_MINILM} --bits 3",
                         f"gobo quantize {_MINILM} --all -o minilm.gobo",
                         f"gobo quantize {_MINILM} --all --embedding-bits none --rounding gptq "
                         f"--bits-budget 3.5 --threshold -6 -o minilm-3.5.gobo"))
    p.add_argument("weights", metavar="WEIGHTS", help=f"weights: {WEIGHT_FORMATS}")
    p.add_argument("--tensor", metavar="NAME", nargs="+", action="extend", default=None,
                   help="quantize these tensors (several names, or the option repeated); "
                        "default: every non-empty 2-D floating-point tensor in the file")
    p.add_argument("--bits", metavar="N", type=int, default=_DEFAULTS.index_bits,
                   help=f"index bits, 2..8 (default {_DEFAULTS.index_bits}: 8 centroids)")
    p.add_argument("--method", choices=METHODS, default="gobo",
                   help="centroid selection: gobo (stop when L1 stops decreasing, default) or "
                        "kmeans (Lloyd until assignments are stable)")
    p.add_argument("--threshold", metavar="X", type=float, default=_DEFAULTS.outlier_log_prob,
                   help="outlier threshold on the natural-log Gaussian density "
                        f"(default {_DEFAULTS.outlier_log_prob:g})")
    add_outlier_options(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    whole = p.add_argument_group(
        "whole model", "with --all, WEIGHTS is a BERT (.safetensors) and every encoder FC matrix "
        "and embedding table is quantized; -o writes the packed model that `gobo model` reads "
        "(docs/model.md)")
    whole.add_argument("--all", action="store_true",
                       help="quantize the whole BERT model described by --config")
    whole.add_argument("-o", "--output", metavar="MODEL.gobo", default=None,
                       help="write the packed model here (needs --all)")
    add_model_options(whole)
    whole.add_argument("--tokenizer", metavar="PATH", default=None,
                       help="tokenizer.json or vocab.txt for --rounding gptq and --bits-budget "
                            "(default: beside the config or weights)")
    p.set_defaults(handler=_run_quantize)


def _select(tensors, names, path):
    """The ``(name, array)`` pairs to quantize, in file order unless named explicitly."""
    if names is None:
        chosen = []
        for n, a in tensors.items():
            if a.ndim == 2 and np.issubdtype(a.dtype, np.floating):
                if a.size == 0:
                    note(f"{n}: empty tensor {tuple(a.shape)}, skipped")
                    continue
                chosen.append((n, a))
        if not chosen:
            raise CliError(f"{path}: no 2-D floating-point tensors to quantize")
        return chosen
    chosen = []
    for name in names:
        if name not in tensors:
            raise no_such_tensor(path, name, tensors.available)
        array = tensors[name]
        if array.ndim != 2:
            raise CliError(f"tensor {name!r} has shape {tuple(array.shape)}; only 2-D "
                           f"matrices can be quantized")
        if not np.issubdtype(array.dtype, np.floating):
            raise CliError(f"tensor {name!r} is {array.dtype}, not floating point")
        if array.size == 0:
            raise CliError(f"tensor {name!r} is empty {tuple(array.shape)}; nothing to quantize")
        chosen.append((name, array))
    return chosen


def _quantize_all(chosen, args, progress):
    outlier_fit = args.outlier_fit or "gaussian"
    try:
        fits = scope_fits(dict(chosen), outlier_fit, args.outlier_scope or "matrix")
    except ValueError as e:
        raise CliError(f"--outlier-scope {args.outlier_scope}: {e} (pick encoder matrices with "
                       f"--tensor, or a whole BERT with --all)") from None
    rows = []
    for i, (name, array) in enumerate(chosen, 1):
        start = time.perf_counter()
        try:
            layer = quantize(array, index_bits=args.bits, method=args.method,
                             outlier_log_prob=args.threshold, outlier_fit=outlier_fit,
                             fit=fits.get(name))
        except ValueError as e:
            raise CliError(f"tensor {name!r}: {e}") from None
        if progress:
            print(f"[{i}/{len(chosen)}] {name} {'x'.join(map(str, array.shape))} "
                  f"{time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
        rows.append((name, layer))
    return rows


def _tensor_record(name, layer, tensors):
    """The statistics of one matrix; ``compression_vs_file`` is against the dtype the file
    stores it in (BF16 halves it against ``compression_ratio``, which is against FP32)."""
    s = layer.stats
    dtype = getattr(tensors, "dtypes", {}).get(name) or "F32"
    file_bytes = tensors.file_bytes(name) if hasattr(tensors, "file_bytes") else \
        4 * layer.numel
    return {"name": name, "shape": list(layer.shape), "outlier_fraction": s.outlier_fraction,
            "compression_ratio": s.compression_ratio, "file_dtype": dtype,
            "compression_vs_file": s.compression_ratio * file_bytes / (4 * layer.numel),
            "rel_rmse": s.rel_rmse, "l1": s.l1, "iterations": s.iterations,
            "warnings": list(s.warnings)}


def _print_table(records, agg, out):
    width = max(len("name"), *(len(r["name"]) for r in records))
    # A "vs file" column only when some matrix is not stored as FP32 (BF16, F16, F64).
    vs_file = any(r["file_dtype"] != "F32" for r in records)
    line = "{:<{w}}  {:>11}  {:>9}  {:>8}  {:>8}  {:>11}  {:>5}"
    head = ["name", "shape", "outlier%", "compress", "rel RMSE", "L1", "iters"]
    print(line.format(*head, w=width) + ("  vs file" if vs_file else ""), file=out)
    for r in records:
        extra = f"  {r['compression_vs_file']:.2f}x ({r['file_dtype']})" if vs_file else ""
        print(line.format(r["name"], "x".join(map(str, r["shape"])),
                          f"{100 * r['outlier_fraction']:.3f}", f"{r['compression_ratio']:.2f}x",
                          f"{r['rel_rmse']:.4f}", f"{r['l1']:.4g}", r["iterations"], w=width)
              + extra, file=out)
    print(line.format(f"all ({agg['matrices']} matrices)", f"{agg['numel']}",
                      f"{100 * agg['outlier_fraction']:.3f}", f"{agg['compression_ratio']:.2f}x",
                      f"{agg['rel_rmse']:.4f}", f"{agg['l1']:.4g}", agg["iterations"], w=width)
          + (f"  {agg['compression_vs_file']:.2f}x" if vs_file else ""), file=out)


def _run_quantize(args):
    if args.all:
        return _run_quantize_all(args)
    if args.output is not None:
        raise CliError("-o/--output needs --all: a packed model holds a whole BERT")
    for option in ("config", "scheme", "embedding_bits", "block", "rounding", "bits_budget",
                   "tokenizer"):
        if getattr(args, option) is not None:
            raise CliError(f"--{option.replace('_', '-')} applies only with --all")
    if not 2 <= args.bits <= 8:
        raise CliError(f"--bits must be between 2 and 8, not {args.bits}")
    if not math.isfinite(args.threshold):
        raise CliError(f"--threshold must be a finite number, not {args.threshold}")
    # Only the named tensors are read: another tensor's dtype or size cannot stop the selection.
    tensors = load_tensors(args.weights, names=None if args.tensor is None else set(args.tensor))
    chosen = _select(tensors, args.tensor, args.weights)
    rows = _quantize_all(chosen, args, progress=not args.quiet)
    records = [_tensor_record(name, layer, tensors) for name, layer in rows]
    print_warnings(records)
    agg = aggregate_stats(layer.stats for _, layer in rows)
    # Against the file: the same stored bytes over the bytes the file spends on these matrices.
    fp32_bytes = sum(4 * r["shape"][0] * r["shape"][1] for r in records)
    file_bytes = sum(4 * r["shape"][0] * r["shape"][1] * r["compression_vs_file"]
                     / r["compression_ratio"] for r in records)
    agg["compression_vs_file"] = agg["compression_ratio"] * file_bytes / fp32_bytes
    if args.json:
        summary = {k: agg[k] for k in ("outlier_fraction", "compression_ratio",
                                       "compression_vs_file", "rel_rmse")}
        print_json({"tensors": records, "aggregate": summary})
    else:
        _print_table(records, agg, sys.stdout)
    return 0


def _run_quantize_all(args):
    from golden.nlp.model_report import format_report, size_report
    from golden.nlp.quantized_model import quantize_model, save

    if args.tensor is not None:
        raise CliError("--tensor and --all exclude each other")
    if not math.isfinite(args.threshold):
        raise CliError(f"--threshold must be a finite number, not {args.threshold}")
    spec = spec_from_args(args, method=args.method, threshold=args.threshold)
    if args.output is not None:
        writable_file(args.output)
    weights = pathlib.Path(args.weights)
    config_path = find_config(args, weights.parent)
    encoder = load_encoder(weights, config_path)
    calibration = None
    if spec.needs_calibration:
        tokenizer = find_tokenizer(args, [config_path.parent, folder_of(weights)],
                                   encoder.config.max_position_embeddings)
        calibration = weight_calibration(args, spec, tokenizer)
    try:
        model = quantize_model(encoder, spec, source_path=weights,
                               progress=progress_printer(args), calibration=calibration)
    except ValueError as e:
        raise CliError(str(e)) from None
    report = size_report(model, encoder.weights)
    print_warnings(report["layers"])
    if args.output is not None:
        report["output"] = str(args.output)
        try:
            save(model, args.output)
        except OSError as e:
            raise CliError(f"{args.output}: cannot write it ({e.strerror})") from None
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
        if args.output is not None:
            print(f"wrote {args.output}")
    return 0
