"""The math of fastmlp in plain NumPy, float64, one readable function per formula.

This module is the yardstick for the C++ core: every kernel (activations, losses,
their gradients, the dense layer, the optimizers' updates, the learning-rate
schedules) and whole training runs are tested against it. It is also meant to be
read next to a textbook, so it favours the obvious formula over the fast one, and
its comments say *why* a formula looks the way it does.

Conventions (the same as Keras 3):

* A batch is a 2-D array ``(batch, features)``; a dense kernel has shape
  ``(in, out)`` so that a layer computes ``z = x @ kernel + bias``.
* ``z`` is the pre-activation ("logits"), ``a = act(z)`` the layer's output.
* A loss returns one value per sample (shape ``(batch,)``); training minimises
  the *mean* over the batch, so every gradient here is the gradient of that
  batch mean.
* Everything is computed in float64, so the reference is far more precise than
  the float32 core it checks.

Only NumPy is imported; nothing from the rest of fastmlp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ACTIVATIONS",
    "COMMON_OPTIMIZER_SETTINGS",
    "EPSILON",
    "LOSSES",
    "MORE_LOSSES",
    "OPTIMIZERS",
    "OPTIMIZER_DEFAULTS",
    "SCHEDULES",
    "FloatArray",
    "LearningRate",
    "Params",
    "accuracy",
    "activation",
    "activation_backward",
    "adam_alpha",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_gradients",
    "cosine_decay",
    "dense_forward",
    "exponential_decay",
    "flatten_params",
    "forward",
    "glorot_uniform",
    "gradients",
    "hessian_by_differences",
    "inverse_time_decay",
    "layers_forward",
    "layers_gradients",
    "learning_rate_at",
    "log_softmax",
    "loss",
    "loss_gradient",
    "mean_absolute_error",
    "mean_squared_error",
    "optimizer_settings",
    "optimizer_state",
    "optimizer_step",
    "output_loss_and_delta",
    "piecewise_constant_decay",
    "predict",
    "schedule",
    "sgd_step",
    "sigmoid",
    "softmax",
    "train_sgd",
    "train_steps",
    "unflatten_params",
    "update_step",
    "uses_logits",
]

FloatArray = NDArray[np.float64]

# One entry per layer: (kernel of shape (in, out), bias of shape (out,) or None
# when the layer was built with use_bias=False).
Params = list[tuple[FloatArray, Optional[FloatArray]]]

ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "softmax",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
    "swish",
)
# The parameter of the parametrized activations when none is given (Keras's defaults for the
# functions: leaky_relu's negative_slope 0.2, elu's alpha 1.0).
DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
LOSSES: tuple[str, ...] = (
    "mse",
    "mae",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
# Keras 3's other losses (keras/src/losses/losses.py): no from_logits; huber takes a delta.
MORE_LOSSES: tuple[str, ...] = (
    "huber",
    "log_cosh",
    "kl_divergence",
    "poisson",
    "categorical_hinge",
    "hinge",
    "squared_hinge",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
)

# Keras's backend epsilon. Probabilities are clipped to [EPSILON, 1 - EPSILON]
# before taking a logarithm, so a confident wrong answer costs at most
# -log(1e-7) ~= 16.1 instead of infinity.
EPSILON = 1e-7

_CROSSENTROPIES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)


def _as_float(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


# Reductions over the last axis, i.e. over the outputs (or classes) of each
# sample. Named helpers keep the formulas below short and let the type checker
# know that NumPy's reductions return float64 arrays here.
def _row_sum(v: FloatArray, keepdims: bool = False) -> FloatArray:
    result: FloatArray = np.sum(v, axis=-1, keepdims=keepdims)
    return result


def _row_mean(v: FloatArray) -> FloatArray:
    result: FloatArray = np.mean(v, axis=-1)
    return result


def _row_max(v: FloatArray) -> FloatArray:
    result: FloatArray = np.max(v, axis=-1, keepdims=True)
    return result


def _check_name(kind: str, name: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        raise ValueError(f"Unknown {kind}. Expected one of {allowed}. Received: {kind}={name!r}")


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def sigmoid(z: ArrayLike) -> FloatArray:
    """The logistic function 1 / (1 + exp(-z)), safe for any finite z."""
    z = _as_float(z)
    # The textbook form overflows exp(-z) for z < -709. Both branches below only
    # ever take exp of a non-positive number, which lies in (0, 1]:
    #   z >= 0:  1 / (1 + exp(-z))
    #   z <  0:  exp(z) / (1 + exp(z))      (multiply top and bottom by exp(z))
    e = np.exp(-np.abs(z))
    return np.where(z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


def softmax(z: ArrayLike) -> FloatArray:
    """Row-wise softmax over the last axis: exp(z_i) / sum_j exp(z_j)."""
    z = _as_float(z)
    # softmax(z) == softmax(z - c) for any constant c. Subtracting the row
    # maximum makes the largest exponent exp(0) = 1, so nothing overflows and
    # the denominator is at least 1, so nothing divides by zero.
    e = np.exp(z - _row_max(z))
    return e / _row_sum(e, keepdims=True)


def log_softmax(z: ArrayLike) -> FloatArray:
    """log(softmax(z)) computed without ever forming a probability.

    log softmax(z)_i = z_i - log(sum_j exp(z_j)), and the log-sum-exp is taken
    after subtracting the row maximum m:  log sum exp(z) = m + log sum exp(z - m).
    Taking log(softmax(z)) instead would give log(0) = -inf for very negative logits.
    """
    z = _as_float(z)
    shifted = z - _row_max(z)
    return shifted - np.log(_row_sum(np.exp(shifted), keepdims=True))


def normal_cdf(z: ArrayLike) -> FloatArray:
    """Phi(z), the standard normal CDF, as erfc(-z / sqrt 2) / 2 (no cancellation for z << 0)."""
    erfc = np.vectorize(math.erfc, otypes=[np.float64])  # NumPy has no erfc; math's is exact
    result: FloatArray = 0.5 * erfc(-_as_float(z) / math.sqrt(2.0))
    return result


def _apply_activation(name: str, z: FloatArray, alpha: Optional[float] = None) -> FloatArray:
    if alpha is None:
        alpha = DEFAULT_ALPHA.get(name, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0.0, z, alpha * z)
    if name == "elu":
        return np.where(z > 0.0, z, alpha * np.expm1(np.minimum(z, 0.0)))
    if name == "gelu":
        # GELU(z) = z * Phi(z)
        return z * normal_cdf(z)
    if name == "gelu_tanh":
        # Hendrycks & Gimpel's approximation: 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3),
        # written as z * sigmoid(2u) (the same value: (1 + tanh u) / 2 = sigmoid(2u)), which does
        # not cancel 1 + tanh(u) when u is very negative.
        return z * sigmoid(2.0 * _SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3))
    if name == "softplus":
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): never overflows
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    if name == "swish":
        # z * sigmoid(z) (also called silu)
        return z * sigmoid(z)
    if name == "linear":
        return np.array(z, dtype=np.float64)  # a copy: a and z never alias
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        return softmax(z)
    _check_name("activation", name, ACTIVATIONS)
    raise AssertionError("unreachable")  # pragma: no cover


def activation(name: str, z: ArrayLike, alpha: Optional[float] = None) -> FloatArray:
    """a = act(z) for one of ACTIVATIONS (alpha: leaky_relu's slope or elu's alpha)."""
    return _apply_activation(name, _as_float(z), alpha)


def activation_backward(
    name: str, z: ArrayLike, a: ArrayLike, da: ArrayLike, alpha: Optional[float] = None
) -> FloatArray:
    """dz = da @ (da/dz): the vector-Jacobian product of the activation.

    ``da`` is dL/da; the result is dL/dz. ``a`` must be act(z); the sigmoid,
    tanh and softmax derivatives are cheapest when written in terms of the output.
    """
    z = _as_float(z)
    a = _as_float(a)
    da = _as_float(da)
    if alpha is None:
        alpha = DEFAULT_ALPHA.get(name, 0.0)
    if name == "leaky_relu":
        # slope 1 above 0, alpha below (and at 0, as TensorFlow)
        return np.where(z > 0.0, da, alpha * da)
    if name == "elu":
        # alpha * e^z below 0, which is a + alpha
        return np.where(z > 0.0, da, da * (a + alpha))
    if name == "gelu":
        # d/dz z Phi(z) = Phi(z) + z phi(z), phi the normal density
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return da * (normal_cdf(z) + z * pdf)
    if name == "gelu_tanh":
        # d/dz z s(2u) = s + 2 z s (1 - s) u'   (s = sigmoid(2u) = (1 + tanh u) / 2)
        s = sigmoid(2.0 * _SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3))
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * z * z)
        return da * (s + 2.0 * z * s * (1.0 - s) * du)
    if name == "softplus":
        # softplus' = sigmoid
        return da * sigmoid(z)
    if name == "swish":
        # d/dz z s(z) = s + z s (1 - s)
        s = sigmoid(z)
        return da * s * (1.0 + z * (1.0 - s))
    if name == "linear":
        return np.array(da, dtype=np.float64)
    if name == "sigmoid":
        # sigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)) = a * (1 - a)
        return da * a * (1.0 - a)
    if name == "tanh":
        # tanh'(z) = 1 - tanh(z)^2 = 1 - a^2
        return da * (1.0 - a * a)
    if name == "relu":
        # relu is not differentiable at 0; like TensorFlow (and so Keras) we use
        # the derivative 0 there, i.e. 1 only where z > 0 strictly.
        return np.where(z > 0.0, da, 0.0)
    if name == "softmax":
        # Unlike the element-wise activations, every output a_i depends on every
        # input z_j: da_i/dz_j = a_i * (delta_ij - a_j). Multiplying that full
        # Jacobian by the row vector da gives
        #   dz_j = sum_i da_i * a_i * (delta_ij - a_j) = a_j * (da_j - sum_i da_i * a_i)
        return a * (da - _row_sum(da * a, keepdims=True))
    _check_name("activation", name, ACTIVATIONS)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _dense_targets(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Return (y_true, y_pred) as float64 arrays of the same (batch, out) shape."""
    y_pred = _as_float(y_pred)
    y_true = _as_float(y_true)
    if y_pred.ndim != 2:
        raise ValueError(f"y_pred must have shape (batch, outputs). Received: shape={y_pred.shape}")
    # A single-output model predicts (batch, 1) while labels usually come as
    # (batch,). Keras (squeeze_or_expand_to_same_rank) adds the missing axis to
    # y_true; without it, broadcasting would silently compare every prediction
    # with every label and give a (batch, batch) result.
    if y_true.ndim == 1 and y_pred.shape[1] == 1:
        y_true = y_true[:, np.newaxis]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "y_true and y_pred must have the same shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    return y_true, y_pred


def _one_hot(y_true: ArrayLike, y_pred: FloatArray) -> FloatArray:
    """Integer class indices (batch,) or (batch, 1) -> one-hot rows (batch, classes)."""
    labels = np.asarray(y_true)
    if y_pred.ndim != 2:
        raise ValueError(f"y_pred must have shape (batch, classes). Received: shape={y_pred.shape}")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (y_pred.shape[0],):
        raise ValueError(
            "For sparse_categorical_crossentropy, y_true must hold one class index per "
            f"sample. Received: y_true.shape={labels.shape}, y_pred.shape={y_pred.shape}"
        )
    classes = y_pred.shape[1]
    index = labels.astype(np.int64)
    if np.any(index != labels) or np.any(index < 0) or np.any(index >= classes):
        raise ValueError(
            f"y_true must contain integer class indices in [0, {classes}). Received: {labels}"
        )
    one_hot = np.zeros(y_pred.shape, dtype=np.float64)
    one_hot[np.arange(labels.shape[0]), index] = 1.0
    return one_hot


def _targets(name: str, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Dense float targets for every loss: sparse labels become one-hot rows."""
    if name == "sparse_categorical_crossentropy":
        y_pred = _as_float(y_pred)
        return _one_hot(y_true, y_pred), y_pred
    return _dense_targets(y_true, y_pred)


def _clip(p: FloatArray) -> FloatArray:
    return np.clip(p, EPSILON, 1.0 - EPSILON)


def _clip_passes_gradient(p: FloatArray) -> NDArray[np.bool_]:
    # clip(p, lo, hi) is constant outside [lo, hi], so no gradient flows back
    # through it there. At exactly lo or hi, TensorFlow's clip_by_value still
    # passes the gradient (its mask is "p < lo or p > hi"), and so do we.
    return (p >= EPSILON) & (p <= 1.0 - EPSILON)


def _hinge_labels(y: FloatArray) -> FloatArray:
    # Keras's convert_binary_labels_to_hinge: labels that are all 0 or 1 (over the whole batch)
    # become -1/1; any other labels are used as they are.
    return 2.0 * y - 1.0 if bool(np.all((y == 0.0) | (y == 1.0))) else y


def _more_loss(name: str, y: FloatArray, p: FloatArray, delta: float) -> FloatArray:
    """Per-sample values of MORE_LOSSES, each written as Keras 3 writes it."""
    if name == "huber":
        e = p - y
        a = np.abs(e)
        return _row_mean(np.where(a <= delta, 0.5 * e * e, delta * a - 0.5 * delta * delta))
    if name == "log_cosh":
        e = p - y
        return _row_mean(e + np.logaddexp(0.0, -2.0 * e) - math.log(2.0))  # softplus(-2e)
    if name == "kl_divergence":
        t, q = np.clip(y, EPSILON, 1.0), np.clip(p, EPSILON, 1.0)
        return _row_sum(t * np.log(t / q))
    if name == "poisson":
        return _row_mean(p - y * np.log(p + EPSILON))
    if name == "categorical_hinge":
        pos = _row_sum(y * p)
        neg = _row_max((1.0 - y) * p)[:, 0]
        return np.maximum(neg - pos + 1.0, 0.0)
    if name in ("hinge", "squared_hinge"):
        h = np.maximum(1.0 - _hinge_labels(y) * p, 0.0)
        return _row_mean(h if name == "hinge" else h * h)
    if name == "mean_absolute_percentage_error":
        return 100.0 * _row_mean(np.abs((y - p) / np.maximum(np.abs(y), EPSILON)))
    # mean_squared_logarithmic_error
    e = np.log(np.maximum(p, EPSILON) + 1.0) - np.log(np.maximum(y, EPSILON) + 1.0)
    return _row_mean(e * e)


def _more_loss_gradient(name: str, y: FloatArray, p: FloatArray, delta: float) -> FloatArray:
    """d(sum of the per-sample values of _more_loss)/dp; a clip passes no gradient outside its
    range, and categorical_hinge's max shares its gradient among tied columns."""
    n = p.shape[1]
    if name == "huber":
        e = p - y
        return _as_float(np.where(np.abs(e) <= delta, e, delta * np.sign(e)) / n)
    if name == "log_cosh":
        return _as_float(np.tanh(p - y) / n)
    if name == "kl_divergence":
        t, q = np.clip(y, EPSILON, 1.0), np.clip(p, EPSILON, 1.0)
        return np.where((p >= EPSILON) & (p <= 1.0), -t / q, 0.0)
    if name == "poisson":
        return _as_float((1.0 - y / (p + EPSILON)) / n)
    if name == "categorical_hinge":
        v = (1.0 - y) * p
        at_max = (v == _row_max(v)).astype(np.float64)
        share = at_max / _row_sum(at_max, keepdims=True)
        active = (_more_loss(name, y, p, delta) > 0.0)[:, None]
        return np.where(active, (1.0 - y) * share - y, 0.0)
    if name in ("hinge", "squared_hinge"):
        t = _hinge_labels(y)
        m = 1.0 - t * p
        if name == "hinge":
            return _as_float(np.where(m > 0.0, -t, 0.0) / n)
        return _as_float(-2.0 * t * np.maximum(m, 0.0) / n)
    if name == "mean_absolute_percentage_error":
        return _as_float(100.0 * np.sign(p - y) / np.maximum(np.abs(y), EPSILON) / n)
    # mean_squared_logarithmic_error
    pc = np.maximum(p, EPSILON)
    e = np.log(pc + 1.0) - np.log(np.maximum(y, EPSILON) + 1.0)
    return _as_float(np.where(p >= EPSILON, 2.0 * e / (pc + 1.0), 0.0) / n)


def loss(
    name: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False, delta: float = 1.0
) -> FloatArray:
    """Per-sample loss, shape (batch,), with the semantics of Keras 3.

    ``from_logits`` only matters for the three cross-entropies: it says that
    ``y_pred`` holds pre-activation values rather than probabilities. ``delta`` is Huber's.
    """
    _check_name("loss", name, LOSSES + MORE_LOSSES)
    y, p = _targets(name, y_true, y_pred)
    if name in MORE_LOSSES:
        return _more_loss(name, y, p, delta)

    if name == "mse":
        return _row_mean((p - y) ** 2)

    if name == "mae":
        return _row_mean(np.abs(p - y))

    if name == "binary_crossentropy":
        if from_logits:
            # -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] simplifies to
            # x - x*y + log(1 + exp(-x)). Written as below, exp only ever sees
            # -|x| <= 0, so it neither overflows nor loses the log1p precision
            # (this is TensorFlow's sigmoid_cross_entropy_with_logits).
            x = p
            per_output = np.maximum(x, 0.0) - x * y + np.log1p(np.exp(-np.abs(x)))
        else:
            q = _clip(p)
            per_output = -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
        # Keras averages over the outputs, so each sample's loss is the mean of
        # its independent binary decisions.
        return _row_mean(per_output)

    # categorical_crossentropy and sparse_categorical_crossentropy (y is one-hot now)
    if from_logits:
        return -_row_sum(y * log_softmax(p))
    # Keras first rescales each row to sum to 1, so outputs that are not a
    # proper distribution (e.g. from a sigmoid layer) are still read as one.
    q = _clip(p / _row_sum(p, keepdims=True))
    return -_row_sum(y * np.log(q))


def loss_gradient(
    name: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False, delta: float = 1.0
) -> FloatArray:
    """dL/dy_pred where L = mean over the batch of loss(name, y_true, y_pred).

    Exactly the derivative of :func:`loss`, clipping and normalisation included.
    """
    _check_name("loss", name, LOSSES + MORE_LOSSES)
    y, p = _targets(name, y_true, y_pred)
    batch, outputs = int(p.shape[0]), int(p.shape[1])
    if name in MORE_LOSSES:
        return _more_loss_gradient(name, y, p, delta) / batch

    if name == "mse":
        # L = 1/batch * sum_samples 1/outputs * sum_j (p_j - y_j)^2
        return 2.0 * (p - y) / (batch * outputs)

    if name == "mae":
        # d|p - y|/dp = sign(p - y); at the kink p == y NumPy's sign gives 0,
        # the same subgradient TensorFlow uses.
        return np.sign(p - y) / (batch * outputs)

    if name == "binary_crossentropy":
        if from_logits:
            # d/dx [max(x,0) - x*y + log(1 + exp(-|x|))] = sigmoid(x) - y
            return (sigmoid(p) - y) / (batch * outputs)
        q = _clip(p)
        dq = -y / q + (1.0 - y) / (1.0 - q)
        return np.where(_clip_passes_gradient(p), dq, 0.0) / (batch * outputs)

    # categorical / sparse categorical
    if from_logits:
        # d/dz_j [-sum_i y_i (z_i - logsumexp(z))] = softmax(z)_j * sum_i y_i - y_j.
        # For one-hot (or any normalised) labels sum_i y_i = 1 and this is the
        # familiar softmax(z) - y; keeping the sum makes soft labels exact too.
        s = softmax(p)
        return (s * _row_sum(y, keepdims=True) - y) / batch
    # Chain rule through  q = p / sum(p),  c = clip(q),  L = -sum_i y_i log c_i:
    #   dL/dq_i = -y_i / q_i            (0 where the clip is active)
    #   dq_i/dp_k = delta_ik / S - p_i / S^2           with S = sum(p)
    #   dL/dp_k = (dL/dq_k - sum_i dL/dq_i * q_i) / S
    total = _row_sum(p, keepdims=True)
    q = p / total
    dq = np.where(_clip_passes_gradient(q), -y / _clip(q), 0.0)
    dp = (dq - _row_sum(dq * q, keepdims=True)) / total
    return dp / batch


# ---------------------------------------------------------------------------
# Output layer: loss and its gradient with respect to the pre-activation
# ---------------------------------------------------------------------------


def uses_logits(loss_name: str, activation_name: str, from_logits: bool) -> bool:
    """Whether the loss is computed from the output layer's z instead of a = act(z).

    Keras's TensorFlow backend remembers the input of a sigmoid or softmax and
    evaluates a cross-entropy on those logits, never on the probabilities. That
    avoids log(0) and clipping entirely, and makes the gradient the simple,
    well-conditioned act(z) - y. fastmlp does the same.
    """
    _check_name("loss", loss_name, LOSSES + MORE_LOSSES)
    _check_name("activation", activation_name, ACTIVATIONS)
    if from_logits:
        # The user promises a linear output holds logits.
        return activation_name == "linear" and loss_name in _CROSSENTROPIES
    if loss_name == "binary_crossentropy":
        return activation_name == "sigmoid"
    if loss_name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        return activation_name == "softmax"
    return False


def output_loss_and_delta(
    loss_name: str,
    activation_name: str,
    from_logits: bool,
    y_true: ArrayLike,
    z: ArrayLike,
    a: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """(per-sample loss, dL/dz) for the output layer, L the batch-mean loss.

    ``z`` is the output layer's pre-activation and ``a = act(z)`` its output.
    """
    z = _as_float(z)
    a = _as_float(a)
    if uses_logits(loss_name, activation_name, from_logits):
        # Loss and gradient straight from the logits. The gradient is that of
        # the from_logits loss, i.e. the "fused" form the C++ core uses:
        #   binary_crossentropy:  (sigmoid(z) - y) / (batch * outputs)
        #   categorical:          (softmax(z) * sum(y) - y) / batch
        #   sparse categorical:   (softmax(z) - one_hot(y)) / batch
        # No clipping is involved, so these hold for any z.
        per_sample = loss(loss_name, y_true, z, from_logits=True)
        dz = loss_gradient(loss_name, y_true, z, from_logits=True)
        return per_sample, dz
    # General case, two steps of the chain rule: dL/da from the loss, then
    # through the activation's Jacobian.
    per_sample = loss(loss_name, y_true, a, from_logits)
    da = loss_gradient(loss_name, y_true, a, from_logits)
    return per_sample, activation_backward(activation_name, z, a, da)


# ---------------------------------------------------------------------------
# Dense layers and networks
# ---------------------------------------------------------------------------


def dense_forward(
    x: ArrayLike, kernel: ArrayLike, bias: ArrayLike | None, activation: str
) -> tuple[FloatArray, FloatArray]:
    """One Dense layer: z = x @ kernel + bias, a = act(z). Returns (z, a)."""
    x = _as_float(x)
    z = x @ _as_float(kernel)
    if bias is not None:
        z = z + _as_float(bias)  # broadcast: the same bias for every row
    return z, _apply_activation(activation, z)


def batch_norm_forward(
    x: ArrayLike,
    gamma: ArrayLike | None,
    beta: ArrayLike | None,
    epsilon: float = 1e-3,
    mean: ArrayLike | None = None,
    variance: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keras's BatchNormalization on the last axis: (y, mean, variance). Without ``mean`` and
    ``variance`` (training), the batch's mean and biased variance (``np.var``, ddof 0) are used
    and returned; with them (inference, the moving statistics) they are used as given.
    y = gamma * (x - mean) / sqrt(variance + epsilon) + beta (gamma None: 1, beta None: 0)."""
    x = _as_float(x)
    m = x.mean(axis=0) if mean is None else _as_float(mean)
    v = x.var(axis=0) if variance is None else _as_float(variance)
    xhat = (x - m) / np.sqrt(v + epsilon)
    y = xhat * (1.0 if gamma is None else _as_float(gamma)) + (0.0 if beta is None else _as_float(beta))
    return y, m, v


def batch_norm_backward(
    x: ArrayLike,
    dy: ArrayLike,
    gamma: ArrayLike | None,
    epsilon: float = 1e-3,
    mean: ArrayLike | None = None,
    variance: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dx, dgamma, dbeta) of ``batch_norm_forward`` given dL/dy. Training (mean and variance
    None): the statistics depend on x, dx = g / (n s) (n dy - sum dy - xhat sum(dy xhat)), with
    s = sqrt(var + epsilon); inference: dx = dy g / s."""
    x, dy = _as_float(x), _as_float(dy)
    training = mean is None
    m = x.mean(axis=0) if mean is None else _as_float(mean)
    v = x.var(axis=0) if variance is None else _as_float(variance)
    s = np.sqrt(v + epsilon)
    xhat = (x - m) / s
    g = np.ones(x.shape[1]) if gamma is None else _as_float(gamma)
    dbeta = dy.sum(axis=0)
    dgamma = (dy * xhat).sum(axis=0)
    if training:
        n = x.shape[0]
        dx = g / (n * s) * (n * dy - dbeta - xhat * dgamma)
    else:
        dx = dy * g / s
    return dx, dgamma, dbeta


def moving_statistics_update(moving: ArrayLike, batch: ArrayLike, momentum: float) -> FloatArray:
    """Keras's update of a moving mean or variance: moving * momentum + batch * (1 - momentum)."""
    return _as_float(moving) * momentum + _as_float(batch) * (1.0 - momentum)


def layers_forward(
    x: ArrayLike, layers: Sequence[dict[str, Any]], training: bool = True
) -> tuple[FloatArray, list[dict[str, FloatArray]]]:
    """Keras's layers in order, each a dict: ``{"kind": "dense", "kernel", "bias" (or None),
    "activation"}``, ``{"kind": "activation", "activation"}`` or ``{"kind": "batch_norm",
    "gamma", "beta" (each or None), "moving_mean", "moving_variance", "epsilon" (1e-3),
    "trainable" (True)}``, a BatchNormalization anywhere.
    Training (and trainable) normalizes with the batch's statistics, else with the moving ones.
    Returns the output and, per layer, what its backward pass needs: "input", then "z" and "a"
    (dense), "a" (activation) or "mean", "variance" and "batch" (batch_norm: the statistics used; batch is 1.0 for
    the batch's). Dropout is left out (its masks are random)."""
    a = _as_float(x)
    caches: list[dict[str, FloatArray]] = []
    for layer in layers:
        if layer["kind"] == "dense":
            z, out = dense_forward(a, layer["kernel"], layer.get("bias"), layer["activation"])
            caches.append({"input": a, "z": z, "a": out})
        elif layer["kind"] == "activation":
            out = _apply_activation(layer["activation"], a)
            caches.append({"input": a, "a": out})
        elif layer["kind"] == "batch_norm":
            batch = training and layer.get("trainable", True)
            stats = {} if batch else {"mean": layer["moving_mean"], "variance": layer["moving_variance"]}
            out, mean, variance = batch_norm_forward(a, layer.get("gamma"), layer.get("beta"), layer.get("epsilon", 1e-3), **stats)
            caches.append({"input": a, "mean": mean, "variance": variance, "batch": np.float64(batch)})
        else:
            raise ValueError(f"Unknown layer kind. Received: kind={layer['kind']!r}")
        a = out
    return a, caches


def layers_gradients(
    x: ArrayLike,
    y_true: ArrayLike,
    layers: Sequence[dict[str, Any]],
    loss_name: str,
    from_logits: bool = False,
    training: bool = True,
) -> tuple[float, list[tuple[Optional[FloatArray], Optional[FloatArray]]], list[dict[str, FloatArray]]]:
    """(batch-mean loss, gradients, caches) of ``layers_forward``, whose last layer is a Dense
    layer: per layer (dkernel, dbias or None) or (dgamma or None, dbeta or None), by
    backpropagation (through the batch's statistics where they were used)."""
    if not layers or layers[-1]["kind"] != "dense":
        raise ValueError("The last layer must be a Dense layer.")
    _, caches = layers_forward(x, layers, training)
    last = layers[-1]
    per_sample, dz = output_loss_and_delta(loss_name, last["activation"], from_logits, y_true, caches[-1]["z"], caches[-1]["a"])
    grads: list[tuple[Optional[FloatArray], Optional[FloatArray]]] = [(None, None)] * len(layers)
    d = dz  # dL/d(the output of layer i), or of its z for the last layer
    for i in reversed(range(len(layers))):
        layer, cache = layers[i], caches[i]
        if layer["kind"] == "dense":
            if i != len(layers) - 1:
                d = activation_backward(layer["activation"], cache["z"], cache["a"], d)
            bias = layer.get("bias")
            grads[i] = (cache["input"].T @ d, d.sum(axis=0) if bias is not None else None)
            d = d @ _as_float(layer["kernel"]).T
        elif layer["kind"] == "activation":
            d = activation_backward(layer["activation"], cache["input"], cache["a"], d)
        else:
            stats = {} if cache["batch"] else {"mean": cache["mean"], "variance": cache["variance"]}
            gamma, beta = layer.get("gamma"), layer.get("beta")
            d, dgamma, dbeta = batch_norm_backward(cache["input"], d, gamma, layer.get("epsilon", 1e-3), **stats)
            grads[i] = (dgamma if gamma is not None else None, dbeta if beta is not None else None)
    return float(np.mean(per_sample)), grads, caches


def _check_network(
    params: Sequence[tuple[ArrayLike, ArrayLike | None]], activations: Sequence[str]
) -> None:
    if len(params) != len(activations):
        raise ValueError(
            "params and activations must have one entry per layer. "
            f"Received: len(params)={len(params)}, len(activations)={len(activations)}"
        )
    if len(params) == 0:
        raise ValueError("A network needs at least one layer. Received: params=[]")


def forward(
    x: ArrayLike, params: Sequence[tuple[ArrayLike, ArrayLike | None]], activations: Sequence[str]
) -> list[tuple[FloatArray, FloatArray]]:
    """Run every layer; return (z, a) per layer (backpropagation needs them all)."""
    _check_network(params, activations)
    layers: list[tuple[FloatArray, FloatArray]] = []
    a = _as_float(x)
    for (kernel, bias), act in zip(params, activations):
        z, a = dense_forward(a, kernel, bias, act)
        layers.append((z, a))
    return layers


def predict(
    x: ArrayLike, params: Sequence[tuple[ArrayLike, ArrayLike | None]], activations: Sequence[str]
) -> FloatArray:
    """The network's output: the activation of the last layer."""
    return forward(x, params, activations)[-1][1]


def gradients(
    x: ArrayLike,
    y_true: ArrayLike,
    params: Sequence[tuple[ArrayLike, ArrayLike | None]],
    activations: Sequence[str],
    loss_name: str,
    from_logits: bool = False,
) -> tuple[float, Params]:
    """(batch-mean loss, [(dkernel, dbias or None) per layer]) by backpropagation."""
    x = _as_float(x)
    layers = forward(x, params, activations)
    z_out, a_out = layers[-1]
    per_sample, dz = output_loss_and_delta(
        loss_name, activations[-1], from_logits, y_true, z_out, a_out
    )

    grads: Params = []
    for i in reversed(range(len(layers))):
        kernel, bias = params[i]
        a_prev = x if i == 0 else layers[i - 1][1]
        # z = a_prev @ kernel + bias, so for the batch-mean loss L (dz already
        # carries the 1/batch):
        #   dL/dkernel = a_prev^T @ dz     (sums the per-sample outer products)
        #   dL/dbias   = sum of dz over the batch
        #   dL/da_prev = dz @ kernel^T
        dkernel = a_prev.T @ dz
        dbias = np.sum(dz, axis=0) if bias is not None else None
        grads.append((dkernel, dbias))
        if i > 0:
            da_prev = dz @ _as_float(kernel).T
            z_prev, a_prev_out = layers[i - 1]
            dz = activation_backward(activations[i - 1], z_prev, a_prev_out, da_prev)
    grads.reverse()
    return float(np.mean(per_sample)), grads


def sgd_step(
    params: Sequence[tuple[ArrayLike, ArrayLike | None]],
    grads: Sequence[tuple[ArrayLike, ArrayLike | None]],
    learning_rate: float,
) -> Params:
    """Plain gradient descent, w <- w - learning_rate * dL/dw. Returns new arrays."""
    if len(params) != len(grads):
        raise ValueError(
            f"params and grads must have the same length. Received: {len(params)} and {len(grads)}"
        )
    new_params: Params = []
    for (kernel, bias), (dkernel, dbias) in zip(params, grads):
        new_kernel = _as_float(kernel) - learning_rate * _as_float(dkernel)
        if bias is None:
            new_bias = None
        else:
            if dbias is None:
                raise ValueError("A layer with a bias needs a bias gradient. Received: None")
            new_bias = _as_float(bias) - learning_rate * _as_float(dbias)
        new_params.append((new_kernel, new_bias))
    return new_params


def train_sgd(
    x: ArrayLike,
    y: ArrayLike,
    params: Sequence[tuple[ArrayLike, ArrayLike | None]],
    activations: Sequence[str],
    loss_name: str,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    batch_order: Sequence[ArrayLike],
    from_logits: bool = False,
) -> tuple[Params, list[float]]:
    """Mini-batch SGD as Keras's fit(..., shuffle=True) runs it, with a given shuffle.

    ``batch_order[e]`` is the permutation of the samples used in epoch ``e``;
    the batches are its consecutive slices of ``batch_size`` (the last one may
    be smaller). Returns the final parameters and the loss of each epoch.
    """
    x = _as_float(x)
    y_all = np.asarray(y)  # not cast: sparse labels stay integers
    n = x.shape[0]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if len(batch_order) != epochs:
        raise ValueError(
            "batch_order needs one permutation per epoch. "
            f"Received: len(batch_order)={len(batch_order)}, epochs={epochs}"
        )
    current: Params = [(_as_float(k), None if b is None else _as_float(b)) for k, b in params]
    epoch_losses: list[float] = []
    for epoch in range(epochs):
        order = np.asarray(batch_order[epoch])
        if not np.array_equal(np.sort(order), np.arange(n)):
            raise ValueError(f"batch_order[{epoch}] must be a permutation of range({n}).")
        weighted_sum = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch_loss, grads = gradients(
                x[idx], y_all[idx], current, activations, loss_name, from_logits
            )
            # Keras's running loss is a mean weighted by batch size, so a short
            # last batch counts for its few samples only: the epoch loss is the
            # plain per-sample mean (of losses taken before each batch's update).
            weighted_sum += batch_loss * len(idx)
            current = sgd_step(current, grads, learning_rate)
        epoch_losses.append(weighted_sum / n)
    return current, epoch_losses


# ---------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------
#
# Keras 3, keras/src/optimizers/schedules/learning_rate_schedule.py. Each is a
# function of the optimizer's step count: the number of updates applied before
# the one being computed (0 for the first update), because Keras evaluates
# ``self._learning_rate(self.iterations)`` before incrementing ``iterations``.


def exponential_decay(
    step: float,
    initial_learning_rate: float,
    decay_steps: float,
    decay_rate: float,
    staircase: bool = False,
) -> float:
    """ExponentialDecay: initial_learning_rate * decay_rate ** (step / decay_steps).

    With staircase the exponent is floored, so the rate drops in steps every
    decay_steps updates instead of continuously.
    """
    p = step / decay_steps
    if staircase:
        p = float(np.floor(p))
    return float(initial_learning_rate * decay_rate**p)


def inverse_time_decay(
    step: float,
    initial_learning_rate: float,
    decay_steps: float,
    decay_rate: float,
    staircase: bool = False,
) -> float:
    """InverseTimeDecay: initial_learning_rate / (1 + decay_rate * step / decay_steps).

    With staircase, step / decay_steps is floored.
    """
    p = step / decay_steps
    if staircase:
        p = float(np.floor(p))
    return float(initial_learning_rate / (1.0 + decay_rate * p))


def piecewise_constant_decay(
    step: float, boundaries: Sequence[float], values: Sequence[float]
) -> float:
    """PiecewiseConstantDecay: values[0] while step <= boundaries[0], values[i] while
    boundaries[i-1] < step <= boundaries[i], and values[-1] once step > boundaries[-1].

    A step equal to a boundary still takes the earlier value (Keras compares with <=).
    """
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            "values needs one more entry than boundaries. "
            f"Received: len(boundaries)={len(boundaries)}, len(values)={len(values)}"
        )
    for boundary, value in zip(boundaries, values):
        if step <= boundary:
            return float(value)
    return float(values[-1])


def cosine_decay(
    step: float,
    initial_learning_rate: float,
    decay_steps: float,
    alpha: float = 0.0,
    warmup_target: float | None = None,
    warmup_steps: float = 0.0,
) -> float:
    """CosineDecay (SGDR without restarts), with Keras 3's optional linear warmup.

    Without warmup (warmup_target None), with s = min(step, decay_steps):
        initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)
    so the rate falls from initial_learning_rate to alpha * initial_learning_rate and stays
    there.

    With warmup, with s = min(step, warmup_steps + decay_steps):
        s <  warmup_steps: initial_learning_rate + (warmup_target - initial_learning_rate)
                           * s / warmup_steps                      (a straight line)
        s >= warmup_steps: the cosine decay above of s - warmup_steps, from warmup_target
                           (ending at alpha * warmup_target).
    """
    if warmup_target is None:
        s = min(step, decay_steps)
        start = initial_learning_rate
    else:
        s = min(step, decay_steps + warmup_steps)
        if s < warmup_steps:
            return float(
                (warmup_target - initial_learning_rate) * (s / warmup_steps) + initial_learning_rate
            )
        s = s - warmup_steps
        start = warmup_target
    cosine = 0.5 * (1.0 + np.cos(np.pi * s / decay_steps))
    return float(start * ((1.0 - alpha) * cosine + alpha))


SCHEDULES: dict[str, Callable[..., float]] = {
    "exponential_decay": exponential_decay,
    "inverse_time_decay": inverse_time_decay,
    "piecewise_constant_decay": piecewise_constant_decay,
    "cosine_decay": cosine_decay,
}

# A learning rate is a number or a function of the step count (a schedule).
LearningRate = Union[float, Callable[[int], float]]


def schedule(kind: str, **settings: Any) -> Callable[[int], float]:
    """One of SCHEDULES with its settings bound: a function of the step only."""
    if kind not in SCHEDULES:
        raise ValueError(
            f"Unknown schedule. Expected one of {tuple(SCHEDULES)}. Received: {kind!r}"
        )
    function = SCHEDULES[kind]

    def learning_rate(step: int) -> float:
        return function(step, **settings)

    return learning_rate


def learning_rate_at(learning_rate: LearningRate, step: int) -> float:
    """The rate used by the update that follows ``step`` earlier updates."""
    if callable(learning_rate):
        return float(learning_rate(step))
    return float(learning_rate)


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------
#
# Keras 3, keras/src/optimizers/{sgd,adam,adamw,adagrad,rmsprop}.py for each
# update_step and base_optimizer.py for what happens around it. One training
# step (BaseOptimizer.apply) is, in this order:
#
#   1. clip the gradients (_clip_gradients): only one of clipnorm, global_clipnorm
#      and clipvalue may be set;
#   2. decay the weights (_apply_weight_decay): w <- w - w * weight_decay * lr,
#      with lr the (scheduled) learning rate of this step, for every variable;
#   3. update_step(gradient, variable, lr) for each variable, in order;
#   4. iterations += 1.
#
# Parameters and gradients here are flat lists of arrays in Keras's
# get_weights() order (kernel, bias, kernel, bias, ...); the optimizer state is
# one dict of named slots per array (Keras's variable names).

OPTIMIZERS: tuple[str, ...] = (
    "sgd",
    "adam",
    "adamw",
    "adagrad",
    "rmsprop",
    "nadam",
    "adamax",
    "lion",
    "adadelta",
    "ftrl",
)

# Keras 3's constructor defaults, read from the files above.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    },
    "adamw": {
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    },
    "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "rmsprop": {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    },
    "nadam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamax": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "lion": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99},
    "adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
    "ftrl": {
        "learning_rate": 0.001,
        "learning_rate_power": -0.5,
        "initial_accumulator_value": 0.1,
        "l1_regularization_strength": 0.0,
        "l2_regularization_strength": 0.0,
        "l2_shrinkage_regularization_strength": 0.0,
        "beta": 0.0,
    },
}

# Settings every optimizer takes (BaseOptimizer.__init__); None means off.
COMMON_OPTIMIZER_SETTINGS: dict[str, Any] = {
    "weight_decay": None,
    "clipnorm": None,
    "clipvalue": None,
    "global_clipnorm": None,
}


def optimizer_settings(name: str, **overrides: Any) -> dict[str, Any]:
    """Every hyperparameter of optimizer ``name``: Keras's defaults, then ``overrides``."""
    _check_name("optimizer", name, OPTIMIZERS)
    settings = {**COMMON_OPTIMIZER_SETTINGS, **OPTIMIZER_DEFAULTS[name]}
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(f"Unknown settings for {name}: {unknown}. Known: {sorted(settings)}")
    settings.update(overrides)
    clipping = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if settings[k] is not None]
    if len(clipping) > 1:
        raise ValueError(
            f"Only one of clipnorm, clipvalue and global_clipnorm can be set: {clipping}"
        )
    return settings


def optimizer_state(
    name: str, params: Sequence[ArrayLike], settings: dict[str, Any]
) -> list[dict[str, FloatArray]]:
    """The slots Keras's build() creates, one dict per parameter array, all zeros except
    Adagrad's accumulator (initial_accumulator_value)."""
    _check_name("optimizer", name, OPTIMIZERS)
    state: list[dict[str, FloatArray]] = []
    for w in params:
        shape = np.shape(w)
        slots: dict[str, FloatArray] = {}
        if name == "sgd":
            if settings["momentum"] != 0:
                slots["momentum"] = np.zeros(shape)
        elif name in ("adam", "adamw"):
            slots["momentum"] = np.zeros(shape)
            slots["velocity"] = np.zeros(shape)
            if settings["amsgrad"]:
                slots["velocity_hat"] = np.zeros(shape)
        elif name == "adagrad":
            slots["accumulator"] = np.full(shape, float(settings["initial_accumulator_value"]))
        elif name == "nadam":
            slots["momentum"] = np.zeros(shape)
            slots["velocity"] = np.zeros(shape)
        elif name == "adamax":
            slots["momentum"] = np.zeros(shape)
            slots["norm"] = np.zeros(shape)
        elif name == "lion":
            slots["momentum"] = np.zeros(shape)
        elif name == "adadelta":
            slots["accumulated_grad"] = np.zeros(shape)
            slots["accumulated_delta_var"] = np.zeros(shape)
        elif name == "ftrl":
            slots["accumulator"] = np.full(shape, float(settings["initial_accumulator_value"]))
            slots["linear"] = np.zeros(shape)
        else:  # rmsprop
            slots["velocity"] = np.zeros(shape)
            if settings["momentum"] > 0:
                slots["momentum"] = np.zeros(shape)
            if settings["centered"]:
                slots["average_gradient"] = np.zeros(shape)
        state.append(slots)
    return state


def clip_by_norm(g: ArrayLike, clipnorm: float) -> FloatArray:
    """One array scaled to L2 norm at most clipnorm: g * clipnorm / max(||g||, clipnorm).

    (BaseOptimizer._clip_by_norm; an all-zero gradient stays zero.)
    """
    g = _as_float(g)
    norm = float(np.sqrt(np.sum(g * g)))
    return g * clipnorm / max(norm, clipnorm)


def clip_by_global_norm(grads: Sequence[ArrayLike], clipnorm: float) -> list[FloatArray]:
    """All arrays scaled by one factor so that their joint L2 norm is at most clipnorm:
    g * clipnorm / max(global_norm, clipnorm), global_norm = sqrt(sum of every ||g||^2).

    (keras/src/optimizers/base_optimizer.py clip_by_global_norm, which writes the factor as
    clipnorm * min(1 / global_norm, 1 / clipnorm): the same number.)
    """
    arrays = [_as_float(g) for g in grads]
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in arrays)))
    return [g * clipnorm / max(norm, clipnorm) for g in arrays]


def clip_gradients(
    grads: Sequence[ArrayLike],
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> list[FloatArray]:
    """BaseOptimizer._clip_gradients: per-array norm, global norm or elementwise value
    clipping (clipvalue: each element into [-clipvalue, clipvalue]); at most one is set."""
    if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise ValueError("Only one of clipnorm, clipvalue and global_clipnorm can be set.")
    if clipnorm is not None and clipnorm > 0:
        return [clip_by_norm(g, clipnorm) for g in grads]
    if global_clipnorm is not None and global_clipnorm > 0:
        return clip_by_global_norm(grads, global_clipnorm)
    if clipvalue is not None and clipvalue > 0:
        return [np.clip(_as_float(g), -clipvalue, clipvalue) for g in grads]
    return [_as_float(g) for g in grads]


def adam_alpha(learning_rate: float, beta_1: float, beta_2: float, step: int) -> float:
    """Adam's step size with both bias corrections folded in (adam.py):

        t = step + 1,  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)

    so that w -= alpha * m / (sqrt(v) + eps) is Kingma & Ba's update with their
    "epsilon hat" (added to the uncorrected sqrt(v)), not Algorithm 1's epsilon.
    """
    t = step + 1
    return float(learning_rate * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t))


def update_step(
    name: str,
    w: ArrayLike,
    g: ArrayLike,
    slots: dict[str, FloatArray],
    learning_rate: float,
    step: int,
    settings: dict[str, Any],
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Keras's update_step for one array: the (already clipped) gradient g, the array w
    (already decayed), its slots, the learning rate of this step and the step count.
    Returns (new w, new slots); the inputs are not modified."""
    _check_name("optimizer", name, OPTIMIZERS)
    w = _as_float(w)
    g = _as_float(g)
    lr = learning_rate
    new = {key: value.copy() for key, value in slots.items()}

    if name == "sgd":
        momentum = settings["momentum"]
        if momentum == 0:
            return w - lr * g, new
        # velocity = momentum * velocity - lr * g;  w += velocity
        # nesterov: w += momentum * velocity - lr * g   (with the new velocity)
        m = momentum * new["momentum"] - lr * g
        new["momentum"] = m
        if settings["nesterov"]:
            return w + (momentum * m - lr * g), new
        return w + m, new

    if name in ("adam", "adamw"):
        beta_1, beta_2 = settings["beta_1"], settings["beta_2"]
        alpha = adam_alpha(lr, beta_1, beta_2, step)
        # Exponential moving averages of g and g^2, written as Keras does: m += (g - m)(1 - b1).
        m = new["momentum"] + (g - new["momentum"]) * (1.0 - beta_1)
        v = new["velocity"] + (g * g - new["velocity"]) * (1.0 - beta_2)
        new["momentum"], new["velocity"] = m, v
        if settings["amsgrad"]:
            # AMSGrad divides by the largest second moment seen so far.
            v = np.maximum(new["velocity_hat"], v)
            new["velocity_hat"] = v
        return w - m * alpha / (np.sqrt(v) + settings["epsilon"]), new

    if name == "adagrad":
        # The accumulator starts at initial_accumulator_value; epsilon sits inside the root.
        acc = new["accumulator"] + g * g
        new["accumulator"] = acc
        return w - lr * g / np.sqrt(acc + settings["epsilon"]), new

    if name in ("nadam", "adamax", "lion", "adadelta", "ftrl"):
        return _more_update_step(name, w, g, new, lr, step, settings)

    # rmsprop
    rho = settings["rho"]
    vel = rho * new["velocity"] + (1.0 - rho) * g * g
    new["velocity"] = vel
    if settings["centered"]:
        # Centered: divide by an estimate of the gradient's variance, E[g^2] - E[g]^2.
        avg = rho * new["average_gradient"] + (1.0 - rho) * g
        new["average_gradient"] = avg
        denominator = vel - avg * avg + settings["epsilon"]
    else:
        denominator = vel + settings["epsilon"]
    increment = lr * g / np.sqrt(denominator)
    if settings["momentum"] > 0:
        mom = settings["momentum"] * new["momentum"] + increment
        new["momentum"] = mom
        return w - mom, new
    return w - increment, new


def _nadam_u(beta_1: float, t: int) -> float:
    # Keras's momentum cache u_t = beta_1 (1 - 0.5 * 0.96^t) (nadam.py).
    return beta_1 * (1.0 - 0.5 * 0.96**t)


def _more_update_step(
    name: str,
    w: FloatArray,
    g: FloatArray,
    new: dict[str, FloatArray],
    lr: float,
    step: int,
    settings: dict[str, Any],
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """update_step of nadam.py, adamax.py, lion.py, adadelta.py and ftrl.py, line by line."""
    t = step + 1  # Keras's local_step = iterations + 1
    if name == "nadam":
        beta_1, beta_2 = settings["beta_1"], settings["beta_2"]
        u_t, u_t_1 = _nadam_u(beta_1, t), _nadam_u(beta_1, t + 1)
        u_product_t = math.prod(_nadam_u(beta_1, i) for i in range(1, t + 1))  # the _u_product variable
        u_product_t_1 = u_product_t * u_t_1
        m = new["momentum"] + (g - new["momentum"]) * (1.0 - beta_1)
        v = new["velocity"] + (g * g - new["velocity"]) * (1.0 - beta_2)
        new["momentum"], new["velocity"] = m, v
        m_hat = u_t_1 * m / (1.0 - u_product_t_1) + (1.0 - u_t) * g / (1.0 - u_product_t)
        v_hat = v / (1.0 - beta_2**t)
        return w - m_hat * lr / (np.sqrt(v_hat) + settings["epsilon"]), new
    if name == "adamax":
        beta_1, beta_2 = settings["beta_1"], settings["beta_2"]
        m = new["momentum"] + (g - new["momentum"]) * (1.0 - beta_1)
        u = np.maximum(beta_2 * new["norm"], np.abs(g))
        new["momentum"], new["norm"] = m, u
        return w - lr * m / ((1.0 - beta_1**t) * (u + settings["epsilon"])), new
    if name == "lion":
        beta_1, beta_2 = settings["beta_1"], settings["beta_2"]
        m = new["momentum"]
        w = w - lr * np.sign(m * beta_1 + g * (1.0 - beta_1))
        new["momentum"] = m * beta_2 + g * (1.0 - beta_2)
        return w, new
    if name == "adadelta":
        rho, eps = settings["rho"], settings["epsilon"]
        acc_g = rho * new["accumulated_grad"] + (1.0 - rho) * g * g
        delta = -np.sqrt(new["accumulated_delta_var"] + eps) * g / np.sqrt(acc_g + eps)
        new["accumulated_grad"] = acc_g
        new["accumulated_delta_var"] = rho * new["accumulated_delta_var"] + (1.0 - rho) * delta * delta
        return w + lr * delta, new
    # ftrl
    power = settings["learning_rate_power"]
    l1 = settings["l1_regularization_strength"]
    l2 = settings["l2_regularization_strength"] + settings["beta"] / (2.0 * lr)
    grad_to_use = g + 2.0 * settings["l2_shrinkage_regularization_strength"] * w
    accum = new["accumulator"]
    new_accum = accum + g * g
    linear = new["linear"] + grad_to_use - (new_accum**-power - accum**-power) / lr * w
    quadratic = new_accum**-power / lr + 2.0 * l2
    new["linear"], new["accumulator"] = linear, new_accum
    return (np.clip(linear, -l1, l1) - linear) / quadratic, new


def optimizer_step(
    name: str,
    params: Sequence[ArrayLike],
    grads: Sequence[ArrayLike],
    state: Sequence[dict[str, FloatArray]],
    step: int,
    settings: dict[str, Any],
) -> tuple[list[FloatArray], list[dict[str, FloatArray]]]:
    """One optimizer step (BaseOptimizer.apply) over flat lists of arrays: clip the
    gradients, decay the weights by weight_decay * lr, then update_step each array.

    ``step`` is the number of steps done before this one; ``settings`` comes from
    optimizer_settings (its learning_rate may be a schedule). Returns new lists.
    """
    if not len(params) == len(grads) == len(state):
        raise ValueError(
            "params, grads and state need one entry per array. "
            f"Received: {len(params)}, {len(grads)} and {len(state)}"
        )
    lr = learning_rate_at(settings["learning_rate"], step)
    clipped = clip_gradients(
        grads, settings["clipnorm"], settings["clipvalue"], settings["global_clipnorm"]
    )
    decay = settings["weight_decay"]
    new_params: list[FloatArray] = []
    new_state: list[dict[str, FloatArray]] = []
    for w, g, slots in zip(params, clipped, state):
        w = _as_float(w)
        if decay:
            # Decoupled weight decay (Loshchilov & Hutter), scaled by this step's rate.
            w = w - w * decay * lr
        w, slots = update_step(name, w, g, slots, lr, step, settings)
        new_params.append(w)
        new_state.append(slots)
    return new_params, new_state


def flatten_params(params: Sequence[tuple[ArrayLike, ArrayLike | None]]) -> list[FloatArray]:
    """[(kernel, bias or None), ...] -> [kernel, bias, kernel, ...] (get_weights order)."""
    flat: list[FloatArray] = []
    for kernel, bias in params:
        flat.append(_as_float(kernel))
        if bias is not None:
            flat.append(_as_float(bias))
    return flat


def unflatten_params(
    flat: Sequence[ArrayLike], like: Sequence[tuple[ArrayLike, ArrayLike | None]]
) -> Params:
    """The inverse of flatten_params, with the layout (which layers have biases) of ``like``."""
    out: Params = []
    i = 0
    for _, bias in like:
        kernel = _as_float(flat[i])
        i += 1
        new_bias = None
        if bias is not None:
            new_bias = _as_float(flat[i])
            i += 1
        out.append((kernel, new_bias))
    if i != len(flat):
        raise ValueError(f"Expected {i} arrays for this layout. Received: {len(flat)}")
    return out


def hessian_by_differences(
    x: ArrayLike,
    y_true: ArrayLike,
    params: Sequence[tuple[ArrayLike, ArrayLike | None]],
    activations: Sequence[str],
    loss_name: str,
    from_logits: bool = False,
    step: float = 1e-5,
) -> FloatArray:
    """The Hessian of the batch-mean loss with respect to all weights, ``(P, P)``.

    The weights are flattened in ``get_weights()`` order (each array in C order). The Hessian
    is the derivative of the gradient, so column j is taken by central differences of
    ``gradients`` along weight j:

        H[:, j] ~= (grad(w + h e_j) - grad(w - h e_j)) / (2 h)

    with an error of order h^2 (truncation) plus eps |grad| / h (rounding): about 1e-10 for
    h = 1e-5 and values of order 1. The result is symmetrized, as the exact H is.
    """
    base = flatten_params(params)
    w0 = np.concatenate([w.ravel() for w in base])

    def gradient(w: FloatArray) -> FloatArray:
        arrays, start = [], 0
        for like in base:
            arrays.append(w[start : start + like.size].reshape(like.shape))
            start += like.size
        trial = unflatten_params(arrays, params)
        _, grads = gradients(x, y_true, trial, activations, loss_name, from_logits)
        return np.concatenate([g.ravel() for g in flatten_params(grads)])

    columns = []
    for j in range(w0.size):
        forward, backward = w0.copy(), w0.copy()
        forward[j] += step
        backward[j] -= step
        columns.append((gradient(forward) - gradient(backward)) / (2 * step))
    hessian = np.stack(columns, axis=1)
    symmetric: FloatArray = (hessian + hessian.T) / 2
    return symmetric


def train_steps(
    x: ArrayLike,
    y: ArrayLike,
    params: Sequence[tuple[ArrayLike, ArrayLike | None]],
    activations: Sequence[str],
    loss_name: str,
    optimizer: str,
    settings: dict[str, Any],
    batches: Sequence[ArrayLike],
    from_logits: bool = False,
) -> tuple[Params, list[float]]:
    """Train with ``optimizer`` one step per entry of ``batches`` (index arrays into x, y),
    from ``params`` and a fresh optimizer state, as train_on_batch does step by step.

    Returns the final parameters and the loss of each batch (taken before its update).
    """
    x = _as_float(x)
    y_all = np.asarray(y)  # not cast: sparse labels stay integers
    current = unflatten_params(flatten_params(params), params)
    flat = flatten_params(current)
    state = optimizer_state(optimizer, flat, settings)
    batch_losses: list[float] = []
    for step, idx in enumerate(batches):
        idx = np.asarray(idx)
        batch_loss, grads = gradients(
            x[idx], y_all[idx], current, activations, loss_name, from_logits
        )
        batch_losses.append(batch_loss)
        flat, state = optimizer_step(optimizer, flat, flatten_params(grads), state, step, settings)
        current = unflatten_params(flat, current)
    return current, batch_losses


# ---------------------------------------------------------------------------
# Metrics and initialisation
# ---------------------------------------------------------------------------


def accuracy(kind: str, y_true: ArrayLike, y_pred: ArrayLike) -> FloatArray:
    """Per-sample accuracy as float64 (1.0 right, 0.0 wrong), as Keras's metrics.

    kind "binary": an output counts as class 1 when it is > 0.5; a sample's value
    is the fraction of its outputs that match (0 or 1 for a single output).
    kind "categorical": argmax of the one-hot y_true equals argmax of y_pred.
    kind "sparse_categorical": the integer y_true equals argmax of y_pred.
    """
    if kind == "binary":
        y, p = _dense_targets(y_true, y_pred)
        return _row_mean(((p > 0.5) == y).astype(np.float64))
    if kind == "categorical":
        y, p = _dense_targets(y_true, y_pred)
        hits: FloatArray = (np.argmax(y, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64)
        return hits
    if kind == "sparse_categorical":
        p = _as_float(y_pred)
        labels = np.asarray(y_true)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        hits = (labels == np.argmax(p, axis=-1)).astype(np.float64)
        return hits
    raise ValueError(
        "Unknown accuracy kind. Expected one of ('binary', 'categorical', "
        f"'sparse_categorical'). Received: kind={kind!r}"
    )


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> FloatArray:
    """Per-sample mean over the outputs of |y_pred - y_true|."""
    return loss("mae", y_true, y_pred)


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> FloatArray:
    """Per-sample mean over the outputs of (y_pred - y_true)^2."""
    return loss("mse", y_true, y_pred)


def glorot_uniform(fan_in: int, fan_out: int, rng: np.random.Generator) -> FloatArray:
    """A (fan_in, fan_out) kernel drawn from Glorot/Xavier uniform.

    U(-limit, limit) has variance limit^2 / 3 = 2 / (fan_in + fan_out): the
    compromise between keeping the activations' variance constant going forward
    (1 / fan_in) and the gradients' going backward (1 / fan_out).
    """
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))
