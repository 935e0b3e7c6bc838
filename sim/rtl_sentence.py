"""Real sentences through every encoder FC layer of a BERT on the tile RTL, layer by layer with the
host in between, checked against the bit-exact model (``gobo run --rtl``; docs/model.md,
"A sentence through the RTL").

Two :class:`~golden.accel.encoder.AcceleratedEncoder` share the calibration, the GOBO layers and
the batch: one on the golden tile model, one on the RTL (:class:`sim.rtl_tile.RtlTile`). The RTL
one compares every FC output element with the golden tile model before its host goes on with the
RTL's outputs, so a wrong element would change every later layer; at the end both sentence
embeddings must be equal to the last bit. Both run in this process on the same batch: the host's
float32 products depend on the batch (docs/model.md, "The tile as a parameter").
"""

import hashlib
import time

import numpy as np

from golden.accel.encoder import AcceleratedEncoder, fc_kind
from golden.nlp.bert import fc_names
from golden.quant.quantizer import quantize

from .rtl_tile import RtlTile

__all__ = ["rtl_sentence_report", "format_rtl_sentence"]


def _sha256(embeddings):
    return hashlib.sha256(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes()).hexdigest()


def rtl_sentence_report(encoder, tokenizer, config, calibration, sentences, *, tag,
                        progress=None, corrupt=None):
    """Run ``sentences`` (one batch) through ``encoder`` with every FC layer on the RTL of
    ``config`` and on the golden tile model; return the report (JSON-ready dict).

    ``calibration`` is a :class:`~golden.accel.encoder.Calibration` (``gobo run``'s, for the
    same exponents); ``tag`` names the Verilator build; ``progress(record)`` is called after
    each layer with :class:`~sim.rtl_tile.RtlTile`'s record; ``corrupt`` is its mutation
    check (tests only). The report holds per layer the
    RTL's record with the encoder's ``mismatches`` and ``first_mismatch`` (physical row, token,
    RTL value, golden value; ``first_mismatch_row``: that row's output index in the layer), the
    totals, both embeddings' SHA-256 and whether they are equal,
    and ``seconds`` (``build``: emitting and building the tile here, ``golden``, ``rtl``).
    """
    started = time.monotonic()
    layers = {w: quantize(encoder.weights[w], index_bits=config.index_bits,
                          outlier_log_prob=config.outlier_log_prob)
              for w in fc_names(encoder.config)}
    golden = AcceleratedEncoder(config, encoder, calibration, layers=layers)
    quantized = time.monotonic()
    golden_embeddings = golden.encode(sentences, tokenizer, batch_size=len(sentences))
    golden_done = time.monotonic()
    rtl = RtlTile(config, tag=tag, progress=progress, corrupt=corrupt)
    accel = AcceleratedEncoder(config, encoder, calibration, layers=layers, tile=rtl)
    built = time.monotonic()
    rtl_embeddings = accel.encode(sentences, tokenizer, batch_size=len(sentences))
    finished = time.monotonic()
    records = []
    for record in rtl.layers:
        counts = accel.counts[record["name"]]
        layer, kind = fc_kind(record["name"])
        image = accel.images[record["name"]]
        first = counts.first_mismatch
        records.append({**record, "layer": layer, "kind": kind, "mismatches": counts.mismatches,
                        "first_mismatch": first,
                        # the weight matrix's row of that physical row (None: a padding row)
                        "first_mismatch_row": None if first is None or first[0] >= image.rows
                        else int(image.row_order[first[0]])})
    tokens = [int(n) for n in tokenizer.lengths(sentences)]
    return {
        "sentences": list(sentences), "tokens": tokens,
        "tile": {"act_bits": config.act_bits, "pes": config.pes, "lanes": config.lanes,
                 "max_tokens": config.max_tokens, "max_rows": config.max_rows,
                 "max_dot_length": config.max_dot_length, "design": rtl.toplevel,
                 "build": str(rtl.build_dir)},
        "layers": records,
        "totals": {"layers": len(records), "runs": sum(r["runs"] for r in records),
                   "cycles": sum(r["cycles"] for r in records),
                   "ideal_cycles": sum(r["ideal_cycles"] for r in records),
                   "elements": sum(r["elements"] for r in records),
                   "mismatches": sum(r["mismatches"] for r in records),
                   "bench_failures": sum(r["error"] is not None for r in records)},
        "embeddings": {"equal": bool(np.array_equal(golden_embeddings, rtl_embeddings)),
                       "golden_sha256": _sha256(golden_embeddings),
                       "rtl_sha256": _sha256(rtl_embeddings),
                       "max_abs_difference": float(np.max(np.abs(
                           golden_embeddings.astype(np.float64) - rtl_embeddings)))},
        "seconds": {"quantize": quantized - started, "golden": golden_done - quantized,
                    "build": rtl.build_seconds, "rtl": finished - built,
                    "total": finished - started},
    }


def format_rtl_sentence(report):
    """The report as Markdown."""
    tile, totals, emb = report["tile"], report["totals"], report["embeddings"]
    lines = ["# Sentences through the tile RTL", ""]
    for text, n in zip(report["sentences"], report["tokens"]):
        runs = -(-n // tile["max_tokens"])
        lines.append(f"- {n} tokens ({runs} tile runs of at most {tile['max_tokens']} per "
                     f"layer): \"{' '.join(text.split())}\"")
    lines += ["", f"Design `{tile['design']}` ({tile['pes']} PEs x {tile['lanes']} lanes, "
                  f"A{tile['act_bits']}, up to {tile['max_rows']} x {tile['max_dot_length']}) on "
                  f"Verilator with cocotb, one FC layer per simulation, the host in between.", "",
              f"**{totals['layers']} FC layers, {totals['runs']} tile runs, "
              f"{totals['elements']:,} output elements compared, {totals['mismatches']} "
              f"mismatches; {totals['cycles']:,} cycles ({totals['ideal_cycles']:,} ideal, "
              f"utilization {totals['ideal_cycles'] / max(totals['cycles'], 1):.3f}); sentence "
              f"embedding {'equal to' if emb['equal'] else 'DIFFERENT from'} the golden model's "
              f"to the last bit** (SHA-256 {emb['rtl_sha256'][:16]}..., golden "
              f"{emb['golden_sha256'][:16]}...).", "",
              "| layer | FC | rows x cols | tokens | runs | cycles | ideal | elements | "
              "mismatches | seconds |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["layers"]:
        lines.append(f"| {r['layer']} | {r['kind']} | {r['shape'][0]} x {r['shape'][1]} | "
                     f"{r['tokens']} | {r['runs']} | {r['cycles']:,} | {r['ideal_cycles']:,} | "
                     f"{r['elements']:,} | {r['mismatches']} | {r['seconds']:.1f} |")
    for r in report["layers"]:
        if r["first_mismatch"] is not None:
            row, token, got, want = r["first_mismatch"]
            matrix_row = ("a padding row" if r["first_mismatch_row"] is None
                          else f"output {r['first_mismatch_row']} of the layer")
            lines.append(f"\n{r['name']}: {r['mismatches']} mismatches, the first at physical "
                         f"row {row} ({matrix_row}), token {token}: RTL {got}, golden {want}"
                         + (f"; waveform {r['waves']}" if r["waves"] else ""))
    sec = report["seconds"]
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in sec.items()) + "."]
    return "\n".join(lines)
