"""Choosing the learning rate by grid search and by random search, with ``fm.tuning``.

Each trial trains a fresh model from the same starting weights with one learning rate and keeps
its final loss. The problem is linear regression on three correlated features (MSE, full-batch
gradient descent), because there the answer is known in advance: gradient descent converges
exactly when

    eta < 2 / lambda_max,      lambda_max = the largest eigenvalue of the Hessian 2/n X^T X

(X with a column of ones for the bias). Below that edge the loss falls, faster as eta grows;
above it every step overshoots further and the loss explodes. The plot shows final loss against
learning rate on log axes, with the edge the Hessian predicts.

    python examples/learn/learning_rate_search.py [--out DIR]

To search over another hyper-parameter as well, add it to the grid, e.g.
``{"learning_rate": [...], "momentum": [0.0, 0.9]}``, and take it in ``build_model``.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

import fastmlp as fm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import parse_args, pyplot, save

SAMPLES = 200
EPOCHS = 30
GRID = np.geomspace(1e-3, 3.0, 15).tolist()


def make_data() -> tuple[np.ndarray, np.ndarray]:
    """Three correlated features and a noisy linear target (seed 0)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(SAMPLES, 1))
    x = base + 0.5 * rng.normal(size=(SAMPLES, 3)) + np.array([0.5, -0.3, 0.0])
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.1 * rng.normal(size=SAMPLES)
    return x, y


def build_model(learning_rate: float) -> fm.Sequential:
    """A fresh linear model (y_hat = x . w + b) with the learning rate of this trial."""
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(1)])
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    x, y = make_data()

    # The edge of stability: 2 / largest eigenvalue of the Hessian 2/n X^T X.
    x1 = np.column_stack([x, np.ones(SAMPLES)])
    lambda_max = np.linalg.eigvalsh(2 / SAMPLES * x1.T @ x1).max()
    print(f"largest Hessian eigenvalue {lambda_max:.4f}: gradient descent converges for learning rates below {2 / lambda_max:.4f}")
    if hasattr(fm.Sequential, "compute_hessian"):  # the same Hessian, from fastmlp's core
        hessian = build_model(0.1).compute_hessian(x, y)  # d^2 J / dw_i dw_j for (w, b)
        print(f"largest eigenvalue of model.compute_hessian(x, y): {np.linalg.eigvalsh(hessian).max():.4f}")

    # Every trial: full-batch steps (batch_size = all samples), EPOCHS of them, the same seed.
    grid = fm.tuning.grid_search(build_model, {"learning_rate": GRID}, x, y, epochs=EPOCHS, batch_size=SAMPLES, seed=0)
    random = fm.tuning.random_search(
        build_model, {"learning_rate": fm.tuning.log_uniform(1e-3, 3.0)}, x, y,
        n_trials=10, epochs=EPOCHS, batch_size=SAMPLES, seed=0,
    )
    print(f"start loss {grid.histories[0]['loss'][0]:.4f}")
    for name, result in (("grid", grid), ("random", random)):
        print(f"{name} search: learning rate -> loss after {EPOCHS} steps")
        for params, loss in sorted(zip(result.params, result.losses), key=lambda trial: trial[0]["learning_rate"]):
            print(f"  {params['learning_rate']:10.6f}  {loss:.6g}")
        print(f"  best: learning rate {result.best_params['learning_rate']:.6f}, loss {result.best_loss:.6g}")

    plt = pyplot()
    if plt is not None:
        plot(plt, grid, random, 2 / lambda_max, args.out)
    return 0


def plot(plt: Any, grid: fm.tuning.SearchResult, random: fm.tuning.SearchResult, edge: float, out: str) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5), layout="constrained")
    finite = [loss for loss in grid.losses + random.losses if math.isfinite(loss)]
    ceiling = max(finite) * 10  # diverged trials are drawn here
    for result, style, name in ((grid, "o-", "grid search"), (random, "s", "random search (log-uniform)")):
        rates = [params["learning_rate"] for params in result.params]
        order = np.argsort(rates)
        losses = np.minimum(np.array(result.losses)[order], ceiling)
        axes.plot(np.array(rates)[order], losses, style, label=name, alpha=0.8)
    axes.axvline(edge, color="gray", linestyle="--", label=f"2 / largest Hessian eigenvalue = {edge:.3f}")
    axes.set(xscale="log", yscale="log", xlabel="learning rate", ylabel=f"training loss after {EPOCHS} steps",
             title="diverged trials are drawn at the top")
    axes.legend(fontsize=8)
    save(figure, out, "learning_rate_search.png")


if __name__ == "__main__":
    sys.exit(main())
