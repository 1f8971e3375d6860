"""Activation names understood by the C++ core (``Dense(activation=...)``), with Keras's names
and default parameters (``leaky_relu``'s negative slope 0.2, ``elu``'s alpha 1.0).

``fastmlp.reference`` keeps its own copy of both tables, so that it reads without the library;
a test checks that the two agree."""

from __future__ import annotations

from typing import Optional

# Every activation the core computes (and the reference defines), in the core's names.
ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "sigmoid",
    "tanh",
    "relu",
    "softmax",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
    "swish",
)
# The parameter of the parametrized activations when no layer sets one (Keras's defaults for the
# functions: leaky_relu's negative_slope 0.2, elu's alpha 1.0); 0 for the others.
DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}

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

