"""Learning-rate schedules, with ``keras.optimizers.schedules``'s names and formulas.

Each is a function of the optimizer's step count (0 for the first update). Calling one in Python
gives its value; during training the C++ core evaluates the built-in formulas at every step. A
user's subclass of ``LearningRateSchedule`` (its own ``__call__``) is evaluated in Python for a
chunk's steps before the core trains that chunk (``rates``), never between two batches.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from .. import _custom_objects, _validation


class LearningRateSchedule:
    """The base of every schedule. Subclass it with ``__call__(self, step)`` returning the rate
    of step ``step`` (an int, 0 for the first update, as Keras's ``optimizer.iterations``) and
    ``get_config()`` returning the arguments that rebuild it (for saving)."""

    kind = ""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """The schedule ``cls(**config)`` (Keras's ``LearningRateSchedule.from_config``)."""
        return cls(**config)

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


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - p) ** power + end`` with ``p = min(step, decay_steps) /
    decay_steps``; with ``cycle``, ``p = step / (decay_steps * ceil(step / decay_steps))`` (1
    at step 0), as Keras's. Evaluated in Python for each chunk's steps."""

    kind = "polynomial_decay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        self.initial_learning_rate = _validation.non_negative_number(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = _validation.positive_number(decay_steps, "decay_steps")
        self.end_learning_rate = _validation.non_negative_number(end_learning_rate, "end_learning_rate")
        self.power = _validation.non_negative_number(power, "power")
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step: int) -> float:
        steps = self.decay_steps
        if self.cycle:
            steps = steps * (1.0 if step == 0 else math.ceil(step / steps))
            p = step / steps
        else:
            p = min(step, steps) / steps
        return float((self.initial_learning_rate - self.end_learning_rate) * (1.0 - p) ** self.power + self.end_learning_rate)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR), as Keras's: the i-th period lasts
    ``first_decay_steps * t_mul ** i`` steps and starts at ``initial_learning_rate * m_mul ** i``,
    decaying to ``alpha`` times that. Evaluated in Python for each chunk's steps."""

    kind = "cosine_decay_restarts"

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: float,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        self.initial_learning_rate = _validation.non_negative_number(initial_learning_rate, "initial_learning_rate")
        self.first_decay_steps = _validation.positive_number(first_decay_steps, "first_decay_steps")
        self.t_mul = _validation.positive_number(t_mul, "t_mul")
        self.m_mul = _validation.non_negative_number(m_mul, "m_mul")
        self.alpha = _validation.non_negative_number(alpha, "alpha")
        self.name = name

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            remaining = 1.0 - fraction * (1.0 - self.t_mul)
            if remaining <= 0.0:  # t_mul < 1: the periods shrink and end (Keras's rate is NaN there)
                raise ValueError(
                    f"{type(self).__name__}(t_mul={self.t_mul}): its periods shrink and all end after "
                    f"first_decay_steps / (1 - t_mul) = {self.first_decay_steps / (1.0 - self.t_mul):.6g} "
                    f"steps; step {step} has no learning rate. Use t_mul >= 1 or fewer steps."
                )
            try:
                restart = math.floor(math.log(remaining) / math.log(self.t_mul))
                done = (1.0 - self.t_mul**restart) / (1.0 - self.t_mul)
                fraction = (fraction - done) / self.t_mul**restart
            except OverflowError:
                raise ValueError(
                    f"{type(self).__name__}(t_mul={self.t_mul}): the period lengths at step {step} are "
                    "beyond float's range. Use a smaller t_mul."
                ) from None
        cosine = 0.5 * self.m_mul**restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


# The schedules whose formula the core evaluates at every step.
_BY_NAME: dict[str, type[LearningRateSchedule]] = {
    cls.kind: cls for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
}
# Keras's other built-in schedules: evaluated in Python (as a user's), saved by kind.
_PYTHON_BUILTINS: dict[str, type[LearningRateSchedule]] = {
    cls.kind: cls for cls in (PolynomialDecay, CosineDecayRestarts)
}

# The kind of a user's schedule in a saved optimizer config: its class name and get_config.
CUSTOM_KIND = "custom"


def is_builtin(schedule: LearningRateSchedule) -> bool:
    """Whether the core evaluates ``schedule``'s formula itself: exactly one of the classes
    above (a subclass may change ``__call__``, so it is evaluated in Python)."""
    return type(schedule) in _BY_NAME.values()


def rate_at(schedule: LearningRateSchedule, step: int) -> float:
    """``schedule(step)`` as a float, checked: a TypeError for a value that is not a real number
    (or a one-element array of one), a ValueError for NaN, infinity or a negative rate; both name
    the schedule and the step."""
    value: Any = schedule(step)  # a user's __call__ may return anything
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item() if np.issubdtype(value.dtype, np.number) else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(
            f"Learning-rate schedule {type(schedule).__name__} must return a number; at step {step} "
            f"it returned {value!r} (of type {type(value).__name__})."
        )
    rate = float(value)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(
            f"Learning-rate schedule {type(schedule).__name__} must return a finite number >= 0; "
            f"at step {step} it returned {value!r}."
        )
    return rate


def rates(schedule: LearningRateSchedule, first_step: int, count: int) -> list[float]:
    """The checked rates of steps ``first_step`` to ``first_step + count - 1``."""
    return [rate_at(schedule, first_step + i) for i in range(count)]


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """A schedule as an optimizer config holds it: a built-in one as ``{"kind", **settings}``,
    a user's as ``{"kind": "custom", "class_name", "config"}`` (its class is not saved)."""
    if is_builtin(schedule) or type(schedule) in _PYTHON_BUILTINS.values():
        return {"kind": schedule.kind, **schedule.get_config()}
    # A registered class by its registry key ("package>name"), as Keras names it; else its name.
    return {"kind": CUSTOM_KIND, "class_name": _custom_objects.registered_name(type(schedule)), "config": schedule.get_config()}


def from_config(config: dict[str, Any], custom_objects: Optional[dict[str, Any]] = None) -> LearningRateSchedule:
    """The schedule of a ``serialize`` dict. A user's schedule is rebuilt only from a class of
    ``custom_objects`` with its saved class name (a ValueError otherwise): no code comes from
    the config."""
    settings = dict(config)
    kind = settings.pop("kind")
    if kind != CUSTOM_KIND:
        return {**_BY_NAME, **_PYTHON_BUILTINS}[kind](**settings)
    name = settings.get("class_name")
    cls = (custom_objects or {}).get(name) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise ValueError(
            f"The optimizer's learning rate is the user's schedule class {name!r}: pass it in "
            f"custom_objects={{{name!r}: {name}}} (a LearningRateSchedule subclass) to load it."
        )
    schedule_config = settings.get("config")
    if not isinstance(schedule_config, dict):
        raise ValueError(f"The saved config of schedule {name!r} must be a dict. Received: {schedule_config!r}")
    return cls.from_config(schedule_config)
