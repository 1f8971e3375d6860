"""L-BFGS: quasi-Newton steps from the last ``history`` changes of weights and gradient."""

from __future__ import annotations

from collections import deque
from typing import Any, Optional, Union

import numpy as np

from .. import _validation
from . import _line_search
from ._full_batch import Array, FullBatchOptimizer, Objective

# A curvature pair is kept only when y.s exceeds this (PyTorch's threshold): it keeps the
# implied inverse Hessian positive definite, so every direction is a descent direction.
_MIN_CURVATURE = 1e-10


class LBFGS(FullBatchOptimizer):
    """Limited-memory BFGS, one iteration per epoch, as ``torch.optim.LBFGS(line_search_fn=
    "strong_wolfe")`` takes one inner iteration: the direction ``d = -H g`` from the two-loop
    recursion over the last ``history`` pairs ``(s, y) = (w change, gradient change)`` with
    ``H0 = (s.y / y.y) I``, then a strong-Wolfe line search (at most ``max_eval`` evaluations,
    first trial ``learning_rate``; ``learning_rate * min(1, 1/|g|_1)`` on the first iteration).
    ``tolerance_grad``, ``tolerance_change`` as PyTorch's; ``max_fun`` as scikit-learn's."""

    name = "lbfgs"
    # The stop_reason of PyTorch's exit on a direction along which the loss barely changes.
    SLOPE_STOP = "the slope along the search direction is above -tolerance_change"

    def __init__(
        self,
        learning_rate: float = 1.0,
        history: int = 10,
        max_eval: int = 25,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        max_fun: int = 15000,
    ) -> None:
        super().__init__(learning_rate, tolerance_grad, tolerance_change, max_fun)
        self.history = _validation.positive_int(history, "history")
        self.max_eval = _validation.positive_int(max_eval, "max_eval")
        self._pairs: deque[tuple[Array, Array, float]] = deque(maxlen=self.history)  # (s, y, 1 / y.s)
        self._scale = 1.0  # H0 = scale * I
        self._previous: Optional[tuple[Array, Array]] = None  # (w, gradient) before the last step

    def _settings(self) -> dict[str, Any]:
        return {"history": self.history, "max_eval": self.max_eval}

    def _reset(self) -> None:
        self._pairs.clear()
        self._scale = 1.0
        self._previous = None

    def direction(self, gradient: Array) -> Array:
        """``-H g`` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4)."""
        q = -gradient
        alphas = []
        for s, y, rho in reversed(self._pairs):
            alpha = rho * float(s @ q)
            q -= alpha * y
            alphas.append(alpha)
        r = self._scale * q
        for (s, y, rho), alpha in zip(self._pairs, reversed(alphas)):
            beta = rho * float(y @ r)
            r += (alpha - beta) * s
        return r

    def _step(self, objective: Objective, w: Array, loss: float, gradient: Array) -> Union[tuple[Array, float, Array], str, None]:
        first = self._previous is None
        if self._previous is not None:
            s = w - self._previous[0]
            y = gradient - self._previous[1]
            ys = float(y @ s)
            if ys > _MIN_CURVATURE:
                self._pairs.append((s, y, 1.0 / ys))
                self._scale = ys / float(y @ y)
        d = self.direction(gradient)
        lr = float(self.learning_rate)
        t = lr * min(1.0, 1.0 / float(np.sum(np.abs(gradient)))) if first else lr
        if float(gradient @ d) > -self.tolerance_change:  # PyTorch's test: the loss would barely change
            return self.SLOPE_STOP
        accepted, _ = _line_search.strong_wolfe(
            lambda step: objective.trial(w + step * d),
            d,
            t,
            loss,
            gradient,
            tolerance_change=self.tolerance_change,
            max_eval=self.max_eval,
        )
        if accepted is None:
            return None
        self._previous = (w, gradient)
        return w + accepted.t * d, accepted.loss, accepted.gradient
