"""A layer longer than one pass (golden.hwmodel.passes, docs/offchip.md section 10): the
multi-pass outputs equal the single-pass outputs on every element, on real MiniLM matrices and
on seeded edge cases, and a corrupted carry is caught."""

import numpy as np
import pytest

from golden.config import GoboConfig, preset
from golden.hwmodel.layer_image import ImageError, calibrated_image, make_image
from golden.hwmodel.passes import (
    partial_sum_bytes,
    pass_columns,
    pass_images,
    pass_partials,
    passes_outputs,
    single_pass,
)
from golden.hwmodel.tile import saturated_outputs, tile_accumulators, tile_outputs

STREAM = preset("minilm_stream")
# A small datapath: 4 PEs x 4 lanes, passes of 16 columns, a 64-column layer in 4 passes.
TINY = preset("tiny").replace(max_dot_length=16, max_passes=4)


def check_passes(image, acts, **kwargs):
    """Every output and every final accumulator of the multi-pass run equals the single-pass
    run's; returns the pass partial sums. Raises AssertionError naming the first mismatch."""
    y, partials = passes_outputs(image, acts, **kwargs)
    one = single_pass(image)
    want_acc = tile_accumulators(one, acts)
    want_y = tile_outputs(one, acts)
    bad = [tuple(int(i) for i in at) for at in np.argwhere(y != want_y)]
    assert not bad, (f"{len(bad)} of {y.size} outputs differ, first at (row, token) {bad[0]}: "
                     f"{y[bad[0]]} != {want_y[bad[0]]}")
    np.testing.assert_array_equal(partials[-1], want_acc)
    return partials


@pytest.mark.parametrize("name, max_dot_length, passes", [
    ("encoder.layer.0.intermediate.dense", 192, 2),   # 1536 x 384
    ("encoder.layer.0.intermediate.dense", 128, 3),
    ("encoder.layer.0.intermediate.dense", 96, 4),
    ("encoder.layer.5.output.dense", 768, 2),         # 384 x 1536, the outlier-heaviest layer
    ("encoder.layer.5.output.dense", 512, 3),
])
def test_real_minilm_layers_in_passes_equal_one_pass(minilm, name, max_dot_length, passes):
    config = STREAM.replace(max_dot_length=max_dot_length, max_passes=passes)
    weights = minilm[name + ".weight"]
    acts = np.random.default_rng(3).standard_normal((6, weights.shape[1])) * 2.0
    image, x, _ = calibrated_image(config, weights, acts, bias=minilm[name + ".bias"],
                                   streamed=True)
    assert len(pass_images(image)) == passes
    partials = check_passes(image, x)
    assert len(partials) == passes
    # The carried partial sums are real: not the final sums, of both signs.
    assert not np.array_equal(partials[0], partials[-1])
    assert partials[0].min() < 0 < partials[0].max()


def test_a_corrupted_carry_is_caught(minilm):
    name = "encoder.layer.5.output.dense"
    config = STREAM.replace(max_dot_length=768, max_passes=2)
    weights = minilm[name + ".weight"]
    acts = np.random.default_rng(4).standard_normal((4, weights.shape[1]))
    image, x, _ = calibrated_image(config, weights, acts, bias=minilm[name + ".bias"],
                                   streamed=True)
    check_passes(image, x)

    def one_step_off(carry):
        # One output step (2**out_shift accumulator steps) on one element not near the clamp.
        carry = carry.copy()
        carry[5, 2] += 1 << image.out_shift
        return carry
    with pytest.raises(AssertionError, match=r"1 of 1536 outputs differ, first at .* \(5, 2\)"):
        check_passes(image, x, corrupt=one_step_off)

    def dropped(carry):
        return np.zeros_like(carry)       # a pass that forgot the carry: today's per-pass run
    with pytest.raises(AssertionError, match="outputs differ"):
        check_passes(image, x, corrupt=dropped)


def _seeded_image(rng, config, cols, *, outliers, out_shift=8, shift_dot=2, shift_corr=0):
    rows = 9                             # 3 blocks of 4 PEs, the last one part-filled
    indexes = rng.integers(0, config.n_centroids, (rows, cols))
    centroids = np.sort(rng.integers(-(1 << 15), 1 << 15, config.n_centroids))
    bias = rng.integers(-(1 << 20), 1 << 20, rows)
    return make_image(config, indexes=indexes, centroids=centroids, outliers=outliers, bias=bias,
                      shift_dot=shift_dot, shift_corr=shift_corr, shift_bias=3,
                      out_shift=out_shift, streamed=True)


def test_outliers_at_the_pass_boundaries_go_to_their_pass():
    rng = np.random.default_rng(7)
    cols = 60                            # passes 0..15, 16..31, 32..47, 48..59
    boundary = [0, 15, 16, 31, 32, 47, 48, 59]
    outliers = [(m, n, int(rng.integers(-(1 << 15), 1 << 15)))
                for m in range(9) for n in boundary]
    image = _seeded_image(rng, TINY, cols, outliers=outliers)
    parts = pass_images(image)
    assert [p.cols for p in parts] == [16, 16, 16, 12]
    for (start, stop), part in zip(pass_columns(cols, 16), parts):
        # Each pass holds exactly the records of its columns, renumbered from its first column.
        want = sorted((m, n - start, r) for m, n, r in outliers if start <= n < stop)
        got = sorted(zip(part.outlier_rows.tolist(), part.outlier_cols.tolist(),
                         part.outlier_residuals.tolist()))
        assert got == want
    # Biases once, in the last pass.
    assert all(not p.bias.any() for p in parts[:-1])
    np.testing.assert_array_equal(parts[-1].bias, image.bias)
    x = rng.integers(-(1 << 15), 1 << 15, (4, cols))
    check_passes(image, x)


def test_saturating_outputs_and_negative_partial_sums_match_one_pass():
    rng = np.random.default_rng(11)
    image = _seeded_image(rng, TINY, 64, outliers=[(1, 16, -30000), (2, 15, 30000)], out_shift=2)
    x = rng.integers(-(1 << 15), 1 << 15, (4, 64))
    partials = check_passes(image, x)
    assert partials[0].min() < 0 and partials[1].min() < 0
    # Most outputs clamp at this out_shift: the clamp happens once, after the last pass.
    y, _ = passes_outputs(image, x)
    saturated = saturated_outputs(TINY, partials[-1], image.out_shift)
    assert saturated > y.size // 2
    assert saturated == saturated_outputs(TINY, tile_accumulators(single_pass(image), x),
                                          image.out_shift)


def test_the_accumulator_holds_the_whole_layer_not_one_pass():
    # Every term at its extreme: 64 columns of the most negative centroid and outlier residual
    # times the most negative activation, both shifted by max_align_shift.
    n, config = 64, TINY
    image = make_image(config, indexes=np.zeros((4, n), dtype=np.int64),
                       centroids=[-(1 << 15)] + [0] * (config.n_centroids - 1),
                       outliers=[(0, c, -(1 << 15)) for c in range(n)],
                       shift_dot=16, shift_corr=16, out_shift=40)
    x = np.full((2, n), -(1 << 15))
    partials = check_passes(image, x)
    top = int(partials[-1].max())
    assert top == (n << 30) << 17
    one_pass_width = config.replace(max_passes=1).acc_bits
    assert top >= 1 << (one_pass_width - 1)          # a one-pass accumulator would overflow
    assert top < 1 << (config.acc_bits - 1)


def test_a_pass_refuses_a_carry_of_the_wrong_shape_or_width():
    rng = np.random.default_rng(5)
    image = _seeded_image(rng, TINY, 32, outliers=[])
    first = pass_images(image)[0]
    x = rng.integers(-100, 100, (2, 16))
    with pytest.raises(ValueError, match=r"carried partial sums must be \(12, 2\)"):
        pass_partials(first, x, np.zeros((12, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="carried partial sums must fit signed 56-bit"):
        pass_partials(first, x, np.full((12, 2), 1 << 56, dtype=np.int64))


def test_limits_of_passes():
    # More columns than max_passes passes hold: refused in one line.
    with pytest.raises(ImageError, match="65 columns exceed max_dot_length=16 x max_passes=4"):
        make_image(TINY, indexes=np.zeros((4, 65), dtype=np.int64),
                   centroids=list(range(TINY.n_centroids)))
    # The one-pass tile cannot take a multi-pass image directly.
    image = make_image(TINY, indexes=np.zeros((4, 20), dtype=np.int64),
                       centroids=list(range(TINY.n_centroids)))
    with pytest.raises(ValueError, match="dot product length 20 exceeds max_dot_length=16"):
        tile_accumulators(image, np.zeros((1, 20), dtype=np.int64))
    # The accumulator is sized for every pass; beyond 64 bits the tile is refused.
    assert preset("bert_large_stream").replace(max_passes=4).acc_bits == 64
    with pytest.raises(ValueError, match=r"65 bits .* 5 passes of 4096 columns\); the datapath"):
        preset("bert_large_stream").replace(max_passes=5).check_tile()
    with pytest.raises(ValueError, match="max_passes must be an integer between 1 and 65536"):
        GoboConfig(max_passes=0)
    # Default presets are one pass: nothing changes for them.
    assert all(preset(name).max_passes == 1 for name in ("minilm", "minilm_stream", "tiny"))


def test_partial_sum_traffic():
    # MiniLM's 384 x 1536 FFN output layer at 128 tokens: 24 blocks x 128 tokens x a beat of
    # 16 accumulators of 61 bits (122 bytes), each way, per carried pass boundary.
    config = STREAM.replace(max_dot_length=768, max_passes=2)
    assert config.acc_bits == 61
    assert partial_sum_bytes(config, 384, 128) == 24 * 128 * 122 == 374_784


def test_cli_runs_a_wide_layer_as_passes_or_says_why_not():
    """`gobo simulate`'s choice for a layer wider than the preset's max_dot_length: the
    streaming GOBO tile with max_passes raised to the passes needed; one line otherwise."""
    import argparse

    from gobo.commands.simulate import _passes_config
    from gobo.common import CliError

    args = argparse.Namespace(tensor="w", preset="p", flavour="w8a8")
    config = _passes_config(preset("ulx3s"), 1536, args, True, None)
    assert config.max_passes == 4 and config.max_dot_length == 384
    assert _passes_config(preset("minilm_stream_2pass"), 1536, args, True, None) == \
        preset("minilm_stream_2pass")
    with pytest.raises(CliError, match=r"^w has 1536 columns; preset p takes at most "
                                       r"max_dot_length=384 \(--preset auto or a \*_stream "
                                       r"preset runs it on the streaming tile, in "
                                       r"passes\)$"):
        _passes_config(preset("ulx3s"), 1536, args, False, None)
    with pytest.raises(CliError, match="passes are built for the GOBO tile only, not --flavour "
                                       "w8a8$"):
        _passes_config(preset("ulx3s"), 1536, args, True, 8)
    with pytest.raises(CliError, match=r"in 5 passes the tile accumulator would need 65 bits"):
        _passes_config(preset("bert_large_stream"), 5 * 4096, args, True, None)


def test_image_files_keep_their_passes_and_old_files_are_one_pass(tmp_path):
    import json

    from golden.hwmodel.layer_image import load_image, save_image
    rng = np.random.default_rng(9)
    image = _seeded_image(rng, TINY, 40, outliers=[(2, 17, 123)])
    save_image(image, tmp_path / "wide.npz")
    back = load_image(tmp_path / "wide.npz")
    assert back.config == TINY and back.cols == 40
    np.testing.assert_array_equal(passes_outputs(back, np.ones((1, 40), dtype=np.int64))[0],
                                  passes_outputs(image, np.ones((1, 40), dtype=np.int64))[0])
    # A file written before max_passes existed: its configuration lacks the field.
    one = preset("tiny")
    save_image(make_image(one, indexes=np.zeros((4, 8), dtype=np.int64),
                          centroids=list(range(8))), tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    del meta["config"]["max_passes"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(tmp_path / "old.npz", **arrays)
    assert load_image(tmp_path / "old.npz").config == one


def test_carry_schedule():
    from golden.hwmodel.passes import CarrySchedule
    slow = CarrySchedule(latency=5, interval=3)
    assert [slow.available(k, 10) for k in range(4)] == [True, True, False, False]
    assert slow.last_arrival(4) == 14 and CarrySchedule().available(99, 0)
    assert slow.to_dict() == {"latency": 5, "interval": 3}
    with pytest.raises(ValueError, match="interval must be"):
        CarrySchedule(interval=-1)
    with pytest.raises(TypeError, match="latency must be"):
        CarrySchedule(latency=1.5)
