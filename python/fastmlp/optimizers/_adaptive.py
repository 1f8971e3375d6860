"""Keras 3's other per-batch optimizers: Nadam, Adamax, Lion, Adadelta and Ftrl (the update runs
in C++, one fused pass over each parameter array, as for SGD and Adam)."""

from __future__ import annotations

from typing import Any

from ._base import LearningRate, Optimizer, number
from ._base import epsilon as _epsilon


class Nadam(Optimizer):
    """Adam with Nesterov momentum, in Keras's momentum-cache form: ``u_t = beta_1 (1 - 0.5 *
    0.96^t)``, ``m_hat = u_{t+1} m / (1 - prod u_1..u_{t+1}) + (1 - u_t) g / (1 - prod u_1..u_t)``,
    ``w -= lr m_hat / (sqrt(v / (1 - beta_2^t)) + eps)``."""

    name = "nadam"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = number(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = number(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = _epsilon(epsilon)

    def _settings(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adam with the infinity norm: ``u = max(beta_2 u, |g|)``,
    ``w -= lr m / ((1 - beta_1^t) (u + eps))``."""

    name = "adamax"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = number(beta_1, "beta_1", 0.0, 1.0, high_open=True)
        self.beta_2 = number(beta_2, "beta_2", 0.0, 1.0, high_open=True)
        self.epsilon = _epsilon(epsilon)

    def _settings(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Lion(Optimizer):
    """``w -= lr sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g``."""

    name = "lion"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        value = number(beta_1, "beta_1", 0.0, 1.0)
        if value == 0.0:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                f"to SignSGD. Received: beta_1={beta_1!r}."
            )
        self.beta_1 = value
        self.beta_2 = number(beta_2, "beta_2", 0.0, 1.0)

    def _settings(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2}


class Adadelta(Optimizer):
    """``a = rho a + (1 - rho) g^2; d = -sqrt(b + eps) g / sqrt(a + eps);
    b = rho b + (1 - rho) d^2; w += lr d``."""

    name = "adadelta"

    def __init__(
        self, learning_rate: LearningRate = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho = number(rho, "rho", 0.0, 1.0)
        self.epsilon = _epsilon(epsilon)

    def _settings(self) -> dict[str, Any]:
        return {"rho": self.rho, "epsilon": self.epsilon}


class Ftrl(Optimizer):
    """Follow The Regularized Leader as Keras writes it (``n`` the accumulator, ``z`` the linear
    slot, ``p = -learning_rate_power``, ``l2`` plus ``beta / (2 lr)``): ``n' = n + g^2``,
    ``z += g + 2 l2_shrinkage w - (n'^p - n^p) / lr w``,
    ``w = (clip(z, -l1, l1) - z) / (n'^p / lr + 2 l2)``."""

    name = "ftrl"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        power = number(learning_rate_power, "learning_rate_power", -float("inf"), 0.0)
        self.learning_rate_power = power
        self.initial_accumulator_value = number(initial_accumulator_value, "initial_accumulator_value")
        self.l1_regularization_strength = number(l1_regularization_strength, "l1_regularization_strength")
        self.l2_regularization_strength = number(l2_regularization_strength, "l2_regularization_strength")
        self.l2_shrinkage_regularization_strength = number(
            l2_shrinkage_regularization_strength, "l2_shrinkage_regularization_strength"
        )
        self.beta = number(beta, "beta")

    def _settings(self) -> dict[str, Any]:
        return {
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }
