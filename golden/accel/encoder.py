"""A whole BERT encoder whose every encoder FC layer runs on the bit-exact accelerator model,
with per-tensor power-of-two activation scales calibrated once and then frozen
(docs/model.md, "The whole model on the accelerator").

The host (NumPy, float32) keeps everything that is not an FC layer: the embedding look-up and its
LayerNorm, the attention scores, their softmax and the weighted sum of the values, the residual
additions, both LayerNorms of each layer, GELU and mean pooling. At each of the ``6 x L`` FC
layers the host quantizes the layer's float input to signed ``act_bits`` integers at the layer's
frozen input exponent (round to nearest, saturate, counted), the tile computes ``Y`` exactly as
``golden.hwmodel.tile`` defines it from the layer's image (GOBO indexes, fixed-point centroids,
outlier residuals, fixed-point bias, frozen output exponent; docs/tile.md section 1), and the
host turns ``Y`` back into floats (``Y * 2**e_y``, exact). Only the real tokens of a batch go to
the tile; padding rows get zeros, which no real token sees (masked keys, mean pooling).

Calibration (:func:`calibrate`) runs the FP32 model on a few sentences kept apart from the
evaluation and records, for every FC layer, the largest magnitude of its input and of its FP32
output over their real tokens; each exponent is then the finest at which that peak fits
(:func:`golden.hwmodel.fixedpoint.fixed_exponent`): the same rule as ``gobo simulate``, applied
once per layer instead of once per run.

The tile is a parameter: ``tile(name, image, acts)`` gets the layer's name, its
:class:`~golden.hwmodel.layer_image.LayerImage` and the integer activations ``(T, N)`` (every
real token of the batch: more than ``max_tokens`` means several runs of the tile) and returns the
physical outputs ``(blocks * pes, T)`` as :func:`golden.hwmodel.tile.tile_outputs` does. Without
it the golden tile model computes the outputs; with it (e.g. a simulation of the RTL) its outputs
feed the host and every element is compared with the golden model's (``mismatches``).
"""

import collections
import dataclasses

import numpy as np

from golden.hwmodel.fixedpoint import fixed_exponent, to_fixed_at
from golden.hwmodel.layer_image import build_layer_image, logical_outputs
from golden.hwmodel.tile import requantize, saturated_outputs, tile_accumulators
from golden.nlp.bert import FC_PARTS, fc_names

__all__ = ["Calibration", "calibrate", "AcceleratedEncoder", "LayerCounts", "FC_KINDS",
           "fc_kind"]

#: Short names of :data:`~golden.nlp.bert.FC_PARTS`: query, key, value, attention.output,
#: intermediate, output.
FC_KINDS = tuple(p.removeprefix("attention.self.").removesuffix(".dense") for p in FC_PARTS)


def fc_kind(name):
    """``(layer index, kind)`` of an FC layer name (``encoder.layer.3.intermediate.dense`` ->
    ``(3, "intermediate")``); a trailing ``.weight`` is allowed."""
    parts = name.removesuffix(".weight").split(".", 3)
    return int(parts[2]), FC_KINDS[FC_PARTS.index(parts[3])]


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Peak magnitudes per FC layer (names without ``.weight``) over the calibration tokens:
    ``inputs`` of the layer, ``outputs`` of its FP32 result; ``sentences``, ``tokens`` counted."""
    inputs: dict
    outputs: dict
    sentences: int
    tokens: int


def calibrate(encoder, tokenizer, sentences):
    """Run the FP32 ``encoder`` on ``sentences`` and record every FC layer's peak input and
    output magnitudes over the real tokens (:class:`Calibration`)."""
    inputs = collections.defaultdict(float)
    outputs = collections.defaultdict(float)

    def record(name, h, mask):
        real = np.asarray(mask) > 0
        y = encoder.dense(name, h)
        inputs[name] = max(inputs[name], float(np.abs(h[real]).max()))
        outputs[name] = max(outputs[name], float(np.abs(y[real]).max()))
        return y

    encoder.encode(sentences, tokenizer, fc=record)
    return Calibration(dict(inputs), dict(outputs), len(sentences),
                       int(sum(tokenizer.lengths(sentences))))


@dataclasses.dataclass
class LayerCounts:
    """What one FC layer saw since the last :meth:`AcceleratedEncoder.reset`: activations in
    and how many of them saturated in the host's quantizer, outputs (logical rows x tokens) and
    how many the tile clamped to ``act_bits``, tokens, output elements (physical, padding
    rows included) on which a given ``tile`` disagreed with the golden model, and the sums
    behind :attr:`rel_rmse`."""
    inputs: int = 0
    inputs_saturated: int = 0
    outputs: int = 0
    outputs_saturated: int = 0
    tokens: int = 0
    mismatches: int = 0
    error_square_sum: float = 0.0
    reference_sum: float = 0.0
    reference_square_sum: float = 0.0

    @property
    def rel_rmse(self):
        """The RMS difference between the layer's dequantized outputs and the FP32 layer on
        the same (float) inputs, over the standard deviation of the FP32 outputs: the layer's own
        error (GOBO weights, fixed point, activation quantization), not the error it inherits."""
        if not self.outputs:
            return 0.0
        mean = self.reference_sum / self.outputs
        spread = max(self.reference_square_sum / self.outputs - mean * mean, 0.0) ** 0.5
        return (self.error_square_sum / self.outputs) ** 0.5 / spread if spread else 0.0


class AcceleratedEncoder:
    """``encoder`` (a :class:`~golden.nlp.bert.BertEncoder`) with every encoder FC layer on the
    accelerator of ``config`` (a :class:`~golden.config.GoboConfig`).

    Parameters
    ----------
    config : GoboConfig
        The tile; its ``act_bits`` is the activation width.
    encoder : BertEncoder
        FP32 weights; the host runs everything else with them.
    calibration : Calibration
        Frozen peaks of every FC layer's input and output.
    layers : dict, optional
        ``{weight name: GoboLayer}`` to reuse (the same quantization as a weights-only model);
        default: quantized now with ``config``'s index width and outlier threshold.
    tile : callable, optional
        ``tile(name, image, acts) -> outputs``, see the module docstring.

    Raises
    ------
    ImageError
        If a layer does not fit the tile (rows, columns, outliers).
    ValueError
        (When run) if a given ``tile`` returns outputs of the wrong shape.
    """

    def __init__(self, config, encoder, calibration, *, layers=None, tile=None):
        self.config = config
        self._encoder = encoder
        self._tile = tile
        self.images = {}
        for weight in fc_names(encoder.config):
            name = weight.removesuffix(".weight")
            self.images[name] = build_layer_image(
                config, encoder.weights[weight], bias=encoder.weights[f"{name}.bias"],
                act_exponent=fixed_exponent(calibration.inputs[name], config.act_bits),
                out_exponent=fixed_exponent(calibration.outputs[name], config.act_bits),
                layer=None if layers is None else layers[weight])
        self.reset()

    def reset(self):
        """Zero every :class:`LayerCounts`."""
        self.counts = {name: LayerCounts() for name in self.images}

    def __call__(self, name, h, mask):
        """The FC layer ``name`` on input ``h`` ``[batch, tokens, in]`` (float) of a batch with
        ``mask`` ``[batch, tokens]``: the :meth:`~golden.nlp.bert.BertEncoder.encode` hook."""
        image, config, counts = self.images[name], self.config, self.counts[name]
        real = np.asarray(mask) > 0
        acts, saturated = to_fixed_at(h[real], config.act_bits,
                                      image.exponents["activations"])
        acc = tile_accumulators(image, acts)
        y = requantize(config, acc, image.out_shift)
        if self._tile is not None:
            given = np.asarray(self._tile(name, image, acts))
            if given.shape != y.shape:
                raise ValueError(f"{name}: the tile returned outputs of shape {given.shape}, "
                                 f"not {y.shape}")
            counts.mismatches += int(np.count_nonzero(given != y))
            y = given
        counts.inputs += acts.size
        counts.inputs_saturated += saturated
        counts.outputs += image.rows * len(acts)
        counts.outputs_saturated += saturated_outputs(config, acc[:image.rows], image.out_shift)
        counts.tokens += len(acts)
        hw = logical_outputs(image, y).T * 2.0 ** image.exponents["outputs"]
        reference = self._encoder.dense(name, h[real]).astype(np.float64)
        counts.error_square_sum += float(np.sum((hw - reference) ** 2))
        counts.reference_sum += float(reference.sum())
        counts.reference_square_sum += float(np.sum(reference * reference))
        out = np.zeros(h.shape[:-1] + (image.rows,), dtype=h.dtype)
        out[real] = hw
        return out

    def encode(self, sentences, tokenizer, **kwargs):
        """Sentence embeddings, as :meth:`~golden.nlp.bert.BertEncoder.encode` with this
        accelerator as its ``fc`` hook (counts accumulate; :meth:`reset` to start again)."""
        return self._encoder.encode(sentences, tokenizer, fc=self, **kwargs)
