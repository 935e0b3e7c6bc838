"""Accuracy proxies of a quantized sentence encoder against the FP32 one (docs/model.md).

Without retraining or a labelled task, the question is how far quantization moves the sentence
embeddings, and whether it changes what the embeddings are used for (finding similar sentences):

- cosine similarity between each sentence's quantized and FP32 embedding (mean and worst);
- nearest-neighbour agreement: the fraction of sentences whose most similar *other* sentence
  (by cosine) is the same under both models.
"""

import numpy as np

__all__ = ["cosine_rows", "nearest_neighbours", "proxies"]


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be [sentences, dims], not shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(x)):
        raise ValueError("embeddings must be finite and non-zero")
    return x / norm


def cosine_rows(a, b):
    """Cosine similarity of row ``i`` of ``a`` with row ``i`` of ``b``."""
    ua, ub = _unit(a), _unit(b)
    if ua.shape != ub.shape:
        raise ValueError(f"embeddings disagree in shape: {ua.shape} vs {ub.shape}")
    return np.einsum("ij,ij->i", ua, ub)


def nearest_neighbours(x):
    """Index of each row's most cosine-similar other row (ties: lowest index)."""
    u = _unit(x)
    if len(u) < 2:
        raise ValueError("nearest neighbours need at least two sentences")
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    return np.argmax(sim, axis=1)


def proxies(reference, quantized):
    """``{"sentences", "mean_cos", "worst_cos", "nn_agreement"}`` of ``quantized`` against
    ``reference`` embeddings (same sentences, same order)."""
    cos = cosine_rows(reference, quantized)
    agree = nearest_neighbours(reference) == nearest_neighbours(quantized)
    return {"sentences": int(len(cos)), "mean_cos": float(cos.mean()),
            "worst_cos": float(cos.min()), "nn_agreement": float(agree.mean())}
