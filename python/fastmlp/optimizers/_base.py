"""The optimizer base class and the checks of its settings (shared by every optimizer)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

from .. import _validation
from .._engine import Engine, LayerSpec
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
        raise ValueError(f"`{name}` must be {'in ' if high != math.inf else ''}{bound}. Received: {name}={value!r}")
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
    def learning_rate(self) -> LearningRate:
        """The configured rate; after training starts, the rate of the next step (as Keras)."""
        engine = self._engine
        if engine is not None and not isinstance(self._learning_rate, LearningRateSchedule):
            rate = engine.learning_rate  # None until the model has a trainer
            if rate is not None:
                return rate
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        # Validate everything before changing anything: a refused value leaves no trace.
        if not isinstance(value, LearningRateSchedule):
            if isinstance(getattr(self, "_learning_rate", None), LearningRateSchedule):
                raise TypeError(
                    "This optimizer was created with a learning-rate schedule, so its learning rate "
                    "is not settable (as in Keras); create a new optimizer instead."
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
        """The settings the core's trainer is made with (see ``Sequential.compile``)."""
        return self.get_config()

    def get_config(self) -> dict[str, Any]:
        lr = self._learning_rate
        return {
            "name": self.name,
            "learning_rate": {"kind": lr.kind, **lr.get_config()} if isinstance(lr, LearningRateSchedule) else lr,
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
