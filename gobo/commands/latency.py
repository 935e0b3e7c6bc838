"""``gobo latency``: cycles and microseconds of one inference of every encoder FC layer of the
MiniLM-L6, BERT-base and BERT-large shapes, GOBO against the MAC baselines, under each off-chip
memory preset (golden.accel.latency_report; docs/latency.md)."""

import argparse
import json
import pathlib
import sys
import time

from gobo.common import CliError, example, json_safe, note, writable_folder

__all__ = ["add", "clock_tiles", "clocks_from_synth"]


def clock_tiles(design):
    """The synthesized tiles whose Fmax may clock latency ``design``, first choice first
    (``synth.designs.comparison_tiles``): its own streaming tile, then its whole-layer tile (the
    fallback for a synthesis report without the streaming tile; the report names the tile
    used)."""
    from synth.designs import comparison_tiles
    whole, streaming = comparison_tiles(design)
    return tuple(t for t in (streaming, whole) if t)


SYNTH_REPORT = "build/reports/synth.json"
ECP5_REPORT = "build/reports/tiles_ecp5/synth.json"
#: The clocks --fmax-mhz accepts (MHz): a range around any 0.18 um or FPGA clock, this project's
#: choice (beyond it the memory presets' rescaling turns meaningless).
FMAX_RANGE_MHZ = (1.0, 2000.0)
#: The longest sequence of one inference: max_position_embeddings of MiniLM-L6, BERT-base and
#: BERT-large (beyond it the model has no position embedding; the run would take hours).
MAX_SEQUENCE = 512
#: The bandwidths of the plot (bytes a cycle on the DDR4 preset's 16-byte bus).
PLOT_BYTES_PER_CYCLE = ("1/4", "1/2", "1", "2", "4", "8", "16")


def add(subparsers):
    from golden.accel.latency_report import DESIGNS, MODELS, SEQUENCE_LENGTHS
    from golden.hwmodel.offchip import MEMORY_PRESETS
    p = subparsers.add_parser(
        "latency", help="per-inference latency of every encoder FC layer, GOBO vs MAC and "
                        "memory compression",
        description="Cycles and microseconds of one inference of every encoder FC layer (Q, K, "
                    "V, attention output, FFN intermediate, FFN output) of the MiniLM-L6, "
                    "BERT-base and BERT-large shapes at each sequence length, and the off-chip "
                    "bytes, for the GOBO streaming tile, the W16A16 / W8A8 / W4A4 MAC streaming "
                    "tiles and the W16A16 memory-compression streaming tile under each memory "
                    "preset, on the model's streaming preset. "
                    "Outlier counts come from real MiniLM weights (BERT shapes: MiniLM matrices "
                    "tiled, labelled so). Clocks: each design's OSU Fmax from `make synth`'s "
                    "synth.json (its streaming tile's, else its whole-layer tile's; the "
                    "report names the tile), the ECP5 Fmax (`gobo synth --tiles-ecp5`) in a "
                    "second column. Writes latency.json, latency.md and latency.png "
                    "(docs/latency.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("gobo latency --out build/reports",
                       "gobo latency --out /tmp/lat --models minilm --tokens 32 "
                       "--memory ddr4_3200_x64 --layers 1 --fmax-mhz 84.7"))
    p.add_argument("--out", default="build/reports", metavar="DIR",
                   help="where latency.json/.md/.png go (default build/reports)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                   metavar="MODEL", help=f"model shapes (default all: {', '.join(MODELS)})")
    p.add_argument("--tokens", nargs="+", type=int, default=list(SEQUENCE_LENGTHS),
                   metavar="T", help=f"sequence lengths, 1 to {MAX_SEQUENCE} (default 32 128 512)")
    p.add_argument("--memory", nargs="+", choices=list(MEMORY_PRESETS),
                   default=list(MEMORY_PRESETS), metavar="NAME",
                   help=f"memory presets (default all: {', '.join(MEMORY_PRESETS)})")
    p.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS),
                   metavar="DESIGN", help=f"designs (default all: {', '.join(DESIGNS)})")
    p.add_argument("--layers", type=int, default=None, metavar="N",
                   help="only the first N encoder layers of each model (a quick look; the "
                        "totals are then not one inference)")
    p.add_argument("--synth-report", default=SYNTH_REPORT, metavar="JSON",
                   help=f"`make synth`'s report with each tile's OSU Fmax (default "
                        f"{SYNTH_REPORT})")
    p.add_argument("--ecp5-report", default=ECP5_REPORT, metavar="JSON",
                   help=f"`gobo synth --tiles-ecp5 --out {pathlib.Path(ECP5_REPORT).parent}`'s "
                        f"report with the tiles' ECP5 Fmax (default {ECP5_REPORT}; missing: "
                        f"no ECP5 column)")
    p.add_argument("--fmax-mhz", action="append", metavar="[DESIGN=]MHZ",
                   help="the OSU clock instead of the synthesis report's: one number for every "
                        "design or DESIGN=MHZ (repeatable)")
    p.add_argument("--no-plot", action="store_true", help="skip latency.png and its sweep")
    p.set_defaults(handler=_run)


def _fmax_option(values, designs):
    """``{design: MHz}`` from ``--fmax-mhz`` values."""
    out, low, high = {}, *FMAX_RANGE_MHZ
    for value in values:
        name, _, mhz = value.rpartition("=")
        try:
            mhz = float(mhz)
        except ValueError:
            raise CliError(f"--fmax-mhz {value!r}: not a number of MHz") from None
        if not low <= mhz <= high:      # NaN and infinities fail this too
            raise CliError(f"--fmax-mhz {value!r}: the clock must be {low:g} to {high:g} MHz")
        if name and name not in designs:
            raise CliError(f"--fmax-mhz {value!r}: unknown design {name!r}; choose one of "
                           f"{', '.join(designs)}")
        given = [name] if name else designs
        if any(d in out for d in given):
            raise CliError(f"--fmax-mhz {value!r}: a clock for "
                           f"{', '.join(d for d in given if d in out)} is given twice")
        out.update(dict.fromkeys(given, mhz))
    return out


def clocks_from_synth(path, designs, kind):
    """``({design: MHz}, {design: tile})`` of ``kind`` (``"timing"``: OSU, ``"ecp5"``) from a
    synthesis report, each design's figure from the first of its :func:`clock_tiles` that the
    report has it for; ``(None, None)`` if the file is missing or (ECP5) a design has no figure.

    Raises
    ------
    CliError
        If the report cannot be read or lacks a design's OSU figure.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return None, None
    try:
        report = json.loads(path.read_text())["designs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CliError(f"{path}: not a synthesis report ({e})") from None
    if not isinstance(report, dict):
        raise CliError(f"{path}: not a synthesis report ('designs' is not an object of "
                       f"designs)")
    out, tiles = {}, {}
    for design in designs:
        for tile in clock_tiles(design):
            mhz = ((report.get(tile) or {}).get(kind) or {}).get("fmax_mhz")
            if mhz is not None:
                out[design], tiles[design] = float(mhz), tile
                break
        else:
            if kind == "ecp5":
                return None, None
            raise CliError(f"{path}: no OSU Fmax of {' or '.join(clock_tiles(design))}; run "
                           f"`make synth` (docs/synthesis.md) or give --fmax-mhz")
    return out, tiles


def _run(args):
    from golden.accel.latency_report import MODELS
    if args.layers is not None and args.layers < 1:
        raise CliError(f"--layers must be a positive integer, not {args.layers}")
    for model in args.models:
        if args.layers is not None and args.layers > MODELS[model].layers:
            raise CliError(f"--layers {args.layers} exceeds the {MODELS[model].layers} encoder "
                           f"layers of {model}")
    for t in args.tokens:
        if t < 1:
            raise CliError(f"--tokens must be positive integers, not {t}")
        if t > MAX_SEQUENCE:
            raise CliError(f"--tokens {t} exceeds the {MAX_SEQUENCE} positions "
                           f"(max_position_embeddings) of these models")
    for option, values in (("--tokens", args.tokens), ("--models", args.models),
                           ("--memory", args.memory), ("--designs", args.designs)):
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise CliError(f"{option} names {', '.join(twice)} twice")
    designs = list(dict.fromkeys(args.designs))
    out = writable_folder(args.out)     # a bad --out fails before any note or work
    if args.fmax_mhz:
        osu = _fmax_option(args.fmax_mhz, designs)
        missing = [d for d in designs if d not in osu]
        if missing:
            raise CliError(f"--fmax-mhz gives no clock for {', '.join(missing)}")
        osu_source, osu_tiles = "--fmax-mhz", None
    else:
        osu, osu_tiles = clocks_from_synth(args.synth_report, designs, "timing")
        if osu is None:
            raise CliError(f"no synthesis report at {args.synth_report}: run `make synth` "
                           f"(docs/synthesis.md) or give --fmax-mhz")
        osu_source = str(args.synth_report)
    if args.ecp5_report != ECP5_REPORT and not pathlib.Path(args.ecp5_report).exists():
        raise CliError(f"--ecp5-report {args.ecp5_report}: no such file")
    ecp5, ecp5_tiles = clocks_from_synth(args.ecp5_report, designs, "ecp5")
    if ecp5 is None:
        note(f"no tiles' ECP5 Fmax in {args.ecp5_report}: no ECP5 column (run `gobo synth "
             f"--tiles-ecp5 --out {pathlib.Path(args.ecp5_report).parent}`)")
    from golden.accel.latency_report import latency_report
    from golden.nlp.weights import load_tensors, minilm_safetensors
    started = time.monotonic()

    def progress(message):
        print(f"gobo latency: {message} ({time.monotonic() - started:.0f} s)", file=sys.stderr,
              flush=True)

    report = latency_report(
        load_tensors(minilm_safetensors()), models=args.models, tokens=args.tokens,
        memories=args.memory, designs=designs, clocks={"osu": osu, "ecp5": ecp5},
        layers=args.layers, plot_bytes_per_cycle=() if args.no_plot else PLOT_BYTES_PER_CYCLE,
        progress=progress)
    report["clock_sources"] = {"osu": osu_source,
                               "ecp5": str(args.ecp5_report) if ecp5 else None}
    report["clock_tiles"] = {"osu": osu_tiles, "ecp5": ecp5_tiles}
    report["command"] = "gobo latency " + " ".join(sys.argv[2:]) if sys.argv[1:2] == [
        "latency"] else "gobo latency"
    from golden.accel.latency_report import format_latency, latency_verdict
    report["verdict"] = latency_verdict(report)
    (out / "latency.json").write_text(json.dumps(json_safe(report), indent=1))
    md = format_latency(report)
    (out / "latency.md").write_text(md)
    written = ["latency.json", "latency.md"]
    if not args.no_plot:
        png = _plot(report, out / "latency.png")
        written.append(png.name if png else "no plot (matplotlib missing)")
    print(md)
    print(f"gobo latency: wrote {', '.join(written)} in {out}")
    return 0


def _plot(report, path):
    """Latency against bandwidth, one line per design (a panel per sequence length)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sweep = report["bandwidth_sweep"]
    lengths = sorted({p["tokens"] for p in sweep})
    fig, axes = plt.subplots(1, len(lengths), figsize=(5 * len(lengths), 4), squeeze=False)
    for ax, tokens in zip(axes[0], lengths):
        for design in report["designs"]:
            points = sorted((p["gb_per_s"], p["microseconds"]) for p in sweep
                            if p["tokens"] == tokens and p["design"] == design)
            ax.plot(*zip(*points), marker="o", label=design.upper())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("off-chip bandwidth (GB/s, at the design's OSU clock)")
        layers = report.get("layers_per_model")
        ax.set_ylabel("one inference, all FC layers (us)" if layers is None else
                      f"first {layers} encoder layer(s) (us)")
        ax.set_title(f"{sweep[0]['model_label']}, T = {tokens}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Latency against bandwidth (DDR4 preset's latency and refresh, 16-byte bus)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
