"""``gobo synth``: area, transistors, timing and ECP5 figures of the registered designs beside
the MAC baselines, or the GOBO design-space sweep."""

import argparse

from gobo.common import CliError, example
from golden.config import PE_PRESETS, PRESETS

__all__ = ["add"]


def add(subparsers):
    p = subparsers.add_parser(
        "synth", help="synthesize the PEs, baselines and tiles with open tools and compare",
        description="Synthesize the GOBO PEs, the MAC baselines (W16A16, W8A8, W4A4), the "
                    "memory-compression decompressor and the GOBO, MAC and memory-compression "
                    "tiles (memories as ports) with open tools: Yosys generic cells, CMOS "
                    "transistor count, OSU 0.18 um area, OpenSTA timing, ECP5 LUT/FF/DSP/Fmax; "
                    "or, with --sweep, the GOBO design space. Writes synth.json, synth.md and "
                    "synth.png (sweep.* with --sweep). Figures are open-tool estimates, not "
                    "sign-off (docs/synthesis.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("gobo synth --out build/reports",
                       "gobo synth --out build/reports --preset lanes4",
                       "gobo synth --out build/reports --sweep",
                       "gobo synth --out build/reports --power",
                       "gobo synth --out build/reports --alternatives --jobs 1",
                       "gobo synth --out build/reports --power --tiles gobo_tile_p2_l16_a8",
                       "gobo synth --out build/reports --sweep --scheduler tcp://10.0.0.5:8786"))
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where synth.json/.md/.png (or sweep.*) go")
    p.add_argument("--work", metavar="DIR",
                   help="per-design working folders, logs and netlists (default: DIR/../synth "
                        "next to --out)")
    p.add_argument("--preset", action="append", choices=list(PRESETS), metavar="NAME",
                   help=f"run only these GOBO PE presets (repeatable; e.g. "
                        f"{', '.join(PE_PRESETS)}) instead of the default comparison set")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--sweep", action="store_true",
                      help="design-space sweep: lanes {1,4,8,16} x index_bits {3,4} x act_bits "
                           "{8,16} x recon_multipliers {1, 2**index_bits}; ECP5 Fmax as min "
                           "and median over seeds 1, 2, 3; resumable, Pareto points marked")
    mode.add_argument("--tiles-ecp5", action="store_true",
                      help="only the tiles of the default set, with ECP5 place and route "
                           "(skipped for tiles in the default run: it takes about as long as all "
                           "the rest)")
    mode.add_argument("--alternatives", action="store_true",
                      help="the alternative GOBO PEs (collision: lanes/2 adder-tree inputs per "
                           "bin; spill: narrow bins spilled every recon_cycles beats) beside the "
                           "present PE and the MAC PEs at the minilm preset, activation widths "
                           "16, 8, 4, OSU only, their slowdown from cycle models on real MiniLM "
                           "weights; writes alternatives.json, .md and .png (499 s with --jobs 1 "
                           "at load 6, 2026-11-30: docs/efficiency.md)")
    mode.add_argument("--power", action="store_true",
                      help="dynamic and leakage power (OpenSTA) of the seven comparison tiles "
                           "(GOBO A16/A8/A4, the three MAC tiles, memory compression) on "
                           "their OSU netlists, with the activity of a real MiniLM slice "
                           "simulated on the gate netlist; writes power.json and power.md "
                           "(reuses make synth's netlists; minutes per tile)")
    p.add_argument("--tiles", nargs="+", metavar="TILE",
                   help="with --power: measure only these tiles (of "
                        "gobo.power.POWER_TILES); the other tiles of an earlier power.json "
                        "in --out on the same slice are kept, each with its own date")
    p.add_argument("--jobs", type=int, default=None,
                   help="designs run in parallel on a Dask LocalCluster of this many workers "
                        "(default 2; with --sweep all cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the designs on the Dask scheduler at ADDRESS (e.g. "
                        "tcp://host:8786, one dask-jobqueue started on Slurm or LSF) instead of "
                        "a LocalCluster; every worker needs this checkout at the same path")
    p.set_defaults(handler=_run)


def _run(args):
    from synth.run import synthesize
    from synth.tools import ToolError
    if args.power and (args.preset or args.scheduler or args.jobs is not None):
        raise CliError("--power runs the comparison tiles one at a time: it takes no "
                       "--preset, --jobs or --scheduler")
    if args.alternatives and args.preset:
        raise CliError("--alternatives synthesizes its own designs at the minilm preset: it "
                       "takes no --preset")
    if args.tiles and not args.power:
        raise CliError("--tiles goes with --power (the tiles whose power to measure)")
    if args.tiles:
        from gobo.power import POWER_TILES
        unknown = [t for t in args.tiles if t not in POWER_TILES]
        if unknown:
            raise CliError(f"--tiles {', '.join(unknown)}: not a power tile; choose from "
                           f"{', '.join(POWER_TILES)}")
        if len(set(args.tiles)) < len(args.tiles):
            raise CliError("--tiles names a tile twice")
    if args.jobs is not None and args.jobs < 1:
        raise CliError(f"--jobs must be a positive integer, not {args.jobs}")
    if args.scheduler is not None:     # a malformed address stops before the liberty and tools
        from distributed.comm.addressing import parse_address, parse_host_port
        try:
            scheme, location = parse_address(args.scheduler)
            if scheme in ("tcp", "tls"):
                parse_host_port(location)
        except ValueError as e:
            raise CliError(f"--scheduler {args.scheduler}: {e} (give e.g. "
                           f"tcp://host:8786)") from None
    try:     # a missing tool or liberty stops either flow before any work, in one line
        if args.power:
            from gobo.power import power_report
            return power_report(out=args.out, work=args.work,
                                **({"names": tuple(args.tiles)} if args.tiles else {}))
        return synthesize(out=args.out, work=args.work, presets=args.preset, sweep=args.sweep,
                          tiles_ecp5=args.tiles_ecp5, jobs=args.jobs, scheduler=args.scheduler,
                          alternatives=args.alternatives)
    except ToolError as e:
        raise CliError(str(e)) from None
