"""The training step of fastmlp's benchmarks in float32 NumPy: the fair BLAS baseline.

``fastmlp.reference`` is written to be read next to a textbook, in float64, and pays for it in
speed. To say how fastmlp compares with "just NumPy" we need the same math done the way a
careful NumPy user would do it: float32 (so the BLAS does the same amount of arithmetic as
fastmlp's kernels), one matrix product per layer and direction, and in-place element-wise
work. The math is exactly the reference's:

* forward: ``z = a_prev @ W + b``, ``a = act(z)``, softmax on the last layer;
* loss: softmax cross-entropy from the logits, mean over the batch;
* backward: ``delta = (p - onehot(y)) / batch`` at the output, then per layer
  ``dW = a_prev^T @ delta``, ``db = sum(delta)``, ``delta_prev = (delta @ W^T) * act'(z_prev)``;
* update: plain SGD, ``W -= lr * dW`` (after ``delta_prev`` has used the old ``W``).

Only sigmoid, relu and linear hidden layers are needed by the benchmarks. Imports only NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]
Params = list[tuple[Array, Array]]


def _activate_in_place(name: str, z: Array) -> Array:
    """a = act(z), overwriting z (the backward pass needs only a for these activations)."""
    if name == "sigmoid":
        # 1 / (1 + exp(-z)); exp overflows to inf for z < -88 in float32, which correctly gives
        # 0, so the overflow warning is silenced rather than avoided with a slower formula.
        with np.errstate(over="ignore"):
            np.negative(z, out=z)
            np.exp(z, out=z)
        z += np.float32(1.0)
        np.reciprocal(z, out=z)
    elif name == "relu":
        np.maximum(z, np.float32(0.0), out=z)
    elif name != "linear":
        raise ValueError(f"unsupported hidden activation {name!r}")
    return z


def _softmax_in_place(z: Array) -> Array:
    """Row-wise softmax of the logits z, overwriting z. Subtracting the row maximum first keeps
    exp from overflowing (softmax(z) == softmax(z - c))."""
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def forward(x: Array, params: Sequence[tuple[Array, Array]], activations: Sequence[str]) -> list[Array]:
    """Every layer's output, the input first: ``[x, a_1, ..., p]`` (p the softmax output)."""
    outputs = [x]
    last = len(params) - 1
    for i, ((kernel, bias), name) in enumerate(zip(params, activations)):
        z = outputs[-1] @ kernel
        z += bias
        if i == last:
            if name != "softmax":
                raise ValueError("the last layer must be softmax (the loss is softmax cross-entropy)")
            outputs.append(_softmax_in_place(z))
        else:
            outputs.append(_activate_in_place(name, z))
    return outputs


def predict(x: Array, params: Sequence[tuple[Array, Array]], activations: Sequence[str]) -> Array:
    """The softmax probabilities of the last layer."""
    return forward(x, params, activations)[-1]


def train_step(
    x: Array, labels: NDArray[np.integer], params: Params, activations: Sequence[str], learning_rate: float
) -> float:
    """One SGD step on the batch (x, labels), in place on ``params``; returns the batch's mean
    loss before the step (as Keras and fastmlp report it)."""
    outputs = forward(x, params, activations)
    probs = outputs[-1]
    batch = x.shape[0]
    rows = np.arange(batch)
    # Cross-entropy of the true class, -log p_y, floored at float32's smallest normal number so a
    # confidently wrong sample costs ~87 instead of inf (fastmlp and the reference compute it from
    # the logits; this differs only for p_y < 1e-38).
    loss = float(-np.mean(np.log(np.maximum(probs[rows, labels], np.finfo(np.float32).tiny))))

    # dL/dz of softmax + cross-entropy for the batch mean: (p - onehot(y)) / batch. probs is ours
    # (forward made it), so it becomes delta in place.
    delta = probs
    delta[rows, labels] -= np.float32(1.0)
    delta *= np.float32(1.0 / batch)

    lr = np.float32(learning_rate)
    for i in range(len(params) - 1, -1, -1):
        kernel, bias = params[i]
        a_prev = outputs[i]
        grad_kernel = a_prev.T @ delta
        grad_bias = delta.sum(axis=0)
        if i > 0:
            # Through this layer's kernel (still the old one) and the previous activation,
            # written in terms of its output a: sigmoid' = a (1 - a), relu' = [a > 0].
            delta = delta @ kernel.T
            name = activations[i - 1]
            if name == "sigmoid":
                delta *= a_prev * (np.float32(1.0) - a_prev)
            elif name == "relu":
                delta *= a_prev > 0
        grad_kernel *= lr
        kernel -= grad_kernel
        grad_bias *= lr
        bias -= grad_bias
    return loss


def train_epoch(
    x: Array,
    labels: NDArray[np.integer],
    params: Params,
    activations: Sequence[str],
    learning_rate: float,
    batch_size: int,
    order: NDArray[np.integer],
) -> float:
    """One epoch of mini-batch SGD over the permutation ``order`` of the samples (the last batch
    may be smaller); returns the epoch's loss, the per-sample mean of the pre-step batch losses."""
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        total += train_step(x[idx], labels[idx], params, activations, learning_rate) * len(idx)
    return total / len(order)
