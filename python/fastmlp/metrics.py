"""Metrics with Keras 3's names, defaults and formulas.

In ``fit``/``evaluate`` the core computes each metric's *state* over every chunk of batches
(per-sample sums for the means, integer confusion counts for ``AUC``, ``Precision``, ...), and
the model reduces the states with the formulas here. A metric object also works on its own, as in
Keras: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``
(computed in NumPy, with the same formulas).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from . import _validation, losses
from ._names import snake_case, unique_name

Array = NDArray[np.float64]

# Keras's backend.epsilon(): AUC's end thresholds are -epsilon and 1 + epsilon.
EPSILON = 1e-7
# Keras's metrics_utils.NEG_INF: a prediction outside a row's top k; Precision's and Recall's
# threshold when top_k is set.
NEG_INF = -1e10

_ALIASES = {
    "binary_accuracy": "binary_accuracy",
    "categorical_accuracy": "categorical_accuracy",
    "sparse_categorical_accuracy": "sparse_categorical_accuracy",
    "mse": "mean_squared_error",
    "mean_squared_error": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mean_absolute_error": "mean_absolute_error",
    "top_k_categorical_accuracy": "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy": "sparse_top_k_categorical_accuracy",
}
_SPARSE = ("sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy", "sparse_categorical_crossentropy")

# What the core computes for a per-sample metric: its name, or its name and settings.
CoreMetric = Union[str, dict[str, Any]]


def resolve(name: str, loss: losses.Loss, output_dim: int) -> str:
    """The core's metric for a user's metric name.

    ``"accuracy"``/``"acc"`` follow the loss, as tf.keras did: binary accuracy for binary
    cross-entropy, sparse categorical accuracy for the sparse loss, categorical accuracy for
    categorical cross-entropy. With other losses, Keras 3's rule on shapes applies: one output
    means binary accuracy, several mean categorical accuracy.
    """
    if not isinstance(name, str):
        raise TypeError(f"Metrics are given by name (str). Received: {name!r}")
    if name in ("accuracy", "acc"):
        if isinstance(loss, losses.BinaryCrossentropy):
            return "binary_accuracy"
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            return "sparse_categorical_accuracy"
        if isinstance(loss, losses.CategoricalCrossentropy):
            return "categorical_accuracy"
        return "binary_accuracy" if output_dim == 1 else "categorical_accuracy"
    if name in _ALIASES:
        resolved = _ALIASES[name]
        _check_targets(name, resolved in _SPARSE, loss)
        return resolved
    raise ValueError(
        f"Unknown metric: {name!r}. Expected 'accuracy' or one of {sorted(_ALIASES)}."
    )


def _check_targets(name: str, sparse_metric: bool, loss: losses.Loss) -> None:
    sparse_loss = isinstance(loss, losses.SparseCategoricalCrossentropy)
    if sparse_metric and not sparse_loss:
        raise ValueError(
            f"{name} needs integer labels, which only the loss sparse_categorical_crossentropy takes here."
        )
    if not sparse_metric and sparse_loss:
        raise ValueError(
            f"{name} needs dense (one-hot) targets, but the loss "
            "sparse_categorical_crossentropy takes integer labels; use 'accuracy', "
            "'sparse_categorical_accuracy' or 'sparse_top_k_categorical_accuracy'."
        )


def _as_2d(values: Any, name: str) -> Array:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1)
    elif array.ndim != 2:
        raise ValueError(f"`{name}` must be 1- or 2-dimensional. Received: shape {array.shape}")
    return array


def _floats(values: Any) -> Array:
    return np.asarray(values, dtype=np.float64)


def _sample_weights(sample_weight: Any, rows: int) -> Array:
    if sample_weight is None:
        return np.ones(rows)
    weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if weights.size == 1:
        return np.full(rows, float(weights[0]))
    if weights.size != rows:
        raise ValueError(f"`sample_weight` must have one weight per sample ({rows}). Received: {weights.size}")
    return weights


class _RefusedIfCustom:
    """Metric's base: refuses a user's metric class before any ``__init__`` runs (a subclass's
    own runs first and may fail on its own). Apart from Metric so that ``inspect.signature`` of
    a metric class still shows its ``__init__``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        _refuse_custom_metric(cls)
        return super().__new__(cls)


class Metric(_RefusedIfCustom):
    """A metric: a state updated by ``update_state`` and reduced by ``result``, as Keras's
    ``keras.metrics.Metric``. ``name`` defaults to the class's snake_case name, made unique as
    Keras makes it (``auc``, ``auc_1``, ...; ``keras.backend.clear_session`` starts over)."""

    def __init__(self, name: Optional[str] = None, dtype: Any = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        self.name = name if name else unique_name(snake_case(type(self).__name__))
        self.dtype = dtype
        self.reset_state()

    def reset_state(self) -> None:
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class MeanMetricWrapper(Metric):
    """A per-sample value averaged over the samples (weighted by ``sample_weight``): the core
    sums it per sample (its ``core_name``)."""

    core_name = ""

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def values(self, y_true: Any, y_pred: Any) -> Array:
        """One value per sample."""
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        values = self.values(y_true, y_pred)
        weights = _sample_weights(sample_weight, values.shape[0])
        self.total += float(np.sum(values * weights))
        self.count += float(np.sum(weights))

    def result(self) -> float:
        return self.result_from_mean(self.total / self.count) if self.count else 0.0

    def result_from_mean(self, mean: float) -> float:
        """The metric from the mean of the per-sample values."""
        return mean

    def core_metric(self, loss: losses.Loss, output_dim: int) -> CoreMetric:
        """The core's per-sample metric for a model with this loss and output width (its name,
        or ``{"name", "k", "from_logits"}``); a ValueError when the model's targets do not fit
        the metric."""
        _check_targets(self.name, self.core_name in _SPARSE, loss)
        return self.core_name


def _argmax(values: Array) -> NDArray[np.intp]:
    return np.asarray(np.argmax(values, axis=-1), dtype=np.intp)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` equals ``y_true``, averaged over the outputs. In
    ``fit`` the core computes it for ``threshold=0.5``; another threshold is computed from
    confusion counts, which take a target as positive when it is nonzero."""

    core_name = "binary_accuracy"

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"Argument `threshold` must be in [0, 1]. Received: threshold={threshold}")
        self.threshold = float(threshold)
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        pred = _as_2d(y_pred, "y_pred")
        true = _as_2d(y_true, "y_true")
        return _floats(np.mean((pred > self.threshold).astype(np.float64) == true, axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of ``y_pred`` is the argmax of the one-hot ``y_true``."""

    core_name = "categorical_accuracy"

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        return _floats(_argmax(_as_2d(y_pred, "y_pred")) == _argmax(_as_2d(y_true, "y_true")))


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of ``y_pred`` is the integer label ``y_true``."""

    core_name = "sparse_categorical_accuracy"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        labels = np.asarray(y_true).reshape(-1)
        return _floats(_argmax(_as_2d(y_pred, "y_pred")) == labels)


def _in_top_k(pred: Array, target: NDArray[np.intp], k: int) -> Array:
    """Whether the target class is among the k highest: fewer than k classes score higher."""
    higher = np.sum(pred > pred[np.arange(pred.shape[0]), target][:, None], axis=-1)
    return _floats(higher < k)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the ``k`` highest predictions (fewer than
    ``k`` classes score strictly higher, as Keras's ``ops.in_top_k``)."""

    core_name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None) -> None:
        self.k = _positive_int(k, "k")
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        return _in_top_k(_as_2d(y_pred, "y_pred"), _argmax(_as_2d(y_true, "y_true")), self.k)

    def core_metric(self, loss: losses.Loss, output_dim: int) -> CoreMetric:
        _check_targets(self.name, self.core_name in _SPARSE, loss)
        return {"name": self.core_name, "k": self.k}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """How often the integer label is among the ``k`` highest predictions."""

    core_name = "sparse_top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(k=k, name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        labels = np.asarray(y_true).reshape(-1).astype(np.intp)
        return _in_top_k(_as_2d(y_pred, "y_pred"), labels, self.k)


def _clipped(p: Array) -> Array:
    return np.clip(p, EPSILON, 1.0 - EPSILON)


def _log_softmax(logits: Array) -> Array:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    return _floats(shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)))


def _log_probabilities(y_pred: Any, from_logits: bool) -> Array:
    """Keras's categorical cross-entropy's log q: log-softmax of logits, or the log of the
    probabilities scaled to sum 1 and clipped to [1e-7, 1 - 1e-7]."""
    pred = _as_2d(y_pred, "y_pred")
    if from_logits:
        return _log_softmax(pred)
    return _floats(np.log(_clipped(pred / np.sum(pred, axis=-1, keepdims=True))))


def _no_label_smoothing(label_smoothing: Any) -> None:
    if label_smoothing != 0:
        raise ValueError(
            f"fastmlp's cross-entropy metrics take no label smoothing. Received: label_smoothing={label_smoothing!r}"
        )


class BinaryCrossentropy(MeanMetricWrapper):
    """Keras's binary cross-entropy metric of the model's outputs, averaged over the outputs:
    of probabilities clipped to [1e-7, 1 - 1e-7], or of logits (``from_logits``). Unlike the
    loss, it holds no weight penalties."""

    core_name = "binary_crossentropy"

    def __init__(
        self, name: str = "binary_crossentropy", dtype: Any = None, from_logits: bool = False, label_smoothing: float = 0
    ) -> None:
        _no_label_smoothing(label_smoothing)
        self.from_logits = bool(from_logits)
        self.label_smoothing = label_smoothing
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        pred = _as_2d(y_pred, "y_pred")
        true = _as_2d(y_true, "y_true")
        if self.from_logits:
            # log(sigmoid(x)) = -softplus(-x), without overflow.
            log_p = -(np.maximum(-pred, 0) + np.log1p(np.exp(-np.abs(pred))))
            log_not_p = -(np.maximum(pred, 0) + np.log1p(np.exp(-np.abs(pred))))
        else:
            log_p, log_not_p = np.log(_clipped(pred)), np.log(1 - _clipped(pred))
        return _floats(np.mean(-(true * log_p + (1 - true) * log_not_p), axis=-1))

    def core_metric(self, loss: losses.Loss, output_dim: int) -> CoreMetric:
        _check_targets(self.name, self.core_name in _SPARSE, loss)
        return {"name": self.core_name, "from_logits": self.from_logits}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(BinaryCrossentropy):
    """Keras's categorical cross-entropy metric of the model's outputs against one-hot targets
    (``axis=-1`` only)."""

    core_name = "categorical_crossentropy"

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
        axis: int = -1,
    ) -> None:
        if axis not in (-1, 1):
            raise ValueError(f"fastmlp's cross-entropy metrics take axis=-1 only. Received: axis={axis!r}")
        self.axis = axis
        super().__init__(name=name, dtype=dtype, from_logits=from_logits, label_smoothing=label_smoothing)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        return _floats(-np.sum(_as_2d(y_true, "y_true") * _log_probabilities(y_pred, self.from_logits), axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class SparseCategoricalCrossentropy(BinaryCrossentropy):
    """Keras's categorical cross-entropy metric of the model's outputs against integer labels."""

    core_name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: Optional[int] = None,
        axis: int = -1,
    ) -> None:
        if ignore_class is not None:
            raise ValueError(f"fastmlp's cross-entropy metrics ignore no class. Received: ignore_class={ignore_class!r}")
        self.ignore_class = None
        if axis not in (-1, 1):
            raise ValueError(f"fastmlp's cross-entropy metrics take axis=-1 only. Received: axis={axis!r}")
        self.axis = axis
        super().__init__(name=name, dtype=dtype, from_logits=from_logits)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        log_q = _log_probabilities(y_pred, self.from_logits)
        labels = np.asarray(y_true).reshape(-1).astype(np.intp)
        return _floats(-log_q[np.arange(log_q.shape[0]), labels])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}


class Mean(Metric):
    """The (weighted) mean of the values given to ``update_state(values, sample_weight=None)``,
    as ``keras.metrics.Mean``. ``model.metrics[0]`` is one: the mean loss of the model's last
    loop."""

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        array = np.asarray(values, dtype=np.float64).reshape(-1)
        weights = _sample_weights(sample_weight, array.shape[0])
        self.total += float(np.sum(array * weights))
        self.count += float(np.sum(weights))

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0


class MeanSquaredError(MeanMetricWrapper):
    """The mean over the outputs of ``(y_true - y_pred) ** 2``, averaged over the samples."""

    core_name = "mean_squared_error"

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        return _floats(np.mean((_as_2d(y_pred, "y_pred") - _as_2d(y_true, "y_true")) ** 2, axis=-1))


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean over the outputs of ``|y_true - y_pred|``, averaged over the samples."""

    core_name = "mean_absolute_error"

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def values(self, y_true: Any, y_pred: Any) -> Array:
        return _floats(np.mean(np.abs(_as_2d(y_pred, "y_pred") - _as_2d(y_true, "y_true")), axis=-1))


class RootMeanSquaredError(MeanSquaredError):
    """The square root of the mean squared error over all samples (not a mean of roots): the
    core sums the squared errors, the square root is taken at the end."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def result_from_mean(self, mean: float) -> float:
        return math.sqrt(mean)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Argument `{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _thresholds(thresholds: Any, default: float) -> list[float]:
    """Keras's parse_init_thresholds: a number or a list, each in [0, 1]."""
    if thresholds is None:
        return [default]
    values = [thresholds] if isinstance(thresholds, (int, float)) else list(thresholds)
    bad = [t for t in values if t is None or not isinstance(t, (int, float)) or not 0 <= t <= 1]
    if bad or not values:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad or values}")
    return [float(t) for t in values]


def _divide_no_nan(a: Array, b: Array) -> Array:
    safe = np.where(b == 0, 1.0, b)
    return np.where(b == 0, 0.0, a / safe)


class ConfusionMetric(Metric):
    """A metric whose state is confusion counts per threshold (and per output column): true
    positives, false positives, true negatives and false negatives, where a prediction ``p`` is
    positive at threshold ``t`` when ``p > t`` and a target is positive when it is nonzero. The
    core counts them (unweighted, in integers) per output column; ``class_id`` picks a column,
    ``top_k`` keeps only each row's ``k`` largest predictions."""

    def __init__(
        self,
        thresholds: list[float],
        name: Optional[str] = None,
        dtype: Any = None,
        top_k: Optional[int] = None,
        class_id: Optional[int] = None,
        evenly: bool = False,
        from_logits: bool = False,
    ) -> None:
        self.top_k = None if top_k is None else _positive_int(top_k, "top_k")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, (int, np.integer)) or class_id < 0):
            raise ValueError(f"Argument `class_id` must be a non-negative integer. Received: class_id={class_id!r}")
        self.class_id = None if class_id is None else int(class_id)
        self.threshold_list = list(thresholds)
        self.evenly = evenly
        self.from_logits = bool(from_logits)
        # The core counts at ascending thresholds; order maps them back to the user's order.
        self.order = np.argsort(np.asarray(self.threshold_list), kind="stable")
        super().__init__(name=name, dtype=dtype)

    def per_label(self) -> bool:
        """Whether the counts stay per output column (AUC's multi_label)."""
        return False

    def reset_state(self) -> None:
        self.counts: Optional[Array] = None

    def confusion_spec(self, loss: losses.Loss, output_dim: int) -> dict[str, Any]:
        """What the core counts for a model with this loss and output width; a ValueError when
        the model's outputs or targets do not fit the metric."""
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            raise ValueError(
                f"Metric {self.name!r} ({type(self).__name__}) needs dense targets of the model's output shape, "
                "but the loss sparse_categorical_crossentropy takes integer labels; use categorical_crossentropy "
                "with one-hot targets."
            )
        self.check_outputs(output_dim)
        return {
            "thresholds": [self.threshold_list[i] for i in self.order],
            "evenly": self.evenly,
            "top_k": 0 if self.top_k is None else self.top_k,
            "from_logits": self.from_logits,
        }

    def check_outputs(self, output_dim: int) -> None:
        if self.class_id is not None and self.class_id >= output_dim:
            raise ValueError(
                f"Metric {self.name!r}: class_id={self.class_id} is out of range for a model with "
                f"{output_dim} outputs."
            )

    def count(self, y_true: Array, y_pred: Array, weights: Array) -> Array:
        """The core's counts (per column: positives, negatives, then true and false positives
        per ascending threshold), in NumPy, weighted per sample."""
        n = len(self.threshold_list)
        thresholds = np.asarray([self.threshold_list[i] for i in self.order])
        pred = 1.0 / (1.0 + np.exp(-y_pred)) if self.from_logits else y_pred
        if self.top_k is not None:
            ranks = np.argsort(-pred, axis=-1, kind="stable")
            keep = np.zeros(pred.shape, dtype=bool)
            np.put_along_axis(keep, ranks[:, : self.top_k], True, axis=-1)
            pred = np.where(keep, pred, NEG_INF)
        positive = y_true != 0
        if self.evenly:
            bucket = np.maximum(np.ceil(np.clip(pred, 0.0, 1.0) * (n - 1)) - 1, 0)
            above = bucket[:, :, None] >= np.arange(n)
        else:
            above = pred[:, :, None] > thresholds
        w = weights[:, None]
        counts = np.zeros((pred.shape[1], 2 + 2 * n))
        counts[:, 0] = np.sum(positive * w, axis=0)
        counts[:, 1] = np.sum(~positive * w, axis=0)
        counts[:, 2 : 2 + n] = np.sum(above * (positive * w)[:, :, None], axis=0)
        counts[:, 2 + n :] = np.sum(above * (~positive * w)[:, :, None], axis=0)
        return counts

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        pred = _as_2d(y_pred, "y_pred")
        true = _as_2d(y_true, "y_true")
        if self.top_k is not None and np.ndim(y_pred) == 1:
            # Keras's top k is over the last axis: a 1-D y_pred is one row.
            pred, true = pred.reshape(1, -1), true.reshape(1, -1)
        if true.shape != pred.shape:
            raise ValueError(
                f"`y_true` and `y_pred` must have the same shape. Received: {true.shape} and {pred.shape}"
            )
        self.check_outputs(pred.shape[1])
        counts = self.count(true, pred, _sample_weights(sample_weight, pred.shape[0]))
        if self.counts is not None and self.counts.shape != counts.shape:
            raise ValueError(
                f"Metric {self.name!r} has seen {self.counts.shape[0]} outputs per sample; received {pred.shape[1]}."
            )
        self.counts = counts if self.counts is None else self.counts + counts

    def result(self) -> float:
        if self.counts is None:
            n = len(self.threshold_list)
            zeros = np.zeros(n)
            return self.result_from(zeros, zeros, zeros, zeros)
        return self.result_from_counts(self.counts)

    def result_from_counts(self, counts: Any) -> float:
        """The metric from the core's counts (a flat array, or one row per output column)."""
        n = len(self.threshold_list)
        table = np.asarray(counts, dtype=np.float64).reshape(-1, 2 + 2 * n)
        if self.class_id is not None:
            table = table[self.class_id : self.class_id + 1]
        positives, negatives = table[:, 0:1], table[:, 1:2]
        unsort = np.argsort(self.order, kind="stable")
        tp = table[:, 2 : 2 + n][:, unsort]
        fp = table[:, 2 + n :][:, unsort]
        fn, tn = positives - tp, negatives - fp
        if not self.per_label():
            tp, fp, tn, fn = (np.sum(a, axis=0) for a in (tp, fp, tn, fn))
        else:
            tp, fp, tn, fn = (a.T for a in (tp, fp, tn, fn))
        return self.result_from(tp, fp, tn, fn)

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> float:
        """Keras's formula on the counts (shape (thresholds,), or (thresholds, labels))."""
        raise NotImplementedError


def _first_or_all(values: Array) -> Union[float, Array]:
    return float(values[0]) if values.shape[0] == 1 else values


class Precision(ConfusionMetric):
    """``tp / (tp + fp)`` at each threshold (Keras's ``keras.metrics.Precision``):
    ``thresholds=None`` means 0.5, or, with ``top_k``, every prediction in a row's top k;
    ``class_id`` restricts to one output column. ``result()`` is a float for one threshold, an
    array for several (``fit`` logs need one threshold)."""

    def __init__(
        self,
        thresholds: Any = None,
        top_k: Optional[int] = None,
        class_id: Optional[int] = None,
        name: Optional[str] = None,
        dtype: Any = None,
    ) -> None:
        self.init_thresholds = thresholds
        default = 0.5 if top_k is None else NEG_INF
        super().__init__(_thresholds(thresholds, default), name, dtype, top_k=top_k, class_id=class_id)

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Any:
        return _first_or_all(_divide_no_nan(tp, tp + fp))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Recall(Precision):
    """``tp / (tp + fn)`` at each threshold, with Precision's arguments."""

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Any:
        return _first_or_all(_divide_no_nan(tp, tp + fn))


class FBetaScore(ConfusionMetric):
    """Keras's F-beta score from per-class confusion counts: per class
    ``(1 + beta**2) * P * R / (beta**2 * P + R)`` (with Keras's 1e-7 in each division), where a
    prediction is positive above ``threshold``, or, with ``threshold=None``, when it is its row's
    largest (the first on ties). ``average``: None (one value per class; ``fit`` logs need an
    average), ``"micro"`` (counts summed over the classes first), ``"macro"`` (the mean) or
    ``"weighted"`` (weighted by each class's positive targets)."""

    def __init__(
        self,
        average: Optional[str] = None,
        beta: float = 1.0,
        threshold: Optional[float] = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ) -> None:
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', 'weighted'}. "
                f"Received: average={average}"
            )
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float > 0. Received: beta={beta}")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 < threshold <= 1):
            raise ValueError(
                "Invalid `threshold` argument value. It should be a Python float in the range ]0, 1]. "
                f"Received: threshold={threshold}"
            )
        self.average = average
        self.beta = float(beta)
        self.threshold = None if threshold is None else float(threshold)
        # threshold=None: only each row's largest prediction stays above -1e10 (top_k=1).
        super().__init__([NEG_INF / 10] if threshold is None else [float(threshold)], name, dtype,
                         top_k=1 if threshold is None else None)

    def per_label(self) -> bool:
        return True

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Any:
        tp, fp, fn = tp[0], fp[0], fn[0]  # one threshold: per class
        if self.average == "micro":
            tp, fp, fn = (np.asarray(np.sum(a, keepdims=True), dtype=np.float64) for a in (tp, fp, fn))
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        beta2 = self.beta**2
        score = precision * recall / (beta2 * precision + recall + EPSILON) * (1 + beta2)
        if self.average == "weighted":
            weights = tp + fn
            return float(np.sum(score * weights / (np.sum(weights) + EPSILON)))
        if self.average is not None:
            return float(np.mean(score))
        return score

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "beta": self.beta, "average": self.average,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """The F-beta score with ``beta=1``: ``2 P R / (P + R)`` per class, averaged by ``average``
    (Keras's ``F1Score``)."""

    def __init__(
        self, average: Optional[str] = None, threshold: Optional[float] = None, name: str = "f1_score", dtype: Any = None
    ) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


class _ConditionCount(ConfusionMetric):
    """One confusion count at each threshold (default 0.5)."""

    def __init__(self, thresholds: Any = None, name: Optional[str] = None, dtype: Any = None) -> None:
        self.init_thresholds = thresholds
        super().__init__(_thresholds(thresholds, 0.5), name, dtype)

    def pick(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Array:
        raise NotImplementedError

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Any:
        return _first_or_all(self.pick(tp, fp, tn, fn))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConditionCount):
    """The (weighted) number of positive targets predicted positive (``p > threshold``)."""

    def pick(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Array:
        return tp


class FalsePositives(_ConditionCount):
    """The (weighted) number of zero targets predicted positive."""

    def pick(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Array:
        return fp


class TrueNegatives(_ConditionCount):
    """The (weighted) number of zero targets predicted negative."""

    def pick(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Array:
        return tn


class FalseNegatives(_ConditionCount):
    """The (weighted) number of positive targets predicted negative."""

    def pick(self, tp: Array, fp: Array, tn: Array, fn: Array) -> Array:
        return fn


# The most thresholds an AUC takes (Keras sets none): its state and the list of thresholds grow
# with them, and a model file names the count, so a file of a few bytes could ask for any amount
# of memory. A million buckets resolve the curve far below float32's rounding of the scores.
_MAX_AUC_THRESHOLDS = 1_000_000


class AUC(ConfusionMetric):
    """Area under the ROC or PR curve by Keras's threshold buckets (``keras.metrics.AUC``):
    ``num_thresholds`` thresholds ``i / (num_thresholds - 1)`` with the ends ``-1e-7`` and
    ``1 + 1e-7`` (or the given ``thresholds`` with those ends), summed by ``summation_method``
    (``"interpolation"``: the trapezoid for ROC, Davis & Goadrich's interpolation for PR;
    ``"minoring"``, ``"majoring"``). ``multi_label`` averages the per-column AUCs (weighted by
    ``label_weights``); otherwise all outputs are pooled."""

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: Optional[str] = None,
        dtype: Any = None,
        thresholds: Optional[list[float]] = None,
        multi_label: bool = False,
        num_labels: Optional[int] = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        if curve not in ("ROC", "roc", "PR", "pr"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC"]')
        methods = ("interpolation", "Interpolation", "majoring", "Majoring", "minoring", "Minoring")
        if summation_method not in methods:
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". '
                'Expected values are ["interpolation", "majoring", "minoring"]'
            )
        self.curve = curve.upper()
        self.summation_method = summation_method.lower()
        self.init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_thresholds(thresholds, 0.5))
            if len(inner) + 2 > _MAX_AUC_THRESHOLDS:
                raise ValueError(f"Argument `thresholds` may hold at most {_MAX_AUC_THRESHOLDS - 2} values. Received: {len(inner)}")
            self.num_thresholds = len(inner) + 2
            spaced = np.arange(len(inner) + 2, dtype=np.float32) / (len(inner) + 1)
            evenly = bool(np.allclose([0.0, *inner, 1.0], spaced, atol=EPSILON))
        else:
            if (
                isinstance(num_thresholds, bool)
                or not isinstance(num_thresholds, (int, np.integer))
                or not 1 < num_thresholds <= _MAX_AUC_THRESHOLDS
            ):
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1 (and at most {_MAX_AUC_THRESHOLDS}: the "
                    f"metric keeps counts per threshold). Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            evenly = True
        self.multi_label = bool(multi_label)
        if num_labels is not None and not self.multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.num_labels = None if num_labels is None else _positive_int(num_labels, "num_labels")
        self.label_weights = None if label_weights is None else np.asarray(label_weights, dtype=np.float64).reshape(-1)
        if self.label_weights is not None and not self.multi_label:
            raise ValueError("fastmlp's AUC takes `label_weights` only with multi_label=True.")
        super().__init__([-EPSILON, *inner, 1.0 + EPSILON], name, dtype, evenly=evenly, from_logits=from_logits)

    @property
    def thresholds(self) -> list[float]:
        return list(self.threshold_list)

    def per_label(self) -> bool:
        return self.multi_label

    def check_outputs(self, output_dim: int) -> None:
        if self.multi_label and self.num_labels is not None and self.num_labels != output_dim:
            raise ValueError(
                f"Metric {self.name!r}: num_labels={self.num_labels}, but the model has {output_dim} outputs."
            )
        if self.label_weights is not None and self.label_weights.size != output_dim:
            raise ValueError(
                f"Metric {self.name!r}: {self.label_weights.size} label_weights for {output_dim} outputs."
            )

    def average(self, by_label: Array) -> float:
        if not self.multi_label:
            return float(np.sum(by_label))
        sums = np.sum(by_label, axis=0)
        if self.label_weights is None:
            return float(np.mean(sums))
        total = float(np.sum(self.label_weights))
        return float(np.sum(sums * self.label_weights)) / total if total else 0.0

    def interpolate_pr_auc(self, tp: Array, fp: Array, fn: Array) -> float:
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = np.logical_and(p[:-1] > 0, p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        increment = _divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))
        return self.average(increment)

    def result_from(self, tp: Array, fp: Array, tn: Array, fn: Array) -> float:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc(tp, fp, fn)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self.average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
        }
        if self.init_from_thresholds:
            config["thresholds"] = self.threshold_list[1:-1]
        return config


# Keras's metrics.get: class names and their snake_case names (and Keras's aliases) make an
# instance named by the string given.
_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        AUC, Precision, Recall, TruePositives, FalsePositives, TrueNegatives, FalseNegatives,
        BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError, RootMeanSquaredError,
        BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, FBetaScore, F1Score,
    )
}
_BY_NAME: dict[str, type[Metric]] = {
    **_CLASSES,
    **{snake_case(name): cls for name, cls in _CLASSES.items()},
    "MSE": MeanSquaredError,
    "MAE": MeanAbsoluteError,
}


# Keras's metric functions: per-sample values of (y_true, y_pred), usable in compile(metrics=[...])
# (logged under the function's name, as Keras).
def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> Array:
    """Per-sample binary accuracy. Keras: ``keras.metrics.binary_accuracy``."""
    return BinaryAccuracy(name="binary_accuracy", threshold=threshold).values(y_true, y_pred)


def categorical_accuracy(y_true: Any, y_pred: Any) -> Array:
    """Per-sample categorical accuracy. Keras: ``keras.metrics.categorical_accuracy``."""
    return CategoricalAccuracy(name="categorical_accuracy").values(y_true, y_pred)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> Array:
    """Per-sample accuracy against integer labels. Keras: ``keras.metrics.sparse_categorical_accuracy``."""
    return SparseCategoricalAccuracy(name="sparse_categorical_accuracy").values(y_true, y_pred)


def mean_squared_error(y_true: Any, y_pred: Any) -> Array:
    """Per-sample mean squared error. Keras: ``keras.metrics.mean_squared_error``."""
    return MeanSquaredError(name="mean_squared_error").values(y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Any) -> Array:
    """Per-sample mean absolute error. Keras: ``keras.metrics.mean_absolute_error``."""
    return MeanAbsoluteError(name="mean_absolute_error").values(y_true, y_pred)


_FUNCTIONS = (binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mean_squared_error, mean_absolute_error)


def _refuse_custom_metric(cls: type) -> None:
    """NotImplementedError for a user's Metric subclass that keeps its own state."""
    overridden = _validation.user_overrides(cls, ("update_state", "result", "reset_state"))
    if overridden:
        raise NotImplementedError(
            f"{cls.__name__} is a metric of your own ({', '.join(overridden)}): fastmlp computes its "
            "metrics' states in its native core, which never calls Python, so it cannot update it. "
            "Use a built-in metric (see docs/keras.md), or compute it from predict() in a callback."
        )


def get(identifier: Any) -> Union[Metric, str]:
    """A metric from what ``compile(metrics=[...])`` takes: a ``Metric`` (as is), a
    ``{"class_name", "config"}`` dict, a class or class name (an instance), or one of the
    per-sample names (``"accuracy"``, ``"acc"``, ``"mse"``, ...), returned as the string.
    An unknown name is a ValueError, as in Keras."""
    if isinstance(identifier, Metric):
        _refuse_custom_metric(type(identifier))  # made without Metric.__new__
        return identifier
    for function in _FUNCTIONS:
        if identifier is function:
            return str(function.__name__)
    if isinstance(identifier, type) and issubclass(identifier, Metric) and identifier in _CLASSES.values():
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc") or identifier in _ALIASES:
            return identifier
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        classes = sorted(name for name in _BY_NAME if name.islower())
        raise ValueError(
            f"Unknown metric: {identifier!r} (Could not interpret metric identifier). Expected 'accuracy', "
            f"one of {sorted(_ALIASES)}, or a metric class's name: one of {classes} (or its class "
            "name, such as 'AUC')."
        )
    raise TypeError(f"Metrics are given by name (str) or as fm.metrics objects. Received: {identifier!r}")


def serialize(metric: Union[Metric, str]) -> Union[str, dict[str, Any]]:
    """A metric as ``compile``'s saved config holds it: a name, or its class and config."""
    if isinstance(metric, str):
        return metric
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: Any) -> Union[Metric, str]:
    """The metric that ``serialize`` wrote."""
    if isinstance(config, str):
        return config
    if not isinstance(config, dict) or config.get("class_name") not in _CLASSES:
        raise ValueError(f"Unknown metric config: {config!r}. Expected a class name in {sorted(_CLASSES)}.")
    settings = config.get("config", {})
    if not isinstance(settings, dict):
        raise ValueError(f"A metric's config must be a dict. Received: {settings!r}")
    return _CLASSES[config["class_name"]].from_config(settings)
