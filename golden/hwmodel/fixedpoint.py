"""Signed fixed-point conversion: ``value ~= integer * 2**exponent`` with a shared exponent."""

import math

import numpy as np

__all__ = ["to_fixed", "to_fixed_at", "fixed_exponent", "signed_range", "check_signed"]


def signed_range(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def check_signed(name, values, bits):
    """Raise ValueError naming ``name`` if any value does not fit a signed ``bits``-bit integer."""
    values = np.asarray(values)
    low, high = signed_range(bits)
    if values.size and (values.min() < low or values.max() > high):
        raise ValueError(f"{name} must fit signed {bits}-bit integers [{low}, {high}], "
                         f"but span [{values.min()}, {values.max()}]")


def to_fixed(values, bits):
    """Quantize floats to signed ``bits``-bit integers with one exponent, rounding to nearest.

    The exponent is the smallest for which every rounded value fits, so the largest magnitude uses
    the full range. Returns ``(integers as int64, exponent)``.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot convert NaN or Inf to fixed point")
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    high = (1 << (bits - 1)) - 1
    if peak == 0.0:
        return np.zeros(values.shape, dtype=np.int64), 0
    exponent = math.ceil(math.log2(peak / high))
    while np.max(np.abs(np.round(values / 2.0 ** exponent))) > high:
        exponent += 1
    while exponent > -1074 and np.max(np.abs(np.round(values / 2.0 ** (exponent - 1)))) <= high:
        exponent -= 1
    return np.round(values / 2.0 ** exponent).astype(np.int64), exponent


def fixed_exponent(peak, bits):
    """The exponent :func:`to_fixed` would choose for values whose largest magnitude is
    ``peak`` (it depends on nothing else): the smallest at which ``peak`` rounds into signed
    ``bits``. 0 for a peak of 0."""
    return to_fixed(np.array([float(peak)]), bits)[1]


def to_fixed_at(values, bits, exponent):
    """Quantize floats to signed ``bits``-bit integers at a given (frozen) ``exponent``: round
    to nearest as :func:`to_fixed`, then saturate to the range. Returns ``(integers as int64,
    how many saturated)``; a frozen per-tensor scale meeting a value larger than any it was
    calibrated on is the case this counts.

    Raises
    ------
    ValueError
        For NaN or Inf.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("cannot convert NaN or Inf to fixed point")
    low, high = signed_range(bits)
    rounded = np.round(values / 2.0 ** exponent)
    saturated = int(np.count_nonzero((rounded < low) | (rounded > high)))
    return np.clip(rounded, low, high).astype(np.int64), saturated
