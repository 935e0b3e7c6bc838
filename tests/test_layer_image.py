"""Layer image: construction from real weights, memory words, load beats, the versioned file and
its validation."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from golden.config import preset
from golden.hwmodel.layer_image import (
    ImageError,
    balanced_row_order,
    build_layer_image,
    fixed_bias,
    layer_word,
    load_beats,
    load_image,
    logical_outputs,
    make_image,
    quantize_activations,
    save_image,
)
from golden.hwmodel.packing import (
    LoadTarget,
    bias_word_fields,
    index_word_fields,
    layer_fields,
    load_fields,
    offset_word_fields,
    outlier_word_fields,
    unpack,
)
from golden.hwmodel.tile import tile_accumulators

TINY = preset("tiny")


def random_image(config=TINY, *, rows=10, cols=13, n_outliers=9, seed=0, **kw):
    rng = np.random.default_rng(seed)
    positions = rng.choice(rows * cols, size=n_outliers, replace=False)
    low, high = -(1 << (config.residual_bits - 1)), (1 << (config.residual_bits - 1)) - 1
    return make_image(
        config, indexes=rng.integers(0, config.n_centroids, (rows, cols)),
        centroids=rng.integers(-1000, 1000, config.n_centroids),
        outliers=[(p // cols, p % cols, int(rng.integers(low, high))) for p in positions],
        bias=rng.integers(-5000, 5000, rows), **kw)


def test_index_words_hold_each_pe_row_chunk():
    image = random_image()
    words = image.index_words()
    assert len(words) == image.blocks * image.chunks
    padded = image.padded_indexes()
    lanes = TINY.lanes
    for b in range(image.blocks):
        for j in range(image.chunks):
            indexes = unpack(index_word_fields(TINY), words[b * image.chunks + j])["indexes"]
            for p in range(TINY.pes):
                assert indexes[p] == padded[b * TINY.pes + p, j * lanes:(j + 1) * lanes].tolist()


def test_outlier_words_group_records_by_block_in_position_order():
    image = random_image(n_outliers=30)
    words, offsets = image.outlier_words()
    seen = []
    for b in range(image.blocks):
        for word in words[offsets[b]:offsets[b + 1]]:
            for rec in unpack(outlier_word_fields(TINY), word)["records"]:
                if rec["valid"]:
                    seen.append((b * TINY.pes + rec["row"], rec["col"], rec["residual"]))
    expected = list(zip(image.outlier_rows.tolist(), image.outlier_cols.tolist(),
                        image.outlier_residuals.tolist()))
    assert seen == expected
    assert offsets[-1] == len(words) == sum(image.words_per_block())


def test_load_beats_cover_every_memory():
    image = random_image()
    beats = [unpack(load_fields(TINY), b) for b in load_beats(image)]
    targets = [b["target"] for b in beats]
    words, offsets = image.outlier_words()
    assert targets.count(LoadTarget.INDEX) == image.blocks * image.chunks
    assert targets.count(LoadTarget.OUTLIER) == len(words)
    assert targets.count(LoadTarget.OFFSET) == image.blocks + 1
    assert targets.count(LoadTarget.BIAS) == image.blocks * TINY.pes   # padded rows get bias 0
    bias = [unpack(bias_word_fields(TINY), b["data"])["bias"] for b in beats
            if b["target"] == LoadTarget.BIAS]
    assert bias == image.bias.tolist() + [0, 0]
    assert [unpack(offset_word_fields(TINY), b["data"])["offset"] for b in beats
            if b["target"] == LoadTarget.OFFSET] == offsets


def test_layer_word_round_trips():
    image = random_image(shift_dot=3, out_shift=7)
    fields = unpack(layer_fields(TINY), layer_word(image, tokens=3))
    assert fields["centroids"] == image.centroids.tolist()
    assert (fields["blocks"], fields["chunks"], fields["tokens"]) == (3, 4, 3)
    assert (fields["shift_dot"], fields["shift_corr"], fields["out_shift"]) == (3, 0, 7)


@pytest.mark.parametrize("change, message", [
    (dict(rows=65), "65 rows exceed max_rows=64"),
    (dict(cols=65), "65 columns exceed max_dot_length=64"),
    (dict(shift_dot=17), "shift_dot=17 is outside 0..max_align_shift=16"),
    (dict(n_outliers=0, out_shift=99), "out_shift=99 is outside"),
])
def test_inconsistent_images_are_rejected(change, message):
    with pytest.raises(ImageError, match=message):
        random_image(**change)


def test_bad_parts_are_rejected():
    with pytest.raises(ImageError, match="indexes must lie in"):
        make_image(TINY, indexes=[[8]], centroids=range(8))
    with pytest.raises(ImageError, match="the dictionary must hold 8 centroids"):
        make_image(TINY, indexes=[[1]], centroids=range(4))
    with pytest.raises(ImageError, match="outlier columns must lie in"):
        make_image(TINY, indexes=[[1, 2]], centroids=range(8), outliers=[(0, 2, 5)])
    with pytest.raises(ImageError, match="outlier residuals must fit signed 16-bit"):
        make_image(TINY, indexes=[[1, 2]], centroids=range(8), outliers=[(0, 1, 1 << 15)])
    with pytest.raises(ImageError, match="without repeats"):
        make_image(TINY, indexes=[[1, 2]], centroids=range(8), outliers=[(0, 1, 3), (0, 1, 4)])
    with pytest.raises(ImageError, match="outlier memory holds max_outlier_words=512"):
        make_image(TINY, indexes=np.zeros((64, 64), int), centroids=range(8),
                   outliers=[(p // 64, p % 64, 1) for p in range(2100)])


def test_file_round_trip(tmp_path):
    image = random_image(shift_corr=2, out_shift=5)
    path = tmp_path / "layer.npz"
    save_image(image, path)
    back = load_image(path, TINY)
    for name in ("indexes", "centroids", "outlier_rows", "outlier_cols", "outlier_residuals",
                 "bias"):
        np.testing.assert_array_equal(getattr(back, name), getattr(image, name))
    assert (back.shift_dot, back.shift_corr, back.out_shift) == (0, 2, 5)
    assert back.index_words() == image.index_words()


def _rewrite(path, **replace):
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.update(replace)
    np.savez(path, **arrays)


def test_file_validation(tmp_path):
    image = random_image()
    path = tmp_path / "layer.npz"
    save_image(image, path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupted"):
        load_image(tmp_path / "cut.npz")
    with pytest.raises(ImageError, match="made for another configuration: lanes=4 in the file, "
                                         "16 here"):
        load_image(path, preset("minilm"))
    meta = json.loads(str(np.load(path)["meta"]))
    _rewrite(path, meta=np.array(json.dumps({**meta, "version": 99})))
    with pytest.raises(ImageError, match="version 99 is not supported"):
        load_image(path)
    save_image(image, path)
    rows = np.load(path)["outlier_rows"].copy()
    rows[0] = 999
    _rewrite(path, outlier_rows=rows)
    with pytest.raises(ImageError, match="outlier rows must lie in"):
        load_image(path)
    save_image(image, path)
    rows = np.load(path)["outlier_rows"][::-1].copy()
    _rewrite(path, outlier_rows=rows)
    with pytest.raises(ImageError, match="sorted by position"):
        load_image(path)
    save_image(image, path)
    _rewrite(path, indexes=np.load(path)["indexes"][:, :3])
    with pytest.raises(ImageError, match="bias must have shape|columns must lie"):
        load_image(path)
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ImageError, match="missing meta"):
        load_image(tmp_path / "empty.npz")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.npz")


def test_real_layer_image_reconstructs_the_quantized_layer(minilm):
    """acc * 2**(e_a + e_x) equals the float layer on GOBO's dequantized weights, within the
    fixed-point rounding of centroids, residuals and bias."""
    from golden.hwmodel.tile import tile_accumulators
    from golden.quant.quantizer import quantize
    config = preset("minilm")
    name = "encoder.layer.0.attention.output.dense"
    w, b = minilm[f"{name}.weight"], minilm[f"{name}.bias"]
    x = np.random.default_rng(3).standard_normal((3, w.shape[1]))
    xq, e_x = quantize_activations(config, x)
    layer = quantize(w, index_bits=3)
    image = build_layer_image(config, w, bias=b, act_exponent=e_x, layer=layer)
    assert image.n_outliers == layer.n_outliers > 0
    e_a = min(image.exponents["centroids"], image.exponents["residuals"])
    got = logical_outputs(image, tile_accumulators(image, xq)).T * 2.0 ** (e_a + e_x)
    want = (xq * 2.0 ** e_x) @ layer.dequantize().astype(np.float64).T + b
    assert np.max(np.abs(got - want)) < 1e-3 * np.max(np.abs(want))


def test_balanced_row_order_spreads_heavy_rows():
    counts = [0] * 16
    counts[0:4] = [40, 30, 20, 10]            # the heavy rows all sit in the first block
    order = balanced_row_order(counts, 4)
    assert sorted(order.tolist()) == list(range(16))
    per_block = [sum(counts[r] for r in order[b * 4:(b + 1) * 4]) for b in range(4)]
    assert per_block == [40, 30, 20, 10]
    odd = balanced_row_order([5, 0, 0, 9, 1], 2)   # the last block holds one row
    assert sorted(odd.tolist()) == list(range(5)) and len(odd) == 5


def test_balanced_image_keeps_the_layer(minilm):
    """Balancing changes only the order of rows: outputs in logical order are identical."""
    from golden.hwmodel.tile import tile_outputs
    config = preset("minilm")
    w = minilm["encoder.layer.0.attention.self.query.weight"]
    xq, e_x = quantize_activations(config, np.random.default_rng(4).standard_normal((2, 384)))
    plain = build_layer_image(config, w, act_exponent=e_x, balance_rows=False)
    balanced = build_layer_image(config, w, act_exponent=e_x, balance_rows=True)
    assert max(balanced.words_per_block()) < max(plain.words_per_block())
    np.testing.assert_array_equal(logical_outputs(balanced, tile_outputs(balanced, xq)),
                                  logical_outputs(plain, tile_outputs(plain, xq)))
    with pytest.raises(ImageError, match="row_order must be a permutation of the 1 rows"):
        make_image(TINY, indexes=[[1]], centroids=range(8), row_order=[1])


def test_auto_row_order_takes_the_faster_schedule(minilm):
    """On layer 0's query the even spread wins; on layer 5's output.dense (one row of 492
    outliers) keeping the rows in place leaves light blocks the side path runs ahead on."""
    from golden.hwmodel.tile import tile_cycles_of_image
    config = preset("minilm")
    for name, winner in (("encoder.layer.0.attention.self.query.weight", True),
                         ("encoder.layer.5.output.dense.weight", False)):
        images = {b: build_layer_image(config, minilm[name], act_exponent=0, balance_rows=b)
                  for b in (True, False, "auto")}
        cycles = {b: tile_cycles_of_image(image, 8)["cycles"] for b, image in images.items()}
        assert cycles["auto"] == min(cycles[True], cycles[False]) == cycles[winner]
    with pytest.raises(ImageError, match="balance_rows must be True, False or 'auto'"):
        build_layer_image(config, minilm[name], act_exponent=0, balance_rows="yes")


def _resaved(path, change):
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(meta=np.array("[" * 50000)), "nested too deeply"),
    (lambda a: a.update(meta=np.array('{"format": "gobo-layer-image", "version": true}')),
     "version True is not supported"),
    (lambda a: a.update(meta=np.array(json.dumps({**json.loads(str(a["meta"])),
                                                  "shift_dot": "2"}))),
     "shift_dot is '2', not an integer"),
    (lambda a: a.update(meta=np.zeros(3)), "metadata is not one string"),
    (lambda a: a.update(indexes=a["indexes"][..., None]), "indexes is 3-D, not 2-D"),
    (lambda a: a.update(bias=np.zeros(10 ** 6, np.int8)), "bias holds 1000000 values"),
    (lambda a: a.update(indexes=np.zeros((5000, 3), np.uint8)), "exceed max_rows"),
    (lambda a: a.update(centroids=a["centroids"].astype(object)), "only numbers"),
])
def test_damaged_image_files_name_the_problem(tmp_path, change, message):
    path = tmp_path / "layer.npz"
    save_image(random_image(), path)
    if message == "only numbers":
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        arrays["centroids"] = arrays["centroids"].astype(object)
        np.savez(path, allow_pickle=True, **arrays)
    else:
        _resaved(path, change)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _with_meta(change):
    def edit(arrays):
        meta = json.loads(str(arrays["meta"]))
        change(meta)
        arrays["meta"] = np.array(json.dumps(meta))
    return edit


_EXPONENTS = {"centroids": -9, "residuals": -12, "activations": -5, "bias": -14, "outputs": -7}


@pytest.mark.parametrize("change, message", [
    (_with_meta(lambda m: m.pop("exponents")), "metadata lacks 'exponents'"),
    (_with_meta(lambda m: m.update(exponents=[1, 2])), "exponents is not an object of integers"),
    (_with_meta(lambda m: m.update(exponents={**_EXPONENTS, "outputs": "7"})),
     "exponents is not an object of integers"),
    (_with_meta(lambda m: m.update(exponents={**_EXPONENTS, "outputs": True})),
     "exponents is not an object of integers"),
    (_with_meta(lambda m: m.update(exponents={**_EXPONENTS, "outputs": 2.5})),
     "exponents is not an object of integers"),
    (_with_meta(lambda m: m.update(exponents={"centroids": -9})),
     "exponents has keys centroids, not centroids, residuals, activations, bias, outputs"),
    (_with_meta(lambda m: m["config"].pop("lanes")), "configuration lacks 'lanes'"),
    (_with_meta(lambda m: [m["config"].pop(k) for k in ("pes", "lanes")]),
     "configuration lacks 'lanes', 'pes'"),
    (_with_meta(lambda m: m.pop("shift_bias")), "metadata lacks 'shift_bias'"),
    (lambda a: a.update(indexes=a["indexes"] > 3), "indexes is a boolean array"),
    (lambda a: a.update(row_order=np.ones(10, bool)), "row_order is a boolean array"),
])
def test_image_metadata_keys_and_types_are_required(tmp_path, change, message):
    """exponents required with integer values, every GoboConfig field required (a missing one
    would take its default), boolean arrays refused (issue 11)."""
    path = tmp_path / "layer.npz"
    save_image(random_image(exponents=_EXPONENTS), path)
    assert load_image(path).exponents == _EXPONENTS
    _resaved(path, change)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_image_with_a_foreign_member_and_a_folder(tmp_path):
    path = tmp_path / "layer.npz"
    save_image(random_image(), path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("readme.txt", b"hello")
    with pytest.raises(ImageError, match="member 'readme.txt' is not a .npy array"):
        load_image(path)
    with pytest.raises(ImageError, match="is not a regular file"):
        load_image(tmp_path)


MINILM = preset("minilm")


# The bias at its own exponent (docs/numerics.md, "Bias") ----------------------------------------

def test_fixed_bias_rule():
    """Fits at the accumulator's exponent: shift 0 and the old integers. Too large: the finest
    shift that fits. Beyond max_align_shift: saturated and counted."""
    bias = np.array([1.5, -2.25, 0.0])
    fixed = fixed_bias(MINILM, bias, 3, e_acc=-4, out_exponent=-1)
    assert (fixed.values.tolist(), fixed.shift, fixed.out_shift, fixed.saturated) == \
        ([24, -36, 0], 0, 3, 0)
    # 3.0 at exponent -40 is 3 * 2**40: it fits 32 bits from exponent -29 (3 * 2**29 < 2**31).
    fixed = fixed_bias(MINILM, np.array([3.0, 1.0]), 2, e_acc=-40)
    assert fixed.shift == 11 and fixed.saturated == 0
    assert fixed.values.tolist() == [3 << 29, 1 << 29]
    fixed = fixed_bias(MINILM, np.array([3.0, 1e-12]), 2, e_acc=-60)
    assert fixed.shift == MINILM.max_align_shift and fixed.saturated == 1
    assert fixed.values.tolist() == [(1 << 31) - 1, round(1e-12 * 2.0 ** 44)]   # 18
    assert fixed_bias(MINILM, None, 2, e_acc=-60).shift == 0
    with pytest.raises(ImageError, match="bias contains NaN or Inf"):
        fixed_bias(MINILM, np.array([np.nan, 1.0]), 2, e_acc=0)


def test_the_bias_shift_reaches_the_outputs_exactly():
    """An image whose bias needs a shift gives the outputs of an exact computation in Python
    integers, and a corrupted shift changes them (the check can fail)."""
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((9, 13)) * 1e-3
    acts_int = rng.integers(-(1 << 15), 1 << 15, (2, 13))
    image = build_layer_image(MINILM, weights, act_exponent=-15, bias=rng.standard_normal(9),
                              balance_rows=False)
    assert 0 < image.shift_bias <= MINILM.max_align_shift and image.bias_saturated == 0
    acc = tile_accumulators(image, acts_int)[:9]
    dense = (image.centroids[image.indexes] << image.shift_dot).astype(object)
    for m, n, r in zip(image.outlier_rows, image.outlier_cols, image.outlier_residuals):
        dense[m, n] += int(r) << image.shift_corr
    want = [[sum(int(a) * int(b) for a, b in zip(row, x)) + (int(bias) << image.shift_bias)
             for x in acts_int] for row, bias in zip(dense, image.bias)]
    assert acc.tolist() == want
    wrong = dataclasses.replace(image, shift_bias=image.shift_bias - 1)
    assert tile_accumulators(wrong, acts_int)[:9].tolist() != want


def test_version_1_layer_images_still_load(tmp_path):
    """A file written before the bias shift (format version 1, no shift_bias) loads with shift 0;
    the current version round-trips the shift."""
    import json
    import zipfile
    image = build_layer_image(MINILM, np.random.default_rng(1).standard_normal((5, 7)),
                              act_exponent=-30, bias=np.ones(5), balance_rows=False)
    path = tmp_path / "v2.npz"
    save_image(image, path)
    assert load_image(path).shift_bias == image.shift_bias > 0
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["version"] = 1
    del meta["shift_bias"], meta["bias_saturated"], meta["exponents"]["bias"]
    old = tmp_path / "v1.npz"
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    assert zipfile.is_zipfile(old)
    assert load_image(old).shift_bias == 0
    meta["exponents"]["bias"] = 0     # version 1 had no bias exponent
    np.savez(old, meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(ImageError, match="exponents has keys activations, bias, "):
        load_image(old)
