"""Layers, shaped like ``keras.layers``: ``Input``, ``Flatten`` and ``Dense``.

A layer keeps its configuration; its weights live in the model's C++ network once the model is
built (when the input size is known), in Keras's layout: kernel ``(in, out)``, bias ``(out,)``.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from . import _validation, activations, initializers, regularizers
from ._engine import Engine
from ._names import unique_name


def _check_shape(shape: Any, argument: str) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"`{argument}` must be a tuple of positive integers. Received: {argument}={shape!r}") from None
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in dims
    ):
        raise ValueError(
            f"`{argument}` must be a non-empty tuple of positive integers. Received: {argument}={shape!r}"
        )
    return tuple(int(d) for d in dims)


class Layer:
    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name if name is not None else unique_name(self._default_name())
        self._engine: Optional[Engine] = None  # the engine of the model this layer belongs to
        self._index = -1  # its position among the model's Dense layers

    @classmethod
    def _default_name(cls) -> str:
        # Keras's to_snake_case: LeakyReLU -> leaky_re_lu, GELU -> gelu, InputLayer -> input_layer.
        name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls.__name__)
        return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()

    def bind_engine(self, engine: Optional[Engine], index: int = -1) -> None:
        """Called by the model this layer joins, with the model's engine and the layer's
        position among the model's Dense layers (its weights, once the model is built, are the
        engine's layer ``index``); called with ``None`` when a refused ``add`` lets it go. Not
        for users: a layer belongs to one model."""
        if engine is not None and self._engine is not None:
            raise ValueError(f"Layer {self.name!r} already belongs to a model.")
        self._engine = engine
        self._index = index if engine is not None else -1

    def get_weights(self) -> list[NDArray[np.floating]]:
        return []

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        if len(weights):
            raise ValueError(f"Layer {self.name!r} has no weights; received {len(weights)} arrays.")

    def count_params(self) -> int:
        return sum(int(w.size) for w in self.get_weights())

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class InputLayer(Layer):
    """The model's input: the shape of one sample (without the batch axis)."""

    def __init__(self, shape: Any, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.shape = _check_shape(shape, "shape")


def Input(shape: Any, name: Optional[str] = None) -> InputLayer:
    """``Input(shape=(784,))``: declares the input size so the model builds at once."""
    return InputLayer(shape, name=name)


class Flatten(Layer):
    """Reshapes each sample to one vector (e.g. 28 x 28 images to 784 features). Free: no copy."""

    def __init__(self, input_shape: Any = None, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.input_shape = None if input_shape is None else _check_shape(input_shape, "input_shape")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": self.input_shape}


class Dense(Layer):
    """``activation(x @ kernel + bias)``: a fully connected layer.

    Args:
        units: number of outputs, a positive integer.
        activation: "linear" (or None), "sigmoid", "tanh", "relu" or "softmax".
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: Keras names or ``fastmlp.initializers`` objects.
        kernel_regularizer, bias_regularizer: ``fastmlp.regularizers`` penalties (or names).
        input_shape: optional shape of one sample, for a first layer without ``Input``.
    """

    def __init__(
        self,
        units: int,
        activation: Optional[str] = None,
        use_bias: bool = True,
        kernel_initializer: initializers.InitializerLike = "glorot_uniform",
        bias_initializer: initializers.InitializerLike = "zeros",
        kernel_regularizer: regularizers.RegularizerLike = None,
        bias_regularizer: regularizers.RegularizerLike = None,
        input_shape: Any = None,
        name: Optional[str] = None,
    ) -> None:
        given: Any = units  # validated here: users pass anything
        if isinstance(given, bool) or not isinstance(given, numbers.Integral) or given < 1:
            if isinstance(given, float) and given.is_integer() and given >= 1:
                units = int(given)
            else:
                raise ValueError(
                    "Received an invalid value for `units`, expected a positive integer. "
                    f"Received: units={units!r}"
                )
        super().__init__(name)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.input_shape = None if input_shape is None else _check_shape(input_shape, "input_shape")

    def _built_engine(self) -> Engine:
        engine = self._engine
        if engine is None or not engine.built:
            raise ValueError(f"Layer {self.name!r} has no weights yet: the model is not built.")
        return engine

    @property
    def kernel(self) -> NDArray[np.floating]:
        return self._built_engine().kernel(self._index)

    @property
    def bias(self) -> Optional[NDArray[np.floating]]:
        return self._built_engine().bias(self._index)

    def get_weights(self) -> list[NDArray[np.floating]]:
        engine = self._engine
        if engine is None:
            return []
        with engine.lock:
            if not engine.built:
                return []
            weights = [engine.kernel(self._index)]
            bias = engine.bias(self._index)
            if bias is not None:
                weights.append(bias)
            return weights

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        """Replace this layer's kernel (and bias): every array is checked before any is set."""
        self._built_engine().set_weights([(self._index, self.name, weights)])

    def count_params(self) -> int:
        engine = self._engine
        if engine is None or not engine.built:
            return 0
        return engine.fan_in(self._index) * self.units + (self.units if self.use_bias else 0)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "input_shape": self.input_shape,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        settings = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if isinstance(settings.get(key), dict):
                settings[key] = initializers.deserialize(settings[key])
        for key in ("kernel_regularizer", "bias_regularizer"):
            settings[key] = regularizers.deserialize(settings.get(key))
        return cls(**settings)

    def __repr__(self) -> str:
        return f"<Dense name={self.name!r} units={self.units} activation={self.activation!r}>"


class Activation(Layer):
    """Applies an activation to the output of the Dense layer before it.

    fastmlp folds it into that Dense layer (which must have no activation of its own), so it
    costs nothing: ``Dense(64), LeakyReLU()`` trains exactly like one Dense layer whose
    activation is leaky_relu.
    """

    def __init__(self, activation: str, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.activation = activations.get(activation)
        self.alpha: Optional[float] = None  # the activation's parameter, None for its default

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "activation": self.activation}


class LeakyReLU(Activation):
    """``x if x > 0 else negative_slope * x`` (Keras's layer default slope: 0.3)."""

    def __init__(self, negative_slope: float = 0.3, name: Optional[str] = None) -> None:
        super().__init__("leaky_relu", name)
        self.alpha = _validation.finite_number(negative_slope, "negative_slope")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.alpha}


class ELU(Activation):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, name: Optional[str] = None) -> None:
        super().__init__("elu", name)
        self.alpha = _validation.finite_number(alpha, "alpha")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


class GELU(Activation):
    """``x * Phi(x)``, or with ``approximate=True`` its tanh approximation."""

    def __init__(self, approximate: bool = False, name: Optional[str] = None) -> None:
        super().__init__("gelu_tanh" if approximate else "gelu", name)
        self.approximate = bool(approximate)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "approximate": self.approximate}


class Dropout(Layer):
    """Inverted dropout on the output of the Dense layer before it (and its activation): while
    training, each value is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``;
    in evaluate and predict it does nothing. The masks come from fastmlp's seeded stream
    (``fm.utils.set_random_seed``), drawn the same way for every thread count."""

    def __init__(self, rate: float, name: Optional[str] = None) -> None:
        super().__init__(name)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate}


def deserialize(config: dict[str, Any]) -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` as saved by fastmlp."""
    name = config.get("class_name")
    settings = dict(config.get("config", {}))
    if name == "Dense":
        return Dense.from_config(settings)
    if name == "Flatten":
        return Flatten(**settings)
    classes: dict[str, type[Layer]] = {
        "Activation": Activation,
        "LeakyReLU": LeakyReLU,
        "ELU": ELU,
        "GELU": GELU,
        "Dropout": Dropout,
    }
    if name in classes:
        return classes[name](**settings)
    raise ValueError(f"Unknown layer in saved config: {name!r}")
