"""A float BERT encoder in NumPy: embeddings, self-attention, GELU feed-forward, LayerNorm, and
mean pooling into sentence embeddings (as sentence-transformers does for all-MiniLM-L6-v2).

It reads any BERT-architecture model from a safetensors file plus its Hugging Face ``config.json``
(tensor names as ``BertModel`` saves them, with or without a ``bert.`` prefix) and checks every
tensor's shape against the config before running. It is the float reference against which the
quantized models are measured (docs/model.md); ``make reference`` checks it against PyTorch.
"""

import dataclasses
import json
import math
import pathlib

import numpy as np

from golden.nlp.weights import WeightsError, load_tensors

__all__ = ["BertConfig", "BertEncoder", "BertError", "ACTIVATIONS", "FC_PARTS", "fc_names",
           "embedding_names",
           "used_names", "erf", "gelu"]


class BertError(ValueError):
    """A config or weight set that does not describe a runnable BERT encoder."""


# Activations --------------------------------------------------------------------------------------

def erf(x):
    """The error function, absolute error below 1.2e-7 everywhere, in x's float dtype.

    NumPy has no erf (and SciPy is not a dependency). This is the Chebyshev-fitted rational form
    ``erfcc`` of Numerical Recipes (2nd ed., section 6.2), whose fractional error in erfc is below
    1.2e-7: under float32 resolution once multiplied into GELU. Evaluated in place, as it runs on
    every feed-forward activation.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, 0.17087277)
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223):
        poly *= t
        poly += c
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x|)
    return np.where(x >= 0, 1.0 - poly, poly - 1.0).astype(x.dtype, copy=False)


def gelu(x):
    """Exact GELU, ``x * Phi(x) = x/2 * (1 + erf(x / sqrt(2)))`` (BERT's ``"gelu"``)."""
    x = np.asarray(x)
    return 0.5 * x * (1.0 + erf(x * x.dtype.type(1.0 / math.sqrt(2.0))))


def _gelu_tanh(x):
    x64 = np.asarray(x, dtype=np.float64)
    inner = math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64 ** 3)
    return (0.5 * x64 * (1.0 + np.tanh(inner))).astype(np.asarray(x).dtype)


#: ``hidden_act`` values of config.json that the encoder implements.
ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": lambda x: np.maximum(x, 0),
}


# Configuration ------------------------------------------------------------------------------------

_REQUIRED_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """The architecture fields of a Hugging Face BERT ``config.json``."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        for name in _REQUIRED_KEYS + ("type_vocab_size",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BertError(f"config: {name} must be a positive integer, not {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise BertError(f"config: hidden_size {self.hidden_size} is not a multiple of "
                            f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            raise BertError(f"config: hidden_act {self.hidden_act!r} is not supported; "
                            f"choose one of {', '.join(ACTIVATIONS)}")
        if self.position_embedding_type != "absolute":
            raise BertError(f"config: position_embedding_type {self.position_embedding_type!r} "
                            f"is not supported (only 'absolute')")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise BertError(f"config: layer_norm_eps must be a positive number, not "
                            f"{self.layer_norm_eps!r}")

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(cls, data, *, source="config"):
        if not isinstance(data, dict):
            raise BertError(f"{source}: expected a JSON object, not {type(data).__name__}")
        # Checked first: a DistilBERT or RoBERTa config lacks BERT's keys, and "missing keys
        # hidden_size, ..." would hide the real reason.
        model_type = data.get("model_type", "bert")
        if model_type != "bert":
            raise BertError(f"{source}: model_type {str(model_type)[:40]!r} is not supported "
                            f"(only 'bert', the BERT encoder)")
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise BertError(f"{source}: missing key{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in fields})
        except BertError as e:
            raise BertError(f"{source}: {str(e).removeprefix('config: ')}") from None

    @classmethod
    def from_file(cls, path):
        path = pathlib.Path(path)
        try:
            if path.stat().st_size > 1 << 20:
                raise BertError(f"{path}: {path.stat().st_size} bytes is too large for a "
                                f"config.json")
            text = path.read_bytes()
        except IsADirectoryError:
            raise BertError(f"{path}: is a folder, not a config.json") from None
        except OSError as e:
            raise BertError(f"{path}: cannot read the config ({e.strerror})") from None
        try:
            data = json.loads(text)
        except ValueError as e:   # JSONDecodeError, UnicodeDecodeError, a 4300-digit integer
            raise BertError(f"{path}: not valid JSON ({e})") from None
        except RecursionError:
            raise BertError(f"{path}: not a config (JSON nested too deeply)") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self):
        return dataclasses.asdict(self)


# Tensor names -------------------------------------------------------------------------------------

#: The six FC layers of an encoder layer, in order (names below ``encoder.layer.{i}.``).
FC_PARTS = ("attention.self.query", "attention.self.key", "attention.self.value",
             "attention.output.dense", "intermediate.dense", "output.dense")


def fc_names(config):
    """The encoder's fully-connected weight matrices (PyTorch ``[out, in]``), in layer order."""
    return [f"encoder.layer.{i}.{part}.weight"
            for i in range(config.num_hidden_layers) for part in FC_PARTS]


def embedding_names():
    return ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight"]


def expected_shapes(config):
    """``{name: shape}`` of every tensor the encoder reads."""
    h, f = config.hidden_size, config.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (config.vocab_size, h),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[f"{p}{part}.weight"] = (h, h)
            shapes[f"{p}{part}.bias"] = (h,)
        shapes[f"{p}intermediate.dense.weight"] = (f, h)
        shapes[f"{p}intermediate.dense.bias"] = (f,)
        shapes[f"{p}output.dense.weight"] = (h, f)
        shapes[f"{p}output.dense.bias"] = (h,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{p}{norm}.weight"] = (h,)
            shapes[f"{p}{norm}.bias"] = (h,)
    return shapes


def used_names(config):
    return list(expected_shapes(config))


def _strip_prefix(tensors):
    """BertFor* checkpoints save the encoder under ``bert.``; take it from there if so."""
    if "embeddings.word_embeddings.weight" not in tensors and \
            "bert.embeddings.word_embeddings.weight" in tensors:
        return {k[len("bert."):]: v for k, v in tensors.items() if k.startswith("bert.")}
    return tensors


# The encoder --------------------------------------------------------------------------------------

def _layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _unused_message(config, unused):
    layers = sorted({int(parts[2]) for parts in (n.split(".") for n in unused)
                     if len(parts) > 2 and parts[1] == "layer" and parts[2].isdigit()})
    where = ""
    if layers:
        where = (f" (layer{'s' if len(layers) > 1 else ''} "
                 f"{', '.join(map(str, layers[:8]))}{', ...' if len(layers) > 8 else ''}: "
                 f"does the config's num_hidden_layers, {config.num_hidden_layers}, "
                 f"match the weights?)")
    more = f" and {len(unused) - 3} more" if len(unused) > 3 else ""
    return (f"the weights hold {len(unused)} encoder tensor{'s' if len(unused) > 1 else ''} "
            f"that the config does not use: {', '.join(map(repr, unused[:3]))}{more}{where}")


class BertEncoder:
    """A BERT encoder with float weights.

    Parameters
    ----------
    config : BertConfig
    tensors : dict of str to array_like
        Every tensor of :func:`expected_shapes`. Extra tensors outside the encoder (a pooler, a
        task head) are ignored; extra ``encoder.*`` tensors (the layers of a config with fewer
        ``num_hidden_layers`` than the weights hold) are an error.
    dtype : numpy dtype
        Compute precision (float32 by default, as PyTorch on CPU).

    Raises
    ------
    BertError
        Naming a missing tensor, one whose shape does not match the config, or encoder tensors
        the config does not use.
    """

    def __init__(self, config, tensors, *, dtype=np.float32):
        if not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig, not {type(config).__name__}")
        tensors = _strip_prefix(tensors)
        shapes = expected_shapes(config)
        missing = [n for n in shapes if n not in tensors]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise BertError(f"the weights lack tensor {missing[0]!r}{more} that the config "
                            f"({config.num_hidden_layers} layers) requires")
        unused = [n for n in tensors if n.startswith("encoder.") and n not in shapes]
        if unused:
            raise BertError(_unused_message(config, unused))
        weights = {}
        for name, shape in shapes.items():
            array = np.asarray(tensors[name])
            if tuple(array.shape) != shape:
                raise BertError(f"tensor {name!r} has shape {tuple(array.shape)}, but the config "
                                f"requires {shape}")
            if not np.issubdtype(array.dtype, np.floating):
                raise BertError(f"tensor {name!r} is {array.dtype}, not floating point")
            weights[name] = np.ascontiguousarray(array, dtype=dtype)
        self._config = config
        self._dtype = np.dtype(dtype)
        self._w = weights
        self._act = ACTIVATIONS[config.hidden_act]

    @classmethod
    def from_files(cls, weights, config, **kwargs):
        """Build from a weight file (.safetensors/.npz) and a ``config.json``."""
        cfg = config if isinstance(config, BertConfig) else BertConfig.from_file(config)
        try:
            tensors = load_tensors(weights)
        except WeightsError as e:
            raise BertError(str(e)) from None
        return cls(cfg, tensors, **kwargs)

    @property
    def config(self):
        return self._config

    @property
    def weights(self):
        """``{name: array}`` the encoder computes with (read these, do not modify them)."""
        return self._w

    def with_weights(self, replacements):
        """A copy that computes with some tensors replaced (e.g. dequantized matrices);
        shapes are checked as in the constructor."""
        unknown = [n for n in replacements if n not in self._w]
        if unknown:
            raise BertError(f"tensor {unknown[0]!r} is not one the encoder uses")
        return BertEncoder(self._config, {**self._w, **replacements}, dtype=self._dtype)

    # Forward ------------------------------------------------------------------------------------

    def hidden_states(self, input_ids, attention_mask=None, token_type_ids=None, *, fc=None):
        """The last layer's token states, ``[batch, tokens, hidden]``.

        ``fc``, if given, computes every encoder FC layer instead of float ``h @ W.T + b``:
        ``fc(name, h)`` gets the layer's name (``encoder.layer.{i}.attention.self.query``, ...,
        as :func:`fc_names` without ``.weight``) and its input ``h`` ``[batch, tokens, in]`` and
        returns its output ``[batch, tokens, out]`` (e.g. from an accelerator model, or the
        float result after recording ``h``); :meth:`dense` is the float layer."""
        cfg, w = self._config, self._w
        ids = np.asarray(input_ids)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be [batch, tokens], not shape {ids.shape}")
        batch, tokens = ids.shape
        if tokens > cfg.max_position_embeddings:
            raise ValueError(f"{tokens} tokens exceed max_position_embeddings "
                             f"{cfg.max_position_embeddings}")
        if ids.size and (ids.min() < 0 or ids.max() >= cfg.vocab_size):
            raise ValueError(f"token ids must lie in [0, {cfg.vocab_size})")
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask)
        types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
        if mask.shape != ids.shape or types.shape != ids.shape:
            raise ValueError("attention_mask and token_type_ids must have input_ids' shape")

        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:tokens][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        cfg.layer_norm_eps)
        # Masked keys get the dtype's most negative value, as transformers does, so a fully
        # padded row still has a defined softmax.
        bias = np.where(mask[:, None, None, :] > 0, 0.0,
                        np.finfo(self._dtype).min).astype(self._dtype)
        heads, dim = cfg.num_attention_heads, cfg.head_dim
        scale = self._dtype.type(1.0 / math.sqrt(dim))

        def dense(h, name):
            return self.dense(name, h) if fc is None else fc(name, h)

        def split(h):
            return h.reshape(batch, tokens, heads, dim).transpose(0, 2, 1, 3)

        for i in range(cfg.num_hidden_layers):
            p = f"encoder.layer.{i}."
            q = split(dense(x, p + "attention.self.query"))
            k = split(dense(x, p + "attention.self.key"))
            v = split(dense(x, p + "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, heads * dim)
            x = _layer_norm(dense(context, p + "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], cfg.layer_norm_eps)
            inner = self._act(dense(x, p + "intermediate.dense"))
            x = _layer_norm(dense(inner, p + "output.dense") + x,
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                            cfg.layer_norm_eps)
        return x

    def dense(self, name, h):
        """The float FC layer ``name``: ``h @ W.T + b``, ``h`` ``[..., in]``."""
        return h @ self._w[f"{name}.weight"].T + self._w[f"{name}.bias"]

    def embed(self, input_ids, attention_mask=None, token_type_ids=None, *, normalize=False,
              fc=None):
        """Mean-pooled sentence embeddings ``[batch, hidden]`` (padding excluded); ``fc`` as in
        :meth:`hidden_states`."""
        mask = (np.ones_like(np.asarray(input_ids)) if attention_mask is None
                else np.asarray(attention_mask))
        states = self.hidden_states(input_ids, mask, token_type_ids, fc=fc)
        m = mask[..., None].astype(states.dtype)
        pooled = (states * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        if normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return pooled

    def encode(self, sentences, tokenizer, *, batch_size=32, normalize=False, threads=1,
               fc=None, progress=None):
        """Sentence embeddings of ``sentences``, ``float [len(sentences), hidden]``.

        Sentences are batched by token length so that little time goes into padding; the
        output is in the input order. ``threads`` caps the BLAS threads meanwhile (through
        threadpoolctl; None leaves them as they are): the default of 1 is deliberate, because
        OpenBLAS threads spin-wait and run several times *slower* than one thread when the cores
        are shared (pytest -n 2 on 2 cores, or another job running).

        ``fc``, if given, computes every encoder FC layer as ``fc(name, h, mask)``: the
        :meth:`hidden_states` hook plus the batch's ``attention_mask`` ``[batch, tokens]``, so
        that it can leave the padding tokens out. ``progress(done, total)`` is called after
        each batch with the sentences embedded so far.
        """
        sentences = list(sentences)
        if not sentences:
            raise ValueError("encode needs at least one sentence")
        with _blas_threads(threads):
            order = np.argsort(tokenizer.lengths(sentences), kind="stable")
            out = np.empty((len(sentences), self._config.hidden_size), dtype=self._dtype)
            for start in range(0, len(sentences), batch_size):
                chosen = order[start:start + batch_size]
                ids, mask, types = tokenizer.encode([sentences[i] for i in chosen])
                hook = None if fc is None else (lambda name, h, mask=mask: fc(name, h, mask))
                out[chosen] = self.embed(ids, mask, types, normalize=normalize, fc=hook)
                if progress is not None:
                    progress(min(start + batch_size, len(sentences)), len(sentences))
        return out


def _blas_threads(threads):
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # e.g. the torch reference venv: run with the library's default
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")
