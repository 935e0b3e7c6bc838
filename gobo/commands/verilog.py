"""``gobo verilog``: Verilog of any registered design (:mod:`hw.designs`), with a JSON sidecar,
optionally linted by Verilator."""

import argparse
import json
import pathlib
import sys
import warnings

from amaranth.hdl import UnusedElaboratable

from gobo.common import CliError, example
from golden.config import (
    MAC_FLAVOURS,
    PE_PRESETS,
    PRESETS,
    STREAM_PRESETS,
    TILE_PRESETS,
    mac_flavour,
    preset,
)
from hw.designs import KINDS, Design, kind
from hw.verilog import LintError, lint

__all__ = ["add", "design_for", "default_designs", "sidecar", "write"]

#: Derived widths of the configuration that a sidecar records.
DERIVED = ("n_centroids", "dot_bits", "bin_bits", "product_bits", "out_bits", "corr_bits",
           "acc_bits", "index_word_bits", "recon_cycles")


def design_for(kind_name, preset_name, flavour="w16a16"):
    """The :class:`~hw.designs.Design` of ``kind_name`` at preset ``preset_name``; a kind with
    ``weight_bits`` takes the MAC ``flavour``'s weight and activation widths. Its top module is
    ``<kind>_<preset>`` or ``<kind>_<flavour>_<preset>``."""
    if kind(kind_name).weight_bits:
        config, weight_bits = mac_flavour(flavour, base=preset_name)
        return Design(kind_name, config, weight_bits, name=f"{kind_name}_{flavour}_{preset_name}")
    return Design(kind_name, preset(preset_name), name=f"{kind_name}_{preset_name}")


def default_designs():
    """What ``make verilog`` emits: the GOBO PE presets, the GOBO tile presets, the streaming
    tile at ``tiny`` and ``minilm_stream`` (16-byte AXI port; the BERT-base and BERT-large
    streaming presets take 25-40 s each to emit: ``--kind gobo_stream_tile --preset ...``), and
    the ``tiny`` MAC tiles (every flavour) with the W16A16 memory-compression tile, whole-layer
    and streamed (their dense weight memories make larger presets slow to emit), and the
    streaming MAC tiles at ``tiny`` and ``minilm_stream`` (every flavour; about 2 s each: their
    weights stay off chip)."""
    return [*(design_for("gobo_pe", p) for p in PE_PRESETS),
            *(design_for("gobo_tile", p) for p in TILE_PRESETS),
            *(design_for("gobo_stream_tile", p) for p in ("tiny", STREAM_PRESETS[0])),
            *(design_for("mac_tile", "tiny", f) for f in MAC_FLAVOURS),
            design_for("compressed_tile", "tiny", "w16a16"),
            design_for("compressed_stream_tile", "tiny", "w16a16"),
            *(design_for("mac_stream_tile", p, f) for p in ("tiny", STREAM_PRESETS[0])
              for f in MAC_FLAVOURS)]


def sidecar(design, component):
    """JSON-ready description of an emitted design: its parameters, derived widths, ports and
    their widths, latency (or fill/drain) and, for a tile, its memories."""
    ports = {"clk": 1, "rst": 1}
    for path, _, value in component.signature.flatten(component):
        ports["__".join(map(str, path))] = len(value.as_value() if hasattr(value, "as_value")
                                               else value)
    side = {"module": design.name, **design.describe(),
            "derived": {name: getattr(design.config, name) for name in DERIVED},
            "ports": list(ports), "port_bits": ports}
    for name in ("latency", "fill_drain"):
        if hasattr(component, name):
            side[name] = getattr(component, name)
    if design.is_tile:
        side["memories"] = component.memories.report()["memories"]
    return side


def write(design, out_dir, *, lint_it=False):
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir``; returns the Verilog path.

    Raises
    ------
    hw.verilog.LintError
        With ``lint_it``, on any Verilator warning.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    component = design.create()
    path = out_dir / f"{design.name}.v"
    path.write_text(design.verilog())
    (out_dir / f"{design.name}.json").write_text(json.dumps(sidecar(design, component),
                                                            indent=2) + "\n")
    if lint_it:
        lint(path, design.name)
    return path


def add(subparsers):
    p = subparsers.add_parser(
        "verilog", help="emit the Verilog of registered designs (PEs, tiles, baselines)",
        description="Emit one Verilog file per design (top module <kind>_<preset>, or "
                    "<kind>_<flavour>_<preset> for the kinds that take weight_bits; a `timescale "
                    "line first) plus a JSON sidecar with the configuration, derived widths, "
                    "ports, latency and memories. Without --kind: the default set of `make "
                    "verilog` (GOBO PE presets, GOBO tile presets, tiny MAC and "
                    "memory-compression tiles, the GOBO and MAC streaming tiles at tiny and "
                    "minilm_stream). A tile holds its layer's memories on chip, "
                    "emitted without an initial block (they are loaded at run time): even "
                    "bert_large's tile emits in seconds. Each design is emitted once per "
                    "configuration, source and tool version and read from build/cache/verilog "
                    "(or $GOBO_CACHE/verilog) after that.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"kinds: {', '.join(KINDS)}\npresets: {', '.join(PRESETS)}\n\n"
               + example("gobo verilog --out build/verilog --lint",
                         "gobo verilog --out build/verilog --kind gobo_tile --preset tiny",
                         "gobo verilog --out build/verilog --kind gobo_stream_tile "
                         "--preset bert_base_stream",
                         "gobo verilog --out build/verilog --kind mac_pe --flavour w8a8 "
                         "--preset lanes4",
                         "gobo verilog --out build/verilog --kind mac_stream_tile --flavour w4a4 "
                         "--preset minilm_stream"))
    p.add_argument("--out", type=pathlib.Path, required=True, metavar="DIR",
                   help="output directory (created if missing)")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="design kind to emit (repeatable; needs --preset)")
    p.add_argument("--preset", action="append", metavar="NAME",
                   help="preset of --kind (repeatable)")
    p.add_argument("--flavour", choices=list(MAC_FLAVOURS), default="w16a16",
                   help="weight and activation widths of the kinds that take weight_bits "
                        "(default w16a16)")
    p.add_argument("--lint", action="store_true",
                   help="lint every file with 'verilator --lint-only -Wall' and "
                        "hw/verilator_waivers.vlt; fail on any warning")
    p.set_defaults(handler=_run)


def _run(args):
    # The sidecars read only the components' signatures and the Verilog comes from
    # hw.verilog_cache, so components (and those they hold) are never elaborated on a hit.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    if args.kind:
        if not args.preset:
            raise CliError("--kind needs --preset NAME")
        takes = [k for k in args.kind if kind(k).weight_bits]
        if args.flavour != "w16a16" and not takes:
            raise CliError(f"--flavour applies to the kinds that take weight_bits "
                           f"({', '.join(k for k, e in KINDS.items() if e.weight_bits)}), not "
                           f"to {', '.join(args.kind)}")
        designs = [design_for(k, p, args.flavour) for k in args.kind for p in args.preset]
    elif args.preset:
        raise CliError("--preset needs --kind KIND (without both: the default set)")
    else:
        designs = default_designs()
    failed = False
    for number, design in enumerate(designs, 1):
        print(f"[{number}/{len(designs)}] emitting {design.name}", file=sys.stderr, flush=True)
        try:
            path = write(design, args.out, lint_it=args.lint)
            status = "  lint clean" if args.lint else ""
        except LintError as e:
            print(e, file=sys.stderr)
            path, status, failed = args.out / f"{design.name}.v", "  LINT FAILED", True
        print(f"{path}: {design.kind} lanes={design.config.lanes} pes={design.pes} "
              f"size={path.stat().st_size} bytes{status}", flush=True)
    return 1 if failed else 0
