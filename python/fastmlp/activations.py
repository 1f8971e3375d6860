"""Activation names understood by the C++ core (``Dense(activation=...)``), with Keras's names
and default parameters (``leaky_relu``'s negative slope 0.2, ``elu``'s alpha 1.0).

Each activation is also a function of the same name, as ``keras.activations.relu``: it computes
on NumPy arrays (in float64 for float64 input, else float32), and ``Dense(activation=fm.activations.relu)``
means ``activation="relu"`` (the core computes it; the function is not called while training).

``fastmlp.reference`` keeps its own copy of both tables, so that it reads without the library;
a test checks that the two agree."""

from __future__ import annotations

import math
from typing import Any, Callable, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

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

Array = NDArray[np.floating]


def _array(x: ArrayLike) -> Array:
    array = np.asarray(x)
    return array if array.dtype == np.float64 else array.astype(np.float32)


def linear(x: ArrayLike) -> Array:
    """``x``."""
    return _array(x)


def sigmoid(x: ArrayLike) -> Array:
    """``1 / (1 + exp(-x))``."""
    a = _array(x)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-a))).astype(a.dtype)


def tanh(x: ArrayLike) -> Array:
    """``tanh(x)``."""
    return np.tanh(_array(x))


def relu(x: ArrayLike) -> Array:
    """``max(x, 0)``."""
    a = _array(x)
    return np.maximum(a, 0).astype(a.dtype)


def softmax(x: ArrayLike, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    a = _array(x)
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    out: Array = (e / np.sum(e, axis=axis, keepdims=True)).astype(a.dtype)
    return out


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> Array:
    """``x if x > 0 else negative_slope * x``."""
    a = _array(x)
    out: Array = np.where(a > 0, a, negative_slope * a).astype(a.dtype)
    return out


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """``x if x > 0 else alpha * (exp(x) - 1)``."""
    a = _array(x)
    out: Array = np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0))).astype(a.dtype)
    return out


def gelu(x: ArrayLike, approximate: bool = False) -> Array:
    """``x * Phi(x)`` (Phi the standard normal CDF), or its tanh approximation."""
    a = _array(x)
    if approximate:
        inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)
        approximated: Array = (0.5 * a * (1 + np.tanh(inner))).astype(a.dtype)
        return approximated
    erf = np.vectorize(math.erf, otypes=[np.float64])
    exact: Array = (0.5 * a * (1 + erf(a / math.sqrt(2)))).astype(a.dtype)
    return exact


def softplus(x: ArrayLike) -> Array:
    """``log(1 + exp(x))``."""
    a = _array(x)
    return np.logaddexp(a, 0).astype(a.dtype)


def silu(x: ArrayLike) -> Array:
    """``x * sigmoid(x)`` (also named ``swish``)."""
    a = _array(x)
    return (a * sigmoid(a)).astype(a.dtype)


swish = silu

# The core's name of each function (gelu's function default is the exact form, as Keras's).
_FUNCTIONS: dict[Callable[..., Any], str] = {
    linear: "linear",
    sigmoid: "sigmoid",
    tanh: "tanh",
    relu: "relu",
    softmax: "softmax",
    leaky_relu: "leaky_relu",
    elu: "elu",
    gelu: "gelu",
    softplus: "softplus",
    silu: "swish",
}

ActivationLike = Union[str, Callable[..., Any], None]


def serialize(activation: Callable[..., Any]) -> str:
    """The name of an activation function of this module (Keras's ``activations.serialize``)."""
    return get(activation)


def deserialize(name: str) -> Callable[..., Any]:
    """The function of an activation name (Keras's ``activations.deserialize``)."""
    canonical = get(name)
    for function, core_name in _FUNCTIONS.items():
        if core_name == canonical:
            return function
    raise ValueError(f"Activation {name!r} has no function here (it is a layer's setting only).")


def get(identifier: ActivationLike) -> str:
    """The canonical name of an activation: a name, one of this module's functions, or
    ``None`` (linear), as Keras accepts them."""
    if callable(identifier) and not isinstance(identifier, str):
        found = _FUNCTIONS.get(identifier)
        if found is not None:
            return found
        raise ValueError(
            "fastmlp computes activations in its core, so `activation` must be a name or one of the "
            "functions of fastmlp.activations (custom functions are not supported). "
            f"Received: activation={identifier!r}"
        )
    if identifier in _ALIASES:
        return _ALIASES[identifier]
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return identifier
    raise ValueError(
        f"Could not interpret activation function identifier: {identifier!r}. "
        f"Expected None or one of {[*ACTIVATIONS, 'silu']}."
    )

