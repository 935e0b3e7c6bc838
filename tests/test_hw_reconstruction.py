"""ReconstructionMultiplier: exact sum_k centroid[k] * bin[k], its latency and throughput."""

import numpy as np
import pytest

from golden.config import GoboConfig
from golden.hwmodel.packing import bins_fields, centroids_fields, pack
from hw.reconstruction import ReconstructionMultiplier
from hw.testing import run_stream


def make_case(config, rng, count):
    b_lo, b_hi = -(1 << (config.bin_bits - 1)), (1 << (config.bin_bits - 1)) - 1
    c_lo, c_hi = -(1 << (config.centroid_bits - 1)), (1 << (config.centroid_bits - 1)) - 1
    # Bins are bounded jointly (sum |bin| <= max_dot_length * 2**(act_bits-1)); split that
    # budget randomly, and put one whole budget into a single bin (the extreme case).
    budget = config.max_dot_length << (config.act_bits - 1)
    bins = []
    for r in range(count):
        if r < 2:
            row = np.zeros(config.n_centroids, dtype=np.int64)
            row[r % config.n_centroids] = -budget if r == 0 else budget - config.max_dot_length
        else:
            share = rng.dirichlet(np.ones(config.n_centroids)) * budget
            row = (share * rng.choice([-1, 1], size=config.n_centroids)).astype(np.int64)
        assert np.abs(row).sum() <= budget and row.min() >= b_lo and row.max() <= b_hi
        bins.append(row)
    centroids = rng.integers(c_lo, c_hi + 1, size=config.n_centroids)
    centroids[0] = c_lo
    centroids[1 % config.n_centroids] = c_hi
    return np.array(bins), centroids


def run(config, bins, centroids, *, rng, gap_prob=0.0, stall_prob=0.0):
    dut = ReconstructionMultiplier(config=config)
    received, in_cycles, out_cycles = run_stream(
        dut, [pack(bins_fields(config), {"bins": row}) for row in bins], len(bins), rng=rng,
        gap_prob=gap_prob, stall_prob=stall_prob,
        setup=lambda ctx: ctx.set(dut.centroids.as_value(),
                                  pack(centroids_fields(config), {"centroids": centroids})))
    return dut, np.array(received, dtype=object), in_cycles, out_cycles


CONFIGS = [
    GoboConfig(index_bits=3, recon_multipliers=1),
    GoboConfig(index_bits=3, recon_multipliers=2),
    GoboConfig(index_bits=3, recon_multipliers=8),
    GoboConfig(index_bits=4, recon_multipliers=1, act_bits=8, centroid_bits=8,
               max_dot_length=100),
    GoboConfig(index_bits=4, recon_multipliers=16, act_bits=32, centroid_bits=16,
               max_dot_length=1 << 16),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"idx{c.index_bits}_m"
                         f"{c.recon_multipliers}_out{c.out_bits}")
def test_matches_exact_sum_with_gaps_and_backpressure(config):
    rng = np.random.default_rng(config.recon_multipliers * 7 + config.index_bits)
    bins, centroids = make_case(config, rng, 20)
    _, got, _, _ = run(config, bins, centroids, rng=rng, gap_prob=0.3, stall_prob=0.5)
    # Python integers: exact even where int64 products would be close to the edge.
    want = [sum(int(c) * int(b) for c, b in zip(centroids, row)) for row in bins]
    assert list(got) == want
    assert max(abs(w) for w in want) < 1 << (config.out_bits - 1)


@pytest.mark.parametrize("mults", [1, 2, 8])
def test_latency_and_throughput(mults):
    config = GoboConfig(recon_multipliers=mults)
    rng = np.random.default_rng(mults)
    bins, centroids = make_case(config, rng, 6)
    dut, _, in_cycles, out_cycles = run(config, bins, centroids, rng=rng)
    assert dut.latency == config.recon_cycles
    # Back to back: a result every recon_cycles cycles, `latency` cycles after its bins
    # appeared (the bins are accepted in the last step, recon_cycles - 1 cycles after that).
    starts = [c - (config.recon_cycles - 1) for c in in_cycles]
    assert starts[0] == 0
    assert [o - s for o, s in zip(out_cycles, starts)] == [dut.latency] * len(bins)
    assert np.all(np.diff(out_cycles) == config.recon_cycles)


def test_an_output_before_all_inputs_are_taken_fails():
    """A stuck o.valid (the output repeated, the input refused) fails on the inputs not taken,
    as an assertion, not by waiting for ever: the harness ends the run with the consumer."""
    from amaranth import Module
    from amaranth.lib import wiring

    class StuckValid(ReconstructionMultiplier):
        def elaborate(self, platform):
            m = Module()
            m.submodules.inner = inner = ReconstructionMultiplier(config=self.config)
            wiring.connect(m, wiring.flipped(self.i), inner.i)
            m.d.comb += [inner.centroids.eq(self.centroids), self.o.payload.eq(inner.o.payload),
                         self.o.valid.eq(1), inner.o.ready.eq(0)]
            return m

    config = CONFIGS[0]
    bins, centroids = make_case(config, np.random.default_rng(0), 8)
    with pytest.raises(AssertionError, match=r"took only \d+ of the 8 words offered on i"):
        run_stream(StuckValid(config=config),
                   [pack(bins_fields(config), {"bins": row}) for row in bins], len(bins))
