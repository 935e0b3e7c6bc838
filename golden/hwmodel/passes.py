"""A dot product longer than one pass: a layer of ``N > max_dot_length`` columns run as passes of
at most ``max_dot_length`` columns, exactly (docs/offchip.md section 10, docs/numerics.md
"Passes").

Every pass is the tile's own computation (:func:`golden.hwmodel.tile.tile_accumulators`) on the
pass's columns, with the layer's dictionary, exponents and shifts, plus the partial sum carried
in from the pass before it:

```
partial_0 = (dot_0 << sd) + (corr_0 << sr)
partial_k = partial_{k-1} + (dot_k << sd) + (corr_k << sr)            0 < k < passes - 1
acc       = partial_{P-2} + (dot_{P-1} << sd) + (corr_{P-1} << sr) + (Bq << sb)
Y         = clamp(round_half_up(acc / 2**out_shift))
```

Integer sums are exact in any order, so ``acc`` is the single-pass accumulator bit for bit and
``Y`` the single-pass output; every partial sum is bounded by the whole layer's accumulator,
which ``GoboConfig.acc_bits`` sizes for ``layer_dot_length = max_passes * max_dot_length``
columns. A pass image carries zero biases except the last (the merge adds ``Bq << sb`` once); an
outlier record goes to the pass holding its column.
"""

import dataclasses

import numpy as np

from golden.config import check_int
from golden.hwmodel.fixedpoint import check_signed
from golden.hwmodel.packing import pack, tile_output_fields
from golden.hwmodel.tile import requantize, tile_accumulators

__all__ = ["pass_columns", "pass_images", "pass_partials", "passes_outputs", "single_pass",
           "partial_sum_bytes", "CarrySchedule", "pass_modes", "carry_beats"]


def pass_columns(cols, max_dot_length):
    """``[(start, stop), ...]``: the passes of a ``cols``-column layer, each ``max_dot_length``
    columns but the last (which holds the rest)."""
    return [(start, min(cols, start + max_dot_length))
            for start in range(0, cols, max_dot_length)]


def pass_images(image):
    """The passes of ``image`` (a :class:`~golden.hwmodel.layer_image.LayerImage` of up to
    ``config.layer_dot_length`` columns), each a valid image of the same configuration: the
    pass's index columns, the records of its columns (columns renumbered from 0), the layer's
    centroids, shifts, exponents and row order, and zero biases except in the last pass.

    Raises
    ------
    ValueError
        If the layer needs more than ``config.max_passes`` passes (a
        :class:`~golden.hwmodel.layer_image.LayerImage` refuses that already).
    """
    config = image.config
    spans = pass_columns(image.cols, config.max_dot_length)
    if len(spans) > config.max_passes:
        raise ValueError(f"{image.cols} columns need {len(spans)} passes of "
                         f"{config.max_dot_length}; max_passes={config.max_passes}")
    zeros = np.zeros(image.rows, dtype=np.int64)
    out = []
    for k, (start, stop) in enumerate(spans):
        inside = (image.outlier_cols >= start) & (image.outlier_cols < stop)
        out.append(dataclasses.replace(
            image, indexes=image.indexes[:, start:stop].copy(),
            outlier_rows=image.outlier_rows[inside].copy(),
            outlier_cols=image.outlier_cols[inside] - start,
            outlier_residuals=image.outlier_residuals[inside].copy(),
            bias=image.bias.copy() if k == len(spans) - 1 else zeros.copy(),
            row_order=image.row_order.copy()))
    return out


def pass_partials(image, acts, carry=None):
    """The tile's pass-mode accumulators of one pass ``image`` over ``acts`` (T, pass columns):
    :func:`~golden.hwmodel.tile.tile_accumulators` plus the partial sums ``carry``
    ((blocks * pes, T) int64, the previous pass's; None: the first pass). Unrounded, int64,
    (blocks * pes, T), checked against ``acc_bits``."""
    acc = tile_accumulators(image, acts)
    if carry is not None:
        carry = np.asarray(carry)
        if carry.shape != acc.shape:
            raise ValueError(f"carried partial sums must be {acc.shape}, not {carry.shape}")
        check_signed("carried partial sums", carry, image.config.acc_bits)
        acc = acc + carry.astype(np.int64)
    check_signed("partial sums", acc, image.config.acc_bits)
    return acc


def passes_outputs(image, acts, *, corrupt=None):
    """Run ``image`` as passes: ``(Y, partials)``, ``Y`` (blocks * pes, T) the outputs (the
    last pass's requantized accumulators) and ``partials`` each pass's carried-out partial sums
    (all passes but the last; the last pass's entry is its accumulators before rounding).

    ``corrupt``: a function applied to every carried partial sum array before the next pass
    takes it (tests use it to show that a wrong carry is caught).
    """
    acts = np.asarray(acts)
    if acts.ndim != 2 or acts.shape[1] != image.cols:
        raise ValueError(f"activations must be (tokens, {image.cols}), not {acts.shape}")
    carry, partials = None, []
    for (start, stop), part in zip(pass_columns(image.cols, image.config.max_dot_length),
                                   pass_images(image)):
        if carry is not None and corrupt is not None:
            carry = corrupt(carry)
        carry = pass_partials(part, acts[:, start:stop], carry)
        partials.append(carry)
    return requantize(image.config, carry, image.out_shift), partials


def single_pass(image):
    """``image`` on the one-pass configuration of the same accumulator (``max_dot_length`` the
    layer's ``layer_dot_length``, ``max_passes`` 1): the reference a multi-pass run must equal
    (:func:`golden.hwmodel.tile.tile_outputs` of it)."""
    config = image.config
    one = config.replace(max_dot_length=config.layer_dot_length, max_passes=1)
    assert one.acc_bits == config.acc_bits   # the same accumulator, by construction of acc_bits
    return dataclasses.replace(image, config=one)


def partial_sum_bytes(config, rows, tokens):
    """Bytes one carried pass boundary moves one way (written by a pass, or read by the next):
    a tile output beat of ``pes`` accumulators of ``acc_bits`` each, whole bytes, per row block
    and token."""
    blocks = -(-rows // config.pes)
    return blocks * tokens * (-(-config.pes * config.acc_bits // 8))


@dataclasses.dataclass(frozen=True)
class CarrySchedule:
    """When the ``carry`` stream of a pass offers its beats (the previous pass's partial sums,
    one per slot in the merge's order), shared by the cycle model
    (:class:`~golden.hwmodel.stream_tile.CarrySteps`) and the benches: beat ``k`` from cycle
    ``latency + k * interval`` of the run on (cycle 0: the first busy cycle), held until taken.
    ``CarrySchedule()`` offers every beat from the start (a carry buffer filled before the
    pass: the merge never waits).

    Raises
    ------
    TypeError, ValueError
        If ``latency`` or ``interval`` is not a non-negative integer (the message names it).
    """

    latency: int = 0
    interval: int = 0

    def __post_init__(self):
        for name in ("latency", "interval"):
            check_int(name, getattr(self, name), 0)

    def to_dict(self):
        """``{"latency": ..., "interval": ...}`` (a bench job's ``carry``)."""
        return dataclasses.asdict(self)

    def available(self, k, cycle):
        return cycle >= self.latency + k * self.interval

    def last_arrival(self, beats):
        """The cycle from which the last of ``beats`` beats is offered."""
        return self.latency + max(beats - 1, 0) * self.interval


def pass_modes(k, passes):
    """The ``layer`` port's mode bits of pass ``k`` of ``passes``: every pass but the first
    adds the carry, every pass but the last emits its partial sums unrounded."""
    return {"carry_in": k > 0, "partial_out": k < passes - 1}


def carry_beats(config, partials):
    """The ``carry`` stream of partial sums ``partials`` ((blocks * pes, T), a pass's outputs):
    one packed :func:`~golden.hwmodel.packing.tile_output_fields` word per slot ``(b, t)``,
    ``b`` major, as the tile emitted them."""
    partials = np.asarray(partials, dtype=np.int64)
    fields, pes = tile_output_fields(config), config.pes
    return [pack(fields, {"outputs": partials[b * pes:(b + 1) * pes, t]})
            for b in range(partials.shape[0] // pes) for t in range(partials.shape[1])]
