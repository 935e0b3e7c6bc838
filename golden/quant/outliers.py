"""The Gaussian behind GOBO's outlier rule, fitted per matrix or pooled over an encoder layer, and
the check that a quantized matrix's outlier share and stored size are near what GOBO expects.

GOBO (Zadeh et al., MICRO 2020) fits one Gaussian per matrix by its mean and standard deviation.
Two options of this project change only *which* Gaussian the rule uses (the threshold stays a
natural-log density, :func:`golden.quant.quantizer.outlier_mask`):

- ``outlier_fit="robust"``: location = median, scale = :data:`MAD_TO_STD` x the median absolute
  deviation, so a handful of extreme weights cannot inflate the scale;
- ``outlier_scope="layer"``: one fit pooled over all the FC matrices of an encoder layer (names
  ``...encoder.layer.{i}....``), applied to each of them (a reading of the paper that third-party
  reimplementations use); the centroids stay per matrix.

See docs/quantizer.md ("Outlier fits and warnings").
"""

import math
import re

import numpy as np

from golden.config import GoboConfig
from golden.quant.stored import stored_nbytes

__all__ = ["OUTLIER_FITS", "OUTLIER_SCOPES", "MAD_TO_STD", "MAX_OUTLIER_FRACTION",
           "MIN_COMPRESSION_RATIO", "check_choice", "fit_gaussian", "layer_index", "scope_fits",
           "cut_in_scales", "check_layer", "outlier_share_note"]

#: How the outlier Gaussian is fitted: GOBO's mean and std, or the median and scaled MAD.
OUTLIER_FITS = ("gaussian", "robust")
#: Which weights one fit covers: each matrix (GOBO), or all FC matrices of an encoder layer.
OUTLIER_SCOPES = ("matrix", "layer")

#: ``1 / Phi^-1(3/4) = 1.482602...`` rounded as usual: the MAD of normal data times this is a
#: consistent estimate of its standard deviation (Rousseeuw and Croux, "Alternatives to the median
#: absolute deviation", JASA 88(424), 1993; the default ``constant`` of R's ``mad()``).
MAD_TO_STD = 1.4826

#: This project's choice, not the paper's: warn when more than this share of a matrix's weights
#: are outliers. GOBO reports 0.05-0.5 % on BERT; all-MiniLM-L6-v2 has 0.32 % (docs/quantizer.md).
MAX_OUTLIER_FRACTION = 0.05
#: This project's choice: warn when the stored form is less than this many times smaller than
#: FP32, if the outliers are the cause (a 3-bit matrix without outliers stores at ~10.7x; an
#: 8-bit one can never reach 4x, so it is not warned about).
MIN_COMPRESSION_RATIO = 4.0

# How check_layer names the likely cause (this project's choices). A fitted scale above
# _INFLATED x the matrix's robust scale counts as inflated (by extreme weights, or by wider
# matrices pooled with it), one below 1/_NARROW of it as too narrow (a fit pooled over narrower
# matrices); on the 36 all-MiniLM-L6-v2 FC matrices std / robust scale is 1.02-1.25 and a layer's
# pooled fit is 0.58-1.64x each matrix's. A threshold that cuts nearer than _NEAR_CUT scales from
# the centre counts as a weight scale far from BERT's (on those matrices, std 0.034-0.095, the -4
# rule cuts at 3.3-3.6 std).
_INFLATED = 2.0
_NARROW = 1.5
_NEAR_CUT = 3.0
_NAME_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_DEFAULT_THRESHOLD = GoboConfig().outlier_log_prob


def check_choice(name, value, allowed):
    """Raise ``ValueError("{name} must be one of a, b, not 'x'")`` unless ``value in allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def fit_gaussian(weights, outlier_fit="gaussian"):
    """Location and scale of the Gaussian the outlier rule uses.

    Parameters
    ----------
    weights : array_like or sequence of array_like
        One array of any shape, or several (pooled: the statistics of all their values together).
    outlier_fit : {"gaussian", "robust"}
        ``"gaussian"``: mean and population standard deviation (``ddof=0``), GOBO's fit.
        ``"robust"``: median and ``MAD_TO_STD * median(|w - median(w)|)``; when more than half the
        weights are equal the MAD is 0 and the standard deviation is used instead.

    Returns
    -------
    tuple of float
        ``(location, scale)``, from float64 arithmetic.

    Raises
    ------
    ValueError
        For an unknown ``outlier_fit`` or no weights.
    """
    check_choice("outlier_fit", outlier_fit, OUTLIER_FITS)
    if isinstance(weights, (list, tuple)) and weights and np.ndim(weights[0]) > 0:
        flat = np.concatenate([np.asarray(w, dtype=np.float64).reshape(-1) for w in weights])
    else:
        flat = np.asarray(weights, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        raise ValueError("fit_gaussian needs at least one weight")
    if outlier_fit == "gaussian":
        return float(flat.mean()), float(flat.std())
    median = float(np.median(flat))
    scale = MAD_TO_STD * float(np.median(np.abs(flat - median)))
    return median, scale if scale > 0 else float(flat.std())


def layer_index(name):
    """The encoder layer ``i`` of a tensor named ``...encoder.layer.{i}....``, else None."""
    match = _NAME_LAYER.search(name)
    return int(match.group(1)) if match else None


def scope_fits(matrices, outlier_fit="gaussian", outlier_scope="matrix"):
    """The precomputed fits an ``outlier_scope`` implies for a set of named matrices.

    Parameters
    ----------
    matrices : mapping of str to array_like
        The matrices about to be quantized, by tensor name.
    outlier_fit : {"gaussian", "robust"}
        See :func:`fit_gaussian`.
    outlier_scope : {"matrix", "layer"}
        ``"matrix"``: no precomputed fit (each matrix is fitted alone, by
        :func:`golden.quant.quantizer.quantize`). ``"layer"``: one :func:`fit_gaussian` pooled over
        the given matrices of each encoder layer.

    Returns
    -------
    dict of str to tuple of float
        ``{name: (location, scale)}`` to pass as ``quantize(..., fit=...)``; empty for
        ``"matrix"``.

    Raises
    ------
    ValueError
        For an unknown scope or fit, or, with ``"layer"``, a name without an encoder layer index.
    """
    check_choice("outlier_scope", outlier_scope, OUTLIER_SCOPES)
    check_choice("outlier_fit", outlier_fit, OUTLIER_FITS)
    if outlier_scope == "matrix":
        return {}
    groups = {}
    for name in matrices:
        index = layer_index(name)
        if index is None:
            raise ValueError(f"one outlier fit per encoder layer needs tensor names like "
                             f"encoder.layer.{{i}}.*; {name!r} has no layer index")
        groups.setdefault(index, []).append(name)
    fits = {}
    for names in groups.values():
        fit = fit_gaussian([matrices[n] for n in names], outlier_fit)
        fits.update(dict.fromkeys(names, fit))
    return fits


def cut_in_scales(scale, threshold):
    """Distance from the centre, in units of ``scale``, beyond which the log-density rule calls a
    weight an outlier: ``log N(w; mu, s) < t`` iff ``|w - mu| / s > sqrt(-2 t - ln(2 pi s^2))``.

    Returns 0.0 when even the centre's density is below the threshold (every weight is an
    outlier) and ``inf`` for ``scale == 0`` (no outliers, :func:`~golden.quant.quantizer.
    outlier_mask`).
    """
    if scale == 0:
        return math.inf
    return math.sqrt(max(0.0, -2.0 * threshold - math.log(2.0 * math.pi * scale * scale)))


def _likely_cause(layer, weights):
    """One clause naming why a matrix has many outliers, and what to try."""
    values = layer.dequantize() if weights is None else weights
    fitted = layer.std if layer.std is not None else float(np.std(values, dtype=np.float64))
    threshold = (_DEFAULT_THRESHOLD if layer.outlier_log_prob is None
                 else layer.outlier_log_prob)
    _, robust = fit_gaussian(values, "robust")
    if robust == 0:  # all weights equal, yet outliers: a given fit centred elsewhere
        return "the weights are all equal but the fit is not centred on them; try a fit of its own"
    if fitted > _INFLATED * robust:
        return (f"the fitted scale {fitted:.3g} is {fitted / robust:.3g}x this matrix's robust "
                f"scale {robust:.3g}: a few extreme weights inflate it; try --outlier-fit robust")
    if fitted * _NARROW < robust:
        return (f"the fitted scale {fitted:.3g} is only {fitted / robust:.2f}x this matrix's "
                f"robust scale {robust:.3g}, as when a fit is pooled over narrower matrices; try "
                f"--outlier-scope matrix")
    cut = cut_in_scales(fitted, threshold)
    if cut < _NEAR_CUT:
        return (f"the weights' scale ({fitted:.3g}) is far from BERT's (0.03-0.1): the "
                f"log-density threshold {threshold:g} is absolute and cuts at {cut:.2f} scales "
                f"here, 3.3-3.6 on MiniLM; rescale the weights or lower --threshold")
    return (f"the tails are far heavier than a Gaussian's (the threshold cuts at {cut:.2f} "
            f"scales); a lower --threshold keeps fewer outliers")


def check_layer(layer, weights=None):
    """Warnings for a GOBO-quantized matrix whose outlier share or stored size is far from
    expected.

    A matrix is flagged when its outlier share exceeds :data:`MAX_OUTLIER_FRACTION` or when its
    compression ratio (FP32 bytes over stored bytes, docs/quantizer.md) is below
    :data:`MIN_COMPRESSION_RATIO` although the same matrix without outliers would reach it. The
    message names the figures and the likely cause: a fitted scale inflated by extreme weights
    (more than twice the matrix's robust scale, :func:`fit_gaussian`), a fitted scale below 2/3 of
    it (a fit pooled over narrower matrices), weights at a scale far from BERT's (the absolute
    log-density threshold then cuts within 3 scales), or very heavy tails.

    Parameters
    ----------
    layer : golden.quant.layer.GoboLayer
        The quantized matrix.
    weights : array_like, optional
        Its original weights, for naming the cause; default: the reconstruction (its outliers are
        exact, the rest within a centroid).

    Returns
    -------
    tuple of str
        Empty when nothing is far from expected, else one message (no matrix name, no newline).
    """
    share = layer.n_outliers / layer.numel
    ratio = 4 * layer.numel / stored_nbytes(layer.shape, layer.index_bits, layer.n_outliers)
    best = 4 * layer.numel / stored_nbytes(layer.shape, layer.index_bits, 0)
    problems = []
    if share > MAX_OUTLIER_FRACTION:
        problems.append(f"outlier share {100 * share:.2f} % > {100 * MAX_OUTLIER_FRACTION:g} %")
    if ratio < MIN_COMPRESSION_RATIO <= best:
        shown = round(ratio, 2)
        if shown >= MIN_COMPRESSION_RATIO:  # 3.998x is "3.99x < 4x", not "4.00x < 4x"
            shown = math.floor(100 * ratio) / 100
        problems.append(f"compression {shown:.2f}x < {MIN_COMPRESSION_RATIO:g}x")
    if not problems:
        return ()
    return (f"{', '.join(problems)}: {_likely_cause(layer, weights)}",)


def outlier_share_note(n_outliers, numel):
    """A clause for errors about outlier counts (e.g. a full outlier memory): the share, and when
    it exceeds :data:`MAX_OUTLIER_FRACTION` the likely causes and the remedy."""
    share = n_outliers / numel
    note = f"{100 * share:.2f} % of the {numel} weights are outliers"
    if share <= MAX_OUTLIER_FRACTION:
        return note
    return (f"{note}, far above the 0.05-0.5 % GOBO finds in BERT: a few extreme weights "
            f"inflating the fitted std, or a weight scale far from BERT's (the log-density "
            f"threshold is absolute); try --outlier-fit robust, or rescale the weights "
            f"(docs/quantizer.md)")
