"""Losses, named and reduced as in ``keras.losses`` (mean over the batch)."""

from __future__ import annotations

import math
from typing import Union


class Loss:
    """A loss the C++ core computes; ``name`` is the core's name for it."""

    name: str = ""

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, object]:
        return {"name": self.name, "from_logits": self.from_logits}

    def core_delta(self) -> float:
        """The threshold the core's Huber loss switches at (other losses ignore it)."""
        return 1.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class MeanSquaredError(Loss):
    """mean((y_pred - y_true) ** 2) over the outputs, then over the batch."""

    name = "mse"

    def __init__(self) -> None:
        super().__init__(from_logits=False)


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|) over the outputs, then over the batch."""

    name = "mae"

    def __init__(self) -> None:
        super().__init__(from_logits=False)


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)), averaged over the outputs (p clipped to [1e-7, 1 - 1e-7])."""

    name = "binary_crossentropy"


class CategoricalCrossentropy(Loss):
    """-sum(y log p) over the classes, for one-hot (or soft) targets."""

    name = "categorical_crossentropy"


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer class labels as targets."""

    name = "sparse_categorical_crossentropy"


class _Regression(Loss):
    """A loss without ``from_logits``: it compares values, not probabilities."""

    def __init__(self) -> None:
        super().__init__(from_logits=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Huber(_Regression):
    """mean(0.5 e**2 where |e| <= delta, else delta |e| - 0.5 delta**2) over the outputs,
    e = y_pred - y_true."""

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not (0 < delta < math.inf):
            raise ValueError(f"Argument `delta` must be a positive finite number. Received: delta={delta!r}")
        self.delta = float(delta)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "delta": self.delta}

    def core_delta(self) -> float:
        return self.delta

    def __repr__(self) -> str:
        return f"Huber(delta={self.delta})"


class LogCosh(_Regression):
    """mean(log(cosh(y_pred - y_true))) over the outputs."""

    name = "log_cosh"


class KLDivergence(_Regression):
    """sum(y log(y / y_pred)) over the outputs, y and y_pred clipped to [1e-7, 1]."""

    name = "kl_divergence"


class Poisson(_Regression):
    """mean(y_pred - y_true log(y_pred + 1e-7)) over the outputs."""

    name = "poisson"


class CategoricalHinge(_Regression):
    """max(max((1 - y_true) y_pred) - sum(y_true y_pred) + 1, 0) per sample."""

    name = "categorical_hinge"


class Hinge(_Regression):
    """mean(max(1 - y_true y_pred, 0)) over the outputs; labels that are all 0 or 1 become -1/1."""

    name = "hinge"


class SquaredHinge(_Regression):
    """mean(max(1 - y_true y_pred, 0) ** 2) over the outputs; labels that are all 0 or 1 become -1/1."""

    name = "squared_hinge"


class MeanAbsolutePercentageError(_Regression):
    """100 mean(|y_true - y_pred| / max(|y_true|, 1e-7)) over the outputs."""

    name = "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(_Regression):
    """mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)) ** 2) over the outputs."""

    name = "mean_squared_logarithmic_error"


def from_config(config: dict[str, object]) -> Loss:
    cls = _BY_NAME.get(str(config.get("name")))
    if cls is None:
        raise ValueError(f"Unknown loss in saved config: {config.get('name')!r}")
    if cls is Huber:
        delta = config.get("delta", 1.0)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)):
            raise ValueError(f"Huber's delta in a saved config must be a number. Received: delta={delta!r}")
        return Huber(delta)
    loss = cls()
    loss.from_logits = bool(config.get("from_logits", False))
    return loss


_BY_NAME: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "huber": Huber,
    "log_cosh": LogCosh,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "poisson": Poisson,
    "categorical_hinge": CategoricalHinge,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
}

LossLike = Union[str, Loss]


def get(identifier: LossLike) -> Loss:
    """A loss from its Keras name or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"Could not interpret loss identifier: {identifier!r}. "
        f"Expected one of {sorted(_BY_NAME)} or a fastmlp.losses.Loss instance."
    )
