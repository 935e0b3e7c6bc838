"""The layer image: everything the tile needs for one fully-connected layer, as integers.

Built from float weights by :func:`build_layer_image` (GOBO quantizer + fixed point) or from
integers by :func:`make_image` (tests), validated on construction, packed into the tile's load
beats by :func:`load_beats`, and saved to / loaded from one versioned ``.npz`` file
(docs/layer_image.md). The layouts are those of docs/tile.md section 2.
"""

import dataclasses
import heapq
import json
import math
import pathlib
import typing

import numpy as np

from golden.config import GoboConfig
from golden.hwmodel.fixedpoint import check_signed, signed_range, to_fixed
from golden.hwmodel.packing import (
    LoadTarget,
    act_word_fields,
    bias_word_fields,
    index_word_fields,
    layer_fields,
    load_fields,
    offset_word_fields,
    pack,
    pack_outlier_word,
)
from golden.hwmodel.tile import tile_cycles_of_image
from golden.npyfile import NpyError, read_npz
from golden.quant.outliers import outlier_share_note
from golden.quant.quantizer import quantize

__all__ = ["LayerImage", "TiledLayer", "ImageError", "make_image", "build_layer_image",
           "load_beats", "act_beats", "bias_beats", "layer_word", "gobo_quantized", "fixed_bias",
           "FixedBias", "calibrated_image", "save_image", "load_image", "quantize_activations",
           "output_exponent", "calibrate", "balanced_row_order", "logical_outputs",
           "widen_dictionary", "IMAGE_FORMAT_VERSION"]

IMAGE_FORMAT = "gobo-layer-image"
#: Version 2 added the bias shift (``shift_bias``); version 1 files load with it 0.
IMAGE_FORMAT_VERSION = 2
#: The most weights a layer image file may hold (2**25: 8192 x 4096), checked before reading
#: its arrays into int64.
MAX_IMAGE_WEIGHTS = 1 << 25


class ImageError(ValueError):
    """A layer image (or its file) is inconsistent with itself or with the configuration."""


def _int_array(name, values, shape=None):
    array = np.asarray(values)
    if array.dtype.kind not in "iub":
        raise ImageError(f"{name} must be integers, not {array.dtype}")
    array = array.astype(np.int64)
    if shape is not None and array.shape != shape:
        raise ImageError(f"{name} must have shape {shape}, not {array.shape}")
    return array


class TiledLayer:
    """``rows`` (M), ``cols`` (N), ``blocks`` (B) and ``chunks`` (C) of a layer on a tile of
    ``config.pes`` PEs x ``config.lanes`` lanes; the (M, N) matrix is the attribute named by
    ``_matrix``."""
    _matrix = "indexes"

    @property
    def rows(self):
        return getattr(self, self._matrix).shape[0]

    @property
    def cols(self):
        return getattr(self, self._matrix).shape[1]

    @property
    def blocks(self):
        return -(-self.rows // self.config.pes)

    @property
    def chunks(self):
        return -(-self.cols // self.config.lanes)


@dataclasses.dataclass(frozen=True, eq=False)
class LayerImage(TiledLayer):
    """A validated integer layer image (docs/tile.md section 1 for the meaning of each field).

    Exponents are informative (they map the integers back to floats); the hardware only uses the
    integers and the four shifts. ``bias_saturated`` counts the biases that did not fit
    ``bias_bits`` even at the coarsest bias exponent and were saturated (docs/numerics.md,
    "Bias"; 0 for every real layer measured). ``streamed``: the image is for the streaming tile
    (docs/offchip.md), which holds two row blocks' outlier words at a time, so each block must
    fit one bank (``max_outlier_words // 2``) rather than the whole layer the outlier memory.
    """

    config: GoboConfig
    indexes: np.ndarray            # (M, N) dense indexes
    centroids: np.ndarray          # (K,) signed centroid_bits
    outlier_rows: np.ndarray       # (R,) sorted by flat position m*N + n
    outlier_cols: np.ndarray       # (R,)
    outlier_residuals: np.ndarray  # (R,) signed residual_bits
    bias: np.ndarray               # (M,) signed bias_bits
    shift_dot: int = 0
    shift_corr: int = 0
    shift_bias: int = 0
    out_shift: int = 0
    exponents: dict = dataclasses.field(default_factory=dict)  # e_c, e_r, e_b, e_x, e_y
    row_order: np.ndarray = None   # (M,) logical row of each physical row; None: identity
    bias_saturated: int = 0
    streamed: bool = False

    def __post_init__(self):
        config = self.config
        if not isinstance(config, GoboConfig):
            raise ImageError(f"config must be a GoboConfig, not {type(config).__name__}")
        try:
            config.check_tile()
        except ValueError as e:
            raise ImageError(str(e)) from None
        if self.indexes.ndim != 2:
            raise ImageError(f"indexes must be 2-D (M, N), not {self.indexes.shape}")
        rows, cols = self.indexes.shape
        if not 1 <= rows <= config.max_rows:
            raise ImageError(f"{rows} rows exceed max_rows={config.max_rows} of the configuration")
        if not 1 <= cols <= config.layer_dot_length:
            raise ImageError(f"{cols} columns exceed max_dot_length={config.max_dot_length}"
                             + (f" x max_passes={config.max_passes}" if config.max_passes > 1
                                else ""))
        if self.indexes.min() < 0 or self.indexes.max() >= config.n_centroids:
            raise ImageError(f"indexes must lie in [0, {config.n_centroids}) for index_bits="
                             f"{config.index_bits}")
        if self.centroids.shape != (config.n_centroids,):
            raise ImageError(f"the dictionary must hold {config.n_centroids} centroids, "
                             f"not {self.centroids.shape}")
        if self.bias.shape != (rows,):
            raise ImageError(f"bias must have shape ({rows},), not {self.bias.shape}")
        n = len(self.outlier_rows)
        if self.outlier_cols.shape != (n,) or self.outlier_residuals.shape != (n,):
            raise ImageError("outlier rows, columns and residuals must be 1-D of one length")
        if n:
            if self.outlier_rows.min() < 0 or self.outlier_rows.max() >= rows:
                raise ImageError(f"outlier rows must lie in [0, {rows})")
            if self.outlier_cols.min() < 0 or self.outlier_cols.max() >= cols:
                raise ImageError(f"outlier columns must lie in [0, {cols})")
            flat = self.outlier_rows * cols + self.outlier_cols
            if np.any(np.diff(flat) <= 0):
                raise ImageError("outlier records must be sorted by position, without repeats")
        try:
            check_signed("centroids", self.centroids, config.centroid_bits)
            check_signed("outlier residuals", self.outlier_residuals, config.residual_bits)
            check_signed("bias", self.bias, config.bias_bits)
        except ValueError as e:
            raise ImageError(str(e)) from None
        for name in ("shift_dot", "shift_corr", "shift_bias"):
            value = getattr(self, name)
            if not 0 <= value <= config.max_align_shift:
                raise ImageError(f"{name}={value} is outside 0..max_align_shift="
                                 f"{config.max_align_shift}")
        if not 0 <= self.out_shift < config.acc_bits:
            raise ImageError(f"out_shift={self.out_shift} is outside 0..{config.acc_bits - 1}")
        if self.streamed:
            # Per pass (golden.hwmodel.passes): a pass's block is what one bank holds.
            bank = config.max_outlier_words // 2
            for start in range(0, cols, config.max_dot_length):
                words = self.words_per_block(start, start + config.max_dot_length)
                if max(words) > bank:
                    worst = int(np.argmax(words))
                    where = (f" in the pass of columns {start}.."
                             f"{min(cols, start + config.max_dot_length) - 1}"
                             if cols > config.max_dot_length else "")
                    raise ImageError(f"row block {worst} has {words[worst]} outlier words{where}; "
                                     f"a bank of the streaming tile's outlier buffer holds "
                                     f"max_outlier_words // 2 = {bank}")
        elif sum(self.words_per_block()) > config.max_outlier_words:
            raise ImageError(f"{n} outliers need {sum(self.words_per_block())} outlier words; the "
                             f"outlier memory holds max_outlier_words={config.max_outlier_words}; "
                             f"{outlier_share_note(n, rows * cols)}")
        if self.row_order is None:
            object.__setattr__(self, "row_order", np.arange(rows, dtype=np.int64))
        if not np.array_equal(np.sort(self.row_order), np.arange(rows)):
            raise ImageError(f"row_order must be a permutation of the {rows} rows")
        for array in (self.indexes, self.centroids, self.outlier_rows, self.outlier_cols,
                      self.outlier_residuals, self.bias, self.row_order):
            array.flags.writeable = False

    @property
    def n_outliers(self):
        return len(self.outlier_rows)

    # Memory words (docs/tile.md section 2) ------------------------------------------------------

    def padded_indexes(self):
        """Indexes padded with index 0 to ``blocks * pes`` rows and ``chunks * lanes`` columns."""
        config = self.config
        out = np.zeros((self.blocks * config.pes, self.chunks * config.lanes), dtype=np.int64)
        out[:self.rows, :self.cols] = self.indexes
        return out

    def index_words(self):
        """``blocks * chunks`` words (:func:`~golden.hwmodel.packing.index_word_fields`); word
        ``b*C + j`` holds PE ``p``'s ``L`` indexes of row ``b*P + p``, chunk ``j``, PE 0 in the
        low bits."""
        config = self.config
        fields = index_word_fields(config)
        padded = self.padded_indexes().reshape(self.blocks, config.pes, self.chunks, config.lanes)
        return [pack(fields, {"indexes": padded[b, :, j]})
                for b in range(self.blocks) for j in range(self.chunks)]

    def _records_by_block(self, start=0, stop=None):
        block = self.outlier_rows // self.config.pes
        inside = (self.outlier_cols >= start) & (
            True if stop is None else self.outlier_cols < stop)
        return [np.flatnonzero((block == b) & inside) for b in range(self.blocks)]

    def words_per_block(self, start=0, stop=None):
        """``W_b``: outlier words of each block (records padded to a multiple of outlier_lanes);
        of the records in columns ``start`` to ``stop`` (exclusive, None: the last) if given."""
        q = self.config.outlier_lanes
        return [-(-len(members) // q) for members in self._records_by_block(start, stop)]

    def outlier_words(self):
        """``(words, offsets)``: block ``b``'s records are ``words[offsets[b]:offsets[b+1]]``."""
        config = self.config
        q, pes = config.outlier_lanes, config.pes
        words, offsets = [], [0]
        for members in self._records_by_block():
            records = [(int(self.outlier_rows[i]) % pes, int(self.outlier_cols[i]),
                        int(self.outlier_residuals[i])) for i in members]
            for start in range(0, len(records), q):
                words.append(pack_outlier_word(config, records[start:start + q]))
            offsets.append(len(words))
        return words, offsets


def make_image(config, *, indexes, centroids, outliers=(), bias=None, shift_dot=0, shift_corr=0,
               shift_bias=0, out_shift=0, exponents=None, row_order=None, streamed=False):
    """A layer image from integers: ``outliers`` is a sequence of ``(m, n, residual)``."""
    indexes = _int_array("indexes", indexes)
    # (m, n) order is flat-position order for in-range columns (the image checks the range).
    records = sorted((int(m), int(n), int(r)) for m, n, r in outliers)
    rows, cols, residuals = (np.array([rec[i] for rec in records], dtype=np.int64)
                             for i in range(3))
    bias = np.zeros(indexes.shape[0], dtype=np.int64) if bias is None else \
        _int_array("bias", bias)
    return LayerImage(config=config, indexes=indexes,
                      centroids=_int_array("centroids", centroids), outlier_rows=rows,
                      outlier_cols=cols, outlier_residuals=residuals, bias=bias,
                      shift_dot=int(shift_dot), shift_corr=int(shift_corr),
                      shift_bias=int(shift_bias), out_shift=int(out_shift),
                      exponents=dict(exponents or {}),
                      row_order=None if row_order is None else _int_array("row_order", row_order),
                      streamed=bool(streamed))


def quantize_activations(config, acts):
    """Float activations (T, N) -> signed ``act_bits`` integers and their exponent ``e_x``."""
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 2:
        raise ImageError(f"activations must be 2-D (tokens, features), not {acts.shape}")
    if not np.all(np.isfinite(acts)):
        raise ImageError("activations contain NaN or Inf")
    return to_fixed(acts, config.act_bits)


def balanced_row_order(outliers_per_row, pes):
    """A row order that spreads the outliers evenly over the blocks of ``pes`` rows.

    BERT's outliers crowd into a few rows (one row of MiniLM's layer-5 ``output.dense`` holds 492),
    and a block's side-path work is its outlier count, so rows are dealt greedily, heaviest first,
    to the lightest block that still has room (longest-processing-time scheduling). The hardware
    computes physical rows in order; software un-permutes the outputs (:func:`logical_outputs`).
    """
    counts = np.asarray(outliers_per_row, dtype=np.int64)
    rows = len(counts)
    blocks = -(-rows // pes)
    room = [pes] * blocks
    room[-1] = rows - (blocks - 1) * pes
    heap = [(0, b) for b in range(blocks)]
    members = [[] for _ in range(blocks)]
    for row in sorted(range(rows), key=lambda r: (-counts[r], r)):
        load, b = heapq.heappop(heap)
        members[b].append(row)
        if len(members[b]) < room[b]:
            heapq.heappush(heap, (load + int(counts[row]), b))
    return np.array([row for block in members for row in sorted(block)], dtype=np.int64)


def logical_outputs(image, y):
    """Physical tile outputs ``y`` (blocks * pes, ...) -> logical rows (M, ...), padding dropped."""
    y = np.asarray(y)
    out = np.empty((image.rows,) + y.shape[1:], dtype=y.dtype)
    out[image.row_order] = y[:image.rows]
    return out


def gobo_quantized(config, weights, layer=None):
    """``(weights as float32, layer)``: ``layer`` (a :class:`~golden.quant.quantizer.GoboLayer` of
    these weights) or, if None, the GOBO quantization of ``weights`` with ``config``'s index width
    and outlier threshold."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2:
        raise ImageError(f"weights must be a 2-D matrix, not shape {weights.shape}")
    if layer is None:
        layer = quantize(weights, index_bits=config.index_bits,
                         outlier_log_prob=config.outlier_log_prob)
    return weights, layer


def widen_dictionary(layer, index_bits):
    """``layer`` (a GoboLayer) as a tile of ``index_bits``-bit indexes sees it: the dictionary
    padded to ``2**index_bits`` centroids by repeating the largest (kept sorted, never indexed),
    the indexes unchanged. How one tile runs a per-matrix mix of index widths (docs/quantizer.md,
    "Beyond one width per model")."""
    if layer.index_bits > index_bits:
        raise ImageError(f"a {layer.index_bits}-bit matrix does not fit a tile of {index_bits}-bit "
                         f"indexes")
    if layer.index_bits == index_bits:
        return layer
    pad = np.full((1 << index_bits) - len(layer.centroids), layer.centroids[-1], dtype=np.float32)
    centroids = np.concatenate([layer.centroids, pad])
    centroids.setflags(write=False)
    return dataclasses.replace(layer, index_bits=index_bits, centroids=centroids)


class FixedBias(typing.NamedTuple):
    """A layer's bias as the tile adds it: ``values`` (rows,) int64 at exponent ``e_acc +
    shift``, the merge's left ``shift`` (``shift_bias``), the output shift ``out_shift``, and
    how many biases ``saturated``."""
    values: np.ndarray
    shift: int
    out_shift: int
    saturated: int


def fixed_bias(config, bias, rows, e_acc, out_exponent=None):
    """The bias (M,) of a layer whose accumulator has exponent ``e_acc`` (docs/numerics.md,
    "Bias").

    The bias is stored at ``e_b = e_acc + shift``, the finest exponent at or above ``e_acc`` at
    which every bias fits signed ``bias_bits``, and the merge adds ``bias << shift``. So a real
    bias is never refused, however fine ``e_acc`` (small activations, small weights). The shift
    is capped at ``max_align_shift``: a bias still too large there, more than
    ``2**(bias_bits - 1 + max_align_shift)`` accumulator steps (2**47 by default, while the
    largest dot product is 2**(out_bits - 1) steps), saturates to the ``bias_bits`` range, and
    ``saturated`` counts it. ``out_shift`` is the shift from ``e_acc`` down to ``out_exponent``
    (0 if None). ``bias`` None means zeros.

    Raises
    ------
    ImageError
        If ``bias`` is not (rows,) or not finite.
    """
    out_shift = 0 if out_exponent is None else max(0, out_exponent - e_acc)
    if bias is None:
        return FixedBias(np.zeros(rows, dtype=np.int64), 0, out_shift, 0)
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (rows,):
        raise ImageError(f"bias must have shape ({rows},), not {bias.shape}")
    if not np.all(np.isfinite(bias)):
        raise ImageError("bias contains NaN or Inf")
    shift = 0
    if np.any(bias != 0):
        _, e_fit = to_fixed(bias, config.bias_bits)
        shift = min(max(e_fit - e_acc, 0), config.max_align_shift)
    values = np.round(bias / 2.0 ** (e_acc + shift))
    low, high = signed_range(config.bias_bits)
    saturated = int(np.count_nonzero((values < low) | (values > high)))
    return FixedBias(np.clip(values, low, high).astype(np.int64), shift, out_shift, saturated)


def build_layer_image(config, weights, *, act_exponent, bias=None, out_exponent=None,
                      layer=None, balance_rows="auto", streamed=False):
    """Quantize float ``weights`` (M, N) with GOBO and lay them out as an integer image.

    ``act_exponent`` is ``e_x`` of the activations the layer will see; ``out_exponent`` is the
    output's ``e_y`` (None: the accumulator's exponent, ``out_shift = 0``). ``layer`` reuses an
    existing :class:`~golden.quant.quantizer.GoboLayer` of these weights. ``balance_rows``: True
    reorders the rows by :func:`balanced_row_order` (recorded in ``row_order``), False keeps them,
    ``"auto"`` (default) takes whichever of the two the cycle model predicts to be faster.
    ``streamed``: an image for the streaming tile (:class:`LayerImage`).
    """
    weights, layer = gobo_quantized(config, weights, layer)
    centroids, e_c = to_fixed(layer.centroids, config.centroid_bits)
    residuals = layer.residuals()
    if len(residuals) and np.any(residuals != 0):
        _, e_r = to_fixed(residuals, config.residual_bits)
    else:
        e_r = e_c
    # Keep the two exponents within max_align_shift of each other: a residual exponent far below
    # the centroids' is coarsened (those residuals are tiny); one far above coarsens the centroids.
    e_r = max(e_r, e_c - config.max_align_shift)
    if e_r - e_c > config.max_align_shift:
        e_c = e_r - config.max_align_shift
        centroids = np.round(layer.centroids.astype(np.float64) / 2.0 ** e_c).astype(np.int64)
    res_int = np.round(residuals / 2.0 ** e_r).astype(np.int64)
    e_a = min(e_c, e_r)
    e_acc = e_a + act_exponent
    fixed = fixed_bias(config, bias, weights.shape[0], e_acc, out_exponent)
    rows, cols = weights.shape
    parts = dict(config=config, layer=layer, centroids=centroids, residuals=res_int,
                 bias=fixed.values, shift_dot=e_c - e_a, shift_corr=e_r - e_a,
                 shift_bias=fixed.shift, out_shift=fixed.out_shift,
                 bias_saturated=fixed.saturated, streamed=bool(streamed),
                 exponents={"centroids": e_c, "residuals": e_r, "activations": act_exponent,
                            "bias": e_acc + fixed.shift, "outputs": e_acc + fixed.out_shift})
    identity = np.arange(rows, dtype=np.int64)
    if balance_rows is False:
        return _permuted_image(identity, **parts)
    counts = np.bincount(layer.outlier_positions // cols, minlength=rows)
    balanced = _permuted_image(balanced_row_order(counts, config.pes), **parts)
    if balance_rows is True:
        return balanced
    if balance_rows != "auto":
        raise ImageError(f"balance_rows must be True, False or 'auto', not {balance_rows!r}")
    # The side path can run a little ahead, so spreading the outliers evenly is not always best
    # (it can leave no light block next to a heavy one): let the cycle model choose.
    tokens = min(8, config.max_tokens)
    plain = _permuted_image(identity, **parts)
    return min((balanced, plain), key=lambda image: tile_cycles_of_image(image, tokens)["cycles"])


def _permuted_image(order, *, config, layer, centroids, residuals, bias, **scalars):
    """The image with physical row ``s`` holding logical row ``order[s]``."""
    rows, cols = layer.shape
    physical = np.empty(rows, dtype=np.int64)
    physical[order] = np.arange(rows)
    out_rows = physical[layer.outlier_positions // cols]
    out_cols = layer.outlier_positions % cols
    sort = np.argsort(out_rows * cols + out_cols, kind="stable")
    return LayerImage(
        config=config, indexes=np.asarray(layer.indexes, dtype=np.int64)[order],
        centroids=centroids, outlier_rows=out_rows[sort], outlier_cols=out_cols[sort],
        outlier_residuals=residuals[sort], bias=bias[order], row_order=order, **scalars)


def calibrated_image(config, weights, acts, *, bias=None, layer=None, balance_rows="auto",
                     streamed=False):
    """The image of float ``weights`` (M, N) for float activations ``acts`` (T, N), as ``gobo
    simulate`` builds it: the activations quantized to ``act_bits`` at their own exponent
    (:func:`quantize_activations`), the output exponent calibrated on the FP32 result
    (:func:`output_exponent`; both are software choices, like a per-tensor scale).

    Returns
    -------
    (LayerImage, numpy.ndarray, numpy.ndarray)
        The image, the integer activations (T, N) and the FP32 result ``acts @ weights.T +
        bias`` (T, M).

    Raises
    ------
    ImageError
        If the shapes disagree or a value is not finite.
    """
    weights, x_int, e_x, fp32, e_y = calibrate(config, weights, acts, bias=bias)
    image = build_layer_image(config, weights, bias=bias, act_exponent=e_x, out_exponent=e_y,
                              layer=layer, balance_rows=balance_rows, streamed=streamed)
    return image, x_int, fp32


def calibrate(config, weights, acts, *, bias=None):
    """The calibration of :func:`calibrated_image` (shared with the MAC baselines'): ``(weights
    float32 (M, N), x_int (T, N), e_x, fp32 (T, M), e_y)``, the activations quantized at their
    own exponent ``e_x``, the output exponent ``e_y`` the FP32 result's.

    Raises
    ------
    ImageError
        If the shapes disagree.
    """
    weights = np.asarray(weights, dtype=np.float32)
    acts = np.asarray(acts, dtype=np.float64)
    if weights.ndim != 2 or acts.ndim != 2 or acts.shape[1] != weights.shape[1]:
        raise ImageError(f"activations {acts.shape} do not fit weights {weights.shape}: need "
                         f"(T, {weights.shape[1] if weights.ndim == 2 else 'N'})")
    x_int, e_x = quantize_activations(config, acts)
    fp32 = acts @ weights.astype(np.float64).T
    if bias is not None:
        fp32 = fp32 + np.asarray(bias, dtype=np.float64)
    return weights, x_int, e_x, fp32, output_exponent(config, fp32)


def output_exponent(config, y_float):
    """The smallest exponent at which float outputs fit signed ``act_bits`` integers."""
    peak = float(np.max(np.abs(y_float))) if np.size(y_float) else 0.0
    high = (1 << (config.act_bits - 1)) - 1
    return math.ceil(math.log2(peak / high)) if peak > 0 else 0


# Load beats and the layer port ------------------------------------------------------------------

def act_beats(config, acts, fields=None):
    """Load beats writing activations ``acts`` (T, N) into the activation memory; ``fields`` is
    the load format (default the GOBO tile's :func:`~golden.hwmodel.packing.load_fields`)."""
    acts = _int_array("activations", acts)
    if acts.ndim != 2:
        raise ImageError(f"activations must be 2-D (tokens, features), not {acts.shape}")
    tokens, cols = acts.shape
    if not 1 <= tokens <= config.max_tokens:
        raise ImageError(f"{tokens} tokens exceed max_tokens={config.max_tokens}")
    try:
        check_signed("activations", acts, config.act_bits)
    except ValueError as e:
        raise ImageError(str(e)) from None
    lanes, chunks = config.lanes, -(-cols // config.lanes)
    padded = np.zeros((tokens, chunks, lanes), dtype=np.int64)
    padded.reshape(tokens, chunks * lanes)[:, :cols] = acts
    word_fields = act_word_fields(config)
    fields = load_fields(config) if fields is None else fields
    return [pack(fields, {"target": LoadTarget.ACTIVATION, "addr": t * chunks + j,
                          "data": pack(word_fields, {"acts": padded[t, j]})})
            for t in range(tokens) for j in range(chunks)]


def bias_beats(layer, fields):
    """Load beats of the biases of ``layer`` (a :class:`TiledLayer`) in the load format
    ``fields``, one per row of its padded blocks."""
    config = layer.config
    word_fields = bias_word_fields(config)
    # Padded rows of the last block get bias 0 too: never whatever an earlier layer left there.
    bias = np.zeros(layer.blocks * config.pes, dtype=np.int64)
    bias[:layer.rows] = layer.bias
    return [pack(fields, {"target": LoadTarget.BIAS, "addr": m,
                          "data": pack(word_fields, {"bias": v})})
            for m, v in enumerate(bias)]


def load_beats(image, acts=None):
    """Every load beat of ``image`` (index, outlier, offset and bias memories), followed by the
    activation beats if ``acts`` (T, N) is given."""
    config = image.config
    fields = load_fields(config)
    beats = [pack(fields, {"target": LoadTarget.INDEX, "addr": a, "data": w})
             for a, w in enumerate(image.index_words())]
    words, offsets = image.outlier_words()
    beats += [pack(fields, {"target": LoadTarget.OUTLIER, "addr": a, "data": w})
              for a, w in enumerate(words)]
    offset_fields = offset_word_fields(config)
    beats += [pack(fields, {"target": LoadTarget.OFFSET, "addr": b,
                            "data": pack(offset_fields, {"offset": o})})
              for b, o in enumerate(offsets)]
    beats += bias_beats(image, fields)
    if acts is not None:
        if np.shape(acts)[-1] != image.cols:
            raise ImageError(f"activations have {np.shape(acts)[-1]} features; the layer has "
                             f"{image.cols} inputs")
        beats += act_beats(config, acts)
    return beats


def layer_word(image, tokens, *, carry_in=False, partial_out=False):
    """The packed value of the tile's static ``layer`` port for a run of ``tokens`` tokens;
    ``carry_in`` and ``partial_out`` set a pass's mode (:mod:`golden.hwmodel.passes`; a
    configuration with ``max_passes > 1`` only)."""
    config = image.config
    if not 1 <= tokens <= config.max_tokens:
        raise ImageError(f"{tokens} tokens exceed max_tokens={config.max_tokens}")
    if image.cols > config.max_dot_length:
        raise ImageError(f"{image.cols} columns exceed max_dot_length={config.max_dot_length} "
                         f"of one run; run the layer as passes (golden.hwmodel.passes)")
    modes = {"carry_in": int(carry_in), "partial_out": int(partial_out)}
    if config.max_passes == 1 and any(modes.values()):
        raise ImageError("carry_in and partial_out need a configuration with max_passes > 1")
    return pack(layer_fields(config), {
        "centroids": image.centroids, "blocks": image.blocks, "chunks": image.chunks,
        "tokens": tokens, "shift_dot": image.shift_dot, "shift_corr": image.shift_corr,
        "shift_bias": image.shift_bias, "out_shift": image.out_shift, "rows": image.rows,
        **(modes if config.max_passes > 1 else {})})


# The file format (docs/layer_image.md) ----------------------------------------------------------

_ARRAYS = ("indexes", "centroids", "outlier_rows", "outlier_cols", "outlier_residuals", "bias",
           "row_order")
#: The keys of ``exponents`` in a file of each version (version 2 added the bias exponent); an
#: image made from integers (:func:`make_image`) has none, and its file an empty object.
_EXPONENT_KEYS = {1: ("centroids", "residuals", "activations", "outputs"),
                  2: ("centroids", "residuals", "activations", "bias", "outputs")}


def save_image(image, path):
    """Write ``image`` to one ``.npz`` file (format ``gobo-layer-image``, version
    :data:`IMAGE_FORMAT_VERSION`)."""
    meta = {"format": IMAGE_FORMAT, "version": IMAGE_FORMAT_VERSION,
            "config": image.config.to_dict(), "shift_dot": image.shift_dot,
            "shift_corr": image.shift_corr, "shift_bias": image.shift_bias,
            "out_shift": image.out_shift, "exponents": image.exponents,
            "bias_saturated": image.bias_saturated}
    # Indexes are stored one per byte (index_bits <= 8); the packed words are derived on load.
    arrays = {name: getattr(image, name) for name in _ARRAYS}
    arrays["indexes"] = arrays["indexes"].astype(np.uint8)
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)


def _image_meta(path, text):
    """The metadata object of an image file, every field's type checked."""
    try:
        meta = json.loads(text)
    except ValueError as e:          # JSONDecodeError, or an integer of over 4300 digits
        raise ImageError(f"{path}: the layer image metadata is not valid JSON ({e})") from None
    except RecursionError:
        raise ImageError(f"{path}: the layer image metadata is nested too deeply") from None
    if not isinstance(meta, dict):
        raise ImageError(f"{path}: the layer image metadata is not a JSON object")
    if meta.get("format") != IMAGE_FORMAT:
        raise ImageError(f"{path}: not a layer image (format {str(meta.get('format'))[:40]!r})")
    version = meta.get("version")
    if isinstance(version, bool) or version not in (1, IMAGE_FORMAT_VERSION):
        raise ImageError(f"{path}: layer image version {str(version)[:40]} is not supported "
                         f"(this reader knows versions 1 and {IMAGE_FORMAT_VERSION})")
    # Version 1 had no bias shift: its biases sit at the accumulator's exponent.
    if version == 1:
        meta.setdefault("shift_bias", 0)
        meta.setdefault("bias_saturated", 0)
    for key in ("shift_dot", "shift_corr", "shift_bias", "out_shift", "bias_saturated"):
        if key not in meta:
            raise ImageError(f"{path}: layer image metadata lacks {key!r}")
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ImageError(f"{path}: {key} is {str(value)[:40]!r}, not an integer")
    if not isinstance(meta.get("config"), dict):
        raise ImageError(f"{path}: the layer image metadata has no configuration object")
    # Files written before max_passes existed were made for one pass.
    meta["config"].setdefault("max_passes", 1)
    missing = [f.name for f in dataclasses.fields(GoboConfig) if f.name not in meta["config"]]
    if missing:   # a default would silently stand in for it (a 4-PE image loading as 16-PE)
        raise ImageError(f"{path}: the layer image configuration lacks "
                         f"{', '.join(map(repr, missing))}")
    if "exponents" not in meta:
        raise ImageError(f"{path}: layer image metadata lacks 'exponents'")
    exponents, keys = meta["exponents"], _EXPONENT_KEYS[version]
    if not isinstance(exponents, dict) or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in exponents.values()):
        raise ImageError(f"{path}: exponents is not an object of integers")
    if exponents and sorted(exponents) != sorted(keys):
        raise ImageError(f"{path}: exponents has keys {', '.join(sorted(exponents))[:120]}, "
                         f"not {', '.join(keys)} (or none)")
    return meta


def load_image(path, config=None):
    """Read and validate a layer image file; if ``config`` is given it must match the file's.

    Raises
    ------
    ImageError
        One line naming the file and the first problem, for a missing, truncated, corrupted or
        inconsistent file (sizes are checked before anything is allocated:
        :mod:`golden.npyfile`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file" if not path.exists() else
                         f"{path}: is not a regular file")
    try:
        arrays = read_npz(path, kinds="fiubU")
    except NpyError as e:
        raise ImageError(f"{e} (truncated or corrupted layer image?)") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read it ({e.strerror})") from None
    missing = [name for name in ("meta",) + _ARRAYS if name not in arrays]
    if missing:
        raise ImageError(f"{path}: not a layer image: missing {', '.join(missing)}")
    if arrays["meta"].shape != () or arrays["meta"].dtype.kind != "U":
        raise ImageError(f"{path}: the layer image metadata is not one string")
    meta = _image_meta(path, str(arrays["meta"]))
    try:
        file_config = GoboConfig(**meta["config"])
    except (TypeError, ValueError) as e:
        raise ImageError(f"{path}: invalid configuration in the file ({e})") from None
    if config is not None and config != file_config:
        diff = {k: (v, getattr(config, k)) for k, v in file_config.to_dict().items()
                if getattr(config, k) != v}
        raise ImageError(f"{path}: made for another configuration: "
                         + ", ".join(f"{k}={a} in the file, {b} here"
                                     for k, (a, b) in diff.items()))
    for name in _ARRAYS:
        want = 2 if name == "indexes" else 1
        if arrays[name].dtype.kind == "b":
            raise ImageError(f"{path}: {name} is a boolean array, not integers")
        if arrays[name].ndim != want:
            raise ImageError(f"{path}: {name} is {arrays[name].ndim}-D, not {want}-D")
    # Sizes against the configuration before the arrays are widened to int64 (8 bytes each).
    rows, cols = arrays["indexes"].shape
    if rows > file_config.max_rows or cols > file_config.layer_dot_length or \
            rows * cols > MAX_IMAGE_WEIGHTS:
        raise ImageError(f"{path}: indexes of shape {(rows, cols)} exceed max_rows="
                         f"{file_config.max_rows}, max_dot_length={file_config.max_dot_length} "
                         f"x max_passes={file_config.max_passes} "
                         f"or {MAX_IMAGE_WEIGHTS} weights")
    for name in _ARRAYS[1:]:
        if arrays[name].size > max(rows * cols, file_config.n_centroids):
            raise ImageError(f"{path}: {name} holds {arrays[name].size} values for a "
                             f"{rows}x{cols} layer")
    try:
        return LayerImage(config=file_config,
                          **{name: _int_array(name, arrays[name]) for name in _ARRAYS},
                          shift_dot=meta["shift_dot"], shift_corr=meta["shift_corr"],
                          shift_bias=meta["shift_bias"], out_shift=meta["out_shift"],
                          exponents=meta["exponents"], bias_saturated=meta["bias_saturated"])
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
