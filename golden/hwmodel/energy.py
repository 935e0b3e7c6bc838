"""Energy of one inference: logic + on-chip memories + off-chip traffic, per FC layer and summed
(docs/efficiency.md, "Energy per inference").

Inputs, each from its own place:

- per layer (:class:`LayerWork`): the MAC-equivalent operations (``M*N*T``), the off-chip bytes
  (the layout's size: :func:`golden.hwmodel.offchip.offchip_layout`,
  :func:`~golden.hwmodel.offchip.mac_offchip_layout`, or the latency model's), the on-chip
  accesses (:func:`stream_accesses`) and, optionally, the cycles (the cycle or latency model's);
- the on-chip memories' energy per access (:func:`golden.hwmodel.sram.sram` of each buffer's
  width and depth);
- the off-chip energy per bit (:func:`golden.hwmodel.offchip_energy.offchip_pj_per_bit`);
- the logic's power (:class:`LogicPower`): pJ per MAC-equivalent operation, or mW at a clock
  (then energy = power x the layer's cycles / clock, idle and stalled cycles included). It comes
  from the power analysis of the netlist; it is never defaulted: :func:`inference_energy`
  refuses a missing one unless told to report memory energy alone.

**Access counts** (:func:`stream_accesses`) follow the streaming tiles' schedule
(docs/offchip.md section 4, docs/tile.md section 4) for a layer of ``M`` rows, ``N`` columns and
``T`` tokens on ``P`` PEs of ``L`` lanes, ``B = ceil(M/P)`` row blocks, ``C = ceil(N/L)`` chunks:

- activations: written once (``T*C`` words, the load); the broadcast reads one word a cycle,
  ``T*B*C``; the GOBO side path reads ``Q`` more (one per outlier lane) per outlier word it
  issues, and it issues ``max(W_b, 1)`` words for each slot ``(b, t)``;
- weights (GOBO index words, MAC dense weight words): the reader writes each word once
  (``B*C``), the broadcast reads one with each activation word (``T*B*C``);
- GOBO outlier words: ``sum(W_b)`` writes, ``T * sum(max(W_b, 1))`` reads (the side path's
  issues);
- biases: one word of ``P`` biases written per block (``B``), read by the merge per slot
  (``B*T``);
- outputs: one word of ``P`` outputs per slot (``B*T``), counted as writes into an activation
  memory of the next layer (the tile itself streams them out on ``o``).

These are the RTL's memory enables as the schedule implies them, counted, not simulated: a
stalled cycle repeats no read in this count.
"""

import dataclasses
import math

from golden.config import check_choice, check_int

__all__ = ["LayerWork", "LogicPower", "stream_accesses", "layer_energy", "inference_energy"]


@dataclasses.dataclass(frozen=True)
class LayerWork:
    """One FC layer of one inference on one design: ``ops`` MAC-equivalent operations,
    ``offchip_bytes`` read, ``accesses`` ``{memory: {"reads": n, "writes": n}}``, ``cycles``
    (None if not known), and ``count`` (how many layers of the model are this one)."""

    name: str
    ops: int
    offchip_bytes: int
    accesses: dict
    cycles: int = None
    count: int = 1


@dataclasses.dataclass(frozen=True)
class LogicPower:
    """The logic's power: ``pj_per_op`` (pJ per MAC-equivalent operation), or ``mw`` at
    ``clock_mhz``, and where it comes from (``source``)."""

    pj_per_op: float = None
    mw: float = None
    clock_mhz: float = None
    source: str = ""

    def __post_init__(self):
        if (self.pj_per_op is None) == (self.mw is None):
            raise ValueError("LogicPower takes either pj_per_op or mw (with clock_mhz)")
        if self.mw is not None and not self.clock_mhz:
            raise ValueError("LogicPower with mw needs clock_mhz")

    def energy_pj(self, layer):
        """The logic's energy (pJ) in one ``layer``; from mW it needs the layer's cycles."""
        if self.pj_per_op is not None:
            return self.pj_per_op * layer.ops
        if layer.cycles is None:
            raise ValueError(f"layer {layer.name!r} has no cycles: logic power in mW needs them")
        return self.mw * layer.cycles / self.clock_mhz * 1000.0   # mW x us = nJ


def stream_accesses(design, rows, cols, tokens, pes, lanes, outlier_words=None,
                    outlier_lanes=0):
    """On-chip accesses of one layer on a streaming tile (module docstring):
    ``{memory: {"reads": n, "writes": n}}`` for ``activation``, ``index`` and ``outlier``
    (``design="gobo"``) or ``weight`` (``"mac"``), ``bias`` and ``output``.

    ``outlier_words`` (GOBO): the outlier words of each row block (``W_b``, one per block, as
    :attr:`golden.hwmodel.offchip.OffchipLayout.outlier_words`).

    Raises
    ------
    TypeError, ValueError
        Naming the bad argument; for GOBO if ``outlier_words`` does not have one entry per
        block.
    """
    check_choice("design", design, ("gobo", "mac"))
    for name, value in (("rows", rows), ("cols", cols), ("tokens", tokens), ("pes", pes),
                        ("lanes", lanes)):
        check_int(name, value, 1)
    check_int("outlier_lanes", outlier_lanes, 0)
    blocks, chunks = math.ceil(rows / pes), math.ceil(cols / lanes)
    broadcast = tokens * blocks * chunks
    acc = {"activation": {"reads": broadcast, "writes": tokens * chunks},
           "bias": {"reads": blocks * tokens, "writes": blocks},
           "output": {"reads": 0, "writes": blocks * tokens}}
    weights = {"reads": broadcast, "writes": blocks * chunks}
    if design == "mac":
        acc["weight"] = weights
        return acc
    words = list(outlier_words or ())
    if len(words) != blocks:
        raise ValueError(f"outlier_words must give one count per row block ({blocks}), not "
                         f"{len(words)}")
    issued = tokens * sum(max(w, 1) for w in words)
    acc["index"] = weights
    acc["outlier"] = {"reads": issued, "writes": sum(words)}
    acc["activation"]["reads"] += outlier_lanes * issued
    return acc


def layer_energy(layer, memories, offchip_pj_per_bit, logic=None):
    """Energy (pJ) of one ``layer`` (:class:`LayerWork`), once (not times its ``count``):
    ``{"logic_pj", "onchip_pj": {memory: pJ}, "offchip_pj", "total_pj"}``.

    ``memories``: ``{memory: estimate}`` with ``read_pj`` and ``write_pj`` per access (an
    :class:`golden.hwmodel.sram.SramEstimate`) for every memory in ``layer.accesses``.
    ``logic``: a :class:`LogicPower`, or None to leave the logic out (``logic_pj`` None, and
    ``total_pj`` is then the memories' alone).

    Raises
    ------
    ValueError
        If a memory of the accesses has no estimate.
    """
    missing = sorted(set(layer.accesses) - set(memories))
    if missing:
        raise ValueError(f"no energy per access for memory {', '.join(missing)} of layer "
                         f"{layer.name!r}")
    onchip = {m: a["reads"] * memories[m].read_pj + a["writes"] * memories[m].write_pj
              for m, a in layer.accesses.items()}
    offchip = 8 * layer.offchip_bytes * offchip_pj_per_bit
    logic_pj = None if logic is None else logic.energy_pj(layer)
    total = sum(onchip.values()) + offchip + (logic_pj or 0.0)
    return {"logic_pj": logic_pj, "onchip_pj": onchip, "offchip_pj": offchip, "total_pj": total}


def inference_energy(layers, memories, offchip_pj_per_bit, logic, *, without_logic=False):
    """Energy of one inference: every layer's :func:`layer_energy` times its ``count``, and the
    sums ``{"layers": [...], "logic_pj", "onchip_pj", "offchip_pj", "total_pj"}`` (pJ).

    ``logic`` (a :class:`LogicPower`) is required: pass ``without_logic=True`` (and ``logic``
    None) to report the memories' energy alone, with ``logic_pj`` None.

    Raises
    ------
    ValueError
        ``"logic power missing ..."`` if ``logic`` is None without ``without_logic``, or a
        ``logic`` given with it; and as :func:`layer_energy`.
    """
    if logic is None and not without_logic:
        raise ValueError("logic power missing: give the tile's pJ per MAC-equivalent op (or mW "
                         "at a clock) from the power analysis, or report memory energy alone")
    if logic is not None and without_logic:
        raise ValueError("without_logic=True leaves the logic out; do not pass a logic power")
    rows = []
    for layer in layers:
        e = layer_energy(layer, memories, offchip_pj_per_bit, logic)
        rows.append({"name": layer.name, "count": layer.count, **e})
    onchip = sum(r["count"] * sum(r["onchip_pj"].values()) for r in rows)
    offchip = sum(r["count"] * r["offchip_pj"] for r in rows)
    logic_pj = None if logic is None else sum(r["count"] * r["logic_pj"] for r in rows)
    return {"layers": rows, "logic_pj": logic_pj, "onchip_pj": onchip, "offchip_pj": offchip,
            "total_pj": onchip + offchip + (logic_pj or 0.0)}
