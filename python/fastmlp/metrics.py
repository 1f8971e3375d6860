"""Metric names, resolved as Keras resolves them; the values are computed in C++."""

from __future__ import annotations

from . import losses

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
_SPARSE = ("sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy")


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
        sparse_loss = isinstance(loss, losses.SparseCategoricalCrossentropy)
        if resolved in _SPARSE and not sparse_loss:
            raise ValueError(
                f"{name} needs integer labels, which only the loss "
                "sparse_categorical_crossentropy takes here."
            )
        if resolved not in _SPARSE and sparse_loss:
            raise ValueError(
                f"{name} needs dense (one-hot) targets, but the loss "
                "sparse_categorical_crossentropy takes integer labels; use 'accuracy', "
                "'sparse_categorical_accuracy' or 'sparse_top_k_categorical_accuracy'."
            )
        return resolved
    raise ValueError(
        f"Unknown metric: {name!r}. Expected 'accuracy' or one of {sorted(_ALIASES)}."
    )
