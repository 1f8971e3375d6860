"""Losses, named and reduced as in ``keras.losses`` (mean over the batch)."""

from __future__ import annotations

from typing import Union


class Loss:
    """A loss the C++ core computes; ``name`` is the core's name for it."""

    name: str = ""

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, object]:
        return {"name": self.name, "from_logits": self.from_logits}

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


def from_config(config: dict[str, object]) -> Loss:
    cls = _BY_NAME.get(str(config.get("name")))
    if cls is None:
        raise ValueError(f"Unknown loss in saved config: {config.get('name')!r}")
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
