"""Every encoder FC layer of a BERT on one real sentence, through image building and the
bit-exact tile model, exactly as ``gobo simulate --activations`` would run each layer: its own
activation exponent, its real bias, its output exponent calibrated on the FP32 result.

This is the numeric contract's test on real inputs (docs/numerics.md, "Real inputs"): a layer
must never be refused, and every saturation is counted.
"""

import dataclasses

import numpy as np

from golden.hwmodel.layer_image import ImageError, calibrated_image, logical_outputs
from golden.hwmodel.tile import requantize, saturated_outputs, tile_accumulators

__all__ = ["fc_inputs", "LayerCheck", "check_fc_layer"]


def fc_inputs(encoder, tokenizer, sentence):
    """``{layer name: float64 input (T, in)}`` of every encoder FC layer of ``encoder`` (a
    :class:`~golden.nlp.bert.BertEncoder`) on ``sentence``, ``T`` its tokens as ``tokenizer``
    makes them (special tokens included, truncated to its ``max_length``, no padding). Layer
    names are :func:`~golden.nlp.bert.fc_names` without ``.weight``."""
    ids, mask, types = tokenizer.encode([sentence])
    tokens = int(np.asarray(mask).sum())
    captured = {}

    def record(name, h):
        captured[name] = np.asarray(h[0], dtype=np.float64)
        return encoder.dense(name, h)

    encoder.hidden_states(ids[:, :tokens], mask[:, :tokens], types[:, :tokens], fc=record)
    return captured


@dataclasses.dataclass(frozen=True)
class LayerCheck:
    """One FC layer run on the bit-exact tile model.

    ``refused`` is the error message if the layer could not be built or run (must be None),
    ``shift_bias`` the bias shift the image needed (> 0: the bias did not fit at the
    accumulator's exponent), ``bias_saturated`` and ``outputs_saturated`` the saturation counts,
    ``acc_margin_bits`` how many of the accumulator's ``acc_bits`` were left unused by the
    largest accumulator, ``bias_headroom_bits`` how many more bits the largest bias could grow
    (relative to the accumulator's step) before it would saturate, ``rel_rmse`` the hardware
    result's error against FP32 (RMSE over the FP32 result's standard deviation)."""
    name: str
    refused: str = None
    shift_bias: int = None
    bias_saturated: int = None
    outputs_saturated: int = None
    outputs: int = None
    acc_margin_bits: int = None
    bias_headroom_bits: int = None
    rel_rmse: float = None

    def to_dict(self):
        return dataclasses.asdict(self)


def check_fc_layer(config, name, weights, acts, *, bias=None, layer=None):
    """Run FC layer ``name`` (float ``weights`` (M, N), ``bias`` (M,)) on float activations
    ``acts`` (T, N) through :func:`~golden.hwmodel.layer_image.calibrated_image` and the
    bit-exact tile model; ``layer`` reuses its :class:`~golden.quant.quantizer.GoboLayer`. The
    row order is kept (it changes the cycles, never the numbers). Never raises for a refusal:
    it is returned in :attr:`LayerCheck.refused`."""
    try:
        image, x_int, fp32 = calibrated_image(config, weights, acts, bias=bias, layer=layer,
                                              balance_rows=False)
        acc = tile_accumulators(image, x_int)
    except (ImageError, ValueError) as e:
        return LayerCheck(name, refused=" ".join(str(e).split()))
    y = logical_outputs(image, requantize(config, acc, image.out_shift))
    hw = y.T * 2.0 ** image.exponents["outputs"]
    spread = float(np.std(fp32))
    peak = int(np.abs(acc).max()) if acc.size else 0
    return LayerCheck(
        name, shift_bias=image.shift_bias, bias_saturated=image.bias_saturated,
        outputs_saturated=saturated_outputs(config, acc[:image.rows], image.out_shift),
        outputs=int(fp32.size), acc_margin_bits=config.acc_bits - 1 - peak.bit_length(),
        bias_headroom_bits=(config.bias_bits - 1 + config.max_align_shift - image.shift_bias
                            - int(np.abs(image.bias).max()).bit_length()),
        rel_rmse=float(np.sqrt(np.mean((hw - fp32) ** 2)) / spread) if spread else 0.0)
