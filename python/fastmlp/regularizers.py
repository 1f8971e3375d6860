"""Weight penalties, with ``keras.regularizers``' names and definition: ``L1L2`` adds
``l1 * sum(|w|) + l2 * sum(w**2)`` to the loss (and its gradient to the weights'). Computed in
C++ at every step; ``fit`` and ``evaluate`` report the loss with the penalty included, as Keras.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from . import _validation


class Regularizer:
    l1 = 0.0
    l2 = 0.0

    def __call__(self, weights: Any) -> float:
        """The penalty of an array, in NumPy (the same formula the core computes)."""
        w = np.asarray(weights, dtype=np.float64)
        return float(self.l1 * np.abs(w).sum() + self.l2 * np.square(w).sum())

    def get_config(self) -> dict[str, float]:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2})"


class L1L2(Regularizer):
    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _validation.non_negative_number(l1, "l1")
        self.l2 = _validation.non_negative_number(l2, "l2")


class L1(Regularizer):
    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _validation.non_negative_number(l1, "l1")


class L2(Regularizer):
    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _validation.non_negative_number(l2, "l2")


# Keras exports the same classes under lower-case names.
l1 = L1
l2 = L2
l1_l2 = L1L2

RegularizerLike = Union[str, Regularizer, None]


def get(identifier: RegularizerLike) -> Optional[Regularizer]:
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if identifier in ("l1", "L1"):
        return L1()
    if identifier in ("l2", "L2"):
        return L2()
    if identifier in ("l1_l2", "L1L2"):
        return L1L2()
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")


def serialize(regularizer: Optional[Regularizer]) -> Optional[dict[str, float]]:
    return None if regularizer is None else regularizer.get_config()


def deserialize(config: Optional[dict[str, Any]]) -> Optional[Regularizer]:
    return None if config is None else L1L2(**config)
