"""Bit-exact integer model of the tile (docs/tile.md section 1): GOBO dot products, outlier
corrections, bias, alignment shifts, round-half-up requantization and saturation.

The cycle model, with ``o.ready`` always high:

The tile has three walkers over the slots ``s = (b, t)`` (``b`` major) that only meet at the
merge (docs/tile.md section 4):

- the broadcast issues one beat per cycle (``T*B*C`` beats, ``last`` on every ``C``-th) and is
  held only when the PEs refuse a ``last`` beat because their hand-over bins are still full;
- the PEs hand a slot's bins over on its ``last`` beat and reconstruct them in ``R =
  recon_cycles`` cycles into their output register, which the merge frees;
- the side path takes one command per slot and spends ``max(W_b, 1)`` cycles issuing its record
  words (one per cycle, commands back to back); a slot's corrections reach the hand-over register
  ``config.side_path_latency`` (4) cycles after its last word's issue, and the pipeline holds
  while that register is still full;
- the merge takes a slot when both its dot products and its corrections are there, and emits it
  ``config.merge_latency`` (2) cycles later.

Without stalls a run takes ``T*B*C + config.tile_fill_drain`` cycles, ``R + 4``: ``1`` to address
the first words (``fetch_latency``), ``1`` into the hand-over bins and ``R`` of reconstruction
(``pe_latency``), ``2`` of merge (``merge_latency``). The broadcast stalls only on a ``last`` beat:
when the side path falls behind (``max(W_b, 1) + 4`` beyond about ``C + R`` cycles per slot, or
blocks of many outliers in a row) the stall is ``stall_outlier``; when ``C < R`` the PEs cannot
take a row every ``C`` cycles and it is ``stall_recon``.

Rather than a closed formula with many cases, :func:`tile_cycles` steps the tile's control state
(valid bits, counters, the reconstruction step) cycle by cycle exactly as the RTL does, without
any data; it is pure Python and takes about a microsecond per cycle.
"""

import numpy as np

from golden.config import check_config
from golden.hwmodel.fixedpoint import check_signed, signed_range
from golden.hwmodel.pe import pe_dot

__all__ = ["tile_outputs", "tile_accumulators", "requantize", "saturated_outputs", "tile_cycles",
           "tile_cycles_of_image"]


def tile_accumulators(image, acts):
    """``acc[m, t]`` for every row of the padded blocks (``blocks * pes``) and token; int64."""
    config = image.config
    acts = np.asarray(acts)
    if acts.ndim != 2 or acts.shape[1] != image.cols:
        raise ValueError(f"activations must be (tokens, {image.cols}), not {acts.shape}")
    check_signed("activations", acts, config.act_bits)
    padded = image.padded_indexes()
    rows = padded.shape[0]
    cols = padded.shape[1]
    x = np.zeros((acts.shape[0], cols), dtype=np.int64)
    x[:, :image.cols] = acts
    dot = pe_dot(config, padded, x, image.centroids)
    corr = np.zeros((rows, len(x)), dtype=np.int64)
    np.add.at(corr, image.outlier_rows,
              image.outlier_residuals[:, None] * x[:, image.outlier_cols].T)
    check_signed("outlier corrections", corr, config.corr_bits)
    bias = np.zeros(rows, dtype=np.int64)
    bias[:image.rows] = image.bias
    # Exact in int64: acc_bits <= 64 is enforced by GoboConfig.
    acc = ((dot << image.shift_dot) + (corr << image.shift_corr)
           + (bias[:, None] << image.shift_bias))
    check_signed("accumulators", acc, config.acc_bits)
    return acc


def _round_half_up(acc, out_shift):
    """``acc`` (int64) rounded half up by ``out_shift`` bits, before the clamp."""
    acc = np.asarray(acc, dtype=np.int64)
    return (acc + (1 << (out_shift - 1))) >> out_shift if out_shift > 0 else acc


def requantize(config, acc, out_shift):
    """Round half up by ``out_shift`` bits, then saturate to signed ``act_bits``."""
    return np.clip(_round_half_up(acc, out_shift), *signed_range(config.act_bits))


def saturated_outputs(config, acc, out_shift):
    """How many of the accumulators ``acc`` :func:`requantize` clamps to the ``act_bits``
    range (the output saturation the reports count)."""
    low, high = signed_range(config.act_bits)
    rounded = _round_half_up(acc, out_shift)
    return int(np.count_nonzero((rounded < low) | (rounded > high)))


def tile_outputs(image, acts):
    """``Y`` (blocks * pes, T) of the tile, padded rows included (callers trim to ``rows``)."""
    return requantize(image.config, tile_accumulators(image, acts), image.out_shift)


# The cycle model --------------------------------------------------------------------------------

def tile_cycles(config, *, blocks, chunks, tokens, words_per_block, rows=None,
                outliers_per_block=None, max_cycles=None):
    """Predict the tile's counters for one run with ``o.ready`` always high.

    Parameters
    ----------
    config : GoboConfig
    blocks, chunks, tokens : int
        ``B``, ``C`` and ``T`` of the run (all at least 1).
    words_per_block : sequence of int
        ``W_b``, the outlier words of each block (``off[b+1] - off[b]``).
    rows : int, optional
        ``M`` (default ``B * pes``), for the per-PE ``busy`` counts.
    outliers_per_block : sequence of int, optional
        Valid records of each block (default: ``outlier_lanes * W_b``), for ``outliers``.

    Returns
    -------
    dict
        ``cycles``, ``ideal_cycles`` (``T*B*C``), ``busy`` (list of ``pes`` ints),
        ``stall_outlier``, ``stall_recon``, ``stall_output`` (0), ``outliers`` and
        ``utilization`` (ideal / cycles).
    """
    check_config(config)
    for name, value in (("blocks", blocks), ("chunks", chunks), ("tokens", tokens)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    words = [int(w) for w in words_per_block]
    if len(words) != blocks or min(words) < 0:
        raise ValueError(f"words_per_block must hold {blocks} non-negative counts, not {words!r}")
    pes = config.pes
    rows = blocks * pes if rows is None else int(rows)
    if not (blocks - 1) * pes < rows <= blocks * pes:
        raise ValueError(f"rows={rows} does not make {blocks} blocks of {pes}")
    records = ([config.outlier_lanes * w for w in words] if outliers_per_block is None
               else [int(r) for r in outliers_per_block])
    R = config.recon_cycles
    slots = blocks * tokens
    ideal = slots * chunks
    if max_cycles is None:
        max_cycles = 10 * (ideal + slots * (R + 8) + tokens * sum(words)) + 100

    # Broadcast: beats issued so far; s1 holds the beat on offer.
    issued, s1_valid, s1_last = 0, False, False
    # PE (all in lockstep): hand-over bins, reconstruction step, output register.
    ho_valid, step, rec_o = False, 0, False
    # Side path: command walker, stage 0 (words still to issue), the stages after it (each None
    # when empty, else whether it holds a command's last word), hand-over.
    cmd_next, rem = 0, 0
    sp_stages = [None] * (config.side_path_latency - 1)
    sp_o = False
    # Merge: with o.ready high it never holds, so it is a delay line (None, or the slot's last).
    merged, merge = 0, [None] * config.merge_latency

    cycles = stall_outlier = stall_recon = 0
    while True:
        cycles += 1
        if cycles > max_cycles:
            raise RuntimeError(f"the cycle model did not finish within {max_cycles} cycles")
        # Combinational view of this cycle.
        take = rec_o and sp_o
        rec_accept = ho_valid and step == R - 1 and (not rec_o or take)
        pe_ready = (not s1_last) or (not ho_valid) or rec_accept
        bc_xfer = s1_valid and pe_ready
        s0_go = issued < ideal and (not s1_valid or bc_xfer)
        sp_free = (not sp_o) or take
        advance = not (sp_stages[-1] and not sp_free)
        cmd_xfer = advance and rem == 0 and cmd_next < slots
        if s1_valid and not pe_ready:
            if rec_o and not sp_o:
                stall_outlier += 1
            else:
                stall_recon += 1
        if merge[-1]:       # the last slot's outputs transfer
            break

        # Registers (every right-hand side reads this cycle's values).
        ho_set = bc_xfer and s1_last
        if s0_go:
            s1_valid, s1_last = True, issued % chunks == chunks - 1
            issued += 1
        elif bc_xfer:
            s1_valid = False

        new_rec_o = (rec_o and not take) or rec_accept
        if ho_valid:
            if step == R - 1:
                if rec_accept:
                    step = 0
            else:
                step += 1
        ho_valid = (ho_valid and not rec_accept) or ho_set
        rec_o = new_rec_o

        merge = [(merged == slots - 1) if take else None] + merge[:-1]
        merged += take

        sp_o = (sp_o and not take) or bool(sp_stages[-1] and advance)
        if advance:
            if rem:
                issue = rem == 1
                rem -= 1
            elif cmd_xfer:
                w = words[cmd_next // tokens]
                issue = w <= 1
                rem = max(w - 1, 0)
                cmd_next += 1
            else:
                issue = None
            sp_stages = [issue] + sp_stages[:-1]

    busy = [chunks * tokens * sum(1 for b in range(blocks) if b * pes + p < rows)
            for p in range(pes)]
    return {
        "cycles": cycles,
        "ideal_cycles": ideal,
        "busy": busy,
        "stall_outlier": stall_outlier,
        "stall_recon": stall_recon,
        "stall_output": 0,
        "outliers": tokens * sum(records),
        "utilization": ideal / cycles,
    }


def tile_cycles_of_image(image, tokens):
    """:func:`tile_cycles` for a :class:`~golden.hwmodel.layer_image.LayerImage` run over
    ``tokens``."""
    config = image.config
    block_of = np.asarray(image.outlier_rows, dtype=np.int64) // config.pes
    records = np.bincount(block_of, minlength=image.blocks)[:image.blocks]
    return tile_cycles(config, blocks=image.blocks, chunks=image.chunks, tokens=tokens,
                       words_per_block=image.words_per_block(), rows=image.rows,
                       outliers_per_block=records.tolist())
