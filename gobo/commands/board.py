"""``gobo board``: one real FC layer on the GOBO tile of an FPGA board (or of the simulated
board), over the board's USB-UART, checked bit for bit against the golden model."""

import argparse
import sys
import time

import numpy as np

from gobo.commands.simulate import add_layer_arguments, layer_inputs
from gobo.common import CliError, add_outlier_options, example, print_json
from golden.config import PRESETS, preset

__all__ = ["add", "run_layer", "count_mismatches"]


def add(subparsers):
    from hw.board.boards import BOARDS, DEFAULT_BOARD
    p = subparsers.add_parser(
        "board", help="run one FC layer on an FPGA board (or the simulated board) and check it",
        description="Quantize one weight matrix with GOBO, build its layer image, send it and "
                    "the activations to the board over its USB-UART (CRC-32 on every frame), "
                    "run it, read every output and the performance counters back and compare "
                    "them with the golden tile model and the cycle model. --port talks to a "
                    "board programmed with `make bitstream`; --sim to the board top simulated "
                    "on Verilator through the same host code (docs/board.md). Exit status 1 on "
                    "any mismatch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example("gobo board ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.attention.self.query.weight \\",
                       "    --bias encoder.layer.0.attention.self.query.bias --port /dev/ttyUSB0",
                       "gobo board ~/.cache/gobo/all-MiniLM-L6-v2/model.safetensors \\",
                       "    --tensor encoder.layer.0.attention.self.query.weight --sim"))
    add_layer_arguments(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEVICE",
                       help="the board's serial device (e.g. /dev/ttyUSB0) or a pyserial URL")
    where.add_argument("--sim", action="store_true",
                       help="run on the board top simulated on Verilator (socket:// link)")
    p.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD,
                   help=f"the board: its GOBO preset and baud rate (default {DEFAULT_BOARD})")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="with --sim: simulate the board top with this preset instead of the "
                        "board's (e.g. tiny, to build faster)")
    p.add_argument("--clocks-per-bit", metavar="N", type=int, default=4,
                   help="with --sim: the simulated UART's clocks per bit (default 4)")
    p.add_argument("--timeout", metavar="S", type=float, default=None,
                   help="seconds to wait for a reply (default 2 on a board, 120 simulated)")
    add_outlier_options(p, scope=False)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_board)


def _run_board(args):
    from hw.board.boards import board
    spec = board(args.board)
    if args.preset and not args.sim:
        raise CliError("--preset needs --sim: a real board runs the preset its bitstream was "
                       f"built with ({spec.preset})")
    name = args.preset or spec.preset
    config = preset(name)
    weights, bias, activations, tokens = layer_inputs(args, config, name)
    if not 4 <= args.clocks_per_bit <= 0xFFFF:
        raise CliError(f"--clocks-per-bit must be 4..65535 (the receiver samples mid-bit), not "
                       f"{args.clocks_per_bit}")
    if args.timeout is not None and args.timeout <= 0:
        raise CliError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    report = run_layer(config, weights, bias=bias, tokens=tokens, activations=activations,
                       seed=args.seed, name=args.tensor,
                       outlier_fit=args.outlier_fit or "gaussian",
                       port=args.port, baud=spec.baud, sim_tag=name if args.sim else None,
                       clocks_per_bit=args.clocks_per_bit, timeout=args.timeout,
                       progress=None if args.json else _progress)
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return 0 if report["mismatches"] == 0 and report["counters_match_model"] else 1


def _progress(done, total):
    if sys.stderr.isatty() or done == total:
        end = "\n" if done == total else ""
        print(f"\r  loading {done}/{total} beats", end=end, file=sys.stderr, flush=True)


def run_layer(config, weights, *, bias=None, tokens=4, activations=None, seed=1, name="layer",
              outlier_fit="gaussian", port=None, baud=1_000_000, sim_tag=None, clocks_per_bit=4,
              timeout=None, progress=None, wrap=None):
    """Run one layer on a board at ``port`` (a device or pyserial URL), or, with ``sim_tag``,
    on the simulated board; return the report dict.

    ``wrap``, if given, is applied to the opened port (tests put a byte-corrupting proxy
    there). Raises :class:`~gobo.common.CliError` for a link failure (one line).
    """
    import serial

    from gobo.board_link import BoardLink, LinkError, run_on_board
    from golden.hwmodel.mac_error import rel_rmse
    from golden.hwmodel.tile_jobs import layer_job, logical_beats
    weights = np.asarray(weights, dtype=np.float32)
    if activations is None:
        activations = np.random.default_rng(seed).standard_normal((tokens, weights.shape[1]))
    started = time.monotonic()
    image, x_int, fp32, [job] = layer_job(config, weights, activations, bias=bias, seed=seed,
                                          name=name, outlier_fit=outlier_fit)

    def talk(url, where, wait):
        try:
            handle = serial.serial_for_url(url, baudrate=baud, timeout=wait)
        except (serial.SerialException, ValueError) as e:
            raise CliError(f"cannot open {where}: {_reason(e)}") from None
        with handle:
            link = BoardLink(wrap(handle) if wrap else handle, config, name=where)
            try:
                outputs, status, info = run_on_board(link, job, progress=progress,
                                                     wait_s=max(10.0, wait))
            except LinkError as e:
                raise CliError(str(e)) from None
            except serial.SerialException as e:
                raise CliError(f"{where}: {_reason(e)}") from None
        return outputs, status, link.stats

    bench = {}
    if sim_tag is None:
        outputs, status, stats = talk(port, port, timeout or 2.0)
    else:
        from sim.board_sim import simulated_board
        from sim.runner import BenchFailed
        try:
            with simulated_board(config, tag=sim_tag, clocks_per_bit=clocks_per_bit) as (url,
                                                                                        bench):
                outputs, status, stats = talk(url, "the simulated board", timeout or 120.0)
        except BenchFailed as e:
            raise CliError(f"the simulated board failed: {e}") from None
    mismatches = count_mismatches(outputs, job["expected"], config.pes)
    counters = {k: status[k] for k in job["expected_counters"]}
    y = logical_beats(image, outputs, x_int.shape[0]) * 2.0 ** image.exponents["outputs"]
    return {
        "name": name, "shape": list(weights.shape), "tokens": int(x_int.shape[0]),
        "board": "the simulated board" if sim_tag else port, "config": config.to_dict(),
        "outputs_checked": sum(len(beat) for beat in outputs), "mismatches": mismatches,
        "counters": counters, "expected_counters": job["expected_counters"],
        "counters_match_model": counters == job["expected_counters"],
        "cycles": status["cycles"], "ideal_cycles": job["ideal_cycles"],
        "link": stats, "link_error_flag": bool(status["link_error"]),
        "sim_cycles": bench.get("cycles_simulated"), "sim_clocks_per_bit": clocks_per_bit
        if sim_tag else None,
        "rel_rmse_vs_fp32": rel_rmse(y, fp32),
        "wall_s": time.monotonic() - started,
    }


def count_mismatches(outputs, expected, pes):
    """Output elements that differ from ``expected`` (beats of ``pes`` values), a missing or
    extra beat counting ``pes``: the checker of ``gobo board``."""
    bad = sum(g != e for got, exp in zip(outputs, expected) for g, e in zip(got, exp))
    return bad + abs(len(expected) - len(outputs)) * pes


def _print_report(r):
    link = r["link"]
    print(f"{r['name']} {r['shape'][0]}x{r['shape'][1]}, {r['tokens']} tokens on {r['board']}")
    print(f"  outputs checked  {r['outputs_checked']}   mismatches {r['mismatches']}")
    print(f"  cycles           {r['cycles']} (ideal {r['ideal_cycles']}; counters "
          f"{'match' if r['counters_match_model'] else 'DIFFER from'} the cycle model)")
    print(f"  link             {link['sent']} bytes to the board, {link['received']} back, "
          f"{link['requests']} requests, {link['naks']} NAKs, {link['bad_replies']} bad "
          f"replies, {link['timeouts']} timeouts")
    print("  rel RMSE vs FP32 n/a (the FP32 outputs are constant: no spread to divide by)"
          if r["rel_rmse_vs_fp32"] is None else f"  rel RMSE vs FP32 {r['rel_rmse_vs_fp32']:.4f}")
    if r["sim_cycles"]:
        print(f"  simulation       {r['sim_cycles']} cycles at {r['sim_clocks_per_bit']} clocks "
              f"a bit, {r['wall_s']:.1f} s")
    if not r["counters_match_model"]:
        print(f"  FAILED: counters {r['counters']} != model {r['expected_counters']}")


def _reason(error):
    """The cause of a pyserial error in a few words: the operating system's own words when an
    OSError lies under it (pyserial repeats the errno and the path around them), else its text."""
    cause = error.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    args = getattr(cause, "args", ())
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return f"{args[1]} (is it a serial port?)"     # termios.error: (errno, text)
    return " ".join(str(error).split())
