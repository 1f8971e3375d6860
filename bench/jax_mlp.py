"""The benchmark network's training and prediction in JAX, written the way JAX users write
them at their best: the whole epoch one jitted function that draws a permutation and runs a ``lax.scan`` of SGD
or Adam steps over its batches, each step gathering its rows from the data already on the
device (the other runners shuffle inside their timed epoch too).

The math is the other runners': mean softmax cross-entropy of the logits over each batch,
plain SGD (``w -= lr * g``) or Keras's Adam (``fastmlp.reference.update_step``: both bias
corrections folded into the step size, epsilon added to the uncorrected root); the last batch
of an epoch may be smaller. Imported by runners.py only when JAX is installed, and by
tests/test_bench_jax.py, which checks it against ``fastmlp.reference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

Params = list[tuple[jax.Array, jax.Array]]

ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # Keras's and fastmlp's defaults
_HIDDEN = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "tanh": jnp.tanh, "linear": lambda z: z}


def logits(params: Params, x: jax.Array, activations: Sequence[str]) -> jax.Array:
    """The last layer's pre-activation; ``activations[-1]`` is softmax, applied by the caller."""
    h = x
    for (w, b), name in zip(params[:-1], activations[:-1]):
        h = _HIDDEN[name](h @ w + b)
    w, b = params[-1]
    return h @ w + b


def predict(params: Params, x: jax.Array, activations: Sequence[str]) -> jax.Array:
    return jax.nn.softmax(logits(params, x, activations), axis=-1)


def loss(params: Params, x: jax.Array, y: jax.Array, activations: Sequence[str]) -> jax.Array:
    """Mean softmax cross-entropy of the integer labels ``y``."""
    log_p = jax.nn.log_softmax(logits(params, x, activations), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))


def init_state(params: Params, optimizer: str) -> Any:
    """The optimizer's state: none for SGD; Adam's step count and moments."""
    if optimizer == "sgd":
        return ()
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return (jnp.zeros((), jnp.int32), zeros, jax.tree_util.tree_map(jnp.zeros_like, params))


def update(params: Params, grads: Params, state: Any, optimizer: str, learning_rate: float) -> tuple[Params, Any]:
    if optimizer == "sgd":
        return jax.tree_util.tree_map(lambda p, g: p - learning_rate * g, params, grads), state
    step, m, v = state
    b1, b2, eps = ADAM["beta_1"], ADAM["beta_2"], ADAM["epsilon"]
    t = (step + 1).astype(jnp.float32)
    alpha = learning_rate * jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    m = jax.tree_util.tree_map(lambda m_, g: m_ + (g - m_) * (1.0 - b1), m, grads)
    v = jax.tree_util.tree_map(lambda v_, g: v_ + (g * g - v_) * (1.0 - b2), v, grads)
    params = jax.tree_util.tree_map(lambda p, m_, v_: p - m_ * alpha / (jnp.sqrt(v_) + eps), params, m, v)
    return params, (step + 1, m, v)


def epoch_with_order(
    activations: Sequence[str], batch_size: int, learning_rate: float, optimizer: str
) -> Callable[[Params, Any, jax.Array, jax.Array, jax.Array], tuple[Params, Any]]:
    """``epoch(params, state, x, y, order)``: one step per consecutive ``batch_size`` slice of
    ``order`` (the last may be shorter), each gathering the rows it names (a batch-sized
    gather stays in cache; a shuffled copy of the whole data would not)."""
    grad = jax.grad(loss)

    def step(carry: tuple[Params, Any], idx: jax.Array, x: jax.Array, y: jax.Array) -> tuple[Params, Any]:
        params, state = carry
        return update(params, grad(params, x[idx], y[idx], activations), state, optimizer, learning_rate)

    def epoch(params: Params, state: Any, x: jax.Array, y: jax.Array, order: jax.Array) -> tuple[Params, Any]:
        full = (order.shape[0] // batch_size) * batch_size
        batches = order[:full].reshape(-1, batch_size)
        carry, _ = lax.scan(lambda c, idx: (step(c, idx, x, y), None), (params, state), batches)
        if full < order.shape[0]:  # shapes are static: this is decided at trace time
            carry = step(carry, order[full:], x, y)
        return carry

    return epoch


def epoch_order(key: jax.Array, epoch: jax.Array, n: int) -> jax.Array:
    """The permutation of epoch number ``epoch``."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def shuffled_epoch(
    activations: Sequence[str], batch_size: int, learning_rate: float, optimizer: str
) -> Callable[..., tuple[Params, Any]]:
    """The jitted ``epoch(params, state, x, y, key, epoch)``: ``epoch_with_order`` over
    ``epoch_order(key, epoch, len(x))``, drawn inside the compiled function."""
    body = epoch_with_order(activations, batch_size, learning_rate, optimizer)

    def epoch(params: Params, state: Any, x: jax.Array, y: jax.Array, key: jax.Array, number: jax.Array) -> tuple[Params, Any]:
        return body(params, state, x, y, epoch_order(key, number, x.shape[0]))

    return jax.jit(epoch)
