"""Energy per inference and tile area with memories (docs/efficiency.md): logic + on-chip SRAM +
off-chip traffic of every encoder FC layer of MiniLM-L6, BERT-base and BERT-large shapes at 128
tokens, for the GOBO streaming tile (A16), the streaming MAC tiles (W16A16, W8A8, W4A4) and the
memory-compression mode, under each memory preset with a sourced energy per bit; and the
streaming tiles' buffers as SRAM beside the synthesized logic area.

Inputs and where they come from:
- off-chip bytes: the layouts' sizes (``offchip_layout`` of the GOBO image, ``mac_offchip_layout``
  of the dense layer) on the preset's streaming datapath and a 16-byte bus; MiniLM's from its
  real layer-0 weights, BERT-base and -large from the same matrices tiled to their shapes
  (``golden.accel.latency_report.source_matrix``, as ``gobo latency`` does; no BERT weights
  here), one matrix per shape, times the number of layers;
- on-chip accesses: ``golden.hwmodel.energy.stream_accesses``; per-access energy: the SRAM model
  (``golden.hwmodel.sram``) of each streaming buffer (``hw.stream_tile.stream_tile_memory_specs``,
  ``hw.mac_stream_tile.mac_stream_tile_memory_specs``);
- off-chip pJ/bit: ``golden.hwmodel.offchip_energy`` (a preset without a source is skipped and
  listed);
- logic: ``--power build/reports/power.json`` (``make power``: pJ per MAC-equivalent op of each
  tile's logic from OpenSTA on the mapped netlist with a real run's activity; the designs it does
  not measure are left out of the report and named), or ``--logic-pj-per-op DESIGN=PJ`` for every
  design, or ``--without-logic`` to report the memories' energy alone; a missing figure is
  refused, never defaulted;
- logic area: ``--synth`` (``synth.json`` of ``make synth``), its 2 x 16 tiles.

Usage: .venv/bin/python scripts/energy_report.py --power build/reports/power.json
       .venv/bin/python scripts/energy_report.py --without-logic [--synth build/reports/synth.json]
Writes build/reports/energy.json, energy.md and energy.png (stacked bars).
"""

import argparse
import json
import math
import pathlib
import sys

import numpy as np

from golden.config import MAC_FLAVOURS, mac_flavour, preset
from golden.hwmodel.energy import LayerWork, LogicPower, inference_energy, stream_accesses
from golden.hwmodel.layer_image import build_layer_image, output_exponent, quantize_activations
from golden.hwmodel.mac_tile import mac_layer_from_float
from golden.hwmodel.offchip import MEMORY_PRESETS, mac_offchip_layout, offchip_layout
from golden.hwmodel.offchip_energy import offchip_energy_source, offchip_pj_per_bit
from golden.hwmodel.sram import GF180_SRAM_SOURCE, sram
from hw.mac_stream_tile import mac_stream_tile_memory_specs
from hw.stream_tile import stream_tile_memory_specs
from synth.designs import comparison_tiles

TOKENS = 128
BUS_BYTES = 16
#: report label: the model's shape in golden.accel.latency_report.MODELS
MODELS = {"MiniLM-L6": "minilm", "BERT-base": "bert_base", "BERT-large": "bert_large"}
#: GOBO at each activation width (A16 is the accuracy-safe one), so each MAC flavour has a GOBO
#: design of its activation width (as the synthesis pairs them).
GOBO_ACT_BITS = {"gobo": 16, "gobo_a8": 8, "gobo_a4": 4}
DESIGNS = (*GOBO_ACT_BITS, *MAC_FLAVOURS, "compressed")
#: The GOBO design each other design is compared with (same activation width).
PAIRED_GOBO = {"gobo": "gobo", "gobo_a8": "gobo_a8", "gobo_a4": "gobo_a4", "w16a16": "gobo",
               "w8a8": "gobo_a8", "w4a4": "gobo_a4", "compressed": "gobo"}
#: The synthesized whole-layer 2 x 16 tile of each design (``synth.designs.comparison_tiles``):
#: its logic's area and power.
SYNTH_TILES = {d: comparison_tiles(d)[0] for d in DESIGNS}


def fc_shapes(hidden, ffn):
    """``[(name, rows, cols, per encoder layer, the latency report's FC standing for it)]``: Q,
    K, V, attention output; FFN in, out."""
    return [("attention (Q, K, V, O)", hidden, hidden, 4, "query"),
            ("FFN intermediate", ffn, hidden, 1, "intermediate"),
            ("FFN output", hidden, ffn, 1, "output")]


def source_tensors():
    """MiniLM's layer-0 weights and biases of the FC kinds :func:`fc_shapes` stands on (read once
    for every model: the BERT shapes tile the same matrices)."""
    from golden.accel.latency_report import FC_LAYERS
    from golden.nlp.weights import load_tensors, minilm_safetensors
    shorts = {short for *_, short in fc_shapes(0, 0)}
    names = {f"encoder.layer.0.{suffix}.{part}" for short, suffix, _, _ in FC_LAYERS
             if short in shorts for part in ("weight", "bias")}
    return load_tensors(minilm_safetensors(), names)


def layer_works(model, tensors):
    """``{design: [LayerWork]}`` of one inference of ``model`` and ``{design: config}``;
    ``tensors``: :func:`source_tensors`."""
    from golden.accel.latency_report import MODELS as SHAPES
    from golden.accel.latency_report import source_matrix
    shape = SHAPES[MODELS[model]]
    stream, hidden, ffn, layers = shape.preset, shape.hidden, shape.ffn, shape.layers
    works = {d: [] for d in DESIGNS}
    configs = {d: preset(stream).replace(act_bits=a) for d, a in GOBO_ACT_BITS.items()}
    for i, (name, rows, cols, per_layer, short) in enumerate(fc_shapes(hidden, ffn)):
        weights, bias, _ = source_matrix(tensors, MODELS[model], 0, short)
        weights, bias = np.asarray(weights, np.float64), np.asarray(bias, np.float64)
        acts = np.random.default_rng(100 + i).standard_normal((TOKENS, cols))
        ref = acts @ weights.T + bias
        count, ops = per_layer * layers, rows * cols * TOKENS
        for design in GOBO_ACT_BITS:
            base = configs[design]
            _, e_x = quantize_activations(base, acts)
            image = build_layer_image(base, weights, bias=bias, act_exponent=e_x,
                                      out_exponent=output_exponent(base, ref), streamed=True)
            layout = offchip_layout(image, BUS_BYTES)
            gobo_acc = stream_accesses("gobo", rows, cols, TOKENS, base.pes, base.lanes,
                                       outlier_words=layout.outlier_words,
                                       outlier_lanes=base.outlier_lanes)
            works[design].append(LayerWork(name, ops, layout.size, gobo_acc, count=count))
            if design == "gobo":
                gobo_bytes = layout.size
        for flavour in MAC_FLAVOURS:
            config, weight_bits = mac_flavour(flavour, base=stream)
            configs[flavour] = (config, weight_bits)
            _, e_x = quantize_activations(config, acts)
            mac = mac_layer_from_float(config, weight_bits, weights, bias=bias, act_exponent=e_x,
                                       out_exponent=output_exponent(config, ref))
            acc = stream_accesses("mac", rows, cols, TOKENS, config.pes, config.lanes)
            works[flavour].append(LayerWork(name, ops, mac_offchip_layout(mac, BUS_BYTES).size,
                                            acc, count=count))
            if flavour == "w16a16":
                # memory-compression mode: the W16A16 tile's on-chip traffic, GOBO's bytes
                works["compressed"].append(LayerWork(name, ops, gobo_bytes, acc, count=count))
    configs["compressed"] = configs["w16a16"]
    return works, configs


def buffer_estimates(design, configs):
    """``{memory: SramEstimate}`` of a design's streaming buffers, plus ``output`` (a word of
    ``P`` outputs into an activation memory of the activation memory's depth)."""
    if design in GOBO_ACT_BITS:
        config = configs[design]
        specs = stream_tile_memory_specs(config)
    else:
        config, weight_bits = configs[design]
        specs = mac_stream_tile_memory_specs(config, weight_bits)
    mems = {name: sram(s.width, s.depth) for name, s in specs.items()}
    mems["output"] = sram(config.pes * config.act_bits, specs["activation"].depth)
    return mems


def power_logic(path):
    """``({design: pJ per MAC-equivalent op}, source)`` from ``make power``'s ``power.json``:
    each design's tile (:data:`SYNTH_TILES`), its real run's compute window; designs whose tile
    it does not hold (or whose run failed) are absent."""
    path = pathlib.Path(path)
    try:
        tiles = json.loads(path.read_text())["tiles"]
    except FileNotFoundError:
        raise SystemExit(f"energy_report: {path}: no such file (run `make power` first)") from None
    except (ValueError, KeyError, TypeError):
        raise SystemExit(f"energy_report: {path}: not a power report of `make power` (no "
                         f"'tiles')") from None
    logic = {}
    for design, tile in SYNTH_TILES.items():
        run = ((tiles.get(tile) or {}).get("runs") or {}).get("real") or {}
        pj = (run.get("compute") or {}).get("energy_per_op_pj")
        if run.get("bench_passed") and isinstance(pj, (int, float)):
            logic[design] = float(pj)
    return logic, f"{path} (OpenSTA on the mapped OSU tiles, real MiniLM activity)"


def parse_assignments(items, what):
    out, seen = {}, set()
    for item in items or ():
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or key not in DESIGNS:
            raise SystemExit(f"energy_report: {what} {item!r} is not DESIGN=NUMBER with DESIGN "
                             f"one of {', '.join(DESIGNS)}")
        if not math.isfinite(out[key]) or out[key] < 0:
            raise SystemExit(f"energy_report: {what} {item!r}: an energy must be a finite "
                             f"number of pJ, at least 0")
        if key in seen:
            raise SystemExit(f"energy_report: {what} gives {key} twice")
        seen.add(key)
    return out


def streaming_area(synth):
    """Each design's 2 x 16 streaming tile: buffers (``minilm_stream`` depths on the 2 x 16
    datapath) as SRAM beside the synthesized 2 x 16 whole-layer tile's logic."""
    from synth.designs import TILE_SHAPE
    rows = []
    for design in DESIGNS:
        if design == "compressed":
            continue
        if design in GOBO_ACT_BITS:
            config = preset("minilm_stream").replace(act_bits=GOBO_ACT_BITS[design],
                                                     **TILE_SHAPE)
            specs = stream_tile_memory_specs(config)
        else:
            config, weight_bits = mac_flavour(design, base="minilm_stream", **TILE_SHAPE)
            specs = mac_stream_tile_memory_specs(config, weight_bits)
        mems = {n: sram(s.width, s.depth).to_dict() for n, s in specs.items()}
        logic = (synth or {}).get("designs", {}).get(SYNTH_TILES[design], {})
        logic = (logic.get("asic_area") or {}).get("area_um2")
        area = sum(m["area_um2"] for m in mems.values())
        rows.append({"design": design, "memories": mems, "sram_um2": area,
                     "bits": sum(m["bits"] for m in mems.values()),
                     "logic_um2": logic, "logic_from": SYNTH_TILES[design],
                     "total_um2": None if logic is None else logic + area})
    return rows


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    presets = sorted({r["memory"] for r in results})
    fig, axes = plt.subplots(len(presets), len(MODELS), figsize=(4 * len(MODELS),
                                                                 3.2 * len(presets)),
                             squeeze=False)
    for i, memory in enumerate(presets):
        for j, model in enumerate(MODELS):
            ax = axes[i][j]
            rows = [r for r in results if r["memory"] == memory and r["model"] == model]
            x = np.arange(len(rows))
            bottom = np.zeros(len(rows))
            for key, label in (("logic_uj", "logic"), ("onchip_uj", "on-chip SRAM"),
                               ("offchip_uj", "off-chip")):
                values = np.array([r[key] or 0.0 for r in rows])
                ax.bar(x, values, bottom=bottom, label=label)
                bottom += values
            ax.set_xticks(x, [r["design"] for r in rows], rotation=30, fontsize=8)
            ax.set_title(f"{model}, {memory}", fontsize=9)
            ax.set_ylabel("uJ per inference", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(report):
    lines = ["# Energy per inference and tile area with memories", "",
             f"> {report['note']}", "",
             f"SRAM: {GF180_SRAM_SOURCE}.", "",
             "## Energy per inference (every encoder FC layer, 128 tokens)", "",
             "| model | memory | design | logic (uJ) | on-chip SRAM (uJ) | off-chip (uJ) | total "
             "(uJ) | x GOBO (same act. width) | on-chip pJ/op | off-chip MB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["energy"]:
        same = [g for g in report["energy"]
                if g["model"] == r["model"] and g["memory"] == r["memory"]]
        # against the GOBO design of the same activation width, else (marked) GOBO A16
        paired = [g for g in same if g["design"] == PAIRED_GOBO[r["design"]]]
        gobo = (paired or [g for g in same if g["design"] == "gobo"])[0]
        mark = "" if paired else " (vs A16)"
        logic = "pending" if r["logic_uj"] is None else f"{r['logic_uj']:,.1f}"
        lines.append(f"| {r['model']} | {r['memory']} | {r['design']} | {logic} | "
                     f"{r['onchip_uj']:,.1f} | {r['offchip_uj']:,.1f} | {r['total_uj']:,.1f} | "
                     f"{r['total_uj'] / gobo['total_uj']:.2f}{mark} | "
                     f"{r['onchip_uj'] * 1e6 / r['ops']:.1f} | {r['offchip_bytes'] / 1e6:.2f} |")
    if report["skipped_presets"]:
        lines += [""] + [f"- Skipped `{k}`: {v}" for k, v in report["skipped_presets"].items()]
    lines += ["", "Off-chip energy per bit used:", ""]
    for name, src in report["offchip_pj_per_bit"].items():
        lines.append(f"- `{name}`: {src['pj_per_bit']:.2f} pJ/bit ({src['part']}; "
                     f"{src['source']})")
    lines += ["", "## SRAM per access of the streaming buffers", "",
              "| model | design | memory | width x depth | macros | um^2/bit | read pJ | "
              "write pJ |", "|---|---|---|---|---:|---:|---:|---:|"]
    for b in report["buffers"]:
        lines.append(f"| {b['model']} | {b['design']} | {b['memory']} | {b['width']} x "
                     f"{b['depth']:,} | {b['macros']:,} | {b['area_per_bit_um2']:.1f} | "
                     f"{b['read_pj']:,.0f} | {b['write_pj']:,.0f} |")
    lines += ["", "## Streaming tiles (2 x 16) with their buffers as SRAM", "",
              "| design | buffers (kbit) | SRAM (mm^2) | logic (mm^2, synthesized tile) | total "
              "(mm^2) | total x GOBO (same act. width) |", "|---|---:|---:|---:|---:|---:|"]
    for r in report["streaming_area"]:
        gobo = next(g for g in report["streaming_area"] if g["design"] == PAIRED_GOBO[r["design"]])
        total = r["total_um2"]
        ratio = "n/a" if total is None or gobo["total_um2"] is None else \
            f"{total / gobo['total_um2']:.2f}"
        logic = "n/a" if r["logic_um2"] is None else f"{r['logic_um2'] / 1e6:.2f}"
        lines.append(f"| {r['design']} | {r['bits'] / 1e3:,.1f} | {r['sram_um2'] / 1e6:.2f} | "
                     f"{logic} ({r['logic_from']}) | "
                     f"{'n/a' if total is None else f'{total / 1e6:.2f}'} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from gobo.common import example
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example(".venv/bin/python scripts/energy_report.py --power build/reports/power.json",
                       ".venv/bin/python scripts/energy_report.py --without-logic "
                       "--models MiniLM-L6"))
    parser.add_argument("--logic-pj-per-op", action="append", metavar="DESIGN=PJ",
                        help="logic energy per MAC-equivalent op of a design: "
                             + ", ".join(DESIGNS))
    parser.add_argument("--logic-source", default="",
                        help="with --logic-pj-per-op: where the figures come from (quoted in "
                             "the report)")
    parser.add_argument("--power", metavar="POWER.json",
                        help="take the logic's pJ/op from `make power`'s report; designs it "
                             "does not measure are left out (named in the report)")
    parser.add_argument("--without-logic", action="store_true",
                        help="report the memories' energy alone (logic pending)")
    parser.add_argument("--synth", default="build/reports/synth.json",
                        help="synth.json for the tiles' logic area (missing: n/a)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        help="model shapes to report (default: all three)")
    parser.add_argument("--out", default="build/reports",
                        help="folder for energy.json, energy.md, energy.png (default "
                             "build/reports)")
    args = parser.parse_args(argv)
    logic = parse_assignments(args.logic_pj_per_op, "--logic-pj-per-op")
    if sum(map(bool, (args.without_logic, logic, args.power))) > 1:
        raise SystemExit("energy_report: --without-logic, --logic-pj-per-op and --power exclude "
                         "each other")
    designs, left_out = list(DESIGNS), []
    if args.power:
        logic, args.logic_source = power_logic(args.power)
        designs = [d for d in DESIGNS if d in logic]
        left_out = [d for d in DESIGNS if d not in logic]
        if "gobo" not in designs:
            raise SystemExit(f"energy_report: {args.power} has no GOBO A16 tile "
                             f"({SYNTH_TILES['gobo']}) to compare with")
    missing = [d for d in designs if d not in logic]
    if not args.without_logic and missing:
        raise SystemExit(f"energy_report: no logic energy for {', '.join(missing)}: pass "
                         f"--logic-pj-per-op DESIGN=PJ (from the power analysis) or "
                         f"--without-logic")
    synth_path = pathlib.Path(args.synth)
    synth = json.loads(synth_path.read_text()) if synth_path.is_file() else None
    pj_bits, skipped = {}, {}
    for name in MEMORY_PRESETS:
        try:
            pj_bits[name] = offchip_pj_per_bit(name)
        except ValueError as e:
            skipped[name] = str(e)
    results, buffers = [], []
    tensors = source_tensors()
    for model in args.models:
        print(f"# {model}: quantizing and laying out its FC shapes", flush=True)
        works, configs = layer_works(model, tensors)
        for design in designs:
            mems = buffer_estimates(design, configs)
            buffers += [{"model": model, "design": design, "memory": n, **e.to_dict()}
                        for n, e in mems.items()]
            power = None if args.without_logic else LogicPower(pj_per_op=logic[design],
                                                               source=args.logic_source)
            for memory, pj in pj_bits.items():
                e = inference_energy(works[design], mems, pj, power,
                                     without_logic=args.without_logic)
                results.append({
                    "model": model, "design": design, "memory": memory, "tokens": TOKENS,
                    "offchip_bytes": sum(w.count * w.offchip_bytes for w in works[design]),
                    "ops": sum(w.count * w.ops for w in works[design]),
                    "logic_uj": None if e["logic_pj"] is None else e["logic_pj"] / 1e6,
                    "onchip_uj": e["onchip_pj"] / 1e6, "offchip_uj": e["offchip_pj"] / 1e6,
                    "total_uj": e["total_pj"] / 1e6, "layers": e["layers"]})
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "note": "Memory energy from published figures (SRAM macros, DRAM IDD currents) and "
                "counted accesses, not simulated; logic "
                + ("pending (no power figures given)" if args.without_logic else
                   f"from {args.logic_source}" if args.power else
                   f"from --logic-pj-per-op ({args.logic_source or 'source not given'})")
                + ". BERT-base/large from MiniLM's real layer-0 matrices tiled to their shapes."
                + (f" Left out (no logic figure in {args.power}): {', '.join(left_out)}."
                   if left_out else ""),
        "energy": results, "buffers": buffers, "skipped_presets": skipped,
        "offchip_pj_per_bit": {n: offchip_energy_source(n) for n in pj_bits},
        "streaming_area": streaming_area(synth), "synth": str(synth_path) if synth else None}
    png = plot(results, out / "energy.png")
    report["plot"] = str(png) if png else "matplotlib missing: no plot"
    (out / "energy.json").write_text(json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    (out / "energy.md").write_text(md)
    print(md)


if __name__ == "__main__":
    sys.exit(main())
