"""``gobo simulate``: one real FC layer through the tile RTL on Verilator, checked bit for bit."""

import argparse
import pathlib

import numpy as np

from gobo.common import CliError, add_outlier_options, example, no_such_tensor, print_json
from golden import npyfile
from golden.config import (
    COMPRESSED_FLAVOURS,
    MAC_FLAVOURS,
    PRESETS,
    STREAM_PRESETS,
    mac_flavour,
    preset,
)
from golden.hwmodel.offchip import MEMORY_PRESETS
from golden.nlp.weights import WEIGHT_FORMATS, load_tensors

__all__ = ["add", "add_layer_arguments", "layer_inputs", "choose_preset", "print_report"]

#: The whole-layer tile ``--preset auto`` prefers when the layer fits it.
ON_CHIP_PRESET = "minilm"
#: The off-chip memory of a streaming run unless ``--memory`` names one.
DEFAULT_MEMORY = "ddr4_3200_x64"
#: The most tokens one run takes: 16 sequences of BERT's 512 positions. The seeded activations,
#: the golden outputs and the token groups' jobs all grow with it; far more would exhaust memory.
MAX_TOKENS = 8192


def add(subparsers):
    p = subparsers.add_parser(
        "simulate", help="run one FC layer through the tile RTL (Verilator) and check it",
        description="Quantize one weight matrix with GOBO, build its layer image, run the tile "
                    "RTL on Verilator through cocotb with seeded (or given) activations, compare "
                    "every output with the golden tile model and every performance counter with "
                    "the cycle model, and report utilization, stalls and the error against the "
                    "FP32 layer. On the streaming tile, more tokens than the preset's max_tokens "
                    "(the activation memory) run as token groups of at most max_tokens, back to "
                    "back, each checked; the counters reported are the groups' sums. A GOBO "
                    "layer wider than the preset's max_dot_length runs there as passes, its "
                    "partial sums carried exactly between them (docs/offchip.md section 10). "
                    "Exit status 1 on any mismatch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.attention.self.query.weight \\",
                       "    --bias encoder.layer.0.attention.self.query.bias --tokens 4",
                       "gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.output.dense.weight \\",
                       "    --bias encoder.layer.0.output.dense.bias --preset minilm_stream "
                       "--memory ulx3s_sdram",
                       "gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.intermediate.dense.weight \\",
                       "    --bias encoder.layer.0.intermediate.dense.bias --preset minilm_stream "
                       "--tokens 300",
                       "gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.5.output.dense.weight \\",
                       "    --bias encoder.layer.5.output.dense.bias --preset minilm_stream "
                       "--flavour w8a8 --tokens 16",
                       "gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.intermediate.dense.weight \\",
                       "    --bias encoder.layer.0.intermediate.dense.bias --preset minilm_stream "
                       "--flavour compressed_w16a16 --tokens 16",
                       "gobo simulate ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.output.dense.weight \\",
                       "    --bias encoder.layer.0.output.dense.bias --preset minilm_stream_2pass "
                       "--tokens 16"))
    add_layer_arguments(p)
    p.add_argument("--preset", choices=["auto", *sorted(PRESETS)], default="auto",
                   help="hardware configuration (default auto: minilm, 16 PEs x 16 lanes, 3-bit "
                        "indexes, 16-bit activations, if the layer fits it, else the smallest "
                        "streaming preset that takes it, or the largest in passes); a *_stream "
                        "preset (or --memory) runs "
                        "the streaming tile")
    p.add_argument("--memory", choices=sorted(MEMORY_PRESETS),
                   help=f"off-chip memory model of the streaming tile (default {DEFAULT_MEMORY}); "
                        "given, it runs the streaming tile on any preset")
    p.add_argument("--flavour", choices=["gobo", *MAC_FLAVOURS, *COMPRESSED_FLAVOURS],
                   default="gobo",
                   help="gobo (default): the GOBO tile on the layer's GOBO form; "
                        f"{', '.join(MAC_FLAVOURS)}: the MAC baseline tile of that flavour (the "
                        "preset's datapath at the flavour's activation width, dense weights); "
                        f"{', '.join(COMPRESSED_FLAVOURS)}: the memory-compression tile (the MAC "
                        "tile of that flavour fed by a decompressor of the layer's GOBO form); "
                        "each streamed like the GOBO tile under the same rules (a *_stream "
                        "preset or --memory)")
    p.add_argument("--outlier-lanes", metavar="Q", type=int,
                   help="override the outlier side path's multipliers (the GOBO tile) or the "
                        "records an outlier word holds (the streaming memory-compression tile)")
    add_outlier_options(p, scope=False)
    p.add_argument("--waves", action="store_true",
                   help="trace the run into an FST waveform (GTKWave, Surfer) kept in "
                        "build/runs/ and named in the report; a failing run names one anyway "
                        "(the WAVES=1 environment variable does the same)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_simulate)


def add_layer_arguments(p):
    """The layer a command runs: ``WEIGHTS``, ``--tensor``, ``--bias``, ``--tokens``,
    ``--activations``, ``--seed`` (read back by :func:`layer_inputs`); shared by ``gobo
    simulate`` and ``gobo board``."""
    p.add_argument("weights", metavar="WEIGHTS", help=f"weights: {WEIGHT_FORMATS}")
    p.add_argument("--tensor", metavar="NAME", required=True,
                   help="the weight matrix ([out, in], e.g. "
                        "encoder.layer.0.attention.self.query.weight)")
    p.add_argument("--bias", metavar="NAME", help="the bias vector to add (default: none)")
    p.add_argument("--tokens", metavar="T", type=int, default=None,
                   help="tokens (activation vectors) to run (default 4, or the rows of "
                        "--activations); at most the preset's max_tokens on a whole-layer tile, "
                        f"{MAX_TOKENS} in token groups on a streaming one")
    p.add_argument("--activations", metavar="X.npy",
                   help="float activations (T, in) instead of seeded Gaussian ones")
    p.add_argument("--seed", type=int, default=1, help="activation seed (default 1)")


def _tensor(tensors, name, path, ndim):
    if name not in tensors:
        raise no_such_tensor(path, name, tensors.available)
    array = np.asarray(tensors[name])
    if array.ndim != ndim:
        raise CliError(f"{name} has shape {array.shape}; a {ndim}-D tensor is needed")
    if not np.all(np.isfinite(array)):
        raise CliError(f"{name} contains NaN or Inf")
    return array


def _activations(path, features):
    """Float activations (T, features) from a .npy file, its header checked before reading."""
    try:
        array = npyfile.read_npy(pathlib.Path(path).expanduser())
    except npyfile.NpyError as e:
        raise CliError(f"cannot read activations: {e}") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a folder, not a .npy file of activations") from None
    except OSError as e:
        raise CliError(f"{path}: cannot read activations ({e.strerror})") from None
    if array.ndim != 2 or array.shape[1] != features:
        raise CliError(f"{path}: activations of shape {array.shape}; the layer needs "
                       f"(tokens, {features})")
    if array.shape[0] == 0:
        raise CliError(f"{path}: holds 0 activation rows; at least one token is needed")
    if array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)):
        raise CliError(f"{path}: activations must be finite numbers")
    return array.astype(np.float64)


def choose_preset(name, rows, cols, tokens, memory):
    """``(preset name, streaming?)`` for a ``rows x cols`` layer over ``tokens`` tokens.

    A named preset streams if it is one of ``STREAM_PRESETS``, has ``max_passes > 1`` or a
    ``memory`` is named (the streaming tile on that preset's datapath). ``"auto"``:
    :data:`ON_CHIP_PRESET` if the layer fits it (rows, columns, tokens) and no ``memory`` is
    named, else the first of ``STREAM_PRESETS`` whose ``max_dot_length`` holds the layer (the
    streaming tile runs any number of rows, and tokens beyond ``max_tokens`` in token groups),
    else the largest, which runs the layer in passes (docs/offchip.md section 10).

    Raises
    ------
    gobo.common.CliError
        If even the largest preset's accumulator cannot hold the passes the columns need.
    """
    if name != "auto":
        # A preset of passes (max_passes > 1) is a streaming one: only that tile has them.
        return name, (name in STREAM_PRESETS or memory is not None
                      or preset(name).max_passes > 1)
    tile = preset(ON_CHIP_PRESET)
    if memory is None and rows <= tile.max_rows and cols <= tile.max_dot_length and \
            tokens <= tile.max_tokens:
        return ON_CHIP_PRESET, False
    for candidate in STREAM_PRESETS:
        if cols <= preset(candidate).max_dot_length:
            return candidate, True
    largest = preset(STREAM_PRESETS[-1])
    passes = -(-cols // largest.max_dot_length)
    try:        # the largest preset runs it in passes if its accumulator can hold them
        largest.replace(max_passes=passes).check_tile()
    except ValueError as e:
        raise CliError(f"the layer's {cols} columns exceed max_dot_length="
                       f"{largest.max_dot_length} of the largest streaming preset "
                       f"{STREAM_PRESETS[-1]}; no preset takes it: in {passes} passes "
                       f"{e}") from None
    return STREAM_PRESETS[-1], True


def layer_inputs(args, config=None, preset_name=None):
    """``(weights, bias or None, activations or None, tokens)`` of the arguments of
    :func:`add_layer_arguments`; the token count is checked against ``config``'s
    ``max_tokens`` (named ``preset_name`` in messages) when a ``config`` is given.

    Raises
    ------
    CliError
        A missing tensor, a wrong shape, a bad activations file, a token count out of range.
    """
    tensors = load_tensors(args.weights, names={args.tensor, args.bias} - {None})
    weights = _tensor(tensors, args.tensor, args.weights, 2)
    bias = _tensor(tensors, args.bias, args.weights, 1) if args.bias else None
    if bias is not None and bias.shape[0] != weights.shape[0]:
        raise CliError(f"bias {args.bias} has {bias.shape[0]} values; {args.tensor} has "
                       f"{weights.shape[0]} rows")
    if args.seed < 0:
        raise CliError(f"--seed must be a non-negative integer, not {args.seed}")
    activations = None
    if args.activations:
        activations = _activations(args.activations, weights.shape[1])
        rows = activations.shape[0]
        if args.tokens is not None and args.tokens != rows:
            raise CliError(f"--tokens {args.tokens} but {args.activations} holds {rows} "
                           f"activation rows; drop --tokens or give a file of {args.tokens} rows")
        args.tokens = rows
    if args.tokens is None:
        args.tokens = 4
    if args.tokens < 1:
        raise CliError(f"--tokens must be at least 1, not {args.tokens}")
    if args.tokens > MAX_TOKENS:
        raise CliError(f"--tokens must be at most {MAX_TOKENS} (16 sequences of 512), not "
                       f"{args.tokens}")
    if config is not None:
        _check_tokens(args.tokens, config, preset_name)
    return weights, bias, activations, args.tokens


def _check_tokens(tokens, config, preset_name, hint=""):
    if not tokens <= config.max_tokens:
        raise CliError(f"--tokens must be 1..{config.max_tokens} for preset {preset_name}, not "
                       f"{tokens}{hint}")


def _run_simulate(args):
    from sim.simulate import simulate_layer
    weights, bias, activations, args.tokens = layer_inputs(args)
    rows, cols = weights.shape
    args.preset, streaming = choose_preset(args.preset, rows, cols, args.tokens, args.memory)
    config, weight_bits = preset(args.preset), None
    memory = MEMORY_PRESETS[args.memory or DEFAULT_MEMORY] if streaming else None
    compressed = args.flavour in COMPRESSED_FLAVOURS
    if compressed:      # the GOBO form decompressed: the outlier options apply
        if args.outlier_lanes is not None and not streaming:
            raise CliError(f"--outlier-lanes sizes the streaming decompressor's outlier words; "
                           f"the whole-layer --flavour {args.flavour} tile has none (add "
                           f"--memory or a *_stream preset)")
        config, weight_bits = mac_flavour(COMPRESSED_FLAVOURS[args.flavour], base=args.preset)
    elif args.flavour != "gobo":
        given = [name for name, value in (("--outlier-lanes", args.outlier_lanes),
                                          ("--outlier-fit", args.outlier_fit)) if value is not None]
        if given:
            raise CliError(f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to the "
                           f"GOBO tile, not to --flavour {args.flavour} (a MAC baseline has no "
                           f"outliers)")
        config, weight_bits = mac_flavour(args.flavour, base=args.preset)
    if args.outlier_lanes is not None:
        config = config.replace(outlier_lanes=args.outlier_lanes)
    if not streaming:   # the streaming tile runs more tokens in token groups
        _check_tokens(args.tokens, config, args.preset,
                      " (with --memory or a *_stream preset the streaming tile runs them in "
                      "token groups)")
    if cols > config.max_dot_length:
        config = _passes_config(config, cols, args, streaming, weight_bits)
    if rows > config.max_rows:
        where = ("in its row counters" if streaming else
                 f"on chip (a *_stream preset takes up to {preset(STREAM_PRESETS[0]).max_rows})")
        raise CliError(f"{args.tensor} has {rows} rows; preset {args.preset} holds at most "
                       f"max_rows={config.max_rows} {where}")
    tag = args.preset if args.outlier_lanes is None else f"{args.preset}_q{args.outlier_lanes}"
    if config.max_passes != preset(args.preset).max_passes:
        tag = f"{tag}_passes{config.max_passes}"
    if weight_bits is not None:
        tag = f"{COMPRESSED_FLAVOURS.get(args.flavour, args.flavour)}_{tag}"
    try:
        report = simulate_layer(config, weights, bias=bias, tokens=args.tokens,
                                activations=activations, seed=args.seed, name=args.tensor,
                                tag=tag, outlier_fit=args.outlier_fit or "gaussian",
                                waves=True if args.waves else None, memory=memory,
                                weight_bits=weight_bits, compressed=compressed)
    except ValueError as e:     # a layer image the preset cannot hold (e.g. outlier words)
        raise CliError(f"{args.tensor} on preset {args.preset}: {e}") from None
    report["preset"], report["flavour"] = args.preset, args.flavour
    if args.json:
        print_json(report)
    else:
        print_report(report)
    return 0 if report["mismatches"] == 0 and report["error"] is None else 1


def _passes_config(config, cols, args, streaming, weight_bits):
    """``config`` for a layer of ``cols`` columns beyond its ``max_dot_length``: the streaming
    GOBO tile runs it as passes (docs/offchip.md section 10), with ``max_passes`` raised to the
    passes it needs (the accumulator widened to hold the whole dot product).

    Raises
    ------
    CliError
        On the whole-layer tile, for a MAC baseline, or when the accumulator would exceed 64 bits.
    """
    limit = (f"{args.tensor} has {cols} columns; preset {args.preset} takes at most "
             f"max_dot_length={config.max_dot_length}")
    if not streaming:
        # Not "--memory" alone: the whole-layer preset's max_rows would still bind (tiny: 64).
        raise CliError(f"{limit} (--preset auto or a *_stream preset runs it on the streaming "
                       f"tile, in passes)")
    if weight_bits is not None:
        raise CliError(f"{limit}; passes are built for the GOBO tile only, not --flavour "
                       f"{args.flavour}")
    passes = -(-cols // config.max_dot_length)
    if passes > config.max_passes:
        config = config.replace(max_passes=passes)
    try:
        return config.check_tile()
    except ValueError as e:
        raise CliError(f"{limit}; in {passes} passes {e}") from None


def print_report(r):
    """Print a :func:`sim.simulate.simulate_layer` report (with its ``preset``) for people."""
    stalls = ", ".join(f"{k} {v}" for k, v in r["stall_cycles"].items())
    if "memory" in r:
        stalls += f", memory {r['stall_memory']}"
    if r.get("passes"):
        stalls += f", carry {r['stall_carry']}"
    util = f"{r['utilization']:.4f}" if r["utilization"] is not None else "n/a"
    widths = (f" W{r['weight_bits']}A{r['config']['act_bits']}" if r.get("weight_bits")
              else "")
    print(f"{r['name']} {r['shape'][0]}x{r['shape'][1]}, {r['tokens']} tokens, {r['design']}"
          f"{widths} preset {r['preset']}")
    if "memory" in r:
        print(f"  off-chip         {r['memory']}: {r['bytes_read']} bytes read (image "
              f"{r['offchip_bytes']}), {r['row_blocks']} row blocks")
        groups = r["token_groups"]
        if r.get("passes"):
            print(f"  passes           {r['passes']} of at most "
                  f"{r['config']['max_dot_length']} columns, partial sums at acc_bits: "
                  f"{r['carry_bytes']} bytes written and read back; counters below are sums, "
                  f"outputs checked include the partial sums")
            for g in groups:
                job_util = f"{g['ideal_cycles'] / g['cycles']:.4f}" if g["cycles"] else "n/a"
                print(f"    {g['name']}: {g['tokens']} tokens, {g['cycles']} cycles (ideal "
                      f"{g['ideal_cycles']}, utilization {job_util}), stall_memory "
                      f"{g['stall_memory']}, {g['bytes_read']} bytes, {g['mismatches']} "
                      f"mismatches")
        elif len(groups) > 1:
            print(f"  token groups     {len(groups)} (tokens " +
                  " + ".join(str(g["tokens"]) for g in groups) + "); counters below are sums")
            for i, g in enumerate(groups):
                group_util = f"{g['ideal_cycles'] / g['cycles']:.4f}" if g["cycles"] else "n/a"
                print(f"    group {i}: {g['tokens']} tokens, {g['cycles']} cycles (ideal "
                      f"{g['ideal_cycles']}, utilization {group_util}), stall_memory "
                      f"{g['stall_memory']}, {g['bytes_read']} bytes, {g['mismatches']} "
                      f"mismatches")
    print(f"  outputs checked  {r['outputs_checked']}   mismatches {r['mismatches']}")
    print(f"  cycles           {r['cycles']} (ideal {r['ideal_cycles']}, utilization {util})")
    print(f"  stalls           {stalls}")
    if r["outliers_processed"] is not None:
        print(f"  outliers         {r['outliers']} (processed per token x block: "
              f"{r['outliers_processed']})")
    elif r["outliers"] is not None:
        print(f"  outliers         {r['outliers']} (written by the decompressor)")
    print(f"  saturated        {r['outputs_saturated']} outputs, {r['bias_saturated']} biases "
          f"(bias shift {r['shift_bias']})")
    if r.get("rel_rmse_vs_fp32") is not None:
        print(f"  rel RMSE vs FP32 {r['rel_rmse_vs_fp32']:.4f}")
    elif "rel_rmse_vs_fp32" in r:
        print("  rel RMSE vs FP32 n/a (the FP32 outputs are constant: no spread to divide by)")
    if r["sim_cycles_per_s"]:
        print(f"  simulation       {r['sim_cycles_per_s']:.0f} cycles/s, {r['wall_s']:.1f} s")
    if r.get("waves"):
        print(f"  waveform         {r['waves']}")
    if r["error"]:
        print(f"  FAILED: {r['error']}")
