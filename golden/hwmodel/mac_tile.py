"""Bit-exact model of the MAC baseline tile and of its memory-compression mode (docs/tile.md
section 6): a layer of dense integer weights, its load beats, its outputs and its cycle count.

The MAC tile runs the GOBO tile's schedule (slots ``(b, t)``, ``b`` major, one activation word
broadcast per cycle) on conventional MAC PEs, with the same merge: ``Y = clamp((acc +
2**(out_shift-1)) >> out_shift)``, ``acc = (W x << shift_dot) + bias``. Weights are quantized per
tensor to ``weight_bits`` at a power-of-two exponent (as the GOBO tile's centroids are), so every
row's dot product is at one exponent and the merge needs no per-row multiplier.

In memory-compression mode (GOBO's first application) the weights arrive in GOBO form, indexes
plus a dictionary of integer weights plus outliers, and the tile's decompressor writes the dense
words into the weight memory; the run is then the dense tile's, bit for bit.
"""

import dataclasses

import numpy as np

from golden.hwmodel.fixedpoint import check_signed, to_fixed
from golden.hwmodel.layer_image import (
    ImageError,
    TiledLayer,
    act_beats,
    bias_beats,
    fixed_bias,
    gobo_quantized,
    make_image,
)
from golden.hwmodel.mac import decompress, mac_dot
from golden.hwmodel.packing import (
    LoadTarget,
    decompressor_streams,
    mac_acc_bits,
    mac_input_fields,
    mac_layer_fields,
    mac_load_fields,
    pack,
    weight_load_addr,
    weight_slice_fields,
)
from golden.hwmodel.tile import requantize

__all__ = ["MacLayer", "mac_tile_outputs", "mac_tile_accumulators", "mac_tile_cycles",
           "mac_load_beats", "mac_layer_word",
           "mac_layer_from_float", "compressed_layer_from_float", "make_compressed_layer",
           "compressed_streams", "compressed_image"]


@dataclasses.dataclass(frozen=True, eq=False)
class MacLayer(TiledLayer):
    """One layer for the MAC tile: integer ``weights`` (M, N), ``bias`` (M,) at the
    accumulator's exponent plus ``shift_bias``, ``shift_dot`` and ``out_shift``;
    ``bias_saturated`` as in :class:`~golden.hwmodel.layer_image.LayerImage`. ``compressed``
    holds the GOBO form ``{"indexes" (M, N), "centroids" (K,), "outliers" [(m, n, value)]}`` the
    weights came from, in memory-compression mode (None for a dense layer)."""
    config: object
    weight_bits: int
    weights: np.ndarray
    bias: np.ndarray
    shift_dot: int = 0
    out_shift: int = 0
    compressed: dict = None
    exponents: dict = dataclasses.field(default_factory=dict)
    shift_bias: int = 0
    bias_saturated: int = 0
    _matrix = "weights"

    def __post_init__(self):
        config = self.config
        mac_input_fields(config, self.weight_bits)          # validates weight_bits
        weights = np.asarray(self.weights, dtype=np.int64)
        bias = np.asarray(self.bias, dtype=np.int64)
        if weights.ndim != 2 or weights.size == 0:
            raise ImageError(f"weights must be a non-empty 2-D matrix, not shape {weights.shape}")
        rows, cols = weights.shape
        if rows > config.max_rows or cols > config.max_dot_length:
            raise ImageError(f"a {rows} x {cols} layer exceeds max_rows={config.max_rows} or "
                             f"max_dot_length={config.max_dot_length}")
        if bias.shape != (rows,):
            raise ImageError(f"bias must have shape ({rows},), not {bias.shape}")
        for name in ("shift_dot", "shift_bias"):
            if not 0 <= getattr(self, name) <= config.max_align_shift:
                raise ImageError(f"{name}={getattr(self, name)} is outside 0..max_align_shift="
                                 f"{config.max_align_shift}")
        if self.out_shift < 0:
            raise ImageError(f"out_shift must not be negative, not {self.out_shift}")
        try:
            check_signed("weights", weights, self.weight_bits)
            check_signed("bias", bias, config.bias_bits)
        except ValueError as e:
            raise ImageError(str(e)) from None
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "bias", bias)

    def padded_weights(self):
        """(blocks * pes, N) as the tile holds them: padding rows are 0, or in
        memory-compression mode index 0 decompressed (centroid 0), as in the GOBO tile."""
        fill = 0 if self.compressed is None else int(self.compressed["centroids"][0])
        padded = np.full((self.blocks * self.config.pes, self.cols), fill, dtype=np.int64)
        padded[:self.rows] = self.weights
        return padded


def mac_tile_outputs(layer, acts):
    """``Y`` (blocks * pes, T) of the MAC tile, padded rows (weights 0, bias 0) included."""
    return requantize(layer.config, mac_tile_accumulators(layer, acts), layer.out_shift)


def mac_tile_accumulators(layer, acts):
    """``acc[m, t]`` of the MAC tile before requantization, for every row of the padded blocks
    (``blocks * pes``) and token; int64, checked to fit the accumulator."""
    config = layer.config
    acts = np.asarray(acts, dtype=np.int64)
    if acts.ndim != 2 or acts.shape[1] != layer.cols:
        raise ValueError(f"activations must be (tokens, {layer.cols}), not {acts.shape}")
    padded = layer.padded_weights()
    bias = np.zeros(len(padded), dtype=np.int64)
    bias[:layer.rows] = layer.bias
    dot = np.stack([mac_dot(config, layer.weight_bits, padded, x) for x in acts], axis=1)
    acc = (dot << layer.shift_dot) + (bias[:, None] << layer.shift_bias)
    check_signed("accumulators", acc, mac_acc_bits(config, layer.weight_bits))
    return acc


def mac_tile_cycles(layer, tokens):
    """The tile's counters after a run of ``tokens`` tokens with ``o`` always ready: ``T*B*C``
    beats plus ``config.mac_tile_fill_drain`` (addressing the first words, the MAC PE's latency,
    the merge's). The MAC PE never refuses a beat while the merge takes every result at once, so
    nothing stalls."""
    config = layer.config
    beats = tokens * layer.chunks
    return {
        "cycles": tokens * layer.blocks * layer.chunks + config.mac_tile_fill_drain,
        "busy": [beats * sum(b * config.pes + p < layer.rows for b in range(layer.blocks))
                 for p in range(config.pes)],
        "stall_outlier": 0, "stall_recon": 0, "stall_output": 0, "outliers": 0,
    }


def _weight_slices(layer):
    """``(pe, word, lanes weights)`` of every weight memory slice the layer fills."""
    config = layer.config
    lanes, pes = config.lanes, config.pes
    padded = np.zeros((layer.blocks * pes, layer.chunks * lanes), dtype=np.int64)
    padded[:, :layer.cols] = layer.padded_weights()
    for m in range(len(padded)):
        b, p = divmod(m, pes)
        for j in range(layer.chunks):
            yield p, b * layer.chunks + j, padded[m, j * lanes:(j + 1) * lanes]


def mac_load_beats(layer, acts=None, *, weights=True):
    """The load beats of ``layer``: its weight slices (unless ``weights`` is False: the
    memory-compression tile writes them itself), its biases (padded rows get 0), then the
    activations ``acts`` (T, N) if given."""
    config = layer.config
    fields = mac_load_fields(config, layer.weight_bits)
    slice_field = weight_slice_fields(config, layer.weight_bits)
    beats = []
    if weights:
        beats += [pack(fields, {"target": LoadTarget.WEIGHT,
                                "addr": weight_load_addr(config, p, word),
                                "data": pack(slice_field, {"weights": values})})
                  for p, word, values in _weight_slices(layer)]
    beats += bias_beats(layer, fields)
    if acts is not None:
        beats += act_beats(config, acts, fields)
    return beats


def mac_layer_word(layer, tokens):
    """The packed value of the MAC tile's static ``layer`` port for ``tokens`` tokens."""
    config = layer.config
    if not 1 <= tokens <= config.max_tokens:
        raise ImageError(f"{tokens} tokens exceed max_tokens={config.max_tokens}")
    centroids = (layer.compressed["centroids"] if layer.compressed is not None
                 else np.zeros(config.n_centroids, dtype=np.int64))
    return pack(mac_layer_fields(config, layer.weight_bits), {
        "centroids": centroids, "blocks": layer.blocks, "chunks": layer.chunks,
        "tokens": tokens, "shift_dot": layer.shift_dot, "shift_bias": layer.shift_bias,
        "out_shift": layer.out_shift, "rows": layer.rows})


def _bias_and_shift(config, bias, rows, e_w, act_exponent, out_exponent):
    """The :class:`MacLayer` fields of :func:`~golden.hwmodel.layer_image.fixed_bias` at the
    accumulator's exponent ``e_w + e_x``, with the layer's exponents."""
    e_acc = e_w + act_exponent
    fixed = fixed_bias(config, bias, rows, e_acc, out_exponent)
    return {"bias": fixed.values, "shift_bias": fixed.shift, "out_shift": fixed.out_shift,
            "bias_saturated": fixed.saturated,
            "exponents": {"weights": e_w, "activations": act_exponent, "bias": e_acc + fixed.shift,
                          "outputs": e_acc + fixed.out_shift}}


def mac_layer_from_float(config, weight_bits, weights, *, act_exponent, bias=None,
                         out_exponent=None):
    """Quantize float ``weights`` (M, N) per tensor to signed ``weight_bits`` at a power-of-two
    exponent (round to nearest), the bias to the accumulator's exponent."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ImageError(f"weights must be a 2-D matrix, not shape {weights.shape}")
    w_int, e_w = to_fixed(weights, weight_bits)
    fields = _bias_and_shift(config, bias, weights.shape[0], e_w, act_exponent, out_exponent)
    return MacLayer(config, weight_bits, w_int, **fields)


def compressed_layer_from_float(config, weight_bits, weights, *, act_exponent, bias=None,
                                out_exponent=None, gobo=None):
    """GOBO-quantize float ``weights`` (or reuse ``gobo``, a
    :class:`~golden.quant.quantizer.GoboLayer`) and express centroids and outliers as signed
    ``weight_bits`` integers at one exponent: the memory-compression tile's input. Its ``weights``
    are the decompressed dense matrix."""
    weights, gobo = gobo_quantized(config, weights, gobo)
    values = np.concatenate([gobo.centroids, gobo.outlier_values]).astype(np.float64)
    ints, e_w = to_fixed(values, weight_bits)
    centroids = ints[:config.n_centroids]
    rows, cols = weights.shape
    positions = [divmod(int(p), cols) for p in gobo.outlier_positions]
    outliers = [(m, n, int(v)) for (m, n), v in zip(positions, ints[config.n_centroids:])]
    fields = _bias_and_shift(config, bias, rows, e_w, act_exponent, out_exponent)
    return make_compressed_layer(config, weight_bits, indexes=gobo.indexes, centroids=centroids,
                                 outliers=outliers, **fields)


def make_compressed_layer(config, weight_bits, *, indexes, centroids, outliers=(), bias=None,
                          shift_dot=0, shift_bias=0, out_shift=0, exponents=None,
                          bias_saturated=0):
    """A memory-compression :class:`MacLayer` from its GOBO form: ``indexes`` (M, N), integer
    ``centroids`` (K,) and ``outliers`` ``[(m, n, value)]``; its weights are
    :func:`~golden.hwmodel.mac.decompress` of every row."""
    indexes = np.asarray(indexes, dtype=np.int64)
    if indexes.ndim != 2:
        raise ImageError(f"indexes must be a 2-D matrix, not shape {indexes.shape}")
    if indexes.min() < 0 or indexes.max() >= config.n_centroids:
        raise ImageError(f"indexes must lie in 0..{config.n_centroids - 1}")
    centroids = np.asarray(centroids, dtype=np.int64)
    rows = indexes.shape[0]
    outliers = sorted((int(m), int(n), int(v)) for m, n, v in outliers)
    by_row = [[] for _ in range(rows)]
    for m, n, v in outliers:
        if not 0 <= m < rows:
            raise ImageError(f"outlier row {m} is outside the {rows} rows")
        by_row[m].append((n, v))
    try:
        dense = np.stack([decompress(config, weight_bits, indexes[m], centroids, by_row[m])
                          for m in range(rows)])
    except ValueError as e:
        raise ImageError(str(e)) from None
    bias = np.zeros(rows, dtype=np.int64) if bias is None else bias
    return MacLayer(config, weight_bits, dense, bias, shift_dot=shift_dot, out_shift=out_shift,
                    compressed={"indexes": indexes, "centroids": centroids, "outliers": outliers},
                    exponents=exponents or {}, shift_bias=shift_bias,
                    bias_saturated=bias_saturated)


def compressed_streams(layer):
    """``(index beats, outlier records)`` that feed the memory-compression tile's decompressor:
    every row of the padded blocks in order (padding rows: index 0 and no outlier)."""
    if layer.compressed is None:
        raise ValueError("a dense MAC layer has no compressed form")
    config = layer.config
    indexes = np.zeros((layer.blocks * config.pes, layer.cols), dtype=np.int64)
    indexes[:layer.rows] = layer.compressed["indexes"]
    by_row = [[] for _ in range(len(indexes))]
    for m, n, v in sorted(layer.compressed["outliers"]):
        by_row[m].append((n, v))
    return decompressor_streams(config, layer.weight_bits, list(zip(indexes, by_row)))


def compressed_image(layer):
    """The GOBO form of a memory-compression :class:`MacLayer` as the streaming GOBO tile's
    :class:`~golden.hwmodel.layer_image.LayerImage` (``streamed``), so that its off-chip layout
    (:func:`golden.hwmodel.offchip.offchip_layout`) and bytes are the GOBO tile's: the indexes,
    the bias, and per outlier a record whose ``residual`` is ``value - centroids[index]`` at its
    position (the streaming memory-compression tile writes ``centroid + residual`` back, which
    is ``value``; docs/offchip.md section 8). The shifts stay with the MAC layer.

    Raises
    ------
    ValueError
        If ``layer`` is dense, or :class:`~golden.hwmodel.layer_image.ImageError` if a residual
        does not fit ``residual_bits``, a centroid ``centroid_bits`` or a row block's outlier
        words one bank (``max_outlier_words // 2``).
    """
    if layer.compressed is None:
        raise ValueError("a dense MAC layer has no compressed form")
    indexes, centroids = layer.compressed["indexes"], layer.compressed["centroids"]
    records = [(m, n, v - int(centroids[indexes[m, n]]))
               for m, n, v in layer.compressed["outliers"]]
    return make_image(layer.config, indexes=indexes, centroids=centroids, outliers=records,
                      bias=layer.bias, streamed=True)
