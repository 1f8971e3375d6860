"""The optimizer base class and the checks of its settings (shared by every optimizer)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from .. import _validation
from .._engine import Engine, LayerSpec
from . import schedules
from .schedules import LearningRateSchedule

LearningRate = Union[float, LearningRateSchedule]


def number(value: Any, name: str, low: float = 0.0, high: float = math.inf, high_open: bool = False) -> float:
    if not _validation.is_real(value):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond float's range
        result = math.inf
    if not math.isfinite(result) or result < low or result > high or (high_open and result == high):
        bound = f"[{low}, {high}{')' if high_open else ']'}" if high != math.inf else f">= {low}"
        finite = "" if math.isfinite(result) else " and finite (within float's range)"
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:20]}...({len(repr(value))} characters)"
        raise ValueError(f"`{name}` must be {'in ' if high != math.inf else ''}{bound}{finite}. Received: {name}={shown}")
    return result


# The smallest normal float32: an epsilon below it is 0 or subnormal in a float32 model, and a
# denominator guard of 0 turns the first all-zero gradient into 0/0 = NaN weights.
_SMALLEST_EPSILON = 1.1754943508222875e-38


def epsilon(value: Any) -> float:
    """A denominator guard: a number, at least the smallest normal float32 (so never 0)."""
    result = number(value, "epsilon")
    if result < _SMALLEST_EPSILON:
        raise ValueError(
            f"`epsilon` must be positive (at least {_SMALLEST_EPSILON:.4g}, the smallest normal "
            f"float32): it keeps a denominator away from 0. Received: epsilon={value!r}"
        )
    return result


class LearningRateVariable(float):
    """What ``optimizer.learning_rate`` returns: the current rate as a float, with the methods of
    Keras's learning-rate variable: ``numpy()`` and ``assign(value)`` (which sets the optimizer's
    rate, as ``optimizer.learning_rate = value``). A value read earlier keeps its number."""

    __slots__ = ("_optimizer",)
    _optimizer: Optional[Optimizer]

    # The optimizer is optional so that copy and pickle, which rebuild a float subclass from
    # its value alone, work (and restore it from the slot).
    def __new__(cls, value: float, optimizer: Optional[Optimizer] = None) -> LearningRateVariable:
        return super().__new__(cls, value)

    def __init__(self, value: float, optimizer: Optional[Optimizer] = None) -> None:
        self._optimizer = optimizer

    def numpy(self) -> NDArray[np.float32]:
        """The rate as a 0-d float32 array (Keras's learning-rate variable is float32)."""
        return np.array(float(self), dtype=np.float32)

    def assign(self, value: float) -> None:
        """Set the optimizer's learning rate (a TypeError for an optimizer with a schedule)."""
        if self._optimizer is None:
            raise TypeError("This learning rate belongs to no optimizer: there is nothing to assign to.")
        self._optimizer.learning_rate = value


class Optimizer:
    """Common settings: the learning rate (a number or a schedule), weight decay and clipping."""

    name = ""

    def __init__(
        self,
        learning_rate: LearningRate,
        weight_decay: Optional[float] = None,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
    ) -> None:
        self._engine: Optional[Engine] = None  # the engine of the model that compiled it
        self.learning_rate = learning_rate  # validated by the property setter
        self.weight_decay = None if weight_decay is None else number(weight_decay, "weight_decay")
        self.clipnorm = None if clipnorm is None else number(clipnorm, "clipnorm")
        self.clipvalue = None if clipvalue is None else number(clipvalue, "clipvalue")
        self.global_clipnorm = None if global_clipnorm is None else number(global_clipnorm, "global_clipnorm")
        if sum(v is not None for v in (self.clipnorm, self.clipvalue, self.global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set.")

    def bind_engine(self, engine: Engine) -> None:
        """Called by ``Sequential.compile``: from then on ``learning_rate`` and ``iterations``
        are those of that model's training (kept by the core). Not for users."""
        self._engine = engine

    @property
    def learning_rate(self) -> LearningRateVariable:
        """The rate of the next step, as Keras 3: the configured rate (or what a callback set),
        or with a schedule its value at ``iterations``."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            return LearningRateVariable(schedules.rate_at(lr, self.iterations), self)
        engine = self._engine
        rate = None if engine is None else engine.learning_rate  # None until the model has a trainer
        return LearningRateVariable(lr if rate is None else rate, self)


    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        # Validate everything before changing anything: a refused value leaves no trace.
        if not isinstance(value, LearningRateSchedule):
            if isinstance(getattr(self, "_learning_rate", None), LearningRateSchedule):
                raise TypeError(
                    "This optimizer was created with a `LearningRateSchedule` object as its "
                    "`learning_rate` constructor argument, hence its learning rate is not settable. "
                    "If you need the learning rate to be settable, you should instantiate the "
                    "optimizer with a float `learning_rate` argument."
                )
            value = number(value, "learning_rate")
        engine = self._engine
        training = engine is not None and engine.has_trainer
        if training and isinstance(value, LearningRateSchedule):
            raise ValueError("A schedule can only be set before compile().")
        self._learning_rate = value
        if engine is not None and not isinstance(value, LearningRateSchedule):
            engine.set_learning_rate(value)

    @property
    def schedule(self) -> Optional[LearningRateSchedule]:
        """The learning-rate schedule this optimizer was created with, else None (fastmlp
        addition: Keras keeps it private)."""
        lr = self._learning_rate
        return lr if isinstance(lr, LearningRateSchedule) else None

    @property
    def iterations(self) -> int:
        """Number of updates applied so far."""
        engine = self._engine
        return 0 if engine is None else engine.iterations

    def _settings(self) -> dict[str, Any]:
        """This optimizer's hyperparameters (Keras's get_config keys)."""
        return {}

    def check_model(self, model: ModelFacts) -> None:
        """Raise ValueError if this optimizer cannot train ``model`` (called by ``compile`` on a
        built model and by ``fit``); every per-batch optimizer trains any model."""

    def core_config(self) -> dict[str, Any]:
        """The settings the core's trainer is made with (see ``Sequential.compile``). A schedule
        the core cannot evaluate goes as its rate at the current step; ``before_steps`` gives
        the core the rates of the steps it trains next."""
        config = self.get_config()
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule) and not schedules.is_builtin(lr):
            config["learning_rate"] = schedules.rate_at(lr, self.iterations)
        return config

    def before_steps(self, count: int) -> None:
        """Called by the model before it trains the next ``count`` steps (a chunk of batches):
        a user's schedule is evaluated here for those steps (``optimizer.iterations`` on) and
        the core gets the rates, so no Python runs between the chunk's batches. Nothing to do
        for a number or a built-in schedule. Not for users."""
        lr = self._learning_rate
        engine = self._engine
        if isinstance(lr, LearningRateSchedule) and not schedules.is_builtin(lr) and engine is not None:
            first = engine.iterations
            engine.set_learning_rates(first, schedules.rates(lr, first, count))

    def get_config(self) -> dict[str, Any]:
        lr = self._learning_rate
        return {
            "name": self.name,
            "learning_rate": schedules.serialize(lr) if isinstance(lr, LearningRateSchedule) else lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            **self._settings(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items() if k != 'name')})"


@dataclass(frozen=True)
class ModelFacts:
    """What an optimizer may check about the model it trains (see ``Optimizer.check_model``)."""

    layers: tuple[tuple[str, LayerSpec], ...]  # each Dense layer's name and core spec
    loss: str  # the core's name of the compiled loss ("mse", "binary_crossentropy", ...)
    num_params: int
    dtype: str
