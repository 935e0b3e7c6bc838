"""Whole-model weight quantization of a BERT encoder, and the packed model file (``.gobo``).

A :class:`QuantSpec` says how: every encoder FC matrix (:func:`golden.nlp.bert.fc_names`) with one
scheme at ``bits``, the three embedding tables with the same scheme at ``embedding_bits`` (or kept
FP32), and every other tensor the encoder reads (biases, LayerNorms) kept FP32. Schemes:

- ``gobo``: :func:`golden.quant.quantizer.quantize` (dictionary of ``2**bits`` centroids +
  outliers; the outlier Gaussian fitted per matrix, or with ``outlier_scope="layer"`` pooled over
  each encoder layer's FC matrices, :func:`golden.quant.outliers.scope_fits`);
- ``uniform``: symmetric per-channel (:func:`golden.quant.scaled.quantize_uniform`);
- ``blockwise``: symmetric, ``block`` weights per float16 scale
  (:func:`golden.quant.scaled.quantize_blockwise`).

Two GOBO options use calibration sentences (:func:`quantize_model`'s ``calibration``;
docs/quantizer.md, "Beyond one width per model"): ``rounding="gptq"`` chooses each FC
matrix's indexes with GPTQ (:func:`golden.quant.gptq.quantize_gptq`; same dictionary,
outliers and stored form), and ``bits_budget`` gives each FC matrix ``bits`` or ``bits + 1``
index bits, chosen by measured sensitivity so that the FC bits per weight stays within the
budget (:mod:`golden.nlp.mixed_precision`).

The ``.gobo`` file, little-endian (docs/model.md)::

    0   8  magic b"GOBOMODL"
    8   2  format version (2)
    10  2  reserved, 0
    12  4  manifest length M (uint32)
    16  4  CRC-32 of the manifest bytes (uint32)
    20  M  manifest: UTF-8 JSON {"format", "config", "spec", "source", "tensors"}
    20+M   tensor blobs, back to back in manifest order

Each manifest tensor entry holds ``name``, ``kind`` (``gobo``: golden.quant.stored form; ``scaled``:
golden.quant.scaled form; ``fp32``: raw little-endian float32), ``shape``, ``offset`` (from the
start of the blobs), ``length`` and ``crc32`` (:func:`tensor_crc32`: the CRC-32 of the UTF-8 name
followed by the blob, so that two swapped names fail it). Every byte read is under a CRC, every
manifest key is required and every field is checked; :func:`from_bytes` names the first problem.
Version 1 (no manifest CRC, blob-only tensor CRCs) is refused. The file's size *is* the model
size on disk that the reports quote.
"""

import dataclasses
import hashlib
import json
import math
import pathlib
import struct
import zlib

import numpy as np

from golden.nlp.bert import (
    BertConfig,
    BertEncoder,
    BertError,
    embedding_names,
    expected_shapes,
    fc_names,
)
from golden.nlp.mixed_precision import (
    allocate,
    fc_bits_per_weight,
    gram_matrices,
    sensitivities,
)
from golden.quant import scaled, stored
from golden.quant.gptq import quantize_gptq
from golden.quant.outliers import OUTLIER_FITS, OUTLIER_SCOPES, check_choice, scope_fits
from golden.quant.quantizer import METHODS, quantize

__all__ = ["QuantSpec", "QuantizedModel", "ModelFormatError", "SCHEMES", "ROUNDINGS",
           "quantize_model",
           "to_bytes", "from_bytes", "save", "load", "MAGIC", "VERSION", "HEADER_SIZE",
           "pack_header", "tensor_crc32"]

SCHEMES = ("gobo", "uniform", "blockwise")
#: How a GOBO matrix's indexes are chosen: nearest centroid (the paper), or GPTQ.
ROUNDINGS = ("nearest", "gptq")
MAGIC = b"GOBOMODL"
VERSION = 2
_HEADER = struct.Struct("<8sHHII")
HEADER_SIZE = _HEADER.size
_KINDS = ("gobo", "scaled", "fp32")


class ModelFormatError(ValueError):
    """Bytes that are not a valid packed model."""


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """How to quantize a whole model.

    Parameters
    ----------
    scheme : {"gobo", "uniform", "blockwise"}
    bits : int
        FC matrices: index bits (gobo) or code bits (uniform, blockwise), 2..8.
    embedding_bits : int or None
        The embedding tables, same scheme; None keeps them FP32.
    block : int
        Weights per scale for ``blockwise``.
    outlier_log_prob : float
        GOBO's outlier threshold.
    method : {"gobo", "kmeans"}
        GOBO's centroid selection.
    outlier_fit : {"gaussian", "robust"}
        GOBO's outlier Gaussian: mean and std (the paper), or median and 1.4826 x MAD
        (:func:`golden.quant.outliers.fit_gaussian`).
    outlier_scope : {"matrix", "layer"}
        One outlier fit per matrix (the paper), or one per encoder layer pooled over its six FC
        matrices and applied to each (the embedding tables keep their own fit); the centroids
        stay per matrix.
    rounding : {"nearest", "gptq"}
        GOBO's index choice: nearest centroid (the paper) or GPTQ on calibration sentences.
    bits_budget : float or None
        GOBO only: FC stored bits per weight at most this, each FC matrix at ``bits`` or
        ``bits + 1`` index bits by measured sensitivity; None: every FC matrix at ``bits``.
    """

    scheme: str = "gobo"
    bits: int = 3
    embedding_bits: int = 4
    block: int = 64
    outlier_log_prob: float = -4.0
    method: str = "gobo"
    outlier_fit: str = "gaussian"
    outlier_scope: str = "matrix"
    rounding: str = "nearest"
    bits_budget: float = None

    def __post_init__(self):
        for name, allowed in (("scheme", SCHEMES), ("method", METHODS),
                              ("outlier_fit", OUTLIER_FITS), ("outlier_scope", OUTLIER_SCOPES),
                              ("rounding", ROUNDINGS)):
            check_choice(name, getattr(self, name), allowed)
        for name in ("bits", "embedding_bits"):
            value = getattr(self, name)
            if value is None and name == "embedding_bits":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 8:
                raise ValueError(f"{name} must be an integer between 2 and 8, not {value!r}")
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise ValueError(f"block must be a positive integer, not {self.block!r}")
        if not isinstance(self.outlier_log_prob, (int, float)) or \
                not math.isfinite(self.outlier_log_prob):
            raise ValueError(f"outlier_log_prob must be a finite number, not "
                             f"{self.outlier_log_prob!r}")
        budget = self.bits_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                                   or not 0 < budget < 64):
            raise ValueError(f"bits_budget must be a number of bits per weight, not {budget!r}")
        if self.scheme != "gobo" and (self.rounding != "nearest" or budget is not None):
            raise ValueError(f"rounding gptq and bits_budget apply to scheme gobo, not "
                             f"{self.scheme}")
        if budget is not None and self.bits == 8:
            raise ValueError("bits_budget mixes bits and bits + 1 index bits; bits must be below 8")

    @property
    def needs_calibration(self):
        """True when quantizing needs calibration sentences (GPTQ, a bits budget)."""
        return self.rounding == "gptq" or self.bits_budget is not None

    @property
    def label(self):
        emb = "fp32" if self.embedding_bits is None else f"{self.embedding_bits}b"
        extra = f" B={self.block}" if self.scheme == "blockwise" else ""
        if self.scheme == "gobo":
            extra += "".join(f" {value} {what}" for value, what, default in (
                (self.outlier_fit, "fit", "gaussian"), (self.outlier_scope, "scope", "matrix"))
                if value != default)
            extra += " gptq" if self.rounding == "gptq" else ""
        bits = f"{self.bits}b" if self.bits_budget is None else \
            f"{self.bits}/{self.bits + 1}b <= {self.bits_budget:g} b/w"
        return f"{self.scheme} {bits}{extra} / emb {emb}"

    def to_dict(self):
        return dataclasses.asdict(self)


def _quantize_matrix(array, bits, spec, fit=None, gram=None):
    if spec.scheme == "gobo" and gram is not None:
        return quantize_gptq(array, gram, index_bits=bits, outlier_log_prob=spec.outlier_log_prob,
                             method=spec.method, outlier_fit=spec.outlier_fit, fit=fit)
    if spec.scheme == "gobo":
        return quantize(array, index_bits=bits, outlier_log_prob=spec.outlier_log_prob,
                        method=spec.method, outlier_fit=spec.outlier_fit, fit=fit)
    if spec.scheme == "uniform":
        return scaled.quantize_uniform(array, bits=bits)
    return scaled.quantize_blockwise(array, bits=bits, block=min(spec.block, array.shape[1]))


def _kind(layer):
    return "gobo" if isinstance(layer, stored.GoboLayer) else "scaled"


def _layer_bytes(layer):
    return stored.to_bytes(layer) if _kind(layer) == "gobo" else scaled.to_bytes(layer)


class QuantizedModel:
    """A BERT encoder's weights, some quantized.

    Parameters
    ----------
    config : BertConfig
    spec : QuantSpec
    layers : dict of str to GoboLayer or ScaledLayer
        The quantized matrices.
    fp32 : dict of str to numpy.ndarray
        Every other tensor the encoder reads.
    source : dict
        Where the FP32 weights came from (``path``, ``bytes``, ``sha256``), or empty.
    """

    def __init__(self, config, spec, layers, fp32, source=None):
        self.config, self.spec, self.layers, self.fp32 = config, spec, dict(layers), dict(fp32)
        self.source = dict(source or {})
        shapes = expected_shapes(config)
        names = set(self.layers) | set(self.fp32)
        missing = [n for n in shapes if n not in names]
        if missing:
            raise BertError(f"the quantized model lacks tensor {missing[0]!r}")
        for name, layer in self.layers.items():
            if tuple(layer.shape) != shapes.get(name):
                raise BertError(f"quantized tensor {name!r} has shape {tuple(layer.shape)}, "
                                f"but the config requires {shapes.get(name)}")

    def dequantized(self):
        """``{name: float32 array}`` of every tensor, quantized ones reconstructed."""
        return {**self.fp32, **{n: layer.dequantize() for n, layer in self.layers.items()}}

    def encoder(self):
        return BertEncoder(self.config, self.dequantized())

    def fp32_bytes(self):
        """Size of the same tensors as FP32."""
        return 4 * sum(int(np.prod(s)) for s in expected_shapes(self.config).values())

    def quantized_numel(self):
        return sum(layer.numel for layer in self.layers.values())

    def to_bytes(self):
        return to_bytes(self)


def _source_info(path):
    if path is None:
        return {}
    path = pathlib.Path(path)
    if not path.is_file():     # a checkpoint folder or a shard index: name it, hash nothing
        return {"path": str(path.resolve())}
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return {"path": str(path.resolve()), "bytes": path.stat().st_size,
            "sha256": digest.hexdigest()}


def quantize_model(encoder, spec, *, source_path=None, progress=None, calibration=None):
    """Quantize ``encoder``'s weights (a :class:`~golden.nlp.bert.BertEncoder`) as ``spec`` says.

    ``progress``, if given, is called as ``progress(label, seconds)`` after each step, ``label``
    saying what was done: ``"quantized NAME"`` per matrix (with a bits budget each FC matrix
    twice, ``"quantized NAME at B bits"``), then GPTQ's Gram matrices and the bits budget's
    sensitivities ("measured ..."). ``calibration`` is a
    ``(tokenizer, sentences)`` pair, needed when ``spec.needs_calibration``: GPTQ's Gram matrices
    and the bits budget's sensitivities are measured on those sentences (keep them apart from
    any you measure accuracy on).

    Raises
    ------
    ValueError
        For a matrix that cannot be quantized (naming it), a missing ``calibration``, or a bits
        budget below what ``bits`` alone needs.
    """
    import time

    if not isinstance(spec, QuantSpec):
        raise TypeError(f"spec must be a QuantSpec, not {type(spec).__name__}")
    if spec.needs_calibration and calibration is None:
        raise ValueError("GPTQ rounding and a bits budget need calibration sentences")
    config, weights = encoder.config, encoder.weights
    fc = fc_names(config)
    fits, grams = {}, {}
    if spec.scheme == "gobo":
        fits = scope_fits({name: weights[name] for name in fc}, spec.outlier_fit,
                          spec.outlier_scope)

    def step(label, work, *args):
        start = time.perf_counter()
        result = work(*args)
        if progress:
            progress(label, time.perf_counter() - start)
        return result

    if spec.rounding == "gptq":
        grams = step(f"measured GPTQ Gram matrices of the FC inputs on {len(calibration[1])} "
                     f"sentences", gram_matrices, encoder, *calibration)

    def quantize_all(plan, labelled=False):
        out = {}
        for name, bits in plan.items():
            try:
                label = f"quantized {name}" + (f" at {bits} bits" if labelled else "")
                out[name] = step(label, _quantize_matrix, weights[name], bits, spec,
                                 fits.get(name), grams.get(name))
            except ValueError as e:
                raise ValueError(f"tensor {name!r}: {e}") from None
        return out

    budget = spec.bits_budget is not None
    layers = quantize_all(dict.fromkeys(fc, spec.bits), labelled=budget)
    if budget:
        wide = quantize_all(dict.fromkeys(fc, spec.bits + 1), labelled=True)
        drops, _ = step(f"measured bits-budget sensitivities of {len(fc)} matrices on "
                        f"{len(calibration[1])} sentences", sensitivities, encoder, *calibration,
                        layers, wide)
        layers = allocate(layers, wide, drops, spec.bits_budget)
    if spec.embedding_bits is not None:
        layers.update(quantize_all(dict.fromkeys(embedding_names(), spec.embedding_bits)))
    fp32 = {n: np.asarray(a, dtype=np.float32) for n, a in weights.items() if n not in layers}
    return QuantizedModel(config, spec, layers, fp32, _source_info(source_path))


# The .gobo container ------------------------------------------------------------------------------

def tensor_crc32(name, blob):
    """A tensor entry's ``crc32``: over its UTF-8 name, then its blob."""
    return zlib.crc32(blob, zlib.crc32(name.encode()))


def pack_header(manifest):
    """The 20-byte header in front of ``manifest`` (its UTF-8 JSON bytes)."""
    return _HEADER.pack(MAGIC, VERSION, 0, len(manifest), zlib.crc32(manifest))


def to_bytes(model):
    blobs, entries, offset = [], [], 0
    names = list(expected_shapes(model.config))
    for name in names:
        if name in model.layers:
            layer = model.layers[name]
            kind, blob, shape = _kind(layer), _layer_bytes(layer), layer.shape
        else:
            array = np.asarray(model.fp32[name], dtype="<f4")
            kind, blob, shape = "fp32", array.tobytes(), array.shape
        entries.append({"name": name, "kind": kind, "shape": [int(n) for n in shape],
                        "offset": offset, "length": len(blob),
                        "crc32": tensor_crc32(name, blob)})
        blobs.append(blob)
        offset += len(blob)
    manifest = json.dumps({"format": "gobo-model", "config": model.config.to_dict(),
                           "spec": model.spec.to_dict(), "source": model.source,
                           "tensors": entries}, separators=(",", ":")).encode()
    return b"".join([pack_header(manifest), manifest, *blobs])


def _fail(message):
    raise ModelFormatError(f"not a valid packed model: {message}")


def _parse_blob(entry, blob):
    name, kind, shape = entry["name"], entry["kind"], tuple(entry["shape"])
    try:
        if kind == "gobo":
            layer = stored.from_bytes(blob)
        elif kind == "scaled":
            layer = scaled.from_bytes(blob)
        else:
            if len(blob) != 4 * math.prod(shape):
                _fail(f"tensor {name!r}: {len(blob)} bytes do not hold float32 {shape}")
            array = np.frombuffer(blob, dtype="<f4").reshape(shape).astype(np.float32)
            if not np.all(np.isfinite(array)):
                _fail(f"tensor {name!r} holds NaN or Inf")
            return array
    except (stored.StoredFormatError, scaled.ScaledFormatError) as e:
        _fail(f"tensor {name!r}: {e}")
    if tuple(layer.shape) != shape:
        _fail(f"tensor {name!r}: its blob has shape {tuple(layer.shape)}, the manifest says "
              f"{shape}")
    return layer


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


_MANIFEST_KEYS = ("format", "config", "spec", "source", "tensors")
_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(BertConfig))
_SPEC_KEYS = tuple(f.name for f in dataclasses.fields(QuantSpec))
#: Spec keys added after format version 2 came out: a file without them has their defaults.
_NEW_SPEC_KEYS = {"rounding": "nearest", "bits_budget": None}
#: Upper bounds of a packed model's config: far above any BERT, far below a flipped high bit.
_CONFIG_LIMITS = {"vocab_size": 1 << 22, "hidden_size": 1 << 16, "num_hidden_layers": 1024,
                  "num_attention_heads": 1024, "intermediate_size": 1 << 18,
                  "max_position_embeddings": 1 << 20, "type_vocab_size": 1024}
_MAX_LAYER_NORM_EPS = 1e-3


def _keys(what, obj, keys):
    """``obj`` is a JSON object with exactly ``keys``."""
    if not isinstance(obj, dict):
        _fail(f"the manifest's {what} is not an object")
    missing = [k for k in keys if k not in obj]
    if missing:
        _fail(f"the manifest's {what} lacks {', '.join(map(repr, missing))}")
    extra = [k for k in obj if k not in keys]
    if extra:
        _fail(f"the manifest's {what} has unknown key {extra[0][:40]!r}")


def _manifest(text):
    try:
        manifest = json.loads(text)
    except ValueError as e:   # UnicodeDecodeError, JSONDecodeError, an int of over 4300 digits
        _fail(f"the manifest is not valid JSON ({e})")
    except RecursionError:
        _fail("the manifest is nested too deeply")
    if not isinstance(manifest, dict) or manifest.get("format") != "gobo-model":
        _fail("the manifest is not a gobo-model object")
    for key in _MANIFEST_KEYS:
        if key not in manifest:
            _fail(f"the manifest lacks {key!r}")
    _keys("top level", manifest, _MANIFEST_KEYS)
    _keys("config", manifest["config"], _CONFIG_KEYS)
    if isinstance(manifest["spec"], dict):
        manifest["spec"] = {**_NEW_SPEC_KEYS, **manifest["spec"]}
    _keys("spec", manifest["spec"], _SPEC_KEYS)
    if not isinstance(manifest["tensors"], list):
        _fail("'tensors' is not a list")
    source = manifest["source"]
    if not isinstance(source, dict):
        _fail("the manifest's source is not an object")
    for key, kind in (("path", str), ("bytes", int), ("sha256", str)):
        if key in source and (not isinstance(source[key], kind) or
                              isinstance(source[key], bool)):
            _fail(f"the manifest's source {key} is not a {kind.__name__}")
    return manifest


def _check_config(config):
    """Ranges a packed model's config must lie in (BertConfig checks types, positivity and
    that hidden_size is a multiple of num_attention_heads)."""
    for key, limit in _CONFIG_LIMITS.items():
        if getattr(config, key) > limit:
            _fail(f"config {key} {getattr(config, key)} exceeds {limit}")
    if isinstance(config.layer_norm_eps, bool) or config.layer_norm_eps > _MAX_LAYER_NORM_EPS:
        _fail(f"config layer_norm_eps {config.layer_norm_eps!r} is not a number in "
              f"(0, {_MAX_LAYER_NORM_EPS}]")


def _check_bits(config, spec, layers, fp32):
    """The tensors are quantized as the spec says: scheme, bits (``bits`` or ``bits + 1`` and
    the FC bits per weight within ``bits_budget``, if set), embedding_bits and block."""
    kind = "gobo" if spec.scheme == "gobo" else "scaled"
    fc = fc_names(config)
    plan = {name: spec.bits for name in fc}
    plan.update({name: spec.embedding_bits for name in embedding_names()})
    for name, bits in plan.items():
        if bits is None:
            if name not in fp32:
                _fail(f"tensor {name!r} is quantized, but the spec keeps the embeddings FP32")
            continue
        if name not in layers or _kind(layers[name]) != kind:
            _fail(f"tensor {name!r} is not stored as {kind}, as scheme {spec.scheme!r} says")
        layer = layers[name]
        have = layer.index_bits if kind == "gobo" else layer.bits
        if spec.bits_budget is not None and name in fc and have == bits + 1:
            continue
        if have != bits:
            _fail(f"tensor {name!r} has {have}-bit codes, but the spec says {bits}")
        if kind == "scaled":
            cols = layer.shape[1]
            block = cols if spec.scheme == "uniform" else min(spec.block, cols)
            if layer.block != block:
                _fail(f"tensor {name!r} has {layer.block} weights per scale, but scheme "
                      f"{spec.scheme!r} (block {spec.block}) says {block}")
    extra = [n for n in layers if n not in plan]
    if extra:
        _fail(f"tensor {extra[0]!r} is quantized, but the spec keeps it FP32")
    if spec.bits_budget is not None:
        stored_bits = fc_bits_per_weight(layers[n] for n in fc)
        if stored_bits > spec.bits_budget:
            _fail(f"the FC matrices take {stored_bits:.4f} bits per weight, over the spec's "
                  f"budget of {spec.bits_budget:g}")


def _check_entry(i, entry, shapes, seen, offset):
    """Every field of manifest tensor entry ``i`` checked against the config's ``shapes``
    before its blob is touched."""
    if not isinstance(entry, dict) or \
            any(k not in entry for k in ("name", "kind", "shape", "offset", "length", "crc32")):
        _fail(f"tensor entry {i} lacks name, kind, shape, offset, length or crc32")
    name = entry["name"]
    if not isinstance(name, str):
        _fail(f"tensor entry {i} has a name that is not a string")
    if name not in shapes:
        _fail(f"tensor {name[:80]!r} is not a tensor of this config's encoder")
    if name in seen:
        _fail(f"tensor {name!r} appears twice")
    if not isinstance(entry["kind"], str) or entry["kind"] not in _KINDS:
        _fail(f"tensor {name!r} has unknown kind {str(entry['kind'])[:40]!r}")
    shape = entry["shape"]
    if not isinstance(shape, list) or tuple(n if _is_int(n) else None for n in shape) \
            != shapes[name]:
        _fail(f"tensor {name!r} has shape {str(shape)[:60]}, but the config requires "
              f"{shapes[name]}")
    if not all(_is_int(entry[k]) for k in ("offset", "length", "crc32")):
        _fail(f"tensor {name!r}: offset, length and crc32 must be integers")
    if entry["offset"] != offset or entry["length"] < 0:
        _fail(f"tensor {name!r} does not start where the previous one ends ({offset})")


def from_bytes(data):
    """Parse a packed model; raises :class:`ModelFormatError` naming the first problem."""
    data = bytes(data)
    if len(data) < 10:
        _fail(f"{len(data)} bytes is shorter than the {_HEADER.size}-byte header")
    magic, version = data[:8], int.from_bytes(data[8:10], "little")
    if magic != MAGIC:
        _fail(f"magic is {magic!r}, expected {MAGIC!r}")
    if version == 1:
        _fail("format version 1 (no manifest checksum) is no longer read; make the file again "
              "with `gobo quantize WEIGHTS --all`")
    if version != VERSION:
        _fail(f"format version {version} is not supported (only {VERSION})")
    if len(data) < _HEADER.size:
        _fail(f"{len(data)} bytes is shorter than the {_HEADER.size}-byte header")
    _, _, reserved, manifest_len, manifest_crc = _HEADER.unpack_from(data)
    if reserved != 0:
        _fail(f"reserved header field is {reserved}, expected 0")
    start = _HEADER.size + manifest_len
    if start > len(data):
        _fail(f"manifest length {manifest_len} runs past the end of the {len(data)}-byte file")
    if zlib.crc32(data[_HEADER.size:start]) != manifest_crc:
        _fail("the manifest fails its CRC-32 check (corrupted)")
    manifest = _manifest(data[_HEADER.size:start])
    try:
        config = BertConfig.from_dict(manifest["config"], source="manifest config")
        spec = QuantSpec(**manifest["spec"])
    except (BertError, TypeError, ValueError) as e:
        _fail(" ".join(str(e).split()))
    _check_config(config)
    shapes = expected_shapes(config)
    layers, fp32, offset = {}, {}, 0
    for i, entry in enumerate(manifest["tensors"]):
        _check_entry(i, entry, shapes, set(layers) | set(fp32), offset)
        name = entry["name"]
        end = start + offset + entry["length"]
        if end > len(data):
            _fail(f"tensor {name!r} runs past the end of the file (truncated?)")
        blob = data[start + offset:end]
        if tensor_crc32(name, blob) != entry["crc32"]:
            _fail(f"tensor {name!r} fails its CRC-32 check (corrupted, or its name changed)")
        parsed = _parse_blob(entry, blob)
        (fp32 if entry["kind"] == "fp32" else layers)[name] = parsed
        offset += entry["length"]
    if start + offset != len(data):
        _fail(f"{len(data) - start - offset} bytes follow the last tensor")
    missing = [n for n in shapes if n not in layers and n not in fp32]
    if missing:
        _fail(f"the quantized model lacks tensor {missing[0]!r}")
    _check_bits(config, spec, layers, fp32)
    try:
        return QuantizedModel(config, spec, layers, fp32, manifest.get("source"))
    except BertError as e:
        _fail(str(e))


def save(model, path):
    data = to_bytes(model)
    pathlib.Path(path).write_bytes(data)
    return len(data)


def load(path):
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read it ({e.strerror})") from None
    try:
        return from_bytes(data)
    except ModelFormatError as e:
        raise ModelFormatError(f"{path}: {e}") from None
