"""Keras 3's per-sample loss values in NumPy (internal): what a loss object returns when called
on data (``loss(y_true, y_pred)``) and what the functions ``fm.losses.mean_squared_error``, ...
return. Training never uses them: the core computes the losses in its kernels.

Each function takes (n, outputs) float64 arrays (integer labels of shape (n,) for the sparse
cross-entropy) and returns one value per sample, with Keras's clips (1e-7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
EPSILON = 1e-7


def _log_sigmoid(x: Array) -> Array:
    return np.asarray(-(np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))), dtype=np.float64)


def _log_q(p: Array, from_logits: bool) -> Array:
    if from_logits:
        shifted = p - np.max(p, axis=-1, keepdims=True)
        return np.asarray(shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)), dtype=np.float64)
    return np.asarray(np.log(np.clip(p / np.sum(p, axis=-1, keepdims=True), EPSILON, 1 - EPSILON)), dtype=np.float64)


def _pm_one(t: Array) -> Array:
    """Hinge labels: 0/1 become -1/1 (Keras converts labels that are all 0 or 1)."""
    return np.asarray(np.where(np.isin(t, (0.0, 1.0)).all(), 2 * t - 1, t), dtype=np.float64)


def values(name: str, t: Array, p: Array, from_logits: bool = False, delta: float = 1.0) -> Array:
    """The per-sample loss ``name`` (the core's name of a loss) of targets ``t`` and outputs ``p``."""
    e = p if name == "sparse_categorical_crossentropy" else p - t  # labels are not values
    if name == "mse":
        out: Any = np.mean(e**2, axis=-1)
    elif name == "mae":
        out = np.mean(np.abs(e), axis=-1)
    elif name == "binary_crossentropy":
        if from_logits:
            log_p, log_not_p = _log_sigmoid(p), _log_sigmoid(-p)
        else:
            q = np.clip(p, EPSILON, 1 - EPSILON)
            log_p, log_not_p = np.log(q), np.log(1 - q)
        out = np.mean(-(t * log_p + (1 - t) * log_not_p), axis=-1)
    elif name == "categorical_crossentropy":
        out = -np.sum(t * _log_q(p, from_logits), axis=-1)
    elif name == "sparse_categorical_crossentropy":
        labels = t.reshape(-1).astype(np.intp)
        out = -_log_q(p, from_logits)[np.arange(p.shape[0]), labels]
    elif name == "huber":
        a = np.abs(e)
        out = np.mean(np.where(a <= delta, 0.5 * e**2, delta * a - 0.5 * delta**2), axis=-1)
    elif name == "log_cosh":
        out = np.mean(e + np.log1p(np.exp(-2 * e)) - np.log(2.0), axis=-1)
    elif name == "kl_divergence":
        tc, pc = np.clip(t, EPSILON, 1), np.clip(p, EPSILON, 1)
        out = np.sum(tc * np.log(tc / pc), axis=-1)
    elif name == "poisson":
        out = np.mean(p - t * np.log(p + EPSILON), axis=-1)
    elif name == "hinge":
        out = np.mean(np.maximum(1 - _pm_one(t) * p, 0), axis=-1)
    elif name == "squared_hinge":
        out = np.mean(np.maximum(1 - _pm_one(t) * p, 0) ** 2, axis=-1)
    elif name == "categorical_hinge":
        out = np.maximum(np.max((1 - t) * p, axis=-1) - np.sum(t * p, axis=-1) + 1, 0)
    elif name == "mean_absolute_percentage_error":
        out = 100 * np.mean(np.abs(e) / np.maximum(np.abs(t), EPSILON), axis=-1)
    elif name == "mean_squared_logarithmic_error":
        out = np.mean((np.log(np.maximum(p, EPSILON) + 1) - np.log(np.maximum(t, EPSILON) + 1)) ** 2, axis=-1)
    else:
        raise ValueError(f"Unknown loss: {name!r}")
    return np.asarray(out, dtype=np.float64)
