"""GoboTile in the Amaranth simulator against golden.hwmodel.tile (every output bit) and
golden.hwmodel.tile (every counter, with o.ready always high), on seeded random integer layers of
the tiny preset: M not a multiple of P, N not a multiple of L, several tokens, pathological outlier
patterns, random load gaps and output backpressure, and a mutation test of the checker."""

import gc

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.layer_image import layer_word, load_beats, make_image
from golden.hwmodel.packing import counters_fields, to_signed, unpack
from golden.hwmodel.tile import tile_accumulators, tile_cycles_of_image, tile_outputs
from hw.testing import StreamMonitor
from hw.testing import run_tile as run_tile_component
from hw.tile import GoboTile

TINY = preset("tiny")


def run_tile(image, acts, *, seed=0, gap_prob=0.0, stall_prob=0.0, runs=1, tile=GoboTile):
    """Load ``image`` and ``acts`` into a GoboTile, run it ``runs`` times; returns a list of
    ``(Y (blocks*P, T) int64, counters dict)`` per run. Every internal stream is checked against
    the stream rules all along (:class:`hw.testing.StreamMonitor`) and must carry traffic."""
    config = image.config
    tokens = acts.shape[0]
    monitor = StreamMonitor()
    runs = run_tile_component(tile(config=config), load=load_beats(image, acts),
                              layer=layer_word(image, tokens), tokens=tokens,
                              blocks=image.blocks, rng=np.random.default_rng(seed),
                              gap_prob=gap_prob, stall_prob=stall_prob, runs=runs,
                              monitor=monitor)
    check_monitor(monitor)
    return [(y, unpack(counters_fields(config), word)) for y, word in runs]


def check_monitor(monitor):
    """The stream monitor watched the controller, side path and PE streams, each with traffic."""
    idle = [name for name, count in monitor.transfers.items() if not count]
    assert not idle, f"internal streams without a transfer: {idle}"
    for name in ("controller.bc", "controller.dots", "controller.side", "controller.corr",
                 "controller.o", "side_path.i", "side_path.o", "pe0.i", "pe0.o"):
        assert name in monitor.transfers, f"{name} not monitored"


def check_outputs(want, got):
    """The checker: every output element bit for bit (padded rows included)."""
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(got != want)
    if bad.size:
        row, token = (int(i) for i in bad[0])
        raise AssertionError(f"{len(bad)} outputs differ, first at (row, token) ({row}, {token}): "
                             f"got {got[row, token]}, expected {want[row, token]}")


def check_counters(image, tokens, counters):
    want = tile_cycles_of_image(image, tokens)
    got = {k: counters[k] for k in ("cycles", "stall_outlier", "stall_recon", "stall_output",
                                    "outliers")}
    got["busy"] = list(counters["busy"])
    assert got == {k: want[k] for k in got}, f"counters {got}, model {want}"
    return want


def random_layer(config, rng, *, rows, cols, pattern, tokens):
    """A random integer layer with the outlier ``pattern`` and an ``out_shift`` that leaves most
    outputs unsaturated; returns (image, acts)."""
    k = config.n_centroids
    c_half = 1 << (config.centroid_bits - 1)
    r_half = 1 << (config.residual_bits - 1)
    a_half = 1 << (config.act_bits - 1)
    indexes = rng.integers(0, k, size=(rows, cols))
    centroids = rng.integers(-c_half, c_half, size=k)
    centroids[0] = -c_half
    if pattern == "none":
        positions = []
    elif pattern == "five_percent":
        flat = np.flatnonzero(rng.random(rows * cols) < 0.05)
        positions = [(int(f) // cols, int(f) % cols) for f in flat]
    elif pattern == "one_row":
        row = int(rng.integers(0, rows))
        positions = [(row, n) for n in range(cols)]
    elif pattern == "one_column":
        col = int(rng.integers(0, cols))
        positions = [(m, col) for m in range(rows)]
    elif pattern == "dense_block":  # every weight of block 0 (the first P rows) is an outlier
        positions = [(m, n) for m in range(min(config.pes, rows)) for n in range(cols)]
    elif pattern == "first_last":
        positions = [(0, 0), (rows - 1, cols - 1)]
    else:
        raise ValueError(pattern)
    outliers = [(m, n, int(rng.integers(-r_half, r_half))) for m, n in positions]
    if outliers:
        outliers[0] = (outliers[0][0], outliers[0][1], -r_half)
    bias = rng.integers(-(1 << (config.bias_bits - 2)), 1 << (config.bias_bits - 2), size=rows)
    acts = rng.integers(-a_half, a_half, size=(tokens, cols))
    acts[rng.random(acts.shape) < 0.1] = -a_half
    shift_dot, shift_corr = [(0, int(rng.integers(0, config.max_align_shift + 1))),
                             (int(rng.integers(0, config.max_align_shift + 1)), 0)][
        int(rng.integers(0, 2))]
    kwargs = dict(indexes=indexes, centroids=centroids, outliers=outliers, bias=bias,
                  shift_dot=shift_dot, shift_corr=shift_corr,
                  shift_bias=int(rng.integers(0, config.max_align_shift + 1)))
    acc = tile_accumulators(make_image(config, **kwargs), acts)
    span = int(np.abs(acc).max()).bit_length()
    out_shift = max(0, span - config.act_bits + int(rng.integers(-1, 3)))
    return make_image(config, **kwargs, out_shift=out_shift), acts


PATTERNS = ["none", "five_percent", "one_row", "one_column", "first_last", "dense_block"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_tile_matches_golden_and_cycle_model(pattern):
    rng = np.random.default_rng(sum(map(ord, pattern)))
    rows, cols, tokens = 4 * 3 + 1, 4 * 7 + 3, 3   # M % P = 1, N % L = 3
    image, acts = random_layer(TINY, rng, rows=rows, cols=cols, pattern=pattern, tokens=tokens)
    (y, counters), = run_tile(image, acts, seed=1, gap_prob=0.2)
    check_outputs(tile_outputs(image, acts), y)
    want = check_counters(image, tokens, counters)
    if pattern == "dense_block":  # 4 x 31 records: 62 words per slot of block 0, C = 8 beats
        assert want["stall_outlier"] > 0


@pytest.mark.parametrize("pattern", ["five_percent", "one_row"])
def test_tile_exact_under_output_backpressure(pattern):
    rng = np.random.default_rng(100 + len(pattern))
    # C = 13 > recon_cycles and about 20 cycles per output transfer: the output holds the
    # broadcast, not reconstruction.
    image, acts = random_layer(TINY, rng, rows=4 * 2 + 3, cols=4 * 12 + 1, pattern=pattern,
                               tokens=4)
    (y, counters), = run_tile(image, acts, seed=2, gap_prob=0.3, stall_prob=0.95)
    check_outputs(tile_outputs(image, acts), y)
    ideal = tile_cycles_of_image(image, 4)
    assert counters["cycles"] > ideal["cycles"]
    assert counters["stall_output"] > 0
    assert counters["outliers"] == ideal["outliers"]
    assert list(counters["busy"]) == ideal["busy"]


def test_tile_short_rows_stall_on_reconstruction_and_runs_twice():
    # C = 1 < recon_cycles = 8: the PEs refuse every last beat for a while. A second run of the
    # same image gives the same outputs and counters (the counters restart at start).
    rng = np.random.default_rng(5)
    image, acts = random_layer(TINY, rng, rows=6, cols=3, pattern="five_percent", tokens=2)
    runs = run_tile(image, acts, seed=3, runs=2)
    for y, counters in runs:
        check_outputs(tile_outputs(image, acts), y)
        want = check_counters(image, 2, counters)
    assert want["stall_recon"] > 0


def test_stream_monitor_fails_on_a_planted_violation(monkeypatch):
    # The broadcast's index read port re-reads while the PEs hold a beat back: bc's payload
    # changes before its transfer. Output backpressure makes sure bc stalls.
    import hw.tile
    from hw.tile_controller import TileController

    class Mutant(TileController):
        def elaborate(self, platform):
            m = super().elaborate(platform)
            m.d.comb += self.index_rd.en.eq(1)
            return m

    monkeypatch.setattr(hw.tile, "TileController", Mutant)
    image, acts = random_layer(TINY, np.random.default_rng(5), rows=6, cols=3,
                               pattern="five_percent", tokens=2)
    with pytest.raises(AssertionError, match="controller.bc: payload changed without a transfer"):
        run_tile(image, acts, seed=3, stall_prob=0.5)


def corner_biases(act_bits, out_shift):
    """Biases that put the merge on its corners when the dot products and corrections are 0:
    exact halves of both signs (round half up: +0.5 -> 1, -0.5 -> 0, -1.5 -> -1), a half at
    the top that rounds into saturation, the last values below and above each end, and far
    beyond both ends. Returns ``(biases, expected Y)``, Y by the formula of docs/tile.md
    section 1 on Python integers (independent of the golden model)."""
    hi, lo = (1 << (act_bits - 1)) - 1, -(1 << (act_bits - 1))
    s = out_shift
    half, unit = (1 << (s - 1) if s else 0), 1 << s
    if s:
        biases = [half, -half, 3 * half, -3 * half, hi * unit + half, hi * unit + half - 1,
                  lo * unit - half, lo * unit - half - 1]
    else:
        biases = [hi, hi + 1, lo, lo - 1]
    biases += [(hi + 9) * unit, (lo - 9) * unit, 0]
    expected = [min(hi, max(lo, (b + half) >> s)) for b in biases]
    return np.array(biases, dtype=np.int64), expected


@pytest.mark.parametrize("out_shift", [0, 1, 3])
def test_tile_merge_rounding_ties_and_saturation(out_shift):
    # Token 0 has zero activations, so Y = round(bias >> out_shift) clamped: exact halves and
    # both saturation ends; token 1 adds random dot products and corrections on top.
    bias, expected = corner_biases(TINY.act_bits, out_shift)
    rows, cols = len(bias), 6
    rng = np.random.default_rng(60 + out_shift)
    indexes = rng.integers(0, TINY.n_centroids, size=(rows, cols))
    centroids = rng.integers(-50, 50, size=TINY.n_centroids)
    outliers = [(1, 2, 7), (4, 0, -9), (rows - 1, cols - 1, 5)]
    acts = np.zeros((2, cols), dtype=np.int64)
    acts[1] = rng.integers(-100, 100, size=cols)
    image = make_image(TINY, indexes=indexes, centroids=centroids, outliers=outliers, bias=bias,
                       out_shift=out_shift)
    (y, _), = run_tile(image, acts, seed=7, gap_prob=0.2, stall_prob=0.3)
    assert list(y[:rows, 0]) == expected
    check_outputs(tile_outputs(image, acts), y)


def test_checker_fails_on_a_corrupted_output():
    rng = np.random.default_rng(9)
    image, acts = random_layer(TINY, rng, rows=5, cols=6, pattern="first_last", tokens=2)
    (y, _), = run_tile(image, acts, seed=4)
    want = tile_outputs(image, acts)
    check_outputs(want, y)
    for row, token, bit in ((0, 0, 0), (7, 1, TINY.act_bits - 1), (4, 1, 5)):
        corrupted = y.copy()
        corrupted[row, token] = to_signed(int(corrupted[row, token]) ^ (1 << bit), TINY.act_bits)
        where = f"first at \\(row, token\\) \\({row}, {token}\\):"
        with pytest.raises(AssertionError, match=where):
            check_outputs(want, corrupted)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("mults", [1, 4])
def test_fill_and_drain_is_the_declared_one(mults):
    """One slot (one block, one token) cannot stall: the run takes its ``C`` beats plus the
    tile's declared ``fill_drain`` (the configuration's), measured by the ``cycles`` counter."""
    config = TINY.replace(recon_multipliers=mults)
    image, acts = random_layer(config, np.random.default_rng(21 + mults), rows=config.pes,
                               cols=4 * 5 + 1, pattern="first_last", tokens=1)
    (y, counters), = run_tile(image, acts)
    check_outputs(tile_outputs(image, acts), y)
    assert counters["stall_outlier"] == counters["stall_recon"] == 0
    assert counters["cycles"] - image.chunks == GoboTile(config=config).fill_drain
    gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_tile_rejects_a_non_config():
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        GoboTile(config=3)
    gc.collect()


# Odd shapes of the tile: P and L not powers of two (bias banks and side-path lane split by
# division), one or three record lanes, reconstruction in 1 or 4 cycles, and one PE of one lane
# (its per-PE and per-lane words are arrays of one: the busy counter once counted in bit 0).
SWEEP_CONFIGS = {
    "tiny": TINY,
    "p1_l1_q1": TINY.replace(pes=1, lanes=1, outlier_lanes=1, max_rows=8, max_dot_length=16),
    "p3_l3_q3_r4": TINY.replace(pes=3, lanes=3, outlier_lanes=3, recon_multipliers=2,
                                max_rows=30, max_dot_length=40),
    "p2_l4_q1_r1": TINY.replace(pes=2, outlier_lanes=1, recon_multipliers=8, act_bits=8,
                                centroid_bits=8, residual_bits=8, bias_bits=20),
}


@pytest.mark.parametrize("name", SWEEP_CONFIGS)
@pytest.mark.parametrize("seed", [11, 12])
def test_tile_random_shapes_match_golden_and_cycle_model(name, seed):
    config = SWEEP_CONFIGS[name]
    rng = np.random.default_rng(seed * 31 + len(name))
    rows = int(rng.integers(1, config.max_rows // 2))
    cols = int(rng.integers(1, config.max_dot_length + 1))
    tokens = int(rng.integers(1, config.max_tokens + 1))
    pattern = PATTERNS[int(rng.integers(0, len(PATTERNS)))]
    image, acts = random_layer(config, rng, rows=rows, cols=cols, pattern=pattern,
                               tokens=tokens)
    (y, counters), = run_tile(image, acts, seed=seed, gap_prob=0.2)
    check_outputs(tile_outputs(image, acts), y)
    check_counters(image, tokens, counters)


def test_tile_verilog_ports_and_lint(tmp_path):
    from gobo.commands.verilog import design_for, write
    path = write(design_for("gobo_tile", "tiny"), tmp_path, lint_it=True)
    text = path.read_text()
    header = text[text.index("module gobo_tile_tiny("):]
    header = header[:header.index(");")]
    assert sorted(p.strip() for p in header[len("module gobo_tile_tiny("):].split(",")) == \
        sorted(["clk", "rst", "load__valid", "load__ready", "load__payload", "layer", "start",
                "busy", "o__valid", "o__ready", "o__payload", "counters"])
