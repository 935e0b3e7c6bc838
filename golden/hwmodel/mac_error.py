"""Where a MAC baseline's error against FP32 comes from (docs/tile.md section 6, "What W8A8
buys"): the bit-exact MAC tile's result beside each of its three roundings alone.

A MAC baseline (:func:`golden.config.mac_flavour`) rounds three things, each per tensor at a
power-of-two exponent: the weights to ``weight_bits`` (:func:`~golden.hwmodel.mac_tile.
mac_layer_from_float`), the activations to ``act_bits`` at their own exponent and the outputs to
``act_bits`` at the FP32 result's (:func:`~golden.hwmodel.layer_image.calibrate`). Applying one
rounding at a time to the float computation says which one costs the accuracy; the tile's own
result must sit where the three together put it (it is their integer form, bit for bit, up to
the bias's rounding and the outputs' ties).
"""

import dataclasses

import numpy as np

from golden.hwmodel.fixedpoint import to_fixed, to_fixed_at
from golden.hwmodel.mac_tile import mac_tile_accumulators, mac_tile_outputs
from golden.hwmodel.tile import saturated_outputs
from golden.hwmodel.tile_jobs import calibrated_mac_layer

__all__ = ["MacError", "mac_error", "rel_rmse"]


def rel_rmse(y, reference):
    """``rms(y - reference) / std(reference)``: the error measure of ``gobo simulate``'s
    ``rel RMSE vs FP32``; None for a constant reference (no spread to compare with)."""
    y, reference = np.asarray(y, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    spread = float(np.std(reference))
    return float(np.sqrt(np.mean((y - reference) ** 2))) / spread if spread > 0 else None


@dataclasses.dataclass(frozen=True)
class MacError:
    """The error budget of one MAC-baseline layer run.

    ``tile``: relative RMSE (:func:`rel_rmse`) of the bit-exact MAC tile's result against FP32;
    ``weights_only``, ``acts_only``, ``outputs_only``: of the float result with only that
    rounding applied, the others FP32 (the outputs at the tile's output exponent, clamped);
    ``weights_per_row``: with the weights rounded at one exponent per output row instead of
    per tensor (a reference point the tile does not implement: its merge has one
    ``out_shift`` per layer). ``weight_exponent`` / ``act_exponent``: the per-tensor exponents
    (step ``2**e``); ``weight_peak`` / ``act_peak``: the largest magnitudes that set them;
    ``weights_to_zero`` / ``acts_to_zero``: the shares of nonzero values that round to 0 at
    that step; ``outputs_saturated``: outputs the tile clamps to ``act_bits`` (activations
    cannot clamp: their exponent is calibrated on themselves)."""
    tile: float
    weights_only: float
    acts_only: float
    outputs_only: float
    weights_per_row: float
    weight_exponent: int
    weight_peak: float
    weights_to_zero: float
    act_exponent: int
    act_peak: float
    acts_to_zero: float
    outputs_saturated: int


def _rounded(values, bits):
    ints, exponent = to_fixed(values, bits)
    return ints * 2.0 ** exponent, exponent


def _to_zero(values, rounded):
    nonzero = values != 0
    return float(np.count_nonzero(nonzero & (rounded == 0)) / max(np.count_nonzero(nonzero), 1))


def mac_error(config, weight_bits, weights, acts, *, bias=None):
    """The :class:`MacError` of float ``weights`` (M, N), ``bias`` (M,) on float activations
    ``acts`` (T, N) on the MAC baseline ``config`` / ``weight_bits`` (from
    :func:`golden.config.mac_flavour`), calibrated as ``gobo simulate --flavour`` calibrates
    it (:func:`~golden.hwmodel.tile_jobs.calibrated_mac_layer`).

    Raises
    ------
    ImageError
        If the shapes disagree or a value is not finite (as ``calibrated_mac_layer``).
    """
    layer, x_int, fp32 = calibrated_mac_layer(config, weight_bits, weights, acts, bias=bias)
    acc = mac_tile_accumulators(layer, x_int)
    tile = mac_tile_outputs(layer, x_int)[:layer.rows].T * 2.0 ** layer.exponents["outputs"]
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(acts, dtype=np.float64)
    b = 0.0 if bias is None else np.asarray(bias, dtype=np.float64)
    w_q, e_w = _rounded(w, weight_bits)
    x_q, e_x = _rounded(x, config.act_bits)
    e_y = layer.exponents["outputs"]
    y_q = to_fixed_at(fp32, config.act_bits, e_y)[0] * 2.0 ** e_y
    w_row = np.stack([_rounded(row, weight_bits)[0] for row in w]) if len(w) else w
    return MacError(
        tile=rel_rmse(tile, fp32), weights_only=rel_rmse(x @ w_q.T + b, fp32),
        acts_only=rel_rmse(x_q @ w.T + b, fp32), outputs_only=rel_rmse(y_q, fp32),
        weights_per_row=rel_rmse(x @ w_row.T + b, fp32),
        weight_exponent=e_w, weight_peak=float(np.abs(w).max(initial=0.0)),
        weights_to_zero=_to_zero(w, w_q),
        act_exponent=e_x, act_peak=float(np.abs(x).max(initial=0.0)), acts_to_zero=_to_zero(x, x_q),
        outputs_saturated=saturated_outputs(config, acc[:layer.rows], layer.out_shift))
