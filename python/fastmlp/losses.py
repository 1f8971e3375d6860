"""Losses, named and reduced as in ``keras.losses`` (mean over the batch)."""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import numpy as np
from numpy.typing import NDArray

from . import _loss_values, _validation


class _RefusedIfCustom:
    """Loss's base: refuses a user's loss class before any ``__init__`` runs (a subclass's own
    runs first, and Keras's guide passes ``name`` on to the base, which fastmlp's losses do not
    take). Apart from Loss so that ``inspect.signature`` of a loss class still shows its
    ``__init__``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        _refuse_custom_loss(cls)
        return super().__new__(cls)


class Loss(_RefusedIfCustom):
    """A loss the C++ core computes; ``name`` is the core's name for it. A user's subclass with
    its own ``call`` (Keras's custom loss) is refused: the core never calls Python."""

    name: str = ""

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict[str, object]:
        return {"name": self.name, "from_logits": self.from_logits}

    def core_delta(self) -> float:
        """The threshold the core's Huber loss switches at (other losses ignore it)."""
        return 1.0

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        """The loss of ``y_pred`` against ``y_true`` in NumPy, reduced as Keras 3's default
        (``"sum_over_batch_size"``): the per-sample values times ``sample_weight``, summed, over
        the number of samples."""
        per_sample = _values(self.name, y_true, y_pred, self.from_logits, self.core_delta())
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            per_sample = per_sample * (weights if weights.size != 1 else weights[0])
        return float(np.sum(per_sample) / max(per_sample.shape[0], 1))

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

def _values(name: str, y_true: Any, y_pred: Any, from_logits: bool = False, delta: float = 1.0) -> NDArray[np.float64]:
    pred = np.asarray(y_pred, dtype=np.float64)
    pred = pred.reshape(-1, 1) if pred.ndim == 1 else pred.reshape(pred.shape[0], -1) if pred.ndim else pred.reshape(1, 1)
    true = np.asarray(y_true, dtype=np.float64)
    if name == "sparse_categorical_crossentropy":
        true = true.reshape(-1)
    else:
        true = true.reshape(pred.shape) if true.size == pred.size else true
        if true.shape != pred.shape:
            raise ValueError(f"`y_true` and `y_pred` must have the same shape. Received: {true.shape} and {pred.shape}")
    return _loss_values.values(name, true, pred, from_logits, delta)


# Keras's loss functions: per-sample values of (y_true, y_pred), usable as compile(loss=...).
def mean_squared_error(y_true: Any, y_pred: Any) -> NDArray[np.float64]:
    """Per-sample mean squared error. Keras: ``keras.losses.mean_squared_error``."""
    return _values("mse", y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Any) -> NDArray[np.float64]:
    """Per-sample mean absolute error. Keras: ``keras.losses.mean_absolute_error``."""
    return _values("mae", y_true, y_pred)


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> NDArray[np.float64]:
    """Per-sample binary cross-entropy (mean over the outputs). Keras:
    ``keras.losses.binary_crossentropy``."""
    return _values("binary_crossentropy", y_true, y_pred, from_logits)


def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> NDArray[np.float64]:
    """Per-sample categorical cross-entropy. Keras: ``keras.losses.categorical_crossentropy``."""
    return _values("categorical_crossentropy", y_true, y_pred, from_logits)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> NDArray[np.float64]:
    """Per-sample categorical cross-entropy of integer labels. Keras:
    ``keras.losses.sparse_categorical_crossentropy``."""
    return _values("sparse_categorical_crossentropy", y_true, y_pred, from_logits)


_FUNCTIONS: dict[Callable[..., Any], type[Loss]] = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
}

LossLike = Union[str, Loss, Callable[..., Any]]


def _refuse_custom_loss(cls: type) -> None:
    """NotImplementedError for a user's Loss subclass that computes the loss itself."""
    overridden = _validation.user_overrides(cls, ("call", "__call__"))
    if overridden or (issubclass(cls, Loss) and not cls.name):
        raise NotImplementedError(
            f"{cls.__name__} is a loss of your own ({', '.join(overridden) or 'no built-in loss'}): fastmlp "
            "computes the loss and its gradient in its native core, which never calls Python, so it "
            f"cannot train with it. Use a built-in loss: {sorted(_BY_NAME)}."
        )


def get(identifier: LossLike) -> Loss:
    """A loss from its Keras name, an instance, or one of the loss functions above (as
    ``compile(loss=keras.losses.binary_crossentropy)``)."""
    if isinstance(identifier, Loss):
        _refuse_custom_loss(type(identifier))  # made without Loss.__new__ (copy, __new__ of object)
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    for function, cls in _FUNCTIONS.items():
        if identifier is function:
            return cls()
    raise ValueError(
        f"Could not interpret loss identifier: {identifier!r}. "
        f"Expected one of {sorted(_BY_NAME)} or a fastmlp.losses.Loss instance."
    )
