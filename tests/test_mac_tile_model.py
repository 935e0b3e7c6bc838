"""golden.hwmodel.mac_tile: the MAC tile's layer checks, its load beats (address layout) and the
memory-compression form on real weights."""

import numpy as np
import pytest

from golden.config import mac_flavour
from golden.hwmodel.layer_image import ImageError
from golden.hwmodel.mac import decompress
from golden.hwmodel.mac_tile import (
    MacLayer,
    compressed_layer_from_float,
    compressed_streams,
    mac_layer_from_float,
    mac_load_beats,
    mac_tile_outputs,
    make_compressed_layer,
)
from golden.hwmodel.packing import (
    LoadTarget,
    mac_load_fields,
    unpack,
    weight_load_addr,
    weight_slice_fields,
)
from golden.quant.quantizer import quantize

CONFIG, W = mac_flavour("w8a8", pes=3, lanes=4, max_rows=12, max_dot_length=16, max_tokens=2)


def test_layer_rejects_bad_input():
    ok = np.zeros((4, 5), dtype=np.int64)
    cases = [
        (dict(weights=np.full((4, 5), 128), bias=np.zeros(4)), "weights"),
        (dict(weights=ok, bias=np.zeros(3)), r"bias must have shape \(4,\)"),
        (dict(weights=np.zeros((13, 5)), bias=np.zeros(13)), "exceeds max_rows=12"),
        (dict(weights=np.zeros(5), bias=np.zeros(1)), "non-empty 2-D"),
        (dict(weights=ok, bias=np.zeros(4), shift_dot=17), "outside 0..max_align_shift=16"),
        (dict(weights=ok, bias=np.zeros(4), out_shift=-1), "out_shift must not be negative"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ImageError, match=message):
            MacLayer(CONFIG, W, **kwargs)
    with pytest.raises(ValueError, match="weight_bits must be an integer between 2 and 32"):
        MacLayer(CONFIG, 40, ok, np.zeros(4))
    with pytest.raises(ImageError, match="indexes must lie in 0..7"):
        make_compressed_layer(CONFIG, W, indexes=np.full((2, 3), 8), centroids=np.zeros(8))
    with pytest.raises(ImageError, match="outlier row 5 is outside the 2 rows"):
        make_compressed_layer(CONFIG, W, indexes=np.zeros((2, 3)), centroids=np.zeros(8),
                              outliers=[(5, 0, 1)])
    with pytest.raises(ValueError, match="a dense MAC layer has no compressed form"):
        compressed_streams(MacLayer(CONFIG, W, ok, np.zeros(4)))


def test_load_beats_place_every_weight_once():
    """Decode the weight beats back into the memory image the tile will hold: PE p's slice of
    word b*C + j is row b*P + p, columns j*L.., padding rows and columns zero."""
    rng = np.random.default_rng(1)
    layer = MacLayer(CONFIG, W, rng.integers(-128, 128, (7, 10)), rng.integers(-99, 99, 7))
    fields = mac_load_fields(CONFIG, W)
    slice_field = weight_slice_fields(CONFIG, W)
    # The load address of every slice, inverted: no shifts or masks here.
    slices = {weight_load_addr(CONFIG, p, word): (p, word)
              for p in range(CONFIG.pes) for word in range(CONFIG.index_depth)}
    image = {}
    targets = []
    for beat in mac_load_beats(layer, np.ones((2, 10), dtype=np.int64)):
        b = unpack(fields, beat)
        targets.append(b["target"])
        if b["target"] == LoadTarget.WEIGHT:
            key = slices[b["addr"]]
            assert key not in image
            image[key] = unpack(slice_field, b["data"])["weights"]
    assert targets.count(LoadTarget.BIAS) == layer.blocks * CONFIG.pes
    assert targets.count(LoadTarget.ACTIVATION) == 2 * layer.chunks
    assert len(image) == layer.blocks * CONFIG.pes * layer.chunks
    rebuilt = np.zeros((layer.blocks * CONFIG.pes, layer.chunks * CONFIG.lanes), dtype=np.int64)
    for (p, word), values in image.items():
        b, j = divmod(word, layer.chunks)
        rebuilt[b * CONFIG.pes + p, j * CONFIG.lanes:(j + 1) * CONFIG.lanes] = values
    assert np.array_equal(rebuilt[:7, :10], layer.weights)
    assert not rebuilt[7:].any() and not rebuilt[:, 10:].any()
    with pytest.raises(ValueError, match="outside 3 PEs"):
        weight_load_addr(CONFIG, 3, 0)


def test_compressed_form_of_real_weights_decompresses_to_the_dense_weights(minilm):
    w = minilm["encoder.layer.2.attention.self.value.weight"][:12, :16]
    config, wb = mac_flavour("w16a16", pes=3, lanes=4, max_rows=12, max_dot_length=16,
                             max_tokens=2)
    gobo = quantize(w, index_bits=config.index_bits)
    layer = compressed_layer_from_float(config, wb, w, act_exponent=-10, gobo=gobo)
    form = layer.compressed
    for m in range(12):
        row = [(n, v) for r, n, v in form["outliers"] if r == m]
        assert np.array_equal(decompress(config, wb, form["indexes"][m], form["centroids"], row),
                              layer.weights[m])
    # 16-bit integers at one exponent are the GOBO reconstruction to half a step.
    e_w = layer.exponents["weights"]
    assert np.abs(layer.weights * 2.0 ** e_w - gobo.dequantize()).max() <= 2.0 ** (e_w - 1)
    dense = mac_layer_from_float(config, wb, w, act_exponent=-10)
    x = np.random.default_rng(0).integers(-1000, 1000, (2, 16))
    assert mac_tile_outputs(dense, x).shape == mac_tile_outputs(layer, x).shape == (12, 2)
