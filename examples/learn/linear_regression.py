"""Linear regression two ways: ordinary least squares in closed form against gradient descent,
on generated heights (cm) and weights (kg) of 100 people.

    model:     weight = a * height + b,   in matrix form y_hat = X w with X = [height, 1], w = (a, b)
    loss:      J(w) = 1/n sum_i (y_i - x_i . w)^2 = 1/n ||y - X w||^2

Least squares sets the derivative to zero:

    dJ/dw = -2/n X^T (y - X w) = 0     =>     X^T X w = X^T y     (the normal equations)

and solves it (numpy.linalg.lstsq uses the SVD of X: more accurate than inverting X^T X).
Gradient descent walks there instead, w <- w - eta dJ/dw, and its loss falls to the least-squares
loss. It walks fast only when the Hessian 2/n X^T X is well conditioned, which is why the heights
are standardized first, z = (height - mean) / std: the script prints both condition numbers.

    python examples/learn/linear_regression.py [--out DIR]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

import fastmlp as fm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

PEOPLE = 100
LEARNING_RATE = 0.05
EPOCHS = 150


def make_data() -> tuple[np.ndarray, np.ndarray]:
    """Heights around 170 cm and weights that grow by 0.8 kg per cm, with noise (seed 0)."""
    rng = np.random.default_rng(0)
    height = rng.normal(170.0, 10.0, PEOPLE)
    weight = 0.8 * height - 66.0 + rng.normal(0.0, 6.0, PEOPLE)
    return height, weight


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    height, weight = make_data()

    # 1. Least squares: solve X^T X w = X^T y.
    x = np.column_stack([height, np.ones(PEOPLE)])  # X = [height, 1]
    (a, b), *_ = np.linalg.lstsq(x, weight, rcond=None)
    ols_loss = np.mean((weight - x @ (a, b)) ** 2)  # J at the minimum
    print(f"least squares:    weight = {a:.4f} * height {b:+.3f}, MSE {ols_loss:.4f}")

    # 2. Gradient descent with fastmlp: one Dense unit (a * z + b), MSE, one full-batch step per
    # epoch, on the standardized height z.
    mean, std = height.mean(), height.std()
    z = (height - mean) / std
    xz = np.column_stack([z, np.ones(PEOPLE)])  # X with the standardized height
    # The condition number: largest over smallest eigenvalue of the Hessian 2/n X^T X.
    print(f"condition number of the Hessian: {np.linalg.cond(x.T @ x):.3g} with raw heights, "
          f"{np.linalg.cond(xz.T @ xz):.3g} standardized")
    model = fm.Sequential([fm.layers.Input(shape=(1,)), fm.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=LEARNING_RATE), loss="mse")
    lines = []  # (a, b) in kg per cm after some of the steps, to draw
    def keep(epoch: int, logs: Any) -> None:
        if epoch in (0, 2, 5, 10, 20, 40):
            lines.append((epoch + 1, *to_height(model, mean, std)))
    history = model.fit(z[:, None], weight, batch_size=PEOPLE, epochs=EPOCHS, shuffle=False, verbose=0,
                        callbacks=[fm.callbacks.LambdaCallback(on_epoch_end=keep)])
    gd_a, gd_b = to_height(model, mean, std)
    gd_loss = model.evaluate(z[:, None], weight, verbose=0)
    print(f"gradient descent: weight = {gd_a:.4f} * height {gd_b:+.3f}, MSE {gd_loss:.4f} after {EPOCHS} steps (lr {LEARNING_RATE})")

    # 3. fastmlp's own least-squares solver, where this version has it: one step to the minimum.
    if hasattr(fm.optimizers, "LeastSquares"):
        exact = fm.Sequential([fm.layers.Input(shape=(1,)), fm.layers.Dense(1)])
        exact.compile(optimizer=fm.optimizers.LeastSquares(), loss="mse")
        exact.fit(height[:, None], weight, batch_size=PEOPLE, epochs=1, verbose=0)
        kernel, bias = exact.get_weights()
        print(f"LeastSquares():   weight = {kernel[0, 0]:.4f} * height {bias[0]:+.3f} in one step")

    plt = pyplot()
    if plt is not None:
        plot(plt, height, weight, (a, b), lines, history.history["loss"], ols_loss, args.out)
    return 0


def to_height(model: fm.Sequential, mean: float, std: float) -> tuple[float, float]:
    """a * z + b with z = (height - mean) / std, written as a slope and intercept in height."""
    kernel, bias = model.get_weights()
    slope = float(kernel[0, 0]) / std
    return slope, float(bias[0]) - slope * mean


def plot(plt: Any, height: np.ndarray, weight: np.ndarray, ols: tuple[float, float], lines: list[tuple[int, float, float]],
         losses: list[float], ols_loss: float, out: str) -> None:
    figure, (data, curve) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    data.scatter(height, weight, s=8, color="gray")
    span = np.array([height.min(), height.max()])
    for step, slope, intercept in lines:
        data.plot(span, slope * span + intercept, color="tab:blue", alpha=0.25 + 0.12 * len(data.lines), linewidth=1)
        data.annotate(f"step {step}", (span[0], slope * span[0] + intercept), fontsize=7, color="tab:blue")
    data.plot(span, ols[0] * span + ols[1], color="tab:red", linewidth=2, label="least squares")
    data.set(xlabel="height (cm)", ylabel="weight (kg)", title="gradient descent walks to the least-squares line")
    data.legend()
    curve.semilogy(range(EPOCHS), losses, label="gradient descent")
    curve.axhline(ols_loss, color="tab:red", linestyle="--", label=f"least squares, MSE {ols_loss:.2f}")
    curve.set(xlabel="step", ylabel="MSE (log scale)", title=f"learning rate {LEARNING_RATE}")
    curve.legend()
    save(figure, out, "linear_regression.png")


if __name__ == "__main__":
    sys.exit(main())
