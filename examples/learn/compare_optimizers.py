"""Nine optimizers on one problem, the two moons: loss against iterations and against time, and
the decision boundary each one reaches.

The network is 2-16-1 (tanh, then a sigmoid output with binary cross-entropy); every optimizer
starts from the same weights (the same seed). What each one does with the gradient g = dJ/dw:

    gradient descent    w <- w - eta g                               g of the whole training set
    SGD, minibatch      the same, g of one sample or of a batch of 16: many cheap, noisy steps
    momentum            v <- mu v - eta g,  w <- w + v                remembers the direction
    Adagrad             s <- s + g^2,  w <- w - eta g / sqrt(s)       a rate per weight, shrinking
    Adam                m, v: running means of g and g^2;  w <- w - eta m_hat / (sqrt(v_hat) + eps)
    Newton              w <- w - H^-1 g                               H: the Hessian, second derivatives
    conjugate gradient  each direction conjugate to the last:  d <- -g + beta d, a line search along d
    L-BFGS              H^-1 g estimated from the last 10 steps' changes of w and g, a line search

One epoch is one pass over the data: one step for the full-batch methods (GD, momentum, Adagrad
and Adam here, Newton, CG, L-BFGS), 200 steps for SGD, 13 for the minibatches. Newton, CG and
L-BFGS stop early once they have converged (their gradient is all but zero). Per iteration the
second-order methods win by far; per second the gap is smaller (a Newton step solves a system
with the 65 x 65 Hessian). Their near-zero training loss is bought with a boundary that bends
around single points: on new data a smoother one would do better.

    python examples/learn/compare_optimizers.py [--out DIR]
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional

import numpy as np

import fastmlp as fm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

SAMPLES = 200
EPOCHS = 100

# name: (the optimizer, batch size); None for the whole training set.
OPTIMIZERS: dict[str, tuple[Callable[[], Any], Optional[int]]] = {
    "gradient descent": (lambda: fm.optimizers.SGD(learning_rate=0.5), None),
    "SGD (batch 1)": (lambda: fm.optimizers.SGD(learning_rate=0.05), 1),
    "minibatch (16)": (lambda: fm.optimizers.SGD(learning_rate=0.2), 16),
    "momentum 0.9": (lambda: fm.optimizers.SGD(learning_rate=0.1, momentum=0.9), None),
    "Adagrad": (lambda: fm.optimizers.Adagrad(learning_rate=0.1), None),
    "Adam": (lambda: fm.optimizers.Adam(learning_rate=0.02), None),
    "Newton": (lambda: fm.optimizers.Newton(damping=0.0), None),
    "conjugate gradient": (lambda: fm.optimizers.ConjugateGradient(), None),
    "L-BFGS": (lambda: fm.optimizers.LBFGS(history=10), None),
}


def two_moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's make_moons), in NumPy."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, math.pi, n)
    label = np.arange(n) % 2  # half of each class
    x = np.where(
        label[:, None] == 0,
        np.stack([np.cos(angle), np.sin(angle)], axis=1),  # the upper moon
        np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1),  # the lower one, shifted
    )
    return x + rng.normal(scale=noise, size=x.shape), label.astype(np.float64)


def train(name: str, x: np.ndarray, y: np.ndarray) -> Optional[tuple[fm.Sequential, list[float], list[float]]]:
    """The model trained by one optimizer, its loss after each epoch and the seconds to reach it."""
    make_optimizer, batch_size = OPTIMIZERS[name]
    try:
        optimizer = make_optimizer()
    except AttributeError as error:  # the second-order optimizers of a newer fastmlp
        print(f"{name:>20}: skipped ({error})")
        return None
    fm.utils.set_random_seed(0)  # the same starting weights and shuffles for every optimizer
    model = fm.Sequential([
        fm.layers.Input(shape=(2,)),
        fm.layers.Dense(16, activation="tanh"),
        fm.layers.Dense(1, activation="sigmoid"),
    ], dtype="float64")  # float64: the line searches of CG and L-BFGS need the digits
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    start, seconds = time.perf_counter(), []
    clock = fm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seconds.append(time.perf_counter() - start))
    history = model.fit(x, y, batch_size=batch_size or len(x), epochs=EPOCHS, verbose=0, callbacks=[clock])
    return model, history.history["loss"], seconds


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    x, y = two_moons(SAMPLES, noise=0.15, seed=0)
    print(f"two moons, {SAMPLES} samples; a constant guess of 1/2 has loss log 2 = {math.log(2):.4f}")
    print(f"at most {EPOCHS} epochs each")
    print(f"{'optimizer':>20}  final loss  epochs  accuracy  seconds")
    results = {}
    for name in OPTIMIZERS:
        trained = train(name, x, y)
        if trained is None:
            continue
        model, _, seconds = trained
        loss, accuracy = model.evaluate(x, y, verbose=0)
        print(f"{name:>20}  {loss:10.4f}  {len(seconds):6d}  {accuracy:8.3f}  {seconds[-1]:7.3f}")
        results[name] = trained

    plt = pyplot()
    if plt is not None:
        plot(plt, x, y, results, args.out)
    return 0


def plot(plt: Any, x: np.ndarray, y: np.ndarray, results: dict[str, Any], out: str) -> None:
    figure = plt.figure(figsize=(12, 13), layout="constrained")
    curves, boundaries = figure.subfigures(2, 1, height_ratios=[1, 2.2])
    by_epoch, by_time = curves.subplots(1, 2)
    for name, (_, losses, seconds) in results.items():
        by_epoch.semilogy(range(1, len(losses) + 1), losses, label=name)
        by_time.semilogy(seconds, losses, label=name)
    by_epoch.set(xlabel="epoch (one iteration for the full-batch methods)", ylabel="training loss")
    by_time.set(xlabel="seconds", ylabel="training loss", xscale="log")
    by_epoch.legend(fontsize=8)
    grid = np.stack(np.meshgrid(np.linspace(-1.5, 2.5, 150), np.linspace(-1, 1.5, 150)), axis=-1).reshape(-1, 2)
    axes = boundaries.subplots(3, 3, sharex=True, sharey=True).ravel()
    for ax, (name, (model, losses, _)) in zip(axes, results.items()):
        probability = model.predict(grid, verbose=0).reshape(150, 150)
        ax.contourf(grid[:, 0].reshape(150, 150), grid[:, 1].reshape(150, 150), probability, levels=[0, 0.5, 1], colors=["#cde", "#fdc"])
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=6)
        ax.set_title(f"{name}: loss {losses[-1]:.3f}", fontsize=9)
    for ax in axes[len(results):]:
        ax.axis("off")
    save(figure, out, "compare_optimizers.png")


if __name__ == "__main__":
    sys.exit(main())
