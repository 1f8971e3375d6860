"""Newton's method: the step solves ``(H + damping I) d = -g`` with the exact Hessian."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from ._base import ModelFacts, number
from ._full_batch import Array, FullBatchOptimizer, Objective

# Newton forms the (P, P) Hessian and factors it (P^3 / 3 operations): beyond this many weights
# the matrix alone is 3.2 GB and one factorization minutes of work.
MAX_PARAMS = 20_000
# P x P float64 matrices alive at once in a step: the Hessian (shifted in place), its Cholesky
# factor, and the copy LAPACK factors in (NumPy's cholesky works on a copy of its input).
_MATRICES_AT_ONCE = 3
# Rows of a block in the triangular solves (each block: one small solve and one product).
_SOLVE_BLOCK = 256
# Halvings of the step before the line search gives up (the step is then 2^-40 of Newton's).
_MAX_HALVINGS = 40
# Increases of the added multiple of I before the fallback gives up; the multiple doubles each
# time from a start of 1e-3 times the mean |diagonal|, so it passes any finite ||H|| long before.
_MAX_SHIFTS = 200


def solve_lower(lower: Array, rhs: Array, transposed: bool = False) -> Array:
    """``lower^-1 rhs`` (or ``lower^-T rhs``) for a lower-triangular ``lower``, by blocks of
    rows: forward (or back) substitution whose blocks are small dense solves. Works on views
    of ``lower``: no P x P copy."""
    n = lower.shape[0]
    x = np.array(rhs, dtype=np.float64)
    starts = list(range(0, n, _SOLVE_BLOCK))
    for i0 in reversed(starts) if transposed else starts:
        i1 = min(i0 + _SOLVE_BLOCK, n)
        if transposed:  # rows i0..i1 of L^T x = b: L[i1:, i0:i1]^T x[i1:] is known
            if i1 < n:
                x[i0:i1] -= lower[i1:, i0:i1].T @ x[i1:]
            x[i0:i1] = np.linalg.solve(lower[i0:i1, i0:i1].T, x[i0:i1])
        else:
            if i0:
                x[i0:i1] -= lower[i0:i1, :i0] @ x[:i0]
            x[i0:i1] = np.linalg.solve(lower[i0:i1, i0:i1], x[i0:i1])
    return x


def cholesky_solve(matrix: Array, rhs: Array) -> Optional[Array]:
    """``matrix^-1 rhs`` by Cholesky, or None when ``matrix`` is not numerically positive
    definite: the factorization fails, or its pivots span more than 1 / (P eps) (singular up to
    rounding, where the solution would be noise of any size)."""
    try:
        lower = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None
    pivots = np.abs(np.diag(lower))
    if pivots.size and pivots.min() ** 2 <= pivots.max() ** 2 * matrix.shape[0] * np.finfo(np.float64).eps:
        return None
    return solve_lower(lower, solve_lower(lower, rhs), transposed=True)


def shifted_solve(matrix: Array, rhs: Array) -> tuple[Array, float]:
    """``(matrix + tau I)^-1 rhs`` for the smallest tau of the doubling sequence that makes the
    system positive definite (Nocedal & Wright, Algorithm 3.3: Cholesky with added multiple of
    the identity), and that tau. Shifts ``matrix``'s diagonal in place (it ends as
    ``matrix + tau I``): no second P x P matrix."""
    diagonal = np.diag(matrix).copy()
    base = 1e-3 * max(float(np.mean(np.abs(diagonal))), 1e-12)
    tau = 0.0 if diagonal.min() > 0 else base - float(diagonal.min())
    on_diagonal = np.diag_indices_from(matrix)
    for _ in range(_MAX_SHIFTS):
        matrix[on_diagonal] = diagonal + tau
        solution = cholesky_solve(matrix, rhs)
        if solution is not None:
            return solution, tau
        tau = max(2.0 * tau, base)
    raise ValueError(
        "Newton could not make the Hessian positive definite by adding a multiple of the identity "
        f"(last tried {tau:.3g}); pass damping > 0."
    )


class Newton(FullBatchOptimizer):
    """Newton's method, one step per epoch: ``d`` solves ``(H + damping I) d = -g`` by Cholesky,
    with ``H`` the exact Hessian of the loss (``model.compute_hessian``). When that matrix is not
    positive definite (a saddle, a singular system), ``damping`` is raised for this step by the
    doubling rule of Nocedal & Wright's Algorithm 3.3 until it is: the step then leans towards
    gradient descent. ``w += t d`` with ``t = learning_rate``, halved while the loss does not drop
    by ``1e-4 t g.d`` (Armijo) when ``line_search``. At most 20,000 weights (the Hessian is
    P x P float64)."""

    name = "newton"

    def __init__(
        self,
        learning_rate: float = 1.0,
        damping: float = 0.0,
        line_search: bool = True,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        max_fun: int = 15000,
    ) -> None:
        super().__init__(learning_rate, tolerance_grad, tolerance_change, max_fun)
        self.damping = number(damping, "damping")
        if not isinstance(line_search, (bool, np.bool_)):
            raise TypeError(f"`line_search` must be True or False. Received: line_search={line_search!r}")
        self.line_search = bool(line_search)
        self.last_shift = 0.0  # the multiple of I the last step added beyond `damping`

    def _settings(self) -> dict[str, Any]:
        return {"damping": self.damping, "line_search": self.line_search}

    def check_model(self, model: ModelFacts) -> None:
        super().check_model(model)
        _check_hessian_size(type(self).__name__, model.num_params)

    def _step(self, objective: Objective, w: Array, loss: float, gradient: Array) -> Optional[tuple[Array, float, Array]]:
        system = objective.hessian(w)  # this step's own array: damped in place
        system[np.diag_indices_from(system)] += self.damping
        d = cholesky_solve(system, -gradient)
        self.last_shift = 0.0
        if d is None:
            d, self.last_shift = shifted_solve(system, -gradient)
        t = float(self.learning_rate)
        slope = float(gradient @ d)
        if not self.line_search:
            loss_new, gradient_new = objective.value_and_gradient(w + t * d)
            return w + t * d, loss_new, gradient_new
        for _ in range(_MAX_HALVINGS):
            loss_new, gradient_new = objective.trial(w + t * d)
            if loss_new <= loss + 1e-4 * t * slope and loss_new < loss:
                return w + t * d, loss_new, gradient_new
            t *= 0.5
        return None


def _physical_memory() -> int:
    """The machine's memory in bytes, or 0 where the system does not say (only the cap on P
    applies there)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0


def _check_hessian_size(optimizer: str, num_params: int) -> None:
    if num_params > MAX_PARAMS:
        raise ValueError(
            f"{optimizer} forms the model's Hessian, a (P, P) float64 matrix: P={num_params:,} weights "
            f"need {8 * num_params * num_params:,} bytes, and {optimizer} takes at most P={MAX_PARAMS:,}. "
            "Use LBFGS or ConjugateGradient, which need O(P) memory."
        )
    needed, memory = _MATRICES_AT_ONCE * 8 * num_params * num_params, _physical_memory()
    if memory and needed > memory:
        raise ValueError(
            f"{optimizer} holds {_MATRICES_AT_ONCE} (P, P) float64 matrices at once (the Hessian, its "
            f"Cholesky factor and LAPACK's copy): P={num_params:,} weights need {needed:,} bytes, more "
            f"than this machine's {memory:,}. Use LBFGS or ConjugateGradient, which need O(P) memory."
        )
