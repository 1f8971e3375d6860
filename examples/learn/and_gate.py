"""One training step of the AND-gate perceptron, three ways: by hand, by fastmlp, by the reference.

    z = w . x + b,   p = sigmoid(z),   L = -(y log p + (1 - y) log(1 - p))     (binary cross-entropy)

with w = (0.1, -0.12), b = 0, the input x = (1, 0) and its target y = 0. The chain rule gives

    dL/dz = dL/dp * dp/dz = (p - y) / (p (1 - p)) * p (1 - p) = p - y = 0.524979

The teaching text used 0.249 instead: that is sigmoid'(0.1) = p (1 - p), the slope of the OUTPUT,
not of the loss; it leaves out dL/dp = 1 / (1 - p) = 2.105, and 0.249 * 2.105 = 0.525. The script
prints all of these, the step each gradient takes, and draws both slopes.

    python examples/learn/and_gate.py [--out DIR]
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Optional

import numpy as np

import fastmlp as fm
from fastmlp import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

W = np.array([0.1, -0.12])
B = 0.0
X = np.array([1.0, 0.0])
Y = 0.0
LEARNING_RATE = 1.0


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))  # sigma(z) = 1 / (1 + e^-z)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)

    # 1. By hand.
    z = float(W @ X + B)  # z = w . x + b
    p = sigmoid(z)  # p = sigma(z)
    loss = -(Y * math.log(p) + (1 - Y) * math.log(1 - p))  # binary cross-entropy
    dp_dz = p * (1 - p)  # sigma'(z) = sigma(z) (1 - sigma(z)): the text's 0.249
    dL_dp = -Y / p + (1 - Y) / (1 - p)  # derivative of the log terms
    dL_dz = dL_dp * dp_dz  # chain rule; simplifies to p - y
    grad_w, grad_b = dL_dz * X, dL_dz  # dz/dw = x, dz/db = 1
    new_w, new_b = W - LEARNING_RATE * grad_w, B - LEARNING_RATE * grad_b  # w <- w - eta dL/dw
    new_p = sigmoid(float(new_w @ X + new_b))
    print(f"by hand:   z = {z:.6f}, p = sigmoid(z) = {p:.6f}, loss = {loss:.6f}")
    print(f"           sigmoid'(z) = p(1 - p) = {dp_dz:.6f}   (the text's 0.249: the slope of p, not of L)")
    print(f"           dL/dp = 1/(1 - p) = {dL_dp:.6f};  dL/dz = dL/dp * sigmoid'(z) = {dL_dz:.6f} = p - y")
    print(f"           dL/dw = ({grad_w[0]:.6f}, {grad_w[1]:.6f}), dL/db = {grad_b:.6f}")
    print(f"           after one step (lr 1): w = ({new_w[0]:.6f}, {new_w[1]:.6f}), b = {new_b:.6f}, p = {new_p:.6f}")

    # 2. By fastmlp's core (float64, to compare digits with the hand calculation).
    model = fm.Sequential([fm.layers.Input(shape=(2,)), fm.layers.Dense(1, activation="sigmoid")], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    model.set_weights([W.reshape(2, 1), np.array([B])])
    [(dkernel, dbias)] = model.compute_gradients(X[None, :], np.array([[Y]]))
    model.train_on_batch(X[None, :], np.array([[Y]]))
    kernel, bias = model.get_weights()
    core_p = model.predict(X[None, :], verbose=0)[0, 0]
    print(f"fastmlp:   dL/dw = ({dkernel[0, 0]:.6f}, {dkernel[1, 0]:.6f}), dL/db = {dbias[0]:.6f}")
    print(f"           after one step (lr 1): w = ({kernel[0, 0]:.6f}, {kernel[1, 0]:.6f}), b = {bias[0]:.6f}, p = {core_p:.6f}")

    # 3. By fastmlp.reference: the same backpropagation in plain NumPy.
    params = [(W.reshape(2, 1), np.array([B]))]
    ref_loss, [(ref_dkernel, ref_dbias)] = reference.gradients(
        X[None, :], np.array([[Y]]), params, ["sigmoid"], "binary_crossentropy"
    )
    assert ref_dbias is not None
    print(f"reference: loss = {ref_loss:.6f}, dL/dw = ({ref_dkernel[0, 0]:.6f}, {ref_dkernel[1, 0]:.6f}), dL/db = {ref_dbias[0]:.6f}")

    # 4. The text's step with 0.249 in place of the gradient: half the distance.
    text_w1, text_b = W[0] - LEARNING_RATE * dp_dz, B - LEARNING_RATE * dp_dz
    text_p = sigmoid(text_w1 * X[0] + text_b)
    print(f"the text:  with 0.249, w1 = {text_w1:.3f}, b = {text_b:.3f}, p = {text_p:.3f}  (the right step gives {new_p:.3f})")

    plt = pyplot()
    if plt is not None:
        plot(plt, z, p, dp_dz, dL_dz, new_p, text_p, args.out)
    return 0


def plot(plt, z0: float, p0: float, slope_p: float, slope_loss: float, new_p: float, text_p: float, out: str) -> None:
    figure, (slopes, outputs) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    z = np.linspace(-3, 3, 200)
    p = 1 / (1 + np.exp(-z))
    slopes.plot(z, p, color="tab:blue", label="output p = sigmoid(z)")
    slopes.plot(z, -np.log(1 - p), color="tab:red", label="loss L = -log(1 - p)   (y = 0)")
    near = np.linspace(z0 - 1.2, z0 + 1.2, 2)
    loss0 = -math.log(1 - p0)
    slopes.plot(near, p0 + slope_p * (near - z0), "--", color="tab:blue", label=f"slope of p: {slope_p:.3f} (the text)")
    slopes.plot(near, loss0 + slope_loss * (near - z0), "--", color="tab:red", label=f"slope of L: {slope_loss:.3f} = p - y")
    slopes.plot([z0, z0], [p0, loss0], "ko", markersize=4)
    slopes.set(xlabel="z", ylim=(-0.2, 3), title="at z = 0.1: two slopes")
    slopes.legend(fontsize=8)
    outputs.bar(["before", "text's step\n(0.249)", "true gradient\n(0.525)"], [p0, text_p, new_p],
                color=["gray", "tab:blue", "tab:red"])
    for i, value in enumerate([p0, text_p, new_p]):
        outputs.text(i, value + 0.01, f"{value:.3f}", ha="center")
    outputs.set(ylabel="output p for x = (1, 0), target 0", ylim=(0, 0.62), title="one step with learning rate 1")
    save(figure, out, "and_gate.png")


if __name__ == "__main__":
    sys.exit(main())
