"""The sales forecast of the teaching texts: two weights, gradient descent, a held-out check.

    sales = w1 * ad_spend + w2 * price          (one Dense unit, no bias)

               ad spend   price   sales
    January       20        5        5
    February      30        4       18

Starting from w = (2, -2), gradient descent on the mean squared error walks to w = (1, -3),
where both months are predicted exactly. The script prints the text's hand-made first step next
to fastmlp's, the weights it converges to and the error on two held-out months (3.5), and draws
the loss surface of the two weights with the path gradient descent took.

    python examples/learn/sales_forecast.py [--out DIR]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Optional

import numpy as np

import fastmlp as fm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

X = np.array([[20.0, 5.0], [30.0, 4.0]])  # January, February: ad spend, price
Y = np.array([5.0, 18.0])  # their sales
HELD_OUT_X = np.array([[40.0, 4.0], [30.0, 3.0]])  # March, April
HELD_OUT_Y = np.array([24.0, 18.0])
START = np.array([2.0, -2.0])
LEARNING_RATE = 0.0014  # just below 2 / (largest eigenvalue of the Hessian) = 0.001496: stable
EPOCHS = 3000


def mse(w: np.ndarray) -> float:
    """J(w) = 1/n * sum_i (x_i . w - y_i)^2"""
    return float(np.mean((X @ w - Y) ** 2))


def hand_step(w: np.ndarray, learning_rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The text's update, by hand: prediction, gradient, new weights."""
    prediction = X @ w  # y_hat = X w
    gradient = 2 / len(Y) * X.T @ (prediction - Y)  # dJ/dw = 2/n X^T (y_hat - y)
    return prediction, gradient, w - learning_rate * gradient  # w <- w - eta dJ/dw


def sales_model(learning_rate: float) -> fm.Sequential:
    model = fm.Sequential([fm.layers.Input(shape=(2,)), fm.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    model.set_weights([START.reshape(2, 1)])
    return model


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)

    # 1. The first step by hand (learning rate 0.001, as in the text) and by fastmlp.
    prediction, gradient, stepped = hand_step(START, 0.001)
    print(f"w = {START}: predictions {prediction}, loss {mse(START):.1f}")
    print(f"by hand:  gradient {gradient}, after one step (lr 0.001) w = {stepped}")
    model = sales_model(0.001)
    [(dkernel, _)] = model.compute_gradients(X, Y)
    model.train_on_batch(X, Y)
    print(f"fastmlp:  gradient {dkernel[:, 0]}, after one step (lr 0.001) w = {model.get_weights()[0][:, 0]}")

    # 2. Gradient descent to the end, one full-batch step per epoch, keeping the path.
    model = sales_model(LEARNING_RATE)
    path = [START]
    keep = fm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: path.append(model.get_weights()[0][:, 0]))
    history = model.fit(X, Y, batch_size=2, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[keep])
    w = model.get_weights()[0][:, 0]
    print(f"after {EPOCHS} steps (lr {LEARNING_RATE}): w = ({w[0]:.4f}, {w[1]:.4f}), loss {history.history['loss'][-1]:.2e}")

    # 3. Months the model never saw: predictions 28 and 21 against 24 and 18.
    held_out = model.predict(HELD_OUT_X, verbose=0)[:, 0]
    _, mae = model.evaluate(HELD_OUT_X, HELD_OUT_Y, verbose=0)  # mae = 1/n sum |y_hat - y|
    print(f"held out: predictions ({held_out[0]:.2f}, {held_out[1]:.2f}), actual {HELD_OUT_Y}, mae {mae:.2f}")

    plt = pyplot()
    if plt is not None:
        plot(plt, np.array(path), stepped, history.history["loss"], args.out)
    return 0


def plot(plt, path: np.ndarray, hand: np.ndarray, losses: list[float], out: str) -> None:
    figure, (surface, curve) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    w1, w2 = np.meshgrid(np.linspace(-0.4, 2.4, 300), np.linspace(-3.6, -1.6, 300))
    # J(w1, w2) on the grid: every (w1, w2) at once.
    grid_loss = np.mean((w1[..., None] * X[:, 0] + w2[..., None] * X[:, 1] - Y) ** 2, axis=-1)
    surface.contour(w1, w2, grid_loss, levels=np.geomspace(0.01, 5000, 24), cmap="viridis", linewidths=0.8)
    surface.plot(path[:, 0], path[:, 1], ".-", color="tab:red", markersize=2, linewidth=0.6, label="gradient descent")
    surface.annotate("", xy=hand, xytext=START, arrowprops={"arrowstyle": "->", "color": "black"})
    surface.plot(*hand, "ko", markersize=4, label=f"first step by hand, lr 0.001: ({hand[0]:.2f}, {hand[1]:.3f})")
    surface.plot(1, -3, "*", color="gold", markeredgecolor="black", markersize=14, label="minimum (1, -3)")
    surface.set(xlabel="w1 (ad spend)", ylabel="w2 (price)", title="MSE of the two weights")
    surface.legend(fontsize=8, loc="lower left")
    curve.semilogy(losses)
    curve.set(xlabel="step", ylabel="MSE (log scale)", title=f"loss, learning rate {LEARNING_RATE} (float32 stops near 1e-9)")
    save(figure, out, "sales_forecast.png")


if __name__ == "__main__":
    sys.exit(main())
