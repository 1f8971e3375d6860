"""Optimizers: small configuration objects whose update runs in C++, named as in Keras."""

from __future__ import annotations

import math
from typing import Union


class Optimizer:
    name: str = ""

    def __init__(self, learning_rate: float) -> None:
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
            raise TypeError(
                f"Expected `learning_rate` to be a number. Received: learning_rate={learning_rate!r}"
            )
        if not math.isfinite(learning_rate) or learning_rate < 0:
            raise ValueError(
                "Expected `learning_rate` to be a finite number >= 0. "
                f"Received: learning_rate={learning_rate!r}"
            )
        self.learning_rate = float(learning_rate)

    def get_config(self) -> dict[str, object]:
        return {"name": self.name, "learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class SGD(Optimizer):
    """Gradient descent: ``w -= learning_rate * g`` after each batch."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01) -> None:
        super().__init__(learning_rate)


_BY_NAME: dict[str, type[Optimizer]] = {"sgd": SGD}

OptimizerLike = Union[str, Optimizer]


def get(identifier: OptimizerLike) -> Optimizer:
    """An optimizer from its Keras name (with its defaults) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. "
        f"Available: {sorted(_BY_NAME)} or a fastmlp.optimizers.Optimizer instance."
    )
