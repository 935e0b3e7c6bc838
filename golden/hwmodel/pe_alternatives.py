"""Cycle models and widths of two alternative GOBO PE microarchitectures (issue 18, item 7).

Both compute exactly :func:`golden.hwmodel.pe.pe_dot` (their golden model is the present PE's);
only their timing and widths differ:

- **Collision PE** (:class:`hw.collision_pe.CollisionPE`): each bin's adder tree takes at most
  ``bin_inputs`` (K) lanes a cycle. A beat whose lanes select one bin more than K times is split
  over extra cycles (a stall on collision): it takes ``max(1, max_k ceil(count_k / K))`` cycles,
  ``count_k`` the lanes of the beat whose index is ``k``.
- **Spill PE** (:class:`hw.spill_pe.SpillPE`): narrow bins that hold ``spill_beats`` beats; every
  ``spill_beats`` beats (and at a row's end) they are handed to the reconstruction stage, which
  adds ``sum_k centroid[k] * bin[k]`` of the chunk into a running sum of the row (integer
  arithmetic, so the result is exact).

Both hand a unit (a row for the collision PE, a chunk for the spill PE) to the reconstruction
stage through one hand-over register, as the present PE does, so the same schedule rule holds:
a unit is handed over ``max(unit cycles, recon_cycles)`` cycles after the previous one.
"""

import numpy as np

__all__ = ["beat_cycles", "collision_row_cycles", "collision_cycles", "spill_bin_bits",
           "spill_chunks", "spill_cycles", "handover_cycles"]


def beat_cycles(config, indexes, bin_inputs):
    """Cycles each beat takes in the collision PE: ``max(1, max_k ceil(count_k / bin_inputs))``.

    ``indexes`` is (M, N) (or (N,)) weight indexes; every row is cut into beats of
    ``config.lanes`` (the last padded with index 0, as :func:`golden.hwmodel.packing.pe_beats`
    pads). Returns int64 (M, ceil(N / lanes)).

    Raises
    ------
    ValueError
        If ``bin_inputs`` is not in 1 .. ``lanes``.
    """
    if not 1 <= bin_inputs <= config.lanes:
        raise ValueError(f"bin_inputs must be an integer between 1 and lanes={config.lanes}, "
                         f"not {bin_inputs!r}")
    indexes = np.atleast_2d(np.asarray(indexes, dtype=np.int64))
    rows, n = indexes.shape
    beats = -(-n // config.lanes)
    padded = np.zeros((rows, beats * config.lanes), dtype=np.int64)
    padded[:, :n] = indexes
    words = padded.reshape(rows, beats, config.lanes)
    counts = np.stack([(words == k).sum(axis=2) for k in range(config.n_centroids)], axis=2)
    return np.maximum(1, -(-counts.max(axis=2) // bin_inputs))


def collision_row_cycles(config, indexes, bin_inputs):
    """Cycles each row's beats take in the collision PE: int64 (M,), the sum of
    :func:`beat_cycles` over the row."""
    return beat_cycles(config, indexes, bin_inputs).sum(axis=1)


def handover_cycles(unit_cycles, recon_cycles, latency):
    """Cycles from the first input beat to the last output when units of ``unit_cycles`` cycles
    each (rows or chunks, in order) are handed to a reconstruction stage of ``recon_cycles``
    through one hand-over register, with no input gaps and no output backpressure: unit ``u``
    is handed over ``max(unit_cycles[u], recon_cycles)`` cycles after unit ``u - 1`` and the
    last output appears ``latency`` cycles after the last hand-over. With every unit a row of
    ``beats`` cycles this is :func:`golden.hwmodel.pe.pe_cycles`."""
    unit_cycles = [int(c) for c in unit_cycles]
    last = unit_cycles[0] + sum(max(c, recon_cycles) for c in unit_cycles[1:])
    return last + latency


def collision_cycles(config, indexes, bin_inputs, latency=None):
    """Cycles of the collision PE from the first input transfer to the last output, for the
    rows of ``indexes`` (M, N) back to back (no gaps, no backpressure); ``latency`` defaults to
    ``config.pe_latency`` (as the present PE). A beat transfers on its final cycle, so the first
    beat's extra cycles come before the first transfer and are not counted (a bench's measure,
    :func:`hw.testing.run_pe_job`); every later stall is."""
    latency = config.pe_latency if latency is None else latency
    cycles = beat_cycles(config, indexes, bin_inputs)
    return handover_cycles(cycles.sum(axis=1), config.recon_cycles, latency) - (
        int(cycles[0, 0]) - 1)


def spill_bin_bits(config, spill_beats):
    """Width of a spill PE bin: it sums at most ``spill_beats * lanes`` activations, so
    ``act_bits + ceil(log2(spill_beats * lanes))`` bits hold it exactly (the present PE's bins
    are ``act_bits + ceil(log2(max_dot_length))``)."""
    return config.act_bits + (spill_beats * config.lanes - 1).bit_length()


def spill_chunks(config, n_inputs, spill_beats):
    """Beats of each chunk of one dot product of ``n_inputs``: ``spill_beats`` each, the last
    one the remainder."""
    beats = -(-n_inputs // config.lanes)
    return [min(spill_beats, beats - start) for start in range(0, beats, spill_beats)]


def spill_cycles(config, n_inputs, rows, spill_beats, latency=None):
    """Cycles of the spill PE for ``rows`` dot products of ``n_inputs`` back to back (no gaps,
    no backpressure); ``latency`` defaults to ``config.pe_latency``: the last chunk's output is
    ready ``1 + recon_cycles`` after its hand-over, as the present PE's row."""
    latency = config.pe_latency if latency is None else latency
    return handover_cycles(spill_chunks(config, n_inputs, spill_beats) * rows,
                           config.recon_cycles, latency)
