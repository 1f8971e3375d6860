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

from typing import Any, Optional, Union

from . import schedules
from ._adaptive import Adadelta, Adamax, Ftrl, Lion, Nadam
from ._base import LearningRate, LearningRateVariable, Optimizer
from ._base import epsilon as _epsilon
from ._base import number as _number
from ._conjugate_gradient import ConjugateGradient
from ._full_batch import FullBatchOptimizer
from ._lbfgs import LBFGS
from ._least_squares import LeastSquares
from ._newton import Newton


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
    cls.name: cls
    for cls in (
        SGD,
        Adam,
        AdamW,
        Adagrad,
        RMSprop,
        Nadam,
        Adamax,
        Lion,
        Adadelta,
        Ftrl,
        Newton,
        ConjugateGradient,
        LBFGS,
        LeastSquares,
    )
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


def from_config(config: dict[str, Any], custom_objects: Optional[dict[str, Any]] = None) -> Optimizer:
    """An optimizer from its ``get_config()``; a user's learning-rate schedule needs its class
    in ``custom_objects`` (see ``schedules.from_config``)."""
    settings = dict(config)
    cls = _BY_NAME[settings.pop("name")]
    if "learning_rate" in settings:
        lr = settings["learning_rate"]
        settings["learning_rate"] = schedules.from_config(lr, custom_objects) if isinstance(lr, dict) else lr
    return cls(**settings)


__all__ = [
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ConjugateGradient",
    "Ftrl",
    "FullBatchOptimizer",
    "LearningRateVariable",
    "LeastSquares",
    "Lion",
    "Nadam",
    "Newton",
    "Optimizer",
    "RMSprop",
    "get",
    "schedules",
]
