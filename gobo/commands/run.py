"""``gobo run``: a whole BERT encoder with every encoder FC layer on the bit-exact accelerator
model, measured against FP32 and GOBO weights only on a labelled task (docs/model.md, "The whole
model on the accelerator")."""

import argparse
import json
import pathlib
import sys
import time

from gobo.commands.model import find_config, find_tokenizer, folder_of, load_encoder
from gobo.common import CliError, example, json_safe, note, print_json
from golden.accel.run_report import SPLITS, format_run, run_report
from golden.config import PRESETS, preset
from golden.nlp.bert import fc_names
from golden.nlp.sentiment import SOURCE, load_tweets, split
from golden.nlp.weights import minilm_dir

__all__ = ["add", "DEFAULTS"]

#: Split sizes and seed. 300 test tweets (9,229 tokens) keep the whole run at about 2 minutes of
#: CPU on one core: the bit-exact tile model costs about 9 ms per token for MiniLM's 36 FC
#: layers, per activation width (docs/model.md).
DEFAULTS = {"sentences": 300, "train": 1000, "calibration": 16, "seed": 13}


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
        epilog="See docs/model.md.\n\n" + example(
            "gobo run --out build/reports",
            "gobo run ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors --act-bits 8 "
            "--sentences 100 --json"))
    p.add_argument("weights", metavar="WEIGHTS", nargs="?", default=None,
                   help="FP32 BERT weights: a .safetensors, .npz, PyTorch .bin, sharded index "
                        "or checkpoint folder (default: all-MiniLM-L6-v2, fetched and cached)")
    p.add_argument("--config", metavar="CONFIG.json", default=None,
                   help="the model's Hugging Face config.json (default: beside WEIGHTS)")
    p.add_argument("--tokenizer", metavar="PATH", default=None,
                   help="tokenizer.json or vocab.txt (default: beside the config or weights)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="minilm",
                   help="the tile (default minilm: 16 PEs x 16 lanes, 3-bit indexes, layers up "
                        "to 1536 x 1536; bert_large for BERT-base and -large)")
    p.add_argument("--act-bits", metavar="A", type=int, nargs="+", default=[16, 8],
                   help="activation widths to run, each 2..16 (default 16 8)")
    p.add_argument("--sentences", metavar="N", type=int, default=DEFAULTS["sentences"],
                   help=f"test tweets (default {DEFAULTS['sentences']})")
    p.add_argument("--train", metavar="N", type=int, default=DEFAULTS["train"],
                   help=f"training tweets for the head (default {DEFAULTS['train']})")
    p.add_argument("--calibration", metavar="N", type=int, default=DEFAULTS["calibration"],
                   help=f"calibration tweets (default {DEFAULTS['calibration']})")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help=f"seed of the split (default {DEFAULTS['seed']})")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write run.json and run.md there")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=_run)


def _check_args(args):
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
    config = preset(args.preset)
    for bits in args.act_bits:
        config.replace(act_bits=bits).check_tile()
    return config


def _check_fits(config, encoder, preset_name):
    """One line naming the first FC matrix the tile cannot hold, before any slow work."""
    for name in fc_names(encoder.config):
        rows, cols = encoder.weights[name].shape
        if rows > config.max_rows or cols > config.max_dot_length:
            raise CliError(f"{name} is {rows} x {cols}, larger than preset {preset_name} holds "
                           f"(max_rows {config.max_rows}, max_dot_length "
                           f"{config.max_dot_length}); choose --preset bert_large")


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


def _run(args):
    started = time.monotonic()
    config = _check_args(args)
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
    report = run_report(encoder, tokenizer, config, splits, act_bits=tuple(args.act_bits),
                        progress=_progress(args, started))
    report.update(
        model={"weights": str(weights), "config": str(config_path)}, preset=args.preset,
        data={**SOURCE, "seed": args.seed, "texts": len(data),
              "splits": {name: {"texts": len(part), "classes": part.counts()}
                         for name, part in splits.items()}},
        options={"act_bits": args.act_bits, "sentences": args.sentences, "train": args.train,
                 "calibration": args.calibration, "seed": args.seed, "preset": args.preset})
    report["seconds"]["wall"] = time.monotonic() - started
    if report["test_truncated"]:
        note(f"{report['test_truncated']} of {args.sentences} test sentences reach the "
             f"tokenizer's limit of {tokenizer.max_length} tokens and were cut there")
    text = format_run(report)
    if args.out is not None:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(json_safe(report), indent=1,
                                                 allow_nan=False) + "\n")
        (out / "run.md").write_text(text + "\n")
    if args.json:
        print_json(report)
    else:
        print(text)
    mismatches = sum(run["totals"]["mismatches"] for run in report["accelerator"])
    return 1 if mismatches else 0
