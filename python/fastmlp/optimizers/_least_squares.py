"""Linear least squares in closed form, for a model that is one linear Dense layer with MSE."""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ._base import ModelFacts, number
from ._full_batch import Array, FullBatchOptimizer, Objective


class LeastSquares(FullBatchOptimizer):
    """The exact minimizer of a linear model's mean squared error, in one step. For inputs X
    (n x k), targets Y (n x m), sample weights s and kernel W, bias b, it minimizes

        (1 / (n m)) sum_i s_i ||x_i W + b - y_i||^2 + (l2 + kernel_l2) ||W||^2 + bias_l2 ||b||^2

    (the compiled loss plus this optimizer's ridge term ``l2``, Keras's scale: added to the
    mean loss; the bias is not penalized by ``l2``). Solved by ``numpy.linalg.lstsq`` (SVD) on
    the system with rows scaled by ``sqrt(s_i)`` and the ridge rows ``sqrt(n m l2) I`` appended,
    never the normal equations. Any other model (more than one Dense layer, a non-linear
    activation, another loss, an L1 penalty) is a ValueError at ``compile`` (or ``fit``)."""

    name = "least_squares"

    def __init__(self, l2: float = 0.0) -> None:
        super().__init__(1.0)
        self.l2 = number(l2, "l2")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "l2": self.l2}

    def check_model(self, model: ModelFacts) -> None:
        super().check_model(model)
        if len(model.layers) != 1:
            names = ", ".join(repr(name) for name, _ in model.layers)
            raise ValueError(
                "LeastSquares solves a model that is one Dense layer with a linear activation; "
                f"this model has {len(model.layers)} Dense layers ({names})."
            )
        name, layer = model.layers[0]
        if layer.activation != "linear":
            raise ValueError(
                f"LeastSquares needs a linear model, but Dense layer {name!r} has activation="
                f"{layer.activation!r} (use activation=None or 'linear')."
            )
        if model.loss != "mse":
            raise ValueError(
                f"LeastSquares minimizes the mean squared error, but the model is compiled with loss="
                f"{model.loss!r} (use loss='mse')."
            )
        kernel_l1, _, bias_l1, _ = layer.penalties
        if kernel_l1 or bias_l1:
            raise ValueError(
                f"LeastSquares has no closed form with an L1 penalty: Dense layer {name!r} has "
                f"kernel l1={kernel_l1}, bias l1={bias_l1}."
            )

    def _step(self, objective: Objective, w: Array, loss: float, gradient: Array) -> Optional[tuple[Array, float, Array]]:
        engine = objective.engine
        (spec,) = engine.layer_specs
        x = objective.x.astype(np.float64)
        y = objective.y.astype(np.float64).reshape(x.shape[0], -1)
        n, k, m = x.shape[0], x.shape[1], y.shape[1]
        _, kernel_l2, _, bias_l2 = spec.penalties
        columns = [x, np.ones((n, 1))] if spec.use_bias else [x]
        design = np.hstack(columns)
        if objective.sample_weight is not None:
            root = np.sqrt(objective.sample_weight.astype(np.float64))[:, None]
            design, y = design * root, y * root
        # Penalties added to the mean loss become rows sqrt(n m lambda) e_j of the system.
        ridge = [math.sqrt(n * m * (self.l2 + kernel_l2))] * k + ([math.sqrt(n * m * bias_l2)] if spec.use_bias else [])
        rows = [(j, value) for j, value in enumerate(ridge) if value > 0]
        if rows:
            extra = np.zeros((len(rows), design.shape[1]))
            for row, (j, value) in enumerate(rows):
                extra[row, j] = value
            design = np.vstack([design, extra])
            y = np.vstack([y, np.zeros((len(rows), m))])
        solution, _, _, _ = np.linalg.lstsq(design, y, rcond=None)
        flat = np.concatenate([solution[:k].ravel(), solution[k].ravel()] if spec.use_bias else [solution.ravel()])
        loss_new, gradient_new = objective.value_and_gradient(flat)
        self.converged = True
        return flat, loss_new, gradient_new

    def iterate(self, objective: Objective) -> bool:
        super().iterate(objective)
        if objective.num_params:  # else the base class said why nothing moved
            self.converged = True
            self.stop_reason = "solved in closed form"
        return True
