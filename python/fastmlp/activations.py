"""Activation names understood by the C++ core (``Dense(activation=...)``)."""

from __future__ import annotations

from typing import Optional

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "softmax")


def get(identifier: Optional[str]) -> str:
    """The canonical name of an activation; ``None`` means linear, as in Keras."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return identifier
    raise ValueError(
        f"Could not interpret activation function identifier: {identifier!r}. "
        f"Expected None or one of {list(ACTIVATIONS)}."
    )
