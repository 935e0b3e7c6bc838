"""The ``gobo`` command line.

Each subcommand is a ``_add_<name>(subparsers)`` function that registers its parser and sets
``handler``; a new subcommand (e.g. ``gobo simulate``) is one more such function listed in
:data:`_SUBCOMMANDS`. User mistakes raise :class:`CliError` (or the ``ValueError``/``WeightsError``
of the library) and become a one-line ``gobo: error: ...`` on stderr with exit status 2, never a
traceback.
"""

import argparse
import difflib
import json
import math
import os
import sys
import time

import numpy as np

from golden.config import GoboConfig
from golden.quant.quantizer import METHODS, aggregate_stats, quantize
from golden.nlp.weights import WeightsError, load_tensors

__all__ = ["main", "CliError"]

_DEFAULTS = GoboConfig()
#: Exit status for user errors (as argparse uses for usage errors).
EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake, reported as one line without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error and exits; we want one line and a return code."""

    def error(self, message):
        raise CliError(message)


# gobo quantize ----------------------------------------------------------------------------------

def _add_quantize(subparsers):
    p = subparsers.add_parser(
        "quantize", help="quantize weight matrices with GOBO and print statistics",
        description="Quantize the 2-D weight matrices of a .safetensors, .npy or .npz file with "
                    "GOBO (Gaussian outliers kept exact, the rest as indexes into a dictionary of "
                    "2**BITS centroids) and print, per matrix, the outlier fraction, compression "
                    "ratio of the stored form, relative RMSE and L1 error. Progress goes to "
                    "stderr.",
        epilog="aggregate line: outliers over all weights, compression = total FP32 bytes / total "
               "stored bytes, rel RMSE = weight-count-weighted mean of the matrices' values. "
               "See docs/quantizer.md.")
    p.add_argument("weights", metavar="WEIGHTS", help="a .safetensors, .npy or .npz file")
    p.add_argument("--tensor", metavar="NAME", action="append", default=None,
                   help="quantize this tensor (repeatable); default: every 2-D floating-point "
                        "tensor in the file")
    p.add_argument("--bits", metavar="N", type=int, default=_DEFAULTS.index_bits,
                   help=f"index bits, 2..8 (default {_DEFAULTS.index_bits}: 8 centroids)")
    p.add_argument("--method", choices=METHODS, default="gobo",
                   help="centroid selection: gobo (stop when L1 stops decreasing, default) or "
                        "kmeans (Lloyd until assignments are stable)")
    p.add_argument("--threshold", metavar="X", type=float, default=_DEFAULTS.outlier_log_prob,
                   help="outlier threshold on the natural-log Gaussian density "
                        f"(default {_DEFAULTS.outlier_log_prob:g})")
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
    _add_model_options(whole)
    p.set_defaults(handler=_run_quantize)


def _select(tensors, names, path):
    """The ``(name, array)`` pairs to quantize, in file order unless named explicitly."""
    if names is None:
        chosen = [(n, a) for n, a in tensors.items()
                  if a.ndim == 2 and np.issubdtype(a.dtype, np.floating)]
        if not chosen:
            raise CliError(f"{path}: no 2-D floating-point tensors to quantize")
        return chosen
    chosen = []
    for name in names:
        if name not in tensors:
            close = difflib.get_close_matches(name, list(tensors), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" ({len(tensors)} tensors)"
            raise CliError(f"{path}: no tensor {name!r}{hint}")
        array = tensors[name]
        if array.ndim != 2:
            raise CliError(f"tensor {name!r} has shape {tuple(array.shape)}; only 2-D "
                           f"matrices can be quantized")
        if not np.issubdtype(array.dtype, np.floating):
            raise CliError(f"tensor {name!r} is {array.dtype}, not floating point")
        chosen.append((name, array))
    return chosen


def _quantize_all(chosen, args, progress):
    rows = []
    for i, (name, array) in enumerate(chosen, 1):
        start = time.perf_counter()
        try:
            layer = quantize(array, index_bits=args.bits, method=args.method,
                             outlier_log_prob=args.threshold)
        except ValueError as e:
            raise CliError(f"tensor {name!r}: {e}") from None
        if progress:
            print(f"[{i}/{len(chosen)}] {name} {'x'.join(map(str, array.shape))} "
                  f"{time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
        rows.append((name, layer))
    return rows


def _tensor_record(name, layer):
    s = layer.stats
    return {"name": name, "shape": list(layer.shape), "outlier_fraction": s.outlier_fraction,
            "compression_ratio": s.compression_ratio, "rel_rmse": s.rel_rmse, "l1": s.l1,
            "iterations": s.iterations}


def _print_table(records, agg, out):
    width = max(len("name"), *(len(r["name"]) for r in records))
    line = "{:<{w}}  {:>11}  {:>9}  {:>8}  {:>8}  {:>11}  {:>5}"
    print(line.format("name", "shape", "outlier%", "compress", "rel RMSE", "L1", "iters",
                      w=width), file=out)
    for r in records:
        print(line.format(r["name"], "x".join(map(str, r["shape"])),
                          f"{100 * r['outlier_fraction']:.3f}", f"{r['compression_ratio']:.2f}x",
                          f"{r['rel_rmse']:.4f}", f"{r['l1']:.4g}", r["iterations"], w=width),
              file=out)
    print(line.format(f"all ({agg['matrices']} matrices)", f"{agg['numel']}",
                      f"{100 * agg['outlier_fraction']:.3f}", f"{agg['compression_ratio']:.2f}x",
                      f"{agg['rel_rmse']:.4f}", f"{agg['l1']:.4g}", agg["iterations"], w=width),
          file=out)


def _run_quantize(args):
    if args.all:
        return _run_quantize_all(args)
    if args.output is not None:
        raise CliError("-o/--output needs --all: a packed model holds a whole BERT")
    for option in ("config", "scheme", "embedding_bits", "block"):
        if getattr(args, option) is not None:
            raise CliError(f"--{option.replace('_', '-')} applies only with --all")
    if not 2 <= args.bits <= 8:
        raise CliError(f"--bits must be between 2 and 8, not {args.bits}")
    if not math.isfinite(args.threshold):
        raise CliError(f"--threshold must be a finite number, not {args.threshold}")
    tensors = load_tensors(args.weights)
    chosen = _select(tensors, args.tensor, args.weights)
    rows = _quantize_all(chosen, args, progress=not args.quiet)
    records = [_tensor_record(name, layer) for name, layer in rows]
    agg = aggregate_stats(layer.stats for _, layer in rows)
    if args.json:
        summary = {k: agg[k] for k in ("outlier_fraction", "compression_ratio", "rel_rmse")}
        json.dump({"tensors": records, "aggregate": summary}, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_table(records, agg, sys.stdout)
    return 0


# gobo model (and gobo quantize --all) ------------------------------------------------------------

def _embedding_bits(text):
    if text.lower() in ("none", "fp32"):
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 2..8 or 'none', not {text!r}") from None


def _add_model_options(p):
    """Options shared by ``gobo model`` and ``gobo quantize --all``; their defaults are None so
    that a handler can tell what the user set (the QuantSpec defaults fill in the rest)."""
    from golden.nlp.quantized_model import SCHEMES

    spec = _model_spec_defaults()
    p.add_argument("--config", metavar="CONFIG.json", default=None,
                   help="the model's Hugging Face config.json (default: config.json beside "
                        "WEIGHTS)")
    p.add_argument("--scheme", choices=SCHEMES, default=None,
                   help="gobo (default), uniform (symmetric per-channel) or blockwise "
                        "(--block weights per float16 scale)")
    p.add_argument("--embedding-bits", metavar="N", type=_embedding_bits, default=None,
                   help=f"embedding table bits, 2..8, or 'none' to keep them FP32 "
                        f"(default {spec.embedding_bits})")
    p.add_argument("--block", metavar="B", type=int, default=None,
                   help=f"weights per scale of --scheme blockwise (default {spec.block})")


def _model_spec_defaults():
    from golden.nlp.quantized_model import QuantSpec

    return QuantSpec()


def _spec_from_args(args, *, method="gobo", threshold=None):
    from golden.nlp.quantized_model import QuantSpec

    d = _model_spec_defaults()
    bits = d.bits if args.bits is None else args.bits
    emb = d.embedding_bits if args.embedding_bits is None else args.embedding_bits
    block = d.block if args.block is None else args.block
    if not 2 <= bits <= 8:
        raise CliError(f"--bits must be between 2 and 8, not {bits}")
    if emb != "none" and not 2 <= emb <= 8:
        raise CliError(f"--embedding-bits must be between 2 and 8 or 'none', not {emb}")
    if block < 1:
        raise CliError(f"--block must be a positive integer, not {block}")
    return QuantSpec(scheme=args.scheme or d.scheme, bits=bits,
                     embedding_bits=None if emb == "none" else emb, block=block, method=method,
                     outlier_log_prob=d.outlier_log_prob if threshold is None else threshold)


def _config_path(args, *folders):
    import pathlib

    if args.config is not None:
        return pathlib.Path(args.config)
    for folder in folders:
        if folder is not None and (pathlib.Path(folder) / "config.json").exists():
            return pathlib.Path(folder) / "config.json"
    raise CliError(f"{args.weights}: no config.json beside it; pass --config CONFIG.json")


def _load_encoder(weights, config_path):
    from golden.nlp.bert import BertConfig, BertEncoder

    return BertEncoder.from_files(weights, BertConfig.from_file(config_path))


def _progress(args):
    if args.quiet:
        return None
    return lambda name, seconds: print(f"quantized {name} {seconds:.2f} s", file=sys.stderr,
                                       flush=True)


def _run_quantize_all(args):
    import pathlib

    from golden.nlp.quantized_model import quantize_model, save
    from golden.nlp.model_report import format_report, size_report

    if args.tensor is not None:
        raise CliError("--tensor and --all exclude each other")
    if not math.isfinite(args.threshold):
        raise CliError(f"--threshold must be a finite number, not {args.threshold}")
    spec = _spec_from_args(args, method=args.method, threshold=args.threshold)
    weights = pathlib.Path(args.weights)
    encoder = _load_encoder(weights, _config_path(args, weights.parent))
    model = quantize_model(encoder, spec, source_path=weights, progress=_progress(args))
    report = size_report(model, encoder.weights)
    if args.output is not None:
        report["output"] = str(args.output)
        try:
            save(model, args.output)
        except OSError as e:
            raise CliError(f"{args.output}: cannot write it ({e.strerror})") from None
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
        if args.output is not None:
            print(f"wrote {args.output}")
    return 0


def _add_model(subparsers):
    p = subparsers.add_parser(
        "model", help="quantize a whole BERT and measure it against FP32",
        description="Quantize every encoder FC matrix and embedding table of a BERT model "
                    "(.safetensors + config.json), or read a packed model written by `gobo "
                    "quantize --all -o MODEL.gobo`, and report bits per weight, size on disk vs "
                    "FP32, per-matrix relative RMSE and the accuracy proxies (cosine similarity "
                    "of sentence embeddings to the FP32 model, nearest-neighbour agreement) on "
                    "real English sentences.",
        epilog="See docs/model.md.")
    p.add_argument("weights", metavar="WEIGHTS",
                   help="a BERT .safetensors (quantized now) or a packed .gobo model")
    p.add_argument("--bits", metavar="N", type=int, default=None,
                   help="FC matrix bits, 2..8 (default 3)")
    _add_model_options(p)
    p.add_argument("--reference", metavar="FP32.safetensors", default=None,
                   help="for a .gobo WEIGHTS: the FP32 weights to measure against (default: the "
                        "file it was made from, if unchanged)")
    p.add_argument("--tokenizer", metavar="PATH", default=None,
                   help="tokenizer.json or vocab.txt (default: beside the config or weights)")
    p.add_argument("--sentences", metavar="N", type=int, default=300,
                   help="how many corpus sentences to embed (default 300)")
    p.add_argument("--corpus", metavar="PATH", default=None,
                   help="a text file or folder of them (default: /usr/share/common-licenses)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=_run_model)


def _reference_for(model, args):
    import hashlib
    import pathlib

    if args.reference is not None:
        return pathlib.Path(args.reference)
    source = model.source or {}
    path = pathlib.Path(source.get("path", ""))
    if source.get("path") and path.is_file() and path.stat().st_size == source.get("bytes"):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
        if digest.hexdigest() == source.get("sha256"):
            return path
    raise CliError(f"{args.weights}: the FP32 weights it was made from are not at "
                   f"{source.get('path', '(unrecorded)')} unchanged; pass --reference "
                   f"FP32.safetensors")


def _find_tokenizer(args, folders, max_length):
    from golden.nlp.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer

    length = min(DEFAULT_MAX_LENGTH, max_length)
    if args.tokenizer is not None:
        return Tokenizer(args.tokenizer, max_length=length)
    for folder in folders:
        if folder is not None and ((folder / "tokenizer.json").exists()
                                   or (folder / "vocab.txt").exists()):
            return Tokenizer(folder, max_length=length)
    raise CliError("no tokenizer.json or vocab.txt beside the config or weights; pass "
                   "--tokenizer PATH")


def _run_model(args):
    import pathlib

    from golden.nlp.bert import BertConfig, BertEncoder
    from golden.nlp.corpus import CorpusError, load_sentences
    from golden.nlp.quantized_model import load, quantize_model
    from golden.nlp.model_report import format_report, model_report

    start = time.perf_counter()
    weights = pathlib.Path(args.weights)
    if args.sentences < 2:
        raise CliError(f"--sentences must be at least 2, not {args.sentences}")
    # Inputs are all checked before the (slow) quantization starts.
    try:
        sentences = load_sentences(args.sentences, source=args.corpus)
    except CorpusError as e:
        raise CliError(str(e)) from None
    if weights.suffix == ".gobo":
        given = [f"--{o.replace('_', '-')}" for o in ("scheme", "bits", "embedding_bits", "block")
                 if getattr(args, o) is not None]
        if given:
            raise CliError(f"{', '.join(given)} cannot change a packed model; they apply when "
                           f"WEIGHTS is a .safetensors")
        model = load(weights)
        reference_path = _reference_for(model, args)
        if args.config is not None and BertConfig.from_file(args.config) != model.config:
            raise CliError(f"{args.config} describes another architecture than {weights}")
        reference = BertEncoder.from_files(reference_path, model.config)
        folders = [pathlib.Path(args.config).parent if args.config else None,
                   reference_path.parent, weights.parent]
        tokenizer = _find_tokenizer(args, folders, model.config.max_position_embeddings)
        t_quantize = 0.0
    else:
        if args.reference is not None:
            raise CliError("--reference applies to a packed .gobo model; a .safetensors WEIGHTS "
                           "is its own reference")
        spec = _spec_from_args(args)
        config_path = _config_path(args, weights.parent)
        reference = _load_encoder(weights, config_path)
        tokenizer = _find_tokenizer(args, [config_path.parent, weights.parent],
                                    reference.config.max_position_embeddings)
        t0 = time.perf_counter()
        model = quantize_model(reference, spec, source_path=None, progress=_progress(args))
        t_quantize = time.perf_counter() - t0
    if not args.quiet:
        print(f"embedding {len(sentences)} sentences with the FP32 and quantized models",
              file=sys.stderr, flush=True)
    report = model_report(model, reference, tokenizer, sentences)
    report["seconds"] = {"quantize": t_quantize, **report["seconds"],
                         "total": time.perf_counter() - start}
    report["input"] = str(weights)
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0


# Entry point ------------------------------------------------------------------------------------

#: Registration functions of the subcommands, in help order.
_SUBCOMMANDS = [_add_quantize, _add_model]


def build_parser(extra=()):
    """The ``gobo`` parser; ``extra`` registers more subcommands (``sim.cli`` adds ``simulate``,
    which needs the hardware, so that this golden module never imports it)."""
    parser = _Parser(prog="gobo", description="GOBO accelerator generator: quantize BERT weights "
                     "to dictionary indexes plus exact outliers, and model the accelerator.")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND",
                                       parser_class=_Parser)
    subparsers.required = True
    for add in [*_SUBCOMMANDS, *extra]:
        add(subparsers)
    return parser


def main(argv=None, extra=()):
    """Run ``gobo`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = build_parser(extra).parse_args(argv)
        return args.handler(args)
    except SystemExit as e:  # --help and --version exit through argparse; report, don't exit
        return e.code if isinstance(e.code, int) else 0
    except (CliError, WeightsError, ValueError) as e:
        print(f"gobo: error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; silence the flush at interpreter exit.
        sys.stdout = open(os.devnull, "w")
        return 1


if __name__ == "__main__":
    sys.exit(main())
