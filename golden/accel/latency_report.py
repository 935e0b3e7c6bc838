"""Per-inference latency of every encoder FC layer (``gobo latency``, docs/latency.md): the GOBO
streaming tile, the streaming MAC tiles (W16A16, W8A8, W4A4) and the streaming
memory-compression tile (W16A16) on each model's streaming preset, under each off-chip memory
preset, from the event latency model (:mod:`golden.hwmodel.latency`, equal to the stepping cycle
models).

Outlier words per row block come from real weights: all-MiniLM-L6-v2's own FC matrices for
MiniLM; for the BERT-base and BERT-large shapes, MiniLM matrices tiled to the shape (and
cropped where the shape is not a multiple: BERT-large's 1024 of 384), encoder layer ``i`` from
MiniLM layer ``i % 6``: real MiniLM numbers in a BERT-sized matrix, labelled so, not BERT's.
Each is quantized as ``gobo simulate`` quantizes it (:func:`~golden.hwmodel.layer_image.
calibrated_image`, seeded activations, ``streamed=True``); the memory-compression tile's GOBO
form is its own (:func:`~golden.hwmodel.mac_tile.compressed_layer_from_float`, which does not
balance rows, so its outlier words per block differ a little); the MAC tiles' counters depend on
the shape alone.

The memory presets are in accelerator cycles at the clock they state
(:data:`PRESET_MHZ`); :func:`memory_at_clock` rescales one to a design's clock (bytes a cycle by
``f0 / f``, latency and refresh stall rounded up, refresh interval to the nearest cycle; the
random stalls, an abstraction in cycles, unchanged).
"""

import dataclasses
import math
from fractions import Fraction

import numpy as np

from golden.config import COMPRESSED_FLAVOURS, MAC_FLAVOURS, mac_flavour, preset
from golden.hwmodel.latency import (
    compressed_stream_latency,
    mac_stream_latency,
    stream_latency,
)
from golden.hwmodel.layer_image import calibrated_image, quantize_activations
from golden.hwmodel.mac_tile import compressed_image, compressed_layer_from_float
from golden.hwmodel.offchip import ASIC_MHZ, FPGA_MHZ, MEMORY_PRESETS

__all__ = ["MODELS", "FC_LAYERS", "DESIGNS", "NOT_MODELLED", "PRESET_MHZ", "SEQUENCE_LENGTHS",
           "MEMORY_BOUND_SHARE", "ModelShape", "fc_layers", "memory_at_clock", "layer_latency",
           "source_matrix", "outlier_words", "compressed_outlier_words", "COMPRESSED",
           "latency_report", "format_latency",
           "latency_verdict"]


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """An encoder's FC shapes: ``layers`` encoder layers of ``hidden`` / ``ffn`` widths, run on
    the streaming preset ``preset``."""
    name: str
    label: str
    layers: int
    hidden: int
    ffn: int
    preset: str


MODELS = {m.name: m for m in (
    ModelShape("minilm", "MiniLM-L6 (all-MiniLM-L6-v2)", 6, 384, 1536, "minilm_stream"),
    ModelShape("bert_base", "BERT-base shape", 12, 768, 3072, "bert_base_stream"),
    ModelShape("bert_large", "BERT-large shape", 24, 1024, 4096, "bert_large_stream"),
)}

#: Per encoder layer: ``(short name, MiniLM tensor suffix, rows, cols)`` with ``h``/``f`` the
#: hidden and FFN widths.
FC_LAYERS = (("query", "attention.self.query", "h", "h"),
             ("key", "attention.self.key", "h", "h"),
             ("value", "attention.self.value", "h", "h"),
             ("attention_output", "attention.output.dense", "h", "h"),
             ("intermediate", "intermediate.dense", "f", "h"),
             ("output", "output.dense", "h", "f"))

SEQUENCE_LENGTHS = (32, 128, 512)

#: The memory-compression designs and the MAC flavour each computes at (golden.config's).
COMPRESSED = COMPRESSED_FLAVOURS
#: The designs: GOBO, the MAC flavours and the memory-compression mode.
DESIGNS = ("gobo", *MAC_FLAVOURS, *COMPRESSED)
#: Designs of the issue the event model does not cover (``{design: why}``; every report says so).
NOT_MODELLED = {}

#: The accelerator clock each memory preset's cycles assume (docs/offchip.md section 5).
PRESET_MHZ = {"ddr4_3200_x64": ASIC_MHZ, "lpddr4_4266_x32": ASIC_MHZ,
              "ddr4_3200_x64_contended": ASIC_MHZ, "ulx3s_sdram": FPGA_MHZ}

#: A design is memory-bound when its PEs wait for weights (``stall_memory``) in more than this
#: share of its cycles.
MEMORY_BOUND_SHARE = 0.10


def memory_at_clock(name, mhz):
    """Memory preset ``name`` seen from an accelerator clock of ``mhz`` MHz (the module
    docstring's rescaling); the preset itself at its own clock."""
    memory = MEMORY_PRESETS[name]
    ratio = Fraction(str(mhz)) / PRESET_MHZ[name]
    if ratio == 1:
        return memory
    interval = round(memory.refresh_interval * ratio)
    return memory.replace(
        bytes_per_cycle=memory.bytes_per_cycle / ratio,
        latency=max(1, math.ceil(memory.latency * ratio)),
        refresh_interval=interval,
        refresh_cycles=min(math.ceil(memory.refresh_cycles * ratio), max(interval - 1, 0)),
        name=f"{name}@{float(mhz):g}MHz")


def fc_layers(model):
    """``[(encoder layer, short name, rows, cols)]`` of every encoder FC layer of ``model`` (a
    :data:`MODELS` key), in model order."""
    m = MODELS[model]
    width = {"h": m.hidden, "f": m.ffn}
    return [(i, short, width[r], width[c]) for i in range(m.layers)
            for short, _, r, c in FC_LAYERS]


def source_matrix(tensors, model, layer, short):
    """``(weights, bias, label)``: the float matrix standing for encoder layer ``layer``'s FC
    ``short`` of ``model``: MiniLM's own, or a MiniLM matrix tiled (and cropped) to the
    shape."""
    m = MODELS[model]
    suffix, r, c = next((s, r, c) for name, s, r, c in FC_LAYERS if name == short)
    rows, cols = {"h": m.hidden, "f": m.ffn}[r], {"h": m.hidden, "f": m.ffn}[c]
    source = f"encoder.layer.{layer % 6}.{suffix}"
    w = np.asarray(tensors[source + ".weight"], dtype=np.float32)
    b = np.asarray(tensors[source + ".bias"], dtype=np.float32)
    if w.shape == (rows, cols):
        return w, b, f"MiniLM {source}"
    reps = (-(-rows // w.shape[0]), -(-cols // w.shape[1]))
    crop = "" if (reps[0] * w.shape[0], reps[1] * w.shape[1]) == (rows, cols) else ", cropped"
    return (np.tile(w, reps)[:rows, :cols], np.tile(b, reps[0])[:rows],
            f"MiniLM {source} tiled {reps[0]} x {reps[1]}{crop} (not {m.label}'s weights)")


def outlier_words(tensors, model, layer, short, seed=1):
    """``(words per row block, valid records per row block, label)`` of one FC layer on the
    model's streaming preset, quantized as ``gobo simulate`` does."""
    config = preset(MODELS[model].preset)
    w, b, label = source_matrix(tensors, model, layer, short)
    acts = np.random.default_rng(seed).standard_normal((8, w.shape[1]))
    image, _, _ = calibrated_image(config, w, acts, bias=b, streamed=True)
    records = np.bincount(np.asarray(image.outlier_rows, dtype=np.int64) // config.pes,
                          minlength=image.blocks)[:image.blocks]
    return image.words_per_block(), records.tolist(), label


def compressed_outlier_words(tensors, model, layer, short, design, seed=1):
    """:func:`outlier_words` for the memory-compression ``design`` (:data:`COMPRESSED`): the
    outlier words per row block of its own GOBO form on the model's streaming preset (records:
    None, the tile has no side path)."""
    config, weight_bits = mac_flavour(COMPRESSED[design], base=MODELS[model].preset)
    w, b, label = source_matrix(tensors, model, layer, short)
    acts = np.random.default_rng(seed).standard_normal((8, w.shape[1]))
    _, e_x = quantize_activations(config, acts)
    layer = compressed_layer_from_float(config, weight_bits, w, bias=b, act_exponent=e_x)
    return compressed_image(layer).words_per_block(), None, label


def layer_latency(model, design, memory, *, rows, cols, tokens, words=None, records=None):
    """The counters of one FC layer of ``model`` on ``design`` (:data:`DESIGNS`) over ``tokens``
    tokens (token groups of the preset's ``max_tokens``) from ``memory`` (an
    :class:`~golden.hwmodel.offchip.OffchipMemory`); ``words`` per row block for GOBO and the
    memory-compression designs, ``records`` per row block for GOBO."""
    name = MODELS[model].preset
    if design == "gobo":
        return stream_latency(preset(name), memory, rows=rows, cols=cols, tokens=tokens,
                              words_per_block=words, outliers_per_block=records)
    if design in COMPRESSED:
        config, _ = mac_flavour(COMPRESSED[design], base=name)
        return compressed_stream_latency(config, memory, rows=rows, cols=cols, tokens=tokens,
                                         words_per_block=words)
    config, weight_bits = mac_flavour(design, base=name)
    return mac_stream_latency(config, weight_bits, memory, rows=rows, cols=cols, tokens=tokens)


def _key(memory):
    return tuple(sorted(memory.to_dict().items()))


def latency_report(tensors, *, models, tokens, memories, designs, clocks, layers=None,
                   plot_bytes_per_cycle=(), progress=print):
    """Every FC layer's counters and the per-inference totals (a JSON-ready dict).

    Parameters
    ----------
    tensors : mapping
        all-MiniLM-L6-v2's tensors (:func:`golden.nlp.weights.load_tensors`).
    models, tokens, memories, designs : sequences
        :data:`MODELS` keys, sequence lengths, memory preset names, :data:`DESIGNS`.
    clocks : dict
        ``{"osu": {design: MHz}, "ecp5": {design: MHz} or None}``.
    layers : int, optional
        Only the first ``layers`` encoder layers of each model.
    plot_bytes_per_cycle : sequence of str
        Bandwidths (bytes a cycle, exact) of the latency-against-bandwidth sweep on the first
        model (the DDR4 preset's latency and refresh at each design's OSU clock).
    progress : callable
        Called with a line of progress.
    """
    cache, words_cache = {}, {}
    kinds = [k for k in ("osu", "ecp5") if clocks.get(k)]

    def run(model, design, memory, rows, cols, t, source):
        words, records, _ = words_cache.get((design, *source), (None, None, None))
        key = (MODELS[model].preset, design, _key(memory), rows, cols, t,
               None if words is None else tuple(words))
        if key not in cache:
            cache[key] = layer_latency(model, design, memory, rows=rows, cols=cols, tokens=t,
                                       words=words, records=records)
        return cache[key]

    layer_rows, totals = [], []
    for model in models:
        fcs = [fc for fc in fc_layers(model) if layers is None or fc[0] < layers]
        for i, short, _, _ in fcs:
            source = (model, i % 6, short)
            for design in designs:
                if (design, *source) in words_cache:
                    continue
                if design == "gobo":
                    words_cache[(design, *source)] = outlier_words(tensors, model, i % 6, short)
                elif design in COMPRESSED:
                    words_cache[(design, *source)] = compressed_outlier_words(
                        tensors, model, i % 6, short, design)
        progress(f"{MODELS[model].label}: {len(fcs)} FC layers quantized")
        for t in tokens:
            for kind in kinds:
                for design in designs:
                    mhz = clocks[kind][design]
                    for name in memories:
                        memory = memory_at_clock(name, mhz)
                        total = {"model": model, "tokens": t, "design": design, "memory": name,
                                 "clock": kind, "mhz": mhz, "cycles": 0, "ideal_cycles": 0,
                                 "stall_memory": 0, "bytes_read": 0, "layers": len(fcs)}
                        for i, short, rows, cols in fcs:
                            r = run(model, design, memory, rows, cols, t, (model, i % 6, short))
                            label = words_cache.get((design, model, i % 6, short),
                                                    (None, None, None))[2]
                            layer_rows.append({
                                "model": model, "layer": i, "fc": short, "rows": rows,
                                "cols": cols, "tokens": t, "design": design, "memory": name,
                                "clock": kind, "mhz": mhz,
                                "groups": [g["tokens"] for g in r["groups"]],
                                "cycles": r["cycles"], "microseconds": r["cycles"] / mhz,
                                "ideal_cycles": r["ideal_cycles"],
                                "stall_memory": r["stall_memory"],
                                "stall_outlier": r["stall_outlier"],
                                "bytes_read": r["bytes_read"], "utilization": r["utilization"],
                                "outlier_source": label})
                            for k in ("cycles", "ideal_cycles", "stall_memory", "bytes_read"):
                                total[k] += r[k]
                        total["microseconds"] = total["cycles"] / mhz
                        total["memory_bound"] = (total["stall_memory"]
                                                 > MEMORY_BOUND_SHARE * total["cycles"])
                        totals.append(total)
            progress(f"{MODELS[model].label}, T = {t}: done")
    sweep = []
    if plot_bytes_per_cycle and models:
        model = models[0]
        fcs = [fc for fc in fc_layers(model) if layers is None or fc[0] < layers]
        for t in tokens:
            for design in designs:
                mhz = clocks["osu"][design]
                base = memory_at_clock("ddr4_3200_x64", mhz)
                for bpc in plot_bytes_per_cycle:
                    memory = base.replace(bytes_per_cycle=Fraction(bpc), name=f"ddr4@{bpc}")
                    cycles = sum(run(model, design, memory, rows, cols, t,
                                     (model, i % 6, short))["cycles"]
                                 for i, short, rows, cols in fcs)
                    sweep.append({"model": model, "model_label": MODELS[model].label,
                                  "tokens": t, "design": design, "bytes_per_cycle": bpc,
                                  "gb_per_s": float(Fraction(bpc)) * mhz / 1000,
                                  "cycles": cycles, "microseconds": cycles / mhz})
            progress(f"bandwidth sweep, {MODELS[model].label}, T = {t}: done")
    return {
        "note": "Per-inference latency of the encoder FC layers from the event latency model "
                "(golden.hwmodel.latency, equal to the stepping cycle models); one inference "
                "= every FC layer once, token groups of the preset's max_tokens back to back; "
                "attention's score and softmax steps, embeddings and other layers not "
                "counted.",
        "generated": _now(),
        "models": {m: dataclasses.asdict(MODELS[m]) for m in models},
        "designs": list(designs),
        "not_modelled": NOT_MODELLED,
        "memories": {name: MEMORY_PRESETS[name].to_dict() for name in memories},
        "preset_mhz": {name: float(PRESET_MHZ[name]) for name in memories},
        "clocks": clocks,
        "memory_bound_share": MEMORY_BOUND_SHARE,
        "layers_per_model": layers,
        "totals": totals,
        "layers": layer_rows,
        "bandwidth_sweep": sweep,
    }


def _now():
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def format_latency(report):
    """Markdown: per model, the latency of one inference (all FC layers) per sequence length and
    design under each memory (microseconds at the OSU Fmax, the ECP5 figure beside it; ``M``:
    memory-bound), with the off-chip megabytes and GOBO's speed-up."""
    totals = report["totals"]
    memories = list(report["memories"])
    kinds = [k for k in ("osu", "ecp5") if report["clocks"].get(k)]
    clocks = report["clocks"]
    layers = report.get("layers_per_model")
    scope = ("one inference" if layers is None else
             f"the first {layers} encoder layer{'s' if layers > 1 else ''} (not one inference)")
    lines = [f"# Latency per inference: {', '.join(report['designs'])} (`gobo latency`)", "",
             *([f"Command: `{report['command']}`", ""] if report.get("command") else []),
             "Clocks (MHz): " + "; ".join(
        f"{d} OSU {clocks['osu'][d]:g}{_tile(report, 'osu', d)}"
        + (f", ECP5 {clocks['ecp5'][d]:g}{_tile(report, 'ecp5', d)}" if clocks.get("ecp5")
           else "")
        for d in report["designs"]),
        "", f"`M`: memory-bound (`stall_memory` above {report['memory_bound_share']:.0%} of the "
        "cycles)." + ("".join(f" Not modelled: {k}: {v}." for k, v in
                              report["not_modelled"].items())), ""]
    index = {(r["model"], r["tokens"], r["design"], r["memory"], r["clock"]): r for r in totals}
    for model in report["models"]:
        label = report["models"][model]["label"]
        lines += [f"### {label} ({report['models'][model]['preset']}), {scope}, "
                  f"microseconds" + (" (OSU / ECP5)" if "ecp5" in kinds else " (OSU)"), "",
                  "| T | design | off-chip MB | " + " | ".join(memories) + " |",
                  "|---:|---|---:|" + "---:|" * len(memories)]
        for t in sorted({r["tokens"] for r in totals if r["model"] == model}):
            for design in report["designs"]:
                cells = []
                for memory in memories:
                    osu = index[(model, t, design, memory, "osu")]
                    gobo = index.get((model, t, "gobo", memory, "osu"))
                    cell = f"{osu['microseconds']:,.0f}" + (" M" if osu["memory_bound"] else "")
                    if "ecp5" in kinds:
                        e = index[(model, t, design, memory, "ecp5")]
                        cell += f" / {e['microseconds']:,.0f}" + (" M" if e["memory_bound"]
                                                                  else "")
                    if gobo and design != "gobo":
                        cell += f" ({osu['microseconds'] / gobo['microseconds']:.2f}x)"
                    cells.append(cell)
                mb = index[(model, t, design, memories[0], "osu")]["bytes_read"] / 1e6
                lines.append(f"| {t} | {design.upper()} | {mb:,.1f} | " + " | ".join(cells)
                             + " |")
        lines.append("")
    lines.append("(x): the design's latency over GOBO's at the OSU clocks (above 1: GOBO is "
                 "faster).")
    verdict = latency_verdict(report)
    if verdict:
        lines += ["", "### GOBO against each MAC flavour and the memory-compression mode (OSU "
                  "clocks; every model and length)", "",
                  "| design | memory | GOBO faster in | design / GOBO latency (min - max) |",
                  "|---|---|---:|---:|"]
        lines += [f"| {v['mac'].upper()} | {v['memory']} | {v['gobo_faster']} of {v['cases']} "
                  f"| {v['ratio_min']:.2f} - {v['ratio_max']:.2f} |" for v in verdict]
    return "\n".join(lines) + "\n"


def _tile(report, kind, design):
    """`` (tile)``: the synthesized tile whose Fmax clocks ``design`` (the report's
    ``clock_tiles``), or nothing when the clock was given."""
    tile = ((report.get("clock_tiles") or {}).get(kind) or {}).get(design)
    return f" (`{tile}`)" if tile else ""


def latency_verdict(report):
    """Per other design (``mac``: a MAC flavour or the memory-compression mode) and memory: in
    how many (model, length) cases GOBO's one-inference latency
    at the OSU clocks is lower, and the range of MAC / GOBO."""
    totals = [r for r in report["totals"] if r["clock"] == "osu"]
    gobo = {(r["model"], r["tokens"], r["memory"]): r["microseconds"] for r in totals
            if r["design"] == "gobo"}
    out = []
    for mac in [d for d in report["designs"] if d != "gobo"]:
        for memory in report["memories"]:
            ratios = [r["microseconds"] / gobo[(r["model"], r["tokens"], memory)]
                      for r in totals if r["design"] == mac and r["memory"] == memory
                      and (r["model"], r["tokens"], memory) in gobo]
            if ratios:
                out.append({"mac": mac, "memory": memory, "cases": len(ratios),
                            "gobo_faster": sum(x > 1 for x in ratios),
                            "ratio_min": min(ratios), "ratio_max": max(ratios)})
    return out
