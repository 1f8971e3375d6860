"""Learning-rate schedules, with ``keras.optimizers.schedules``'s names and formulas.

Each is a function of the optimizer's step count (0 for the first update). Calling one in Python
gives its value; during training the C++ core evaluates the same formula at every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional

from .. import _validation


class LearningRateSchedule:
    kind = ""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _StepDecay(LearningRateSchedule):
    """A decay driven by p = step / decay_steps (floored when ``staircase``)."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float, staircase: bool = False) -> None:
        self.initial_learning_rate = _validation.non_negative_number(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _validation.positive_number(decay_steps, "decay_steps")
        self.decay_rate = _validation.non_negative_number(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return float(math.floor(p)) if self.staircase else p

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (floored when staircase)."""

    kind = "exponential_decay"

    def __call__(self, step: int) -> float:
        return float(self.initial_learning_rate * self.decay_rate ** self._progress(step))


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored when staircase)."""

    kind = "inverse_time_decay"

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while step <= boundaries[0], ``values[1]`` while step <= boundaries[1], ...,
    ``values[-1]`` after the last boundary."""

    kind = "piecewise_constant_decay"

    def __init__(self, boundaries: Sequence[float], values: Sequence[float]) -> None:
        self.boundaries = [float(b) for b in boundaries]
        self.values = [_validation.non_negative_number(v, "values") for v in values]
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                "The length of `values` must be one more than the length of `boundaries`. "
                f"Received: boundaries={list(boundaries)}, values={list(values)}"
            )
        if any(b2 <= b1 for b1, b2 in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"`boundaries` must increase. Received: {list(boundaries)}")

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate (or, with warmup, from ``warmup_target`` after a
    linear warmup of ``warmup_steps``) down to ``alpha`` times it over ``decay_steps``."""

    kind = "cosine_decay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        alpha: float = 0.0,
        warmup_target: Optional[float] = None,
        warmup_steps: float = 0,
    ) -> None:
        self.initial_learning_rate = _validation.non_negative_number(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _validation.positive_number(decay_steps, "decay_steps")
        self.alpha = _validation.non_negative_number(alpha, "alpha")
        self.warmup_target = None if warmup_target is None else _validation.non_negative_number(warmup_target, "warmup_target")
        self.warmup_steps = _validation.non_negative_number(warmup_steps, "warmup_steps")
        if self.warmup_target is not None and self.warmup_steps == 0:
            raise ValueError("`warmup_steps` must be > 0 when `warmup_target` is set.")

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        s = min(step, self.decay_steps + self.warmup_steps)
        if s < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (s / self.warmup_steps) + self.initial_learning_rate
        return self._decay(s - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


_BY_NAME: dict[str, type[LearningRateSchedule]] = {
    cls.kind: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
}


def from_config(config: dict[str, Any]) -> LearningRateSchedule:
    settings = dict(config)
    kind = settings.pop("kind")
    return _BY_NAME[kind](**settings)
