"""Optimizers, with Keras 3's names, defaults and update formulas; the update runs in C++, fused
in one SIMD pass over each parameter array.

Where PyTorch differs (so either can be reproduced):
- SGD momentum: Keras keeps ``m = momentum * m - lr * g; w += m``; PyTorch keeps
  ``b = momentum * b + g; w -= lr * b``. They agree for a constant learning rate (m = -lr * b);
  after a learning-rate change they differ. Nesterov likewise.
- Adam: Keras computes ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`` and
  ``w -= alpha * m / (sqrt(v) + eps)`` (eps is the paper's "epsilon hat", added to the
  uncorrected root); PyTorch ``w -= lr / (1 - beta_1^t) * m / (sqrt(v / (1 - beta_2^t)) + eps)``.
  They agree for eps = 0; to reproduce PyTorch here, use eps_keras = eps_torch *
  sqrt(1 - beta_2^t) (exact only per step t). Defaults: Keras 1e-7, PyTorch 1e-8.
- AdamW: Keras decays ``w -= w * weight_decay * lr`` before the Adam step; PyTorch
  ``w *= 1 - lr * weight_decay`` also before it: the same. Keras's default weight_decay is 0.004,
  PyTorch's 0.01.
- RMSprop: Keras adds epsilon inside the square root (``g / sqrt(v + eps)``), PyTorch outside
  (``g / (sqrt(v) + eps)``); Keras rho 0.9 is PyTorch's alpha 0.99 by default.
- Adagrad: Keras adds epsilon inside the square root and starts the accumulator at 0.1;
  PyTorch adds it outside and starts at 0 (``initial_accumulator_value``).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

from .. import _validation
from .._engine import Engine
from . import schedules
from .schedules import LearningRateSchedule

LearningRate = Union[float, LearningRateSchedule]


def _number(value: Any, name: str, low: float = 0.0, high: float = math.inf, high_open: bool = False) -> float:
    if not _validation.is_real(value):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range
        number = math.inf
    if not math.isfinite(number) or number < low or number > high or (high_open and number == high):
        bound = f"[{low}, {high}{')' if high_open else ']'}" if high != math.inf else f">= {low}"
        raise ValueError(f"`{name}` must be {'in ' if high != math.inf else ''}{bound}. Received: {name}={value!r}")
    return number


# The smallest normal float32: an epsilon below it is 0 or subnormal in a float32 model, and a
# denominator guard of 0 turns the first all-zero gradient into 0/0 = NaN weights.
_SMALLEST_EPSILON = 1.1754943508222875e-38


def _epsilon(value: Any) -> float:
    """A denominator guard: a number, at least the smallest normal float32 (so never 0)."""
    number = _number(value, "epsilon")
    if number < _SMALLEST_EPSILON:
        raise ValueError(
            f"`epsilon` must be positive (at least {_SMALLEST_EPSILON:.4g}, the smallest normal "
            f"float32): it keeps a denominator away from 0. Received: epsilon={value!r}"
        )
    return number


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
        self.weight_decay = None if weight_decay is None else _number(weight_decay, "weight_decay")
        self.clipnorm = None if clipnorm is None else _number(clipnorm, "clipnorm")
        self.clipvalue = None if clipvalue is None else _number(clipvalue, "clipvalue")
        self.global_clipnorm = None if global_clipnorm is None else _number(global_clipnorm, "global_clipnorm")
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
            value = _number(value, "learning_rate")
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


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum: ``m = momentum*m - lr*g; w += m``."""

    name = "sgd"

    def __init__(self, learning_rate: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def _settings(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) in Keras's form: ``w -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)``."""

    name = "adam"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _number(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = _number(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = _epsilon(epsilon)
        self.amsgrad = bool(amsgrad)

    def _settings(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay: ``w -= w * weight_decay * lr`` before each Adam step."""

    name = "adamw"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """``acc += g^2; w -= lr * g / sqrt(acc + eps)``, the accumulator starting at 0.1."""

    name = "adagrad"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _number(initial_accumulator_value, "initial_accumulator_value")
        self.epsilon = _epsilon(epsilon)

    def _settings(self) -> dict[str, Any]:
        return {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """``v = rho*v + (1-rho)*g^2; w -= lr * g / sqrt(v + eps)`` (centered: minus the squared mean
    gradient inside the root; momentum: accumulated increments)."""

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = _number(rho, "rho", 0.0, 1.0)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _epsilon(epsilon)
        self.centered = bool(centered)

    def _settings(self) -> dict[str, Any]:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}


_BY_NAME: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adam, AdamW, Adagrad, RMSprop)
}

OptimizerLike = Union[str, Optimizer]


def get(identifier: OptimizerLike) -> Optimizer:
    """An optimizer from its Keras name (with its defaults) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        cls: Any = _BY_NAME[identifier.lower()]  # every subclass has a default learning rate
        optimizer: Optimizer = cls()
        return optimizer
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. "
        f"Expected one of {sorted(_BY_NAME)} or a fastmlp.optimizers.Optimizer instance."
    )


def from_config(config: dict[str, Any]) -> Optimizer:
    settings = dict(config)
    cls = _BY_NAME[settings.pop("name")]
    lr = settings.pop("learning_rate")
    if isinstance(lr, dict):
        lr = schedules.from_config(lr)
    return cls(learning_rate=lr, **settings)


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "get", "schedules"]
