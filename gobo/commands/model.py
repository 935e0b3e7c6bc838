"""``gobo model``: quantize a whole BERT (or read a packed ``.gobo`` model) and measure it against
FP32; the model options it shares with ``gobo quantize --all``."""

import argparse
import hashlib
import pathlib
import sys
import time

from gobo.common import CliError, add_outlier_options, example, print_json, print_warnings
from golden.nlp.bert import BertConfig, BertEncoder
from golden.nlp.corpus import CorpusError, load_sentences
from golden.nlp.model_report import format_report, model_report
from golden.nlp.quantized_model import ROUNDINGS, SCHEMES, QuantSpec, load, quantize_model
from golden.nlp.sentiment import DEFAULT_SEED, SentimentError, held_out, load_tweets
from golden.nlp.tokenizer import DEFAULT_MAX_LENGTH, Tokenizer

#: Above this share of [UNK] input tokens `gobo model` warns: the vocabulary does not fit the text.
MAX_UNKNOWN_FRACTION = 0.2

__all__ = ["add", "add_model_options", "spec_from_args", "find_config", "find_tokenizer",
           "folder_of", "load_encoder", "progress_printer", "weight_calibration",
           "WEIGHT_CALIBRATION"]

#: Held-out tweets that GPTQ and a bits budget are calibrated on (golden.nlp.sentiment.held_out).
WEIGHT_CALIBRATION = 128


def _embedding_bits(text):
    if text.lower() in ("none", "fp32"):
        return "none"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 2..8 or 'none', not {text!r}") from None


def add_model_options(p):
    """Options shared by ``gobo model`` and ``gobo quantize --all``; their defaults are None so
    that a handler can tell what the user set (the QuantSpec defaults fill in the rest)."""
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
    add_weight_calibration_options(p)


def add_weight_calibration_options(p):
    """GPTQ rounding and the bits budget (docs/quantizer.md, "Beyond one width per model")."""
    p.add_argument("--rounding", choices=ROUNDINGS, default=None,
                   help="GOBO index choice: nearest centroid (default) or gptq (error-"
                        "compensating, calibrated on held-out tweets; same stored form)")
    p.add_argument("--bits-budget", metavar="B", type=float, default=None,
                   help="FC stored bits per weight at most B: each FC matrix gets the base "
                        "index width (--bits; gobo run: the preset's) or one bit more, by "
                        "measured sensitivity (e.g. --bits 3 --bits-budget 3.5)")
    p.add_argument("--weight-calibration", metavar="N", type=int, default=WEIGHT_CALIBRATION,
                   help=f"held-out tweets that --rounding gptq and --bits-budget are calibrated "
                        f"on (default {WEIGHT_CALIBRATION})")


def _model_spec_defaults():
    return QuantSpec()


def spec_from_args(args, *, method="gobo", threshold=None):
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
    scheme = args.scheme or d.scheme
    outlier = [f"--{o.replace('_', '-')}" for o in ("outlier_fit", "outlier_scope")
               if getattr(args, o) is not None]
    if outlier and scheme != "gobo":
        raise CliError(f"{', '.join(outlier)} applies to --scheme gobo, not {scheme}")
    _check_weight_calibration(args, scheme)
    return QuantSpec(scheme=scheme, bits=bits,
                     embedding_bits=None if emb == "none" else emb, block=block, method=method,
                     outlier_log_prob=d.outlier_log_prob if threshold is None else threshold,
                     outlier_fit=args.outlier_fit or d.outlier_fit,
                     outlier_scope=args.outlier_scope or d.outlier_scope,
                     rounding=args.rounding or d.rounding, bits_budget=args.bits_budget)


def _check_weight_calibration(args, scheme):
    given = [o for o, v in (("--rounding gptq", args.rounding == "gptq"),
                            ("--bits-budget", args.bits_budget is not None)) if v]
    if given and scheme != "gobo":
        raise CliError(f"{' and '.join(given)} applies to --scheme gobo, not {scheme}")
    budget = args.bits_budget
    if budget is not None and not 0 < budget < 64:   # also refuses nan and inf
        raise CliError(f"--bits-budget must be a number of bits per weight, not {budget}")
    if args.weight_calibration < 1:
        raise CliError(f"--weight-calibration must be at least 1, not {args.weight_calibration}")


def weight_calibration(args, spec, tokenizer, seed=DEFAULT_SEED):
    """``(tokenizer, held-out tweets)`` for :func:`quantize_model` when ``spec`` needs them,
    else None."""
    if not spec.needs_calibration:
        return None
    try:
        return tokenizer, held_out(load_tweets(), args.weight_calibration, seed=seed).texts
    except SentimentError as e:
        raise CliError(str(e)) from None


def find_config(args, *folders):
    """``--config``, else the first ``config.json`` in WEIGHTS (a checkpoint folder) or
    ``folders``."""
    weights = pathlib.Path(args.weights).expanduser()
    if not weights.exists():
        raise CliError(f"{args.weights}: no such file or folder")
    if args.config is not None:
        return pathlib.Path(args.config)
    for folder in ([weights] if weights.is_dir() else []) + list(folders):
        if folder is not None and (pathlib.Path(folder) / "config.json").exists():
            return pathlib.Path(folder) / "config.json"
    raise CliError(f"{args.weights}: no config.json beside it; pass --config CONFIG.json")


def load_encoder(weights, config_path):
    return BertEncoder.from_files(weights, BertConfig.from_file(config_path))


def progress_printer(args):
    if args.quiet:
        return None
    return lambda label, seconds: print(f"{label}: {seconds:.2f} s", file=sys.stderr, flush=True)


def add(subparsers):
    p = subparsers.add_parser(
        "model", help="quantize a whole BERT and measure it against FP32",
        description="Quantize every encoder FC matrix and embedding table of a BERT model "
                    "(.safetensors + config.json), or read a packed model written by `gobo "
                    "quantize --all -o MODEL.gobo`, and report bits per weight, size on disk vs "
                    "FP32, per-matrix relative RMSE and the accuracy proxies (cosine similarity "
                    "of sentence embeddings to the FP32 model, nearest-neighbour agreement) on "
                    "real English sentences.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See docs/model.md.\n\n" + example(
            "gobo model ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors --bits 3 "
            "--sentences 100"))
    p.add_argument("weights", metavar="WEIGHTS",
                   help="a BERT .safetensors (quantized now) or a packed .gobo model")
    p.add_argument("--bits", metavar="N", type=int, default=None,
                   help="FC matrix bits, 2..8 (default 3)")
    add_model_options(p)
    add_outlier_options(p)
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


def folder_of(path):
    """The folder of a weight file, or the checkpoint folder itself."""
    path = pathlib.Path(path).expanduser()
    return path if path.is_dir() else path.parent


def find_tokenizer(args, folders, max_length):
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
        given = [f"--{o.replace('_', '-')}" for o in ("scheme", "bits", "embedding_bits", "block",
                                                       "outlier_fit", "outlier_scope", "rounding",
                                                       "bits_budget")
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
                   folder_of(reference_path), weights.parent]
        tokenizer = find_tokenizer(args, folders, model.config.max_position_embeddings)
        t_quantize = 0.0
    else:
        if args.reference is not None:
            raise CliError("--reference applies to a packed .gobo model; a .safetensors WEIGHTS "
                           "is its own reference")
        spec = spec_from_args(args)
        config_path = find_config(args, weights.parent)
        reference = load_encoder(weights, config_path)
        tokenizer = find_tokenizer(args, [config_path.parent, folder_of(weights)],
                                    reference.config.max_position_embeddings)
        t0 = time.perf_counter()
        model = quantize_model(reference, spec, source_path=None, progress=progress_printer(args),
                               calibration=weight_calibration(args, spec, tokenizer))
        t_quantize = time.perf_counter() - t0
    if not args.quiet:
        print(f"embedding {len(sentences)} sentences with the FP32 and quantized models",
              file=sys.stderr, flush=True)
    report = model_report(model, reference, tokenizer, sentences)
    print_warnings(report["layers"])
    unknown = report["tokens"]
    if unknown["unknown_fraction"] > MAX_UNKNOWN_FRACTION:
        print(f"gobo: warning: {100 * unknown['unknown_fraction']:.1f} % of the "
              f"{unknown['tokens']:,} input tokens are [UNK] (over "
              f"{100 * MAX_UNKNOWN_FRACTION:.0f} %): the tokenizer's vocabulary "
              f"({tokenizer.path}) does not fit the text, and the accuracy figures say little",
              file=sys.stderr, flush=True)
    report["seconds"] = {"quantize": t_quantize, **report["seconds"],
                         "total": time.perf_counter() - start}
    report["input"] = str(weights)
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
    return 0
