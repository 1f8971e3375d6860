"""Mean squared error and gradient descent in matrix form, by hand in NumPy against fastmlp's core
and fastmlp.reference.

A whole batch at once: the n samples are the rows of X (n x d), the targets the rows of Y (n x m).

    linear layer:   Y_hat = X W + 1 b^T                      E = Y_hat - Y
    loss:           J = 1/(n m) sum_ij E_ij^2                 (the mean over samples and outputs)
    gradients:      dJ/dW = 2/(n m) X^T E,   dJ/db = 2/(n m) E^T 1

    a hidden layer: Z1 = X W1 + b1,  A1 = sigmoid(Z1),  Y_hat = A1 W2 + b2
    backpropagation:
                    D2 = 2/(n m) (Y_hat - Y)                  dJ/dZ2
                    dJ/dW2 = A1^T D2,   dJ/db2 = column sums of D2
                    D1 = (D2 W2^T) * A1 * (1 - A1)            dJ/dZ1 (elementwise *: sigmoid')
                    dJ/dW1 = X^T D1,    dJ/db1 = column sums of D1

    gradient descent:  W <- W - eta dJ/dW   (every weight, every step, the whole batch)

The script prints the largest difference between each pair, and plots the loss of gradient descent
by hand and by fastmlp (float32 and float64): the curves lie on top of each other.

    python examples/learn/matrix_form.py [--out DIR]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Optional

import numpy as np

import fastmlp as fm
from fastmlp import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

N, D, HIDDEN, M = 8, 3, 4, 2  # samples, inputs, hidden units, outputs
LEARNING_RATE = 0.5
STEPS = 200


def make_data() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """X (n x d), Y (n x m) and the starting weights [W1, b1, W2, b2], all from seed 0."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    y = np.stack([np.sin(x[:, 0]) + x[:, 1], x[:, 2] ** 2 - 0.5], axis=1)
    weights = [rng.normal(scale=0.5, size=(D, HIDDEN)), np.zeros(HIDDEN), rng.normal(scale=0.5, size=(HIDDEN, M)), np.zeros(M)]
    return x, y, weights


def linear_gradients(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    n, m = y.shape
    e = x @ w + b - y  # E = X W + 1 b^T - Y
    loss = np.sum(e**2) / (n * m)  # J = 1/(n m) sum E_ij^2
    return loss, 2 / (n * m) * x.T @ e, 2 / (n * m) * e.sum(axis=0)  # 2/(n m) X^T E, 2/(n m) E^T 1


def network_gradients(x: np.ndarray, y: np.ndarray, weights: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    w1, b1, w2, b2 = weights
    n, m = y.shape
    a1 = 1 / (1 + np.exp(-(x @ w1 + b1)))  # A1 = sigmoid(X W1 + b1)
    y_hat = a1 @ w2 + b2  # Y_hat = A1 W2 + b2
    loss = np.sum((y_hat - y) ** 2) / (n * m)
    d2 = 2 / (n * m) * (y_hat - y)  # D2 = dJ/dZ2
    d1 = (d2 @ w2.T) * a1 * (1 - a1)  # D1 = (D2 W2^T) * sigmoid'(Z1)
    return loss, [x.T @ d1, d1.sum(axis=0), a1.T @ d2, d2.sum(axis=0)]


def network(dtype: str, weights: list[np.ndarray]) -> fm.Sequential:
    model = fm.Sequential(
        [fm.layers.Input(shape=(D,)), fm.layers.Dense(HIDDEN, activation="sigmoid"), fm.layers.Dense(M)], dtype=dtype
    )
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
    model.set_weights(weights)
    return model


def largest_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(p, dtype=np.float64) - q))) for p, q in zip(a, b))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    x, y, weights = make_data()

    # 1. One linear layer: the gradient formula by hand against the core.
    fm.utils.set_random_seed(0)  # the layer's starting weights
    linear = fm.Sequential([fm.layers.Input(shape=(D,)), fm.layers.Dense(M)], dtype="float64")
    linear.compile(optimizer="sgd", loss="mse")
    w, b = linear.get_weights()
    loss, dw, db = linear_gradients(x, y, w, b)
    [(core_dw, core_db)] = linear.compute_gradients(x, y)
    print(f"linear layer: loss {loss:.6f}; max |hand - fastmlp| of dJ/dW, dJ/db: {largest_difference([dw, db], [core_dw, core_db]):.1e}")

    # 2. A hidden layer: backpropagation in matrix form against the core and the reference.
    loss, hand = network_gradients(x, y, weights)
    core = [g for pair in network("float64", weights).compute_gradients(x, y) for g in pair]
    ref_loss, ref_grads = reference.gradients(x, y, reference.unflatten_params(weights, [(w, b), (w, b)]), ["sigmoid", "linear"], "mse")
    print(f"network {D}-{HIDDEN}-{M}: loss {loss:.6f} (reference {ref_loss:.6f})")
    print(f"  max |hand - fastmlp float64| of the gradients: {largest_difference(hand, core):.1e}")
    print(f"  max |hand - reference| of the gradients:       {largest_difference(hand, reference.flatten_params(ref_grads)):.1e}")

    # 3. Gradient descent, STEPS full-batch steps: by hand, and by fit() in float64 and float32.
    current, hand_losses = [p.copy() for p in weights], []
    for _ in range(STEPS):
        step_loss, grads = network_gradients(x, y, current)
        hand_losses.append(step_loss)
        current = [p - LEARNING_RATE * g for p, g in zip(current, grads)]  # W <- W - eta dJ/dW
    fitted = {}
    for dtype in ("float64", "float32"):
        model = network(dtype, weights)
        history = model.fit(x, y, batch_size=N, epochs=STEPS, shuffle=False, verbose=0)
        fitted[dtype] = history.history["loss"]
        print(f"after {STEPS} steps: loss {hand_losses[-1]:.6f} by hand; max |hand - fastmlp {dtype}| of the weights: "
              f"{largest_difference(model.get_weights(), current):.1e}")

    plt = pyplot()
    if plt is not None:
        figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
        axes.semilogy(hand_losses, linewidth=4, alpha=0.4, label="by hand (NumPy, float64)")
        for dtype, losses in fitted.items():
            axes.semilogy(losses, "--", label=f"fastmlp fit, {dtype}")
        axes.set(xlabel="gradient descent step", ylabel="MSE", title=f"{D}-{HIDDEN}-{M} network, learning rate {LEARNING_RATE}")
        axes.legend()
        save(figure, args.out, "matrix_form.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
