"""A small multinomial logistic-regression head on sentence embeddings: the task measure's
classifier (docs/model.md, "The task measure").

It is trained once, on FP32 embeddings of a training split, and then scores the embeddings every
other model (GOBO weights, the accelerator's numerics) makes of the test split, so that a
difference in accuracy is the embeddings' doing. The features are the embeddings scaled to unit
length (as sentence-transformers' ``Normalize`` does for all-MiniLM-L6-v2) and then standardized
with the training split's mean and standard deviation. The fit minimizes the cross-entropy plus
``l2 / 2`` times the squared norm of every parameter (biases included, which keeps the problem
strictly convex) by Newton's method with a halving line search, to a gradient norm below
``1e-9`` times the sample count; it is deterministic. :func:`select_l2` picks the penalty on a
validation part of the training split. A few lines of NumPy rather than a scikit-learn
dependency (scikit-learn and SciPy are not otherwise needed).
"""

import dataclasses

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["LogisticHead", "fit_logistic", "select_l2", "accuracy", "L2_GRID"]

#: The penalties :func:`select_l2` tries.
L2_GRID = (1.0, 10.0, 100.0, 1000.0)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclasses.dataclass(frozen=True)
class LogisticHead:
    """A fitted head: ``mean``, ``std`` (d,) of the training features, ``weights`` (d + 1, K)
    (the last row the biases), ``iterations`` of Newton's method."""
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    iterations: int

    def features(self, embeddings):
        """Unit-length, standardized embeddings with a column of ones: (n, d + 1)."""
        x = (_unit(embeddings) - self.mean) / self.std
        return np.hstack([x, np.ones((len(x), 1))])

    def predict(self, embeddings):
        """The class index of each row of ``embeddings`` (n, d): int64 (n,)."""
        return np.argmax(self.features(embeddings) @ self.weights, axis=1)


def _loss(x, y, w, l2):
    z = x @ w
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].sum() + 0.5 * l2 * np.sum(w * w), np.exp(log_p)


def fit_logistic(embeddings, labels, *, classes, l2=1.0, max_iterations=100):
    """Fit a :class:`LogisticHead` to ``embeddings`` (n, d) and class indexes ``labels`` (n,)
    in ``range(classes)``.

    Raises
    ------
    ValueError
        For mismatched shapes, a label out of range, a feature constant over the training
        split, or no convergence in ``max_iterations``.
    """
    # One BLAS thread: OpenBLAS threads spin-wait and run several times slower on shared
    # cores (as in BertEncoder.encode).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(embeddings, labels, classes, l2, max_iterations)


def _fit(embeddings, labels, classes, l2, max_iterations):
    emb = _unit(embeddings)
    y = np.asarray(labels, dtype=np.int64)
    if emb.ndim != 2 or y.shape != (len(emb),):
        raise ValueError(f"need embeddings (n, d) and labels (n,), not {emb.shape} and {y.shape}")
    if y.size == 0 or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must lie in [0, {classes})")
    mean, std = emb.mean(axis=0), emb.std(axis=0)
    if np.any(std == 0):
        raise ValueError("a feature is constant over the training split")
    head = LogisticHead(mean, std, None, 0)
    x = head.features(emb)
    n, d = x.shape
    onehot = np.eye(classes)[y]
    w = np.zeros((d, classes))
    loss, p = _loss(x, y, w, l2)
    for iteration in range(1, max_iterations + 1):
        grad = x.T @ (p - onehot) + l2 * w
        if np.linalg.norm(grad) < 1e-9 * n:
            return dataclasses.replace(head, weights=w, iterations=iteration - 1)
        # Hessian block (a, b) = X^T diag(p_a (delta_ab - p_b)) X, plus l2 on the diagonal.
        hess = np.empty((classes, d, classes, d))
        for a in range(classes):
            for b in range(classes):
                hess[a, :, b, :] = (x * (p[:, a] * ((a == b) - p[:, b]))[:, None]).T @ x
        hess = hess.reshape(classes * d, classes * d) + l2 * np.eye(classes * d)
        step = np.linalg.solve(hess, grad.T.reshape(-1)).reshape(classes, d).T
        scale = 1.0
        while True:
            trial, p_trial = _loss(x, y, w - scale * step, l2)
            if trial <= loss or scale < 1e-6:
                break
            scale /= 2
        w, loss, p = w - scale * step, trial, p_trial
    raise ValueError(f"the logistic head did not converge in {max_iterations} Newton steps")


def select_l2(embeddings, labels, *, classes, holdout=0.2, grid=L2_GRID):
    """The penalty of ``grid`` whose head, fitted on the first ``1 - holdout`` of the training
    rows, is most accurate on the last ``holdout`` of them (ties: the smaller penalty); the test
    split is never looked at. Returns ``(l2, {l2: validation accuracy})``."""
    emb, y = np.asarray(embeddings), np.asarray(labels)
    cut = len(y) - max(1, round(holdout * len(y)))
    scores = {}
    for l2 in grid:
        head = fit_logistic(emb[:cut], y[:cut], classes=classes, l2=l2)
        scores[l2] = accuracy(head.predict(emb[cut:]), y[cut:])[0]
    return max(grid, key=lambda l2: (scores[l2], -l2)), scores


def accuracy(predicted, labels):
    """``(fraction correct, its standard error sqrt(p (1 - p) / n))``."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or labels.size == 0:
        raise ValueError(f"need as many predictions as labels, not {predicted.shape} and "
                         f"{labels.shape}")
    p = float(np.mean(predicted == labels))
    return p, float(np.sqrt(p * (1 - p) / labels.size))
