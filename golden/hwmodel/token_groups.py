"""Token groups: a layer over more tokens than the activation memory holds (docs/offchip.md,
section 4, "Token groups").

A tile holds the activations of at most ``max_tokens`` tokens, so a layer over ``T`` tokens runs
as ``ceil(T / max_tokens)`` tile jobs, back to back, each over at most ``max_tokens`` tokens:
group ``g`` holds tokens ``g*max_tokens ..``, loads their activations, starts, streams every
row block's weights again and drains; its outputs are those tokens' outputs. Each group is an
exact tile job, so its counters are the cycle model's for that group and the layer's are their
sums (``busy`` summed per PE); a streaming tile reads its weights once per group, so
``bytes_read`` is ``groups x`` the image's size. This module is the one place that splits a
layer's tokens and sums the counters, for the GOBO, the MAC and the memory-compression
streaming models (and the whole-layer tile's jobs, which reload the whole layer per group);
the bench jobs of the groups are :func:`golden.hwmodel.tile_jobs.stream_tile_group_jobs`.
"""

import functools
import operator

from golden.hwmodel.compressed_stream_tile import compressed_stream_tile_cycles
from golden.hwmodel.mac_stream_tile import mac_stream_tile_cycles
from golden.hwmodel.stream_tile import stream_tile_cycles_of_image

__all__ = ["token_groups", "group_name", "sum_counters", "group_cycles",
           "stream_tile_group_cycles", "mac_stream_tile_group_cycles",
           "compressed_stream_tile_group_cycles"]

#: Counters that are ratios of the sums, not sums themselves.
_RATIOS = ("utilization",)
#: Counters that are bit fields of causes: a layer has a cause if any group has it.
_BIT_FIELDS = ("error",)


def token_groups(tokens, max_tokens):
    """The token groups of a run over ``tokens`` tokens on a tile of ``max_tokens``: a list of
    ``range``s of token indexes, ``ceil(tokens / max_tokens)`` of them, each of ``max_tokens``
    tokens but the last (the rest).

    Raises
    ------
    ValueError
        If ``tokens`` or ``max_tokens`` is not a positive integer.
    """
    for name, value in (("tokens", tokens), ("max_tokens", max_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return [range(start, min(start + max_tokens, tokens))
            for start in range(0, tokens, max_tokens)]


def group_name(name, group, groups):
    """A group job's name: ``name`` for a layer of one group, else ``"<name> tokens a..b"``
    (``group`` a range of :func:`token_groups`, ``groups`` how many there are)."""
    return name if groups == 1 else f"{name} tokens {group.start}..{group.stop - 1}"


def sum_counters(groups):
    """The layer's counters from its groups' counter dicts (the cycle model's or the RTL's):
    every integer summed, every per-PE list (``busy``) summed element by element, the
    ``error`` cause bits (:data:`golden.hwmodel.packing.STREAM_ERRORS`) OR-ed, not summed, and
    ``utilization`` recomputed as the summed ``ideal_cycles`` over the summed ``cycles`` when
    both are there. Keys the groups do not all have are left out.

    Raises
    ------
    ValueError
        If ``groups`` is empty or its per-PE lists differ in length.
    """
    if not groups:
        raise ValueError("no token groups to sum")
    keys = [k for k in groups[0] if k not in _RATIOS and all(k in g for g in groups)]
    total = {}
    for key in keys:
        values = [g[key] for g in groups]
        if isinstance(values[0], (list, tuple)):
            if len({len(v) for v in values}) != 1:
                raise ValueError(f"counter {key}: per-PE lists of different lengths")
            total[key] = [sum(column) for column in zip(*values)]
        elif key in _BIT_FIELDS:
            total[key] = functools.reduce(operator.or_, values)
        else:
            total[key] = sum(values)
    if "cycles" in total and "ideal_cycles" in total:
        total["utilization"] = total["ideal_cycles"] / total["cycles"]
    return total


def group_cycles(model, tokens, max_tokens):
    """``model(t)`` (a cycle model's counters for one run of ``t`` tokens) for every token group
    of ``tokens``, summed: :func:`sum_counters` plus ``groups``, the list of each group's
    counters (with its ``tokens``). Groups of equal size run the same job from the same idle
    state (the memory model's cycle 0 is each run's start), so the model runs once per size."""
    runs = {}
    per_group = []
    for group in token_groups(tokens, max_tokens):
        size = len(group)
        if size not in runs:
            runs[size] = model(size)
        per_group.append({"tokens": size, **runs[size]})
    total = sum_counters([{k: v for k, v in g.items() if k != "tokens"} for g in per_group])
    return {**total, "groups": per_group}


def stream_tile_group_cycles(image, tokens, memory, base=0):
    """:func:`golden.hwmodel.stream_tile.stream_tile_cycles_of_image` over ``tokens`` tokens in
    token groups of the image's ``max_tokens`` (:func:`group_cycles`)."""
    return group_cycles(lambda t: stream_tile_cycles_of_image(image, t, memory, base=base),
                        tokens, image.config.max_tokens)


def mac_stream_tile_group_cycles(layer, tokens, memory, base=0):
    """:func:`golden.hwmodel.mac_stream_tile.mac_stream_tile_cycles` of a
    :class:`~golden.hwmodel.mac_tile.MacLayer` over ``tokens`` tokens in token groups of its
    ``max_tokens`` (:func:`group_cycles`)."""
    return group_cycles(lambda t: mac_stream_tile_cycles(layer, t, memory, base=base),
                        tokens, layer.config.max_tokens)


def compressed_stream_tile_group_cycles(layer, tokens, memory, base=0):
    """:func:`golden.hwmodel.compressed_stream_tile.compressed_stream_tile_cycles` of a
    memory-compression :class:`~golden.hwmodel.mac_tile.MacLayer` over ``tokens`` tokens in
    token groups of its ``max_tokens`` (:func:`group_cycles`)."""
    return group_cycles(lambda t: compressed_stream_tile_cycles(layer, t, memory, base=base),
                        tokens, layer.config.max_tokens)
