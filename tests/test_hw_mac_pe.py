"""MacPE (the conventional MAC baseline) in the Amaranth simulator against golden.hwmodel.mac:
bit-exact results with random gaps and backpressure, extreme values, the cycle model."""

import gc

import numpy as np
import pytest

from golden.config import MAC_FLAVOURS, GoboConfig, mac_flavour
from golden.hwmodel.mac import mac_cycles, mac_dot, mac_out_bits, quantize_symmetric
from golden.hwmodel.packing import mac_beats
from hw.mac_pe import MacPE
from hw.testing import run_stream
from tests.test_hw_pe import check_outputs


def run_mac(config, weight_bits, rows, *, seed=0, gap_prob=0.0, stall_prob=0.0):
    dut = MacPE(config=config, weight_bits=weight_bits)
    words = [w for weights, acts in rows for w in mac_beats(config, weight_bits, weights, acts)]
    received, in_cycles, out_cycles = run_stream(
        dut, words, len(rows), rng=np.random.default_rng(seed), gap_prob=gap_prob,
        stall_prob=stall_prob)
    return np.array(received, dtype=np.int64), in_cycles, out_cycles


def expected(config, weight_bits, rows):
    return np.array([mac_dot(config, weight_bits, w, a)[0] for w, a in rows], dtype=np.int64)


def random_rows(config, weight_bits, rng, n_rows, max_len):
    def full(bits, n):
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        values = rng.integers(lo, hi, size=n, endpoint=True)
        values[rng.random(n) < 0.2] = lo
        values[rng.random(n) < 0.2] = hi
        return values
    lengths = rng.integers(1, max_len + 1, size=n_rows)
    return [(full(weight_bits, n), full(config.act_bits, n)) for n in lengths]


CASES = {
    **{f"{name}_lanes16": mac_flavour(name, lanes=16, max_dot_length=256)
       for name in MAC_FLAVOURS},
    "w4a4_lanes1": mac_flavour("w4a4", lanes=1, max_dot_length=64),
    "w8a8_lanes3": mac_flavour("w8a8", lanes=3, max_dot_length=64),
}


@pytest.mark.parametrize("name", CASES)
def test_mac_matches_golden_with_gaps_and_backpressure(name):
    config, weight_bits = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    rows = random_rows(config, weight_bits, rng, n_rows=20, max_len=3 * config.lanes + 2)
    got, _, _ = run_mac(config, weight_bits, rows, seed=1, gap_prob=0.3, stall_prob=0.4)
    check_outputs(expected(config, weight_bits, rows), got)


@pytest.mark.parametrize("sign", [-1, 1])
def test_mac_extreme_values_are_exact(sign):
    # The longest row of the most negative weight times the most negative (or the largest)
    # activation reaches the top bits of mac_out_bits.
    config, weight_bits = mac_flavour("w8a8", lanes=4, max_dot_length=32)
    w = np.full(32, -(1 << (weight_bits - 1)))
    lo, hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    a = np.full(32, lo if sign < 0 else hi)
    rows = [(w, a), (-w - 1, a), (w[:5], a[:5])]
    want = expected(config, weight_bits, rows)
    assert abs(int(want[0])) >= 1 << (mac_out_bits(config, weight_bits) - 3)
    got, _, _ = run_mac(config, weight_bits, rows, seed=2, gap_prob=0.2, stall_prob=0.3)
    check_outputs(want, got)


@pytest.mark.parametrize("lanes,beats", [(4, 1), (4, 5), (1, 3), (16, 2)])
def test_mac_cycles_match_the_cycle_model(lanes, beats):
    config, weight_bits = mac_flavour("w16a16", lanes=lanes)
    rng = np.random.default_rng(beats + lanes)
    n = beats * lanes
    rows = [(rng.integers(-999, 1000, size=n), rng.integers(-999, 1000, size=n))
            for _ in range(4)]
    got, in_cycles, out_cycles = run_mac(config, weight_bits, rows)
    check_outputs(expected(config, weight_bits, rows), got)
    assert out_cycles[-1] - in_cycles[0] + 1 == mac_cycles(config, n, 4)
    assert in_cycles == list(range(in_cycles[0], in_cycles[0] + 4 * beats))  # no bubbles


def test_quantize_symmetric_is_per_row_and_in_range():
    matrix = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -3.0]])
    q, scales = quantize_symmetric(matrix, 4)
    assert q.tolist() == [[4, -7, 2], [0, 0, 0], [7, 4, -7]]
    assert np.allclose(scales, [1 / 7, 1.0, 3 / 7])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_mac_rejects_bad_parameters():
    with pytest.raises(TypeError, match="config must be a GoboConfig, not 3"):
        MacPE(config=3, weight_bits=8)
    with pytest.raises(ValueError, match="weight_bits must be an integer between 2 and 32, "
                                         "not 1"):
        MacPE(config=GoboConfig(), weight_bits=1)
    with pytest.raises(ValueError, match="unknown MAC flavour 'w2a2'"):
        mac_flavour("w2a2")
    pe = MacPE(config=GoboConfig(act_bits=8), weight_bits=8)
    assert pe.latency == 1 and pe.out_bits == 8 + 8 + 12
    del pe
    gc.collect()


def test_mac_and_decompressor_verilog_lint_clean(tmp_path):
    from hw.designs import Design
    from hw.verilog import lint
    config, weight_bits = mac_flavour("w8a8", lanes=4)
    for name, text in [
            ("mac_w8a8", Design("mac_pe", config, weight_bits, name="mac_w8a8").verilog()),
            ("gobo_decomp", Design("decompressor", config, weight_bits,
                                   name="gobo_decomp").verilog())]:
        path = tmp_path / f"{name}.v"
        path.write_text(text)
        lint(path, name)
