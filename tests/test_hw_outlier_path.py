"""OutlierSidePath in the Amaranth simulator, around real Amaranth memories: exact per-row
corrections for random commands (empty blocks, several records of one row in one word, the first
and last columns), with command gaps and output backpressure; the declared latency and one word
per cycle when nothing stalls; the ``processed`` count; and a mutation test of the checker."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from golden.config import preset
from golden.hwmodel.packing import (
    act_word_fields,
    correction_fields,
    memory_shapes,
    outlier_record_fields,
    outlier_word_fields,
    pack,
    pack_outlier_word,
    side_command_fields,
    to_signed,
    unpack,
)
from hw.outlier_path import OutlierSidePath, outlier_record_layout
from hw.testing import run_stream

TINY = preset("tiny")


class Harness(wiring.Component):
    """The side path with an outlier memory and an activation memory (``outlier_lanes`` read
    ports) initialised from ``outlier_words`` and ``act_words``; counts ``processed``."""

    def __init__(self, config, outlier_words, act_words):
        self._config = config
        self._outlier_words = outlier_words
        self._act_words = act_words
        self.side = OutlierSidePath(config=config)
        self.processed_total = Signal(32)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        config = self._config
        shapes = memory_shapes(config)
        m.submodules.side = side = self.side
        width, depth = shapes["outlier"]
        m.submodules.outlier_mem = out_mem = Memory(shape=unsigned(width), depth=depth,
                                                    init=self._outlier_words)
        width, depth = shapes["activation"]
        m.submodules.act_mem = act_mem = Memory(shape=unsigned(width), depth=depth,
                                                init=self._act_words)
        wiring.connect(m, out_mem.read_port(), side.outlier_rd)
        for q in range(config.outlier_lanes):
            wiring.connect(m, act_mem.read_port(), side.act_rd[q])
        m.d.sync += self.processed_total.eq(self.processed_total + side.processed)
        return m


def act_word(config, values):
    return pack(act_word_fields(config), {"acts": values})


def random_problem(config, rng, *, n_cmds, cols, tokens):
    """Random blocks of records and commands; returns (outlier words, act words, commands,
    expected corrections (n_cmds, P), valid record count, words per command)."""
    P, Q, L = config.pes, config.outlier_lanes, config.lanes
    chunks = -(-cols // L)
    acts = rng.integers(-(1 << (config.act_bits - 1)), 1 << (config.act_bits - 1),
                        size=(tokens, chunks * L))
    acts[:, cols:] = 0
    acts[rng.random(acts.shape) < 0.1] = -(1 << (config.act_bits - 1))
    act_words = [act_word(config, acts[t, j * L:(j + 1) * L])
                 for t in range(tokens) for j in range(chunks)]
    r_half = 1 << (config.residual_bits - 1)
    words, commands, expected, n_valid, sizes = [], [], [], 0, []
    for c in range(n_cmds):
        kind = c % 4
        if kind == 0:
            records = []  # an empty block
        elif kind == 1:  # one row, every column (several records of one row per word)
            row = int(rng.integers(0, P))
            records = [(row, n, int(rng.integers(-r_half, r_half))) for n in range(cols)]
        elif kind == 2:  # the first and the last position
            records = [(0, 0, -r_half), (P - 1, cols - 1, r_half - 1)]
        else:
            n = int(rng.integers(1, 3 * Q * 2))
            records = sorted((int(rng.integers(0, P)), int(rng.integers(0, cols)),
                              int(rng.integers(-r_half, r_half))) for _ in range(n))
        t = int(rng.integers(0, tokens))
        start = len(words)
        for i in range(0, len(records), Q):
            words.append(pack_outlier_word(config, records[i:i + Q]))
        commands.append(pack_command(config, start, len(words), t * chunks))
        sizes.append(len(words) - start)
        corr = np.zeros(P, dtype=np.int64)
        for row, col, res in records:
            corr[row] += res * int(acts[t, col])
        expected.append(corr)
        n_valid += len(records)
    return words, act_words, commands, np.array(expected), n_valid, sizes


def pack_command(config, start, stop, act_base):
    return pack(side_command_fields(config), {"start": start, "stop": stop, "act_base": act_base})


def run_side_path(config, words, act_words, commands, *, seed=0, gap_prob=0.0, stall_prob=0.0):
    dut = Harness(config, words, act_words)
    rng = np.random.default_rng(seed)
    processed = []

    async def finish(ctx):
        await ctx.tick()
        processed.append(ctx.get(dut.processed_total))

    received, in_cycles, out_cycles = run_stream(
        dut, commands, len(commands), rng=rng, gap_prob=gap_prob, stall_prob=stall_prob,
        i=dut.side.i, o=dut.side.o, finish=finish)
    got = np.array([unpack(correction_fields(config), w)["corr"] for w in received],
                   dtype=np.int64)
    return got, in_cycles, out_cycles, processed[0]


def check_corrections(want, got):
    """The checker: every correction of every command, bit for bit."""
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(got != want)
    if bad.size:
        cmd, row = (int(i) for i in bad[0])
        raise AssertionError(f"command {cmd} row {row}: got {got[cmd, row]}, "
                             f"expected {want[cmd, row]}")


@pytest.mark.parametrize("seed", [1, 2])
def test_side_path_exact_with_gaps_and_backpressure(seed):
    rng = np.random.default_rng(seed)
    words, act_words, commands, want, n_valid, _ = random_problem(TINY, rng, n_cmds=16, cols=23,
                                                               tokens=3)
    got, _, _, processed = run_side_path(TINY, words, act_words, commands, seed=seed,
                                         gap_prob=0.3, stall_prob=0.5)
    check_corrections(want, got)
    assert processed == n_valid


def test_side_path_latency_and_throughput():
    # Back to back with o always ready: command c (W_c words) transfers when the previous one has
    # issued its last word, and its result is valid latency cycles after its own last word.
    rng = np.random.default_rng(3)
    words, act_words, commands, want, _, sizes = random_problem(TINY, rng, n_cmds=12, cols=17,
                                                                tokens=2)
    got, in_cycles, out_cycles, _ = run_side_path(TINY, words, act_words, commands)
    check_corrections(want, got)
    sizes = [max(w, 1) for w in sizes]  # an empty block still sends one (invalid) word
    latency = TINY.side_path_latency
    expect_in = [in_cycles[0] + sum(sizes[:i]) for i in range(len(sizes))]
    assert in_cycles == expect_in
    assert out_cycles == [c + w - 1 + latency for c, w in zip(in_cycles, sizes)]


def test_checker_fails_on_a_corrupted_correction():
    rng = np.random.default_rng(4)
    words, act_words, commands, want, _, _ = random_problem(TINY, rng, n_cmds=4, cols=9,
                                                            tokens=2)
    got, _, _, _ = run_side_path(TINY, words, act_words, commands, stall_prob=0.3)
    check_corrections(want, got)
    for cmd, row, bit in ((1, 0, 0), (3, 3, TINY.corr_bits - 1)):
        corrupted = got.copy()
        corrupted[cmd, row] = to_signed(int(corrupted[cmd, row]) ^ (1 << bit), TINY.corr_bits)
        with pytest.raises(AssertionError, match=f"command {cmd} row {row}:"):
            check_corrections(want, corrupted)


def test_record_layout_matches_golden_packing():
    layout = outlier_record_layout(TINY)
    record = {"valid": 1, "row": 3, "col": 63, "residual": -5}
    word = pack(outlier_record_fields(TINY), record)
    view = layout.from_bits(word)
    assert {name: getattr(view, name) for name in record} == record
    assert unpack(outlier_record_fields(TINY), word) == record
    # A word of records, as the side path reads it: record 1 in the second slot.
    words = pack_outlier_word(TINY, [(0, 1, 2), (3, 63, -5)])
    assert unpack(outlier_word_fields(TINY), words)["records"][1] == record
