"""``gobo run``: a whole BERT encoder with every encoder FC layer on the bit-exact accelerator
model, measured against FP32 and GOBO weights only on a labelled task (docs/model.md, "The whole
model on the accelerator")."""

import argparse
import json
import math
import pathlib
import sys
import time

from gobo.commands.model import (
    add_weight_calibration_options,
    find_config,
    find_tokenizer,
    folder_of,
    load_encoder,
    progress_printer,
    weight_calibration,
)
from gobo.common import CliError, example, json_safe, note, print_json, writable_folder
from golden.accel.encoder import calibrate
from golden.accel.run_report import SPLITS, format_run, run_report
from golden.config import PRESETS, STREAM_PRESETS, preset
from golden.nlp.bert import fc_names
from golden.nlp.quantized_model import QuantSpec, quantize_model
from golden.nlp.sentiment import DEFAULT_SEED, SOURCE, load_tweets, split
from golden.nlp.weights import WEIGHT_FORMATS, minilm_dir

__all__ = ["add", "DEFAULTS"]

#: Split sizes and seed. 300 test tweets (9,229 tokens) keep the whole run at about 2 minutes of
#: CPU on one core: the bit-exact tile model costs about 9 ms per token for MiniLM's 36 FC
#: layers, per activation width (docs/model.md).
DEFAULTS = {"sentences": 300, "train": 1000, "calibration": 16, "seed": DEFAULT_SEED}
#: ``--rtl``'s default sentence: the first test tweet of at least this many tokens (the issue's
#: "real sentence of at least 16 tokens").
RTL_MIN_TOKENS = 16


def add(subparsers):
    p = subparsers.add_parser(
        "run", help="run a whole BERT with every FC layer on the bit-exact accelerator model",
        description="Run a BERT encoder (default all-MiniLM-L6-v2) with every encoder FC layer "
                    "on the bit-exact accelerator model: activations quantized to --act-bits "
                    "with per-tensor power-of-two scales calibrated on a few tweets kept apart "
                    "from the test split and then frozen, exactly the integers the tile would "
                    "see; embeddings, attention, LayerNorm, GELU and pooling in float on the "
                    "host. Reports mean and worst cosine to FP32, nearest-neighbour agreement, "
                    "the accuracy of a logistic-regression head (trained on FP32 embeddings) on "
                    "a labelled tweet-sentiment test split, and the saturation counts of every "
                    "FC layer, for FP32, GOBO weights only and each activation width.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="With --rtl, real sentences go through every encoder FC layer on the tile RTL\n"
               "(Verilator, cocotb) instead, layer by layer with the host in between, and every\n"
               "FC output element and the sentence embedding are compared with the bit-exact\n"
               "model.\n\nSee docs/model.md.\n\n" + example(
            "gobo run --out build/reports",
            "gobo run ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors --act-bits 8 "
            "--sentences 100 --json",
            "gobo run --rounding gptq --bits-budget 3.5 --threshold -6 --act-bits 16 "
            "--out build/reports",
            "gobo run --rtl --out build/reports",
            "gobo run --rtl --text 'The license allows you to copy and modify the software "
            "freely.'"))
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None,
                   help=f"FP32 BERT weights: {WEIGHT_FORMATS} (default: all-MiniLM-L6-v2, "
                        f"fetched and cached)")
    p.add_argument("--config", metavar="CONFIG.json", default=None,
                   help="the model's Hugging Face config.json (default: beside WEIGHTS)")
    p.add_argument("--tokenizer", metavar="PATH", default=None,
                   help="tokenizer.json or vocab.txt (default: beside the config or weights)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="minilm",
                   help="the tile (default minilm: 16 PEs x 16 lanes, 3-bit indexes, layers up "
                        "to 1536 x 1536; bert_large for BERT-base and -large)")
    p.add_argument("--act-bits", metavar="A", type=int, nargs="+", default=None,
                   help="activation widths to run, each 2..16 (default 16 8; with --rtl one "
                        "width, default the preset's)")
    p.add_argument("--sentences", metavar="N", type=int, default=None,
                   help=f"test tweets (default {DEFAULTS['sentences']})")
    p.add_argument("--train", metavar="N", type=int, default=None,
                   help=f"training tweets for the head (default {DEFAULTS['train']})")
    p.add_argument("--calibration", metavar="N", type=int, default=DEFAULTS["calibration"],
                   help=f"calibration tweets (default {DEFAULTS['calibration']})")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help=f"seed of the split (default {DEFAULTS['seed']})")
    add_weight_calibration_options(p)
    p.add_argument("--threshold", metavar="X", type=float, default=None,
                   help="outlier threshold (natural-log Gaussian density) of the GOBO weights "
                        "(default: the preset's, -4)")
    p.add_argument("--rtl", action="store_true",
                   help="run sentences through every FC layer on the tile RTL and check them "
                        "against the bit-exact model (slow: for MiniLM about 7 minutes cold, "
                        "3 with a warm build)")
    p.add_argument("--text", metavar="TEXT", action="append", default=None,
                   help=f"with --rtl: a sentence to run (repeatable; one batch; default: the "
                        f"first test tweet of at least {RTL_MIN_TOKENS} tokens)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write run.json and run.md there (with --rtl: rtl_sentence.json, .md)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=_run)


def _check_args(args):
    if args.rtl:
        for option in ("sentences", "train"):
            if getattr(args, option) is not None:
                raise CliError(f"--{option} has no effect with --rtl (give sentences with "
                               f"--text)")
        if args.act_bits is not None and len(args.act_bits) != 1:
            raise CliError(f"--rtl runs one activation width, not "
                           f"{' '.join(map(str, args.act_bits))}")
        if args.act_bits is None:
            args.act_bits = [preset(args.preset).act_bits]
        for text in args.text or ():
            if not text.strip():
                raise CliError("--text is empty")
        given = [o for o, v in (("--rounding gptq", args.rounding == "gptq"),
                                ("--bits-budget", args.bits_budget is not None),
                                ("--threshold", args.threshold is not None)) if v]
        if given:
            raise CliError(f"{', '.join(given)} cannot be used with --rtl (it runs the preset's "
                           f"GOBO weights)")
    elif args.text is not None:
        raise CliError("--text needs --rtl")
    for option, value in DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    if args.act_bits is None:
        args.act_bits = [16, 8]
    for option in ("sentences", "train", "calibration"):
        value = getattr(args, option)
        least = 2 if option == "sentences" else 1
        if value < least:
            raise CliError(f"--{option} must be at least {least}, not {value}")
    if len(set(args.act_bits)) != len(args.act_bits):
        raise CliError(f"--act-bits names a width twice: {' '.join(map(str, args.act_bits))}")
    for bits in args.act_bits:
        # 16 bits is what the tile is built for; wider ones would not fit the 64-bit datapath
        # of every preset.
        if not 2 <= bits <= 16:
            raise CliError(f"--act-bits must be between 2 and 16, not {bits}")
    if args.bits_budget is not None and not 0 < args.bits_budget < 64:
        raise CliError(f"--bits-budget must be a number of bits per weight, not "
                       f"{args.bits_budget}")
    if args.weight_calibration < 1:
        raise CliError(f"--weight-calibration must be at least 1, not {args.weight_calibration}")
    config = preset(args.preset)
    if args.threshold is not None:
        if not math.isfinite(args.threshold):
            raise CliError(f"--threshold must be a finite number, not {args.threshold}")
        config = config.replace(outlier_log_prob=args.threshold)
    if args.bits_budget is not None:   # the narrow matrices use half of a wider tile's centroids
        try:
            config = config.replace(index_bits=config.index_bits + 1)
        except ValueError as e:
            raise CliError(f"--bits-budget needs a tile one index bit wider than preset "
                           f"{args.preset}: {e}") from None
    for bits in args.act_bits:
        config.replace(act_bits=bits).check_tile()
    return config


def _check_fits(config, encoder, preset_name):
    """One line naming the first FC matrix the tile cannot hold, before any slow work."""
    shapes = {name: encoder.weights[name].shape for name in fc_names(encoder.config)}
    for name, (rows, cols) in shapes.items():
        if rows > config.max_rows or cols > config.max_dot_length:
            raise CliError(f"{name} is {rows} x {cols}, larger than preset {preset_name} holds "
                           f"(max_rows {config.max_rows}, max_dot_length "
                           f"{config.max_dot_length}); {_fitting_preset(shapes.values())}")


def _fitting_preset(shapes):
    """'choose --preset P' for the smallest whole-layer preset holding every ``(rows, cols)``."""
    rows = max(r for r, _ in shapes)
    cols = max(c for _, c in shapes)
    fits = [(c.max_rows * c.max_dot_length, name) for name, c in
            ((name, preset(name)) for name in PRESETS if name not in STREAM_PRESETS)
            if rows <= c.max_rows and cols <= c.max_dot_length]
    if not fits:
        return "no whole-layer preset holds the model"
    return f"choose --preset {min(fits)[1]}"


def _progress(args, started):
    if args.quiet:
        return None
    last = {}

    def show(stage, done, total):
        now = time.monotonic()
        if done == total or now - last.get(stage, 0.0) >= 5.0:
            last[stage] = now
            print(f"{stage}: {done}/{total} sentences, {now - started:.0f} s", file=sys.stderr,
                  flush=True)
    return show


def _weights(args, config, encoder, tokenizer):
    """``(layers, label)`` for :func:`run_report`: None (GOBO with the tile's index width) unless
    --rounding gptq or --bits-budget asks for calibrated weights."""
    if args.rounding in (None, "nearest") and args.bits_budget is None:
        return None, None
    narrow = config.index_bits - (args.bits_budget is not None)
    spec = QuantSpec(bits=narrow, embedding_bits=None, rounding=args.rounding or "nearest",
                     bits_budget=args.bits_budget, outlier_log_prob=config.outlier_log_prob)
    if not args.quiet:
        print(f"quantizing the FC weights: {spec.label} (calibrated on "
              f"{args.weight_calibration} held-out tweets)", file=sys.stderr, flush=True)
    try:
        model = quantize_model(encoder, spec, progress=progress_printer(args),
                               calibration=weight_calibration(args, spec, tokenizer,
                                                              seed=args.seed))
    except ValueError as e:
        raise CliError(str(e)) from None
    return ({n: model.layers[n] for n in fc_names(encoder.config)},
            f"GOBO {spec.label.split(' / ')[0].removeprefix('gobo ')} weights only")


def _run(args):
    started = time.monotonic()
    config = _check_args(args)
    if args.out is not None:
        writable_folder(args.out)
    data = load_tweets()
    sizes = dict(zip(SPLITS, (args.calibration, args.train, args.sentences)))
    splits = split(data, sizes, seed=args.seed)
    if args.weights is None:
        weights = minilm_dir() / "model.safetensors"
    else:
        weights = pathlib.Path(args.weights).expanduser()
        if weights.suffix == ".gobo":
            raise CliError(f"{weights}: a packed .gobo model has lost the FP32 weights the "
                           f"accelerator is measured against; give the FP32 weights it was made "
                           f"from (GOBO quantizes them again, the same way)")
    config_path = find_config(argparse.Namespace(config=args.config, weights=weights),
                              weights.parent)
    encoder = load_encoder(weights, config_path)
    _check_fits(config, encoder, args.preset)
    tokenizer = find_tokenizer(args, [config_path.parent, folder_of(weights)],
                               encoder.config.max_position_embeddings)
    if args.rtl:
        return _run_rtl(args, config.replace(act_bits=args.act_bits[0]), encoder, tokenizer,
                        splits, started, {"weights": str(weights), "config": str(config_path)})
    quantize_started = time.monotonic()
    layers, label = _weights(args, config, encoder, tokenizer)
    quantize_seconds = time.monotonic() - quantize_started
    report = run_report(encoder, tokenizer, config, splits, act_bits=tuple(args.act_bits),
                        progress=_progress(args, started), layers=layers, label=label)
    report.update(
        model={"weights": str(weights), "config": str(config_path)}, preset=args.preset,
        data={**SOURCE, "seed": args.seed, "texts": len(data),
              "splits": {name: {"texts": len(part), "classes": part.counts()}
                         for name, part in splits.items()}},
        options={"act_bits": args.act_bits, "sentences": args.sentences, "train": args.train,
                 "calibration": args.calibration, "seed": args.seed, "preset": args.preset,
                 "rounding": args.rounding or "nearest", "bits_budget": args.bits_budget,
                 "weight_calibration": args.weight_calibration,
                 "threshold": config.outlier_log_prob})
    if layers is not None:
        report["seconds"]["quantize"] = quantize_seconds
    report["seconds"]["wall"] = time.monotonic() - started
    if report["test_truncated"]:
        note(f"{report['test_truncated']} of {args.sentences} test sentences reach the "
             f"tokenizer's limit of {tokenizer.max_length} tokens and were cut there")
    text = format_run(report)
    _write(args, "run", report, text)
    mismatches = sum(run["totals"]["mismatches"] for run in report["accelerator"])
    return 1 if mismatches else 0


def _write(args, stem, report, text):
    """``<stem>.json`` and ``.md`` into ``--out``; the JSON (``--json``) or text on stdout."""
    if args.out is not None:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.json").write_text(json.dumps(json_safe(report), indent=1,
                                                     allow_nan=False) + "\n")
        (out / f"{stem}.md").write_text(text + "\n")
    if args.json:
        print_json(report)
    else:
        print(text)


def _rtl_sentences(args, tokenizer, test):
    """``--text`` or the first test tweet of at least :data:`RTL_MIN_TOKENS` tokens."""
    if args.text:
        return args.text
    for text, n in zip(test.texts, tokenizer.lengths(test.texts)):
        if n >= RTL_MIN_TOKENS:
            return [text]
    raise CliError(f"no test tweet has {RTL_MIN_TOKENS} tokens or more; give one with --text")


def _run_rtl(args, config, encoder, tokenizer, splits, started, model):
    """``--rtl``: the sentences through the RTL, checked (:mod:`sim.rtl_sentence`)."""
    # imported here: the simulation stack (cocotb, Verilator) is only needed for --rtl
    from sim.rtl_sentence import format_rtl_sentence, rtl_sentence_report
    from sim.rtl_tile import RtlError
    sentences = _rtl_sentences(args, tokenizer, splits["test"])
    for text, n in zip(sentences, tokenizer.lengths(sentences)):
        if n >= tokenizer.max_length:
            raise CliError(f"--text reaches the tokenizer's limit of {tokenizer.max_length} "
                           f"tokens and would be cut: {' '.join(text.split())[:60]}...")
        if not args.quiet:
            note(f"sentence of {n} tokens ({-(-n // config.max_tokens)} tile runs of at most "
                 f"{config.max_tokens} per layer): {' '.join(text.split())}")
    calibration = calibrate(encoder, tokenizer, splits["calibration"].texts)
    tag = args.preset if config.act_bits == preset(args.preset).act_bits \
        else f"{args.preset}_a{config.act_bits}"
    total = len(fc_names(encoder.config))

    def progress(record):
        print(f"[rtl] {len(progress.done) + 1}/{total} {record['name']}: {record['tokens']} "
              f"tokens in {record['runs']} runs, {record['cycles']:,} cycles, "
              f"{record['seconds']:.1f} s{'' if record['error'] is None else ', BENCH FAILED'}"
              f" ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        progress.done.append(record)
    progress.done = []

    try:
        report = rtl_sentence_report(encoder, tokenizer, config, calibration, sentences,
                                     tag=tag, progress=None if args.quiet else progress)
    except RtlError as e:
        raise CliError(str(e)) from None
    report.update(
        model=model,
        preset=args.preset,
        calibration={"sentences": calibration.sentences, "tokens": calibration.tokens,
                     "seed": args.seed})
    report["seconds"]["wall"] = time.monotonic() - started
    _write(args, "rtl_sentence", report, format_rtl_sentence(report))
    bad = report["totals"]["mismatches"] + report["totals"]["bench_failures"]
    return 1 if bad or not report["embeddings"]["equal"] else 0
