"""Line searches along a direction ``d`` from weights ``w``: each looks at ``phi(t) = J(w + t d)``
and returns an accepted step ``t`` with the loss and gradient there, or None when no step lowers
the loss. Every loop is bounded by ``max_eval`` evaluations of the loss and gradient.

A trial point whose loss or gradient is NaN or infinite (an overflow far along ``d``) counts as
"the loss rose": the searches step back from it, never accept it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]
# phi(t): the loss and gradient at w + t d (the loss +inf where it is not finite).
Phi = Callable[[float], tuple[float, Array]]


@dataclass(frozen=True)
class Accepted:
    """The step a search accepts: ``t``, and the loss and gradient at ``w + t d``."""

    t: float
    loss: float
    gradient: Array


def cubic_minimizer(
    x1: float, f1: float, g1: float, x2: float, f2: float, g2: float, bounds: Optional[tuple[float, float]] = None
) -> float:
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clipped to
    ``bounds`` (by default the interval between x1 and x2); their midpoint when the cubic has no
    minimizer or the numbers are not finite. Exact for a quadratic phi (the cubic term is then 0).
    As PyTorch's ``_cubic_interpolate`` (from minFunc's polyinterp)."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    with np.errstate(all="ignore"):
        d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2) if x1 != x2 else math.nan
        square = d1 * d1 - g1 * g2
        if square >= 0:  # False for NaN
            d2 = math.sqrt(square)
            if x1 <= x2:
                t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2)) if g2 - g1 + 2 * d2 != 0 else math.nan
            else:
                t = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2)) if g1 - g2 + 2 * d2 != 0 else math.nan
            if math.isfinite(t):
                return min(max(t, low), high)
    return (low + high) / 2.0


def strong_wolfe(
    phi: Phi,
    d: Array,
    t: float,
    loss: float,
    gradient: Array,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_eval: int = 25,
) -> tuple[Optional[Accepted], int]:
    """A step meeting the strong Wolfe conditions ``phi(t) <= phi(0) + c1 t phi'(0)`` and
    ``|phi'(t)| <= c2 |phi'(0)|``, found by bracketing then zooming with cubic interpolation:
    the logic of PyTorch's ``_strong_wolfe`` (from minFunc's WolfeLineSearch). Returns the
    accepted step (the lowest point found when ``max_eval`` runs out; None if that is phi(0))
    and the number of evaluations."""
    gtd = float(gradient @ d)
    d_norm = float(np.max(np.abs(d)))
    f_new, g_new = phi(t)
    evaluations = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, loss, gradient, gtd
    done = False
    bracket: list[float]
    bracket_f: list[float]
    bracket_g: list[Array]
    bracket_gtd: list[float]
    while True:
        if f_new > loss + c1 * t * gtd or (evaluations > 2 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, bracket_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if evaluations >= max_eval:  # still descending at the last trial: keep the best so far
            bracket, bracket_f, bracket_g, bracket_gtd = [0.0, t], [loss, f_new], [gradient, g_new], [gtd, gtd_new]
            break
        # Extrapolate: the cubic's minimizer, between a little and ten times beyond t.
        step = cubic_minimizer(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = step
        f_new, g_new = phi(t)
        evaluations += 1
        gtd_new = float(g_new @ d)

    # Zoom: shrink the bracket around a point that meets the conditions.
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    insufficient_progress = False
    while not done and evaluations < max_eval:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_minimizer(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # A trial too near an end of the bracket moves to a tenth of its width inside.
        width = max(bracket) - min(bracket)
        eps = 0.1 * width
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = phi(t)
        evaluations += 1
        gtd_new = float(g_new @ d)
        if f_new > loss + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    best = low if len(bracket) > 1 else 0
    if bracket[best] == 0.0 or not bracket_f[best] < loss:
        return None, evaluations
    return Accepted(bracket[best], bracket_f[best], bracket_g[best]), evaluations


def secant(
    phi: Phi,
    d: Array,
    t: float,
    loss: float,
    gradient: Array,
    c1: float = 1e-4,
    c2: float = 0.1,
    max_eval: int = 25,
) -> tuple[Optional[Accepted], int]:
    """A step where the slope ``phi'(t) = g(w + t d) . d`` has dropped to ``c2 |phi'(0)|`` with
    the loss lowered (Armijo, ``c1``): the root of phi' by the secant method, kept inside a
    bracket. On a quadratic phi' is linear in t, so the first secant step (from 0 and the trial
    ``t``) is the exact minimizer along ``d``: what conjugate gradient needs to solve a
    quadratic in as many iterations as it has weights. A trial where the loss rose without a
    positive slope (or is not finite) is stepped back from by quadratic interpolation of the
    loss. Returns the accepted step (the lowest Armijo point when ``max_eval`` runs out, or None)
    and the number of evaluations."""
    slope0 = float(gradient @ d)
    lo_t, lo_slope = 0.0, slope0  # the largest step known to be before the minimizer
    hi_t: Optional[float] = None  # a step known to be past it
    hi_slope: Optional[float] = None  # the slope there, when positive and finite
    best: Optional[Accepted] = None
    evaluations = 0
    while evaluations < max_eval:
        f_new, g_new = phi(t)
        evaluations += 1
        slope = float(g_new @ d)
        armijo = f_new <= loss + c1 * t * slope0 and f_new < loss
        if armijo and (best is None or f_new < best.loss):
            best = Accepted(t, f_new, g_new)
        # The first trial is accepted only at a zero slope: otherwise one secant step follows,
        # which on a quadratic lands on the exact minimizer (the conditions alone would not).
        if armijo and abs(slope) <= c2 * abs(slope0) and (evaluations > 1 or slope == 0):
            return Accepted(t, f_new, g_new), evaluations
        if armijo and slope < 0:
            # Still descending: t is before the minimizer; extrapolate (or interpolate) the slope.
            previous_t, previous_slope = lo_t, lo_slope
            lo_t, lo_slope = t, slope
            if hi_t is None:
                grows = slope > previous_slope
                # A rising slope puts its root beyond t; else (a concave stretch) jump ahead.
                guess = t - slope * (t - previous_t) / (slope - previous_slope) if grows else 10 * t
                t = min(guess, 1000 * t) if math.isfinite(guess) and guess > t else 10 * t
                continue
        elif math.isfinite(slope) and slope > 0 and math.isfinite(f_new):
            hi_t, hi_slope = t, slope
        else:
            # The loss rose (or overflowed) with no usable slope: back off by interpolating the loss.
            hi_t, hi_slope = t, None
            if math.isfinite(f_new):
                curvature = f_new - loss - slope0 * (t - 0.0)
                guess = -slope0 * t * t / (2 * curvature) if curvature > 0 else 0.5 * t
            else:
                guess = 0.5 * t
            t = min(max(guess, lo_t + 0.1 * (t - lo_t)), lo_t + 0.5 * (t - lo_t))
            continue
        # The secant's root between a negative and a positive slope lies inside the bracket
        # (bisection if rounding puts it outside).
        guess = lo_t - lo_slope * (hi_t - lo_t) / (hi_slope - lo_slope) if hi_slope is not None else math.nan
        t = guess if lo_t < guess < hi_t else 0.5 * (lo_t + hi_t)
    return best, evaluations
