"""Nonlinear conjugate gradient (Polak-Ribiere+), one iteration per epoch."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _validation
from . import _line_search
from ._full_batch import Array, FullBatchOptimizer, Objective


class ConjugateGradient(FullBatchOptimizer):
    """Nonlinear conjugate gradient: ``d = -g + beta d_prev`` with Polak-Ribiere+
    ``beta = max(0, g.(g - g_prev) / g_prev.g_prev)``, restarted as steepest descent
    (``d = -g``) every ``restart_every`` iterations (None: the number of weights P) and whenever
    ``d`` is not a descent direction. The step comes from a secant line search on the slope
    ``g(w + t d).d``, exact on a quadratic loss (at most ``max_eval`` evaluations): on a
    quadratic of P weights this is linear conjugate gradient, which ends in at most P
    iterations (up to rounding)."""

    name = "conjugate_gradient"

    def __init__(
        self,
        learning_rate: float = 1.0,
        restart_every: Optional[int] = None,
        max_eval: int = 25,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        max_fun: int = 15000,
    ) -> None:
        super().__init__(learning_rate, tolerance_grad, tolerance_change, max_fun)
        self.restart_every = None if restart_every is None else _validation.positive_int(restart_every, "restart_every")
        self.max_eval = _validation.positive_int(max_eval, "max_eval")
        # (gradient, direction, step, slope g.d) of the last iteration, and iterations since a restart.
        self._previous: Optional[tuple[Array, Array, float, float]] = None
        self._since_restart = 0

    def _settings(self) -> dict[str, Any]:
        return {"restart_every": self.restart_every, "max_eval": self.max_eval}

    def _reset(self) -> None:
        self._previous = None
        self._since_restart = 0

    def _step(self, objective: Objective, w: Array, loss: float, gradient: Array) -> Optional[tuple[Array, float, Array]]:
        period = self.restart_every if self.restart_every is not None else objective.num_params
        lr = float(self.learning_rate)
        d = -gradient
        t = lr * min(1.0, 1.0 / float(np.sum(np.abs(gradient))))
        previous = self._previous
        if previous is not None and self._since_restart + 1 < period:
            g_prev, d_prev, t_prev, slope_prev = previous
            beta = max(0.0, float(gradient @ (gradient - g_prev)) / float(g_prev @ g_prev))
            candidate = -gradient + beta * d_prev
            slope = float(gradient @ candidate)
            if slope < 0:  # a descent direction: keep it, else restart with -g
                d = candidate
                # The first trial: the last step's change of the loss to first order, again
                # (Nocedal & Wright 3.60).
                t = t_prev * slope_prev / slope
                self._since_restart += 1
            else:
                self._since_restart = 0
        else:
            self._since_restart = 0
        slope = float(gradient @ d)
        accepted, _ = _line_search.secant(lambda step: objective.trial(w + step * d), d, t, loss, gradient, max_eval=self.max_eval)
        if accepted is None:
            if self._since_restart == 0:
                return None
            # The conjugate direction failed: try once more along -g.
            self._previous = None
            return self._step(objective, w, loss, gradient)
        self._previous = (gradient, d, accepted.t, slope)
        return w + accepted.t * d, accepted.loss, accepted.gradient
