"""The math of fastmlp in plain NumPy, float64, one readable function per formula.

This module is the yardstick for the C++ core: every kernel (activations, losses,
their gradients, the dense layer, the SGD update) and whole training runs are
tested against it. It is also meant to be read next to a textbook, so it favours
the obvious formula over the fast one, and its comments say *why* a formula
looks the way it does.

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

from collections.abc import Sequence
from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ACTIVATIONS",
    "EPSILON",
    "LOSSES",
    "FloatArray",
    "Params",
    "accuracy",
    "activation",
    "activation_backward",
    "dense_forward",
    "forward",
    "glorot_uniform",
    "gradients",
    "log_softmax",
    "loss",
    "loss_gradient",
    "mean_absolute_error",
    "mean_squared_error",
    "output_loss_and_delta",
    "predict",
    "sgd_step",
    "sigmoid",
    "softmax",
    "train_sgd",
    "uses_logits",
]

FloatArray = NDArray[np.float64]

# One entry per layer: (kernel of shape (in, out), bias of shape (out,) or None
# when the layer was built with use_bias=False).
Params = list[tuple[FloatArray, Optional[FloatArray]]]

ACTIVATIONS: tuple[str, ...] = ("linear", "sigmoid", "tanh", "relu", "softmax")
LOSSES: tuple[str, ...] = (
    "mse",
    "mae",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
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


def _apply_activation(name: str, z: FloatArray) -> FloatArray:
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


def activation(name: str, z: ArrayLike) -> FloatArray:
    """a = act(z) for one of ACTIVATIONS."""
    return _apply_activation(name, _as_float(z))


def activation_backward(name: str, z: ArrayLike, a: ArrayLike, da: ArrayLike) -> FloatArray:
    """dz = da @ (da/dz): the vector-Jacobian product of the activation.

    ``da`` is dL/da; the result is dL/dz. ``a`` must be act(z); the sigmoid,
    tanh and softmax derivatives are cheapest when written in terms of the output.
    """
    z = _as_float(z)
    a = _as_float(a)
    da = _as_float(da)
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


def loss(name: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False) -> FloatArray:
    """Per-sample loss, shape (batch,), with the semantics of Keras 3.

    ``from_logits`` only matters for the three cross-entropies: it says that
    ``y_pred`` holds pre-activation values rather than probabilities.
    """
    _check_name("loss", name, LOSSES)
    y, p = _targets(name, y_true, y_pred)

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
    name: str, y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False
) -> FloatArray:
    """dL/dy_pred where L = mean over the batch of loss(name, y_true, y_pred).

    Exactly the derivative of :func:`loss`, clipping and normalisation included.
    """
    _check_name("loss", name, LOSSES)
    y, p = _targets(name, y_true, y_pred)
    batch, outputs = int(p.shape[0]), int(p.shape[1])

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
    _check_name("loss", loss_name, LOSSES)
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
