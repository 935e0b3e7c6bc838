"""GoboPE in the Amaranth simulator against golden.hwmodel.pe: bit-exact results with random gaps
and backpressure, the cycle model pe_cycles, and a mutation test of the checker."""

import gc

import numpy as np
import pytest

from golden.config import GoboConfig
from golden.hwmodel.packing import centroids_fields, pack, pe_beats
from golden.hwmodel.pe import pe_cycles, pe_dot
from hw.pe import GoboPE
from hw.testing import run_stream


def centroid_word(config, centroids):
    return pack(centroids_fields(config), {"centroids": centroids})


def run_pe(config, rows, centroids, *, seed=0, gap_prob=0.0, stall_prob=0.0):
    """Simulate ``rows`` (a list of ``(indexes, acts)``) through a GoboPE; returns the outputs,
    the input transfer cycles and the output transfer cycles."""
    dut = GoboPE(config=config)
    words = [w for indexes, acts in rows for w in pe_beats(config, indexes, acts)]
    received, in_cycles, out_cycles = run_stream(
        dut, words, len(rows), rng=np.random.default_rng(seed), gap_prob=gap_prob,
        stall_prob=stall_prob,
        setup=lambda ctx: ctx.set(dut.centroids.as_value(), centroid_word(config, centroids)))
    return np.array(received, dtype=np.int64), in_cycles, out_cycles


def expected(config, rows, centroids):
    return np.array([pe_dot(config, indexes, acts, centroids)[0] for indexes, acts in rows],
                    dtype=np.int64)


def check_outputs(want, got):
    """The checker: every output bit for bit, in row order."""
    assert len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    mismatches = np.flatnonzero(np.asarray(got) != np.asarray(want))
    assert not mismatches.size, (f"rows {mismatches.tolist()} differ: got "
                                 f"{np.asarray(got)[mismatches].tolist()}, expected "
                                 f"{np.asarray(want)[mismatches].tolist()}")


def random_rows(config, rng, n_rows, max_len):
    a_lo, a_hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    rows = []
    for _ in range(n_rows):
        n = int(rng.integers(1, max_len + 1))
        acts = rng.integers(a_lo, a_hi + 1, size=n)
        # Sprinkle the extreme activations in.
        acts[rng.random(n) < 0.2] = a_lo
        acts[rng.random(n) < 0.2] = a_hi
        rows.append((rng.integers(0, config.n_centroids, size=n), acts))
    return rows


def random_centroids(config, rng):
    c_lo, c_hi = -(1 << (config.centroid_bits - 1)), (1 << (config.centroid_bits - 1)) - 1
    centroids = rng.integers(c_lo, c_hi + 1, size=config.n_centroids)
    centroids[0], centroids[-1] = c_lo, c_hi
    return centroids


CONFIGS = {
    "lanes1_idx3_m1": GoboConfig(lanes=1, index_bits=3, recon_multipliers=1),
    "lanes4_idx3_m8": GoboConfig(lanes=4, index_bits=3, recon_multipliers=8),
    "lanes4_idx4_m4": GoboConfig(lanes=4, index_bits=4, recon_multipliers=4, act_bits=8,
                                 centroid_bits=12, max_dot_length=64),
    "lanes16_idx3_m2": GoboConfig(lanes=16, index_bits=3, recon_multipliers=2),
    "lanes16_idx4_m16": GoboConfig(lanes=16, index_bits=4, recon_multipliers=16),
    "lanes16_idx4_m1": GoboConfig(lanes=16, index_bits=4, recon_multipliers=1),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_pe_matches_golden_with_gaps_and_backpressure(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    rows = random_rows(config, rng, n_rows=24, max_len=min(config.max_dot_length,
                                                           3 * config.lanes + 2))
    centroids = random_centroids(config, rng)
    got, _, _ = run_pe(config, rows, centroids, seed=1, gap_prob=0.3, stall_prob=0.4)
    check_outputs(expected(config, rows, centroids), got)


@pytest.mark.parametrize("act_sign", [-1, 1])
@pytest.mark.parametrize("recon_multipliers", [1, 8])
def test_pe_extreme_values_are_exact(act_sign, recon_multipliers):
    # Longest dot product, every activation and centroid at an end of its range, all into one
    # bin: the bin and the output reach the ends of bin_bits and out_bits.
    config = GoboConfig(lanes=4, index_bits=3, recon_multipliers=recon_multipliers,
                        max_dot_length=16)
    a = -(1 << (config.act_bits - 1)) if act_sign < 0 else (1 << (config.act_bits - 1)) - 1
    c_lo = -(1 << (config.centroid_bits - 1))
    n = config.max_dot_length
    rows = [(np.full(n, k), np.full(n, a)) for k in (0, config.n_centroids - 1, 3)]
    centroids = np.array([c_lo, c_lo + 1, 5, -7, 0, 1, -1, (1 << (config.centroid_bits - 1)) - 1])
    centroids[-1] = c_lo
    want = expected(config, rows, centroids)
    assert abs(int(want[0])) >= 1 << (config.out_bits - 3), "the test must reach the top bits"
    got, _, _ = run_pe(config, rows, centroids, seed=2, gap_prob=0.2, stall_prob=0.3)
    check_outputs(want, got)


def test_checker_fails_on_a_corrupted_output():
    config = CONFIGS["lanes4_idx3_m8"]
    rng = np.random.default_rng(7)
    rows = random_rows(config, rng, n_rows=4, max_len=9)
    centroids = random_centroids(config, rng)
    got, _, _ = run_pe(config, rows, centroids, seed=3, stall_prob=0.3)
    want = expected(config, rows, centroids)
    check_outputs(want, got)
    for row, bit in ((0, 0), (3, config.out_bits - 1), (1, 17)):
        corrupted = got.copy()
        corrupted[row] ^= np.int64(1) << bit
        with pytest.raises(AssertionError, match=f"rows \\[{row}\\] differ"):
            check_outputs(want, corrupted)


# (lanes, index_bits, recon_multipliers): recon_cycles 8, 1, 2 and 16.
@pytest.mark.parametrize("lanes,index_bits,mults", [(4, 3, 1), (4, 3, 8), (1, 3, 4),
                                                    (2, 4, 1)])
@pytest.mark.parametrize("beats", [1, 2, 5, 8, 17])
def test_pe_cycles_match_the_cycle_model(lanes, index_bits, mults, beats):
    config = GoboConfig(lanes=lanes, index_bits=index_bits, recon_multipliers=mults)
    rng = np.random.default_rng(beats * 100 + lanes)
    n_rows = 4
    n = beats * lanes - (lanes - 1 if lanes > 1 else 0)  # ceil(n / lanes) == beats
    rows = [(rng.integers(0, config.n_centroids, size=n), rng.integers(-999, 1000, size=n))
            for _ in range(n_rows)]
    centroids = random_centroids(config, rng)
    got, in_cycles, out_cycles = run_pe(config, rows, centroids)
    check_outputs(expected(config, rows, centroids), got)
    measured = out_cycles[-1] - in_cycles[0] + 1
    assert measured == pe_cycles(config, n, n_rows), (
        f"beats={beats} recon_cycles={config.recon_cycles}: {measured} cycles")
    # Each row's output is valid exactly `latency` cycles after its last beat's transfer.
    last_beats = [in_cycles[(r + 1) * beats - 1] for r in range(n_rows)]
    assert [o - t for o, t in zip(out_cycles, last_beats)] == [config.pe_latency] * n_rows
    if beats >= config.recon_cycles:  # full throughput: no input bubbles at all
        assert in_cycles == list(range(in_cycles[0], in_cycles[0] + n_rows * beats))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_latency_property():
    for mults, latency in ((1, 9), (2, 5), (8, 2)):
        pe = GoboPE(config=GoboConfig(recon_multipliers=mults))
        assert pe.latency == pe.config.pe_latency == latency
    del pe
    gc.collect()  # report the unelaborated components while the warning filter is active


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_pe_rejects_a_non_config():
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        GoboPE(config=3)
    gc.collect()  # report the half-built component while the warning filter is active
