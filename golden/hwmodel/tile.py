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
           "tile_cycles_of_image", "TileSteps", "records_per_block",
           "tile_static_counts"]


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
    static = tile_static_counts(config, blocks=blocks, chunks=chunks, tokens=tokens,
                                words_per_block=words_per_block, rows=rows,
                                outliers_per_block=outliers_per_block)
    words = [int(w) for w in words_per_block]
    steps = TileSteps(config, blocks=blocks, chunks=chunks, tokens=tokens, words=words)
    if max_cycles is None:
        max_cycles = 10 * (steps.ideal + steps.slots * (config.recon_cycles + 8)
                           + tokens * sum(words)) + 100
    cycles = 0
    while True:
        cycles += 1
        if cycles > max_cycles:
            raise RuntimeError(f"the cycle model did not finish within {max_cycles} cycles")
        steps.comb()
        if steps.finished:
            break
        steps.clock()
    return {**static, "cycles": cycles, "stall_outlier": steps.stall_outlier,
            "stall_recon": steps.stall_recon, "utilization": steps.ideal / cycles}


def tile_static_counts(config, *, blocks, chunks, tokens, words_per_block, rows=None,
                       outliers_per_block=None):
    """The counters of a tile run that do not depend on its timing, after
    :func:`tile_cycles`'s checks of its parameters (the same): ``ideal_cycles``, ``busy``,
    ``stall_output`` (0) and ``outliers``.

    Raises
    ------
    ValueError
        Naming the parameter, for a run the tile cannot make.
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
    return {
        "ideal_cycles": tokens * blocks * chunks,
        "busy": [chunks * tokens * sum(1 for b in range(blocks) if b * pes + p < rows)
                 for p in range(pes)],
        "stall_output": 0,
        "outliers": tokens * sum(records),
    }


class TileSteps:
    """The tile's control state (broadcast, PEs, side path, merge; no data), stepped one cycle
    at a time as the RTL does: call :meth:`comb` (this cycle's decisions, the stall counts),
    stop if :attr:`finished` (the last output transfers in this cycle), else :meth:`clock`.

    :meth:`comb` takes ``loaded``, the streaming tile's blocks on chip (None: the whole layer
    is, as in :class:`~hw.tile.GoboTile`): the broadcast and the side-path commands then take
    block ``b`` only once ``b < loaded``, and a cycle in which the broadcast could issue a beat
    but its block is not loaded counts in :attr:`stall_memory`. :attr:`merged_blocks` is the
    merge's count of finished blocks (the streaming reader's bank release).
    """

    def __init__(self, config, *, blocks, chunks, tokens, words):
        self.config, self.blocks, self.chunks, self.tokens = config, blocks, chunks, tokens
        self.words = words
        self.slots = blocks * tokens
        self.ideal = self.slots * chunks
        # Broadcast: beats issued so far; s1 holds the beat on offer.
        self.issued, self.s1_valid, self.s1_last = 0, False, False
        # PE (all in lockstep): hand-over bins, reconstruction step, output register.
        self.ho_valid, self.step, self.rec_o = False, 0, False
        # Side path: command walker, stage 0 (words still to issue), the stages after it (each
        # None when empty, else whether it holds a command's last word), hand-over.
        self.cmd_next, self.rem = 0, 0
        self.sp_stages = [None] * (config.side_path_latency - 1)
        self.sp_o = False
        # Merge: with o.ready high it never holds, so it is a delay line (None, or the slot's
        # last).
        self.merged, self.merge = 0, [None] * config.merge_latency
        self.stall_outlier = self.stall_recon = self.stall_memory = 0
        self.finished = False

    @property
    def merged_blocks(self):
        return self.merged // self.tokens

    def comb(self, loaded=None):
        R = self.config.recon_cycles
        carry_ok = self.carry_ok()
        self.take = take = self.rec_o and self.sp_o and carry_ok
        self.rec_accept = (self.ho_valid and self.step == R - 1 and (not self.rec_o or take))
        pe_ready = (not self.s1_last) or (not self.ho_valid) or self.rec_accept
        self.bc_xfer = bc_xfer = self.s1_valid and pe_ready
        s0_more = self.issued < self.ideal
        s0_ready = loaded is None or self.issued // (self.chunks * self.tokens) < loaded
        s0_free = not self.s1_valid or bc_xfer
        self.s0_go = s0_more and s0_ready and s0_free
        if s0_more and not s0_ready and s0_free:
            self.stall_memory += 1
        sp_free = (not self.sp_o) or take
        self.advance = not (self.sp_stages[-1] and not sp_free)
        c_ready = loaded is None or self.cmd_next // self.tokens < loaded
        self.cmd_xfer = (self.advance and self.rem == 0 and self.cmd_next < self.slots
                         and c_ready)
        if self.s1_valid and not pe_ready:
            if self.rec_o and not self.sp_o:
                self.stall_outlier += 1
            elif self.rec_o and not carry_ok:
                self.count_carry_stall()
            else:
                self.stall_recon += 1
        self.finished = bool(self.merge[-1])      # the last slot's outputs transfer

    def carry_ok(self):
        """Whether the merge's carried partial sums of this slot are there (always: a pass
        with a carry is :class:`golden.hwmodel.stream_tile.CarrySteps`)."""
        return True

    def count_carry_stall(self):
        raise AssertionError("a tile without a carry never waits for one")

    def clock(self):
        """The registers (every right-hand side reads this cycle's values)."""
        R = self.config.recon_cycles
        take, rec_accept = self.take, self.rec_accept
        ho_set = self.bc_xfer and self.s1_last
        if self.s0_go:
            self.s1_valid, self.s1_last = True, self.issued % self.chunks == self.chunks - 1
            self.issued += 1
        elif self.bc_xfer:
            self.s1_valid = False

        new_rec_o = (self.rec_o and not take) or rec_accept
        if self.ho_valid:
            if self.step == R - 1:
                if rec_accept:
                    self.step = 0
            else:
                self.step += 1
        self.ho_valid = (self.ho_valid and not rec_accept) or ho_set
        self.rec_o = new_rec_o

        self.merge = [(self.merged == self.slots - 1) if take else None] + self.merge[:-1]
        self.merged += take

        self.sp_o = (self.sp_o and not take) or bool(self.sp_stages[-1] and self.advance)
        if self.advance:
            if self.rem:
                issue = self.rem == 1
                self.rem -= 1
            elif self.cmd_xfer:
                w = self.words[self.cmd_next // self.tokens]
                issue = w <= 1
                self.rem = max(w - 1, 0)
                self.cmd_next += 1
            else:
                issue = None
            self.sp_stages = [issue] + self.sp_stages[:-1]


def tile_cycles_of_image(image, tokens):
    """:func:`tile_cycles` for a :class:`~golden.hwmodel.layer_image.LayerImage` run over
    ``tokens``."""
    return tile_cycles(image.config, blocks=image.blocks, chunks=image.chunks, tokens=tokens,
                       words_per_block=image.words_per_block(), rows=image.rows,
                       outliers_per_block=records_per_block(image))


def records_per_block(image):
    """Valid outlier records of each row block of ``image`` (a list of ``blocks`` ints)."""
    block_of = np.asarray(image.outlier_rows, dtype=np.int64) // image.config.pes
    return np.bincount(block_of, minlength=image.blocks)[:image.blocks].tolist()
