"""Activation names understood by the C++ core (``Dense(activation=...)``), with Keras's names
and default parameters (``leaky_relu``'s negative slope 0.2, ``elu``'s alpha 1.0)."""

from __future__ import annotations

from typing import Optional

from .reference import ACTIVATIONS  # one list: the reference defines each of them

_ALIASES = {"silu": "swish", None: "linear"}


def get(identifier: Optional[str]) -> str:
    """The canonical name of an activation; ``None`` means linear, as in Keras."""
    if identifier in _ALIASES:
        return _ALIASES[identifier]
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return identifier
    raise ValueError(
        f"Could not interpret activation function identifier: {identifier!r}. "
        f"Expected None or one of {[*ACTIVATIONS, 'silu']}."
    )
