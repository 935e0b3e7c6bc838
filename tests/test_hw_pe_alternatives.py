"""The alternative GOBO PEs (hw/collision_pe.py, hw/spill_pe.py) in the Amaranth simulator on a
real all-MiniLM-L6-v2 slice: every output equal to the present PE's golden model
(golden.hwmodel.pe.pe_dot), every cycle count equal to golden.hwmodel.pe_alternatives, and the
checker failing on a corrupted output; plus the cycle model's own rules."""

import numpy as np
import pytest

from golden.config import PRESETS
from golden.hwmodel import pe_alternatives as alt
from golden.hwmodel.fixedpoint import to_fixed
from golden.hwmodel.layer_image import quantize_activations
from golden.hwmodel.packing import centroids_fields, pack, pe_beats
from golden.hwmodel.pe import pe_cycles, pe_dot
from golden.quant.quantizer import quantize
from hw.collision_pe import CollisionPE
from hw.spill_pe import SpillPE
from hw.testing import run_stream

ROWS = 4


@pytest.fixture(scope="module")
def real_layer():
    """Layer 0's query weights quantized by GOBO (indexes of the first rows, integer centroids)
    and that layer's real input on gobo.power's sentence (its first two tokens, float)."""
    from gobo.power import real_slice
    weights, acts = real_slice(2, rows=384)
    layer = quantize(weights, index_bits=3, outlier_log_prob=PRESETS["minilm"].outlier_log_prob)
    return np.asarray(layer.indexes[:ROWS], dtype=np.int64), layer.centroids, acts


def run(dut, config, indexes, acts, centroids):
    words = [w for row in indexes for w in pe_beats(config, row, acts)]
    word = pack(centroids_fields(config), {"centroids": centroids})
    received, in_cycles, out_cycles = run_stream(
        dut, words, len(indexes), setup=lambda ctx: ctx.set(dut.centroids.as_value(), word))
    return np.array(received, dtype=np.int64), out_cycles[-1] - in_cycles[0] + 1


def check_outputs(want, got):
    """The checker: every output element bit for bit."""
    assert len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    bad = np.flatnonzero(np.asarray(got) != np.asarray(want))
    assert not bad.size, f"rows {bad.tolist()} differ from the golden model"


CASES = {  # name: (act_bits, make(config) -> PE, cycle model(config, indexes))
    "collision_k6_a16": (16, lambda c: CollisionPE(config=c, bin_inputs=6),
                         lambda c, x: alt.collision_cycles(c, x, 6)),
    "collision_k8_a8": (8, lambda c: CollisionPE(config=c, bin_inputs=8),
                        lambda c, x: alt.collision_cycles(c, x, 8)),
    "spill_a16": (16, lambda c: SpillPE(config=c, spill_beats=c.recon_cycles),
                  lambda c, x: alt.spill_cycles(c, x.shape[1], len(x), c.recon_cycles)),
    "spill_a8": (8, lambda c: SpillPE(config=c, spill_beats=c.recon_cycles),
                 lambda c, x: alt.spill_cycles(c, x.shape[1], len(x), c.recon_cycles)),
}


@pytest.mark.parametrize("name", CASES)
def test_alternative_pe_is_exact_on_real_minilm(name, real_layer):
    act_bits, make, model = CASES[name]
    config = PRESETS["minilm"].replace(act_bits=act_bits)
    indexes, float_centroids, float_acts = real_layer
    centroids, _ = to_fixed(float_centroids, config.centroid_bits)
    acts = quantize_activations(config, float_acts)[0][1]    # the first word after [CLS]
    assert np.count_nonzero(acts) > acts.size // 2      # a real input, not zeros
    want = pe_dot(config, indexes, acts, centroids)
    got, cycles = run(make(config), config, indexes, acts, centroids)
    check_outputs(want, got)
    assert cycles == model(config, indexes)
    corrupted = got.copy()
    corrupted[-1] ^= 1 << 3
    with pytest.raises(AssertionError, match=rf"rows \[{ROWS - 1}\] differ"):
        check_outputs(want, corrupted)
    if name == "collision_k6_a16":   # the stall path is exercised: real beats collide
        assert cycles > pe_cycles(config, indexes.shape[1], ROWS)


def test_spill_pe_has_narrower_bins():
    config = PRESETS["minilm"]
    pe = SpillPE(config=config, spill_beats=8)
    assert (pe.bin_bits, config.bin_bits) == (16 + 7, 16 + 11)


def test_cycle_models_reduce_to_the_present_pe():
    config = PRESETS["minilm"].replace(lanes=4)
    rng = np.random.default_rng(3)
    indexes = rng.integers(0, 8, size=(5, 30))
    ideal = pe_cycles(config, 30, 5)
    assert alt.collision_cycles(config, indexes, 4) == ideal   # K = lanes: never stalls
    assert alt.spill_cycles(config, 30, 5, 1 << 10) == ideal   # one chunk per row
    # All four lanes on one bin with K = 1: four cycles a beat.
    assert alt.beat_cycles(config, np.zeros((1, 8), dtype=int), 1).tolist() == [[4, 4]]
    with pytest.raises(ValueError, match="bin_inputs must be an integer between 1 and lanes=4"):
        alt.beat_cycles(config, indexes, 5)


def test_alternative_pes_name_bad_parameters():
    config = PRESETS["tiny"]
    with pytest.raises(ValueError, match="bin_inputs must be an integer between 1 and 4, not 5"):
        CollisionPE(config=config, bin_inputs=5)
    with pytest.raises(TypeError, match="spill_beats must be an integer"):
        SpillPE(config=config, spill_beats=2.0)


@pytest.mark.parametrize("mults", [1, 8])
@pytest.mark.parametrize("kind", ["collision", "spill"])
def test_alternative_pe_is_exact_under_gaps_and_backpressure(kind, mults):
    """Seeded rows of uneven lengths (short rows wait for the reconstruction, long ones
    collide) with random input gaps and output stalls: every output still exact."""
    config = PRESETS["tiny"].replace(recon_multipliers=mults)
    rng = np.random.default_rng(mults)
    rows = [(rng.choice(8, size=n, p=[.5, .2, .1, .1, .05, .05, 0, 0]),
             rng.integers(-(1 << 15), 1 << 15, size=n)) for n in (1, 5, 13, 4, 30)]
    centroids = rng.integers(-(1 << 15), 1 << 15, size=8)
    dut = (CollisionPE(config=config, bin_inputs=2) if kind == "collision"
           else SpillPE(config=config, spill_beats=3))
    words = [w for indexes, acts in rows for w in pe_beats(config, indexes, acts)]
    word = pack(centroids_fields(config), {"centroids": centroids})
    got, _, _ = run_stream(dut, words, len(rows), rng=np.random.default_rng(7), gap_prob=0.3,
                           stall_prob=0.3,
                           setup=lambda ctx: ctx.set(dut.centroids.as_value(), word))
    check_outputs([pe_dot(config, i, a, centroids)[0] for i, a in rows], got)
