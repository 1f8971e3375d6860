"""A built ``Sequential`` model as the dense layers its ONNX graph computes, read through the
model's public API (its layers, their weights and configuration).

An activation layer (``Activation``, ``LeakyReLU``, ``ELU``, ``GELU``) is folded into the Dense
layer before it, as the model itself does; ``Dropout`` does nothing at inference and ``Flatten``
is the graph's input reshape, so neither adds a layer.
"""

from __future__ import annotations

import dataclasses

from .. import activations
from ..layers import Activation, Dense, Dropout, Flatten, InputLayer
from ..models import Sequential
from ._graph import DenseLayer


def sample_shape(model: Sequential) -> tuple[int, ...]:
    """The shape of one input sample; ValueError for a model that is not built."""
    shape = model.get_config()["input_shape"]
    if not model.built or shape is None:
        raise ValueError(
            f"Model {model.name!r} is not built yet: it has no weights to export. Call "
            "`build(input_shape)`, `fit` or `predict` first, or start it with `fastmlp.layers.Input`."
        )
    return tuple(int(d) for d in shape)


def dense_layers(model: Sequential) -> list[DenseLayer]:
    layers: list[DenseLayer] = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            weights = layer.get_weights()
            layers.append(
                DenseLayer(
                    name=layer.name,
                    kernel=weights[0],
                    bias=weights[1] if layer.use_bias else None,
                    activation=layer.activation,
                    alpha=activations.DEFAULT_ALPHA.get(layer.activation, 0.0),
                )
            )
        elif isinstance(layer, Activation):  # the model's order rules put a Dense layer before it
            alpha = activations.DEFAULT_ALPHA.get(layer.activation, 0.0) if layer.alpha is None else layer.alpha
            layers[-1] = dataclasses.replace(layers[-1], activation=layer.activation, alpha=alpha)
        elif not isinstance(layer, (Dropout, Flatten, InputLayer)):
            raise ValueError(
                f"The ONNX exporter cannot express layer {layer.name!r} of type "
                f"{type(layer).__name__}. It exports Dense, Activation, LeakyReLU, ELU, GELU, "
                "Dropout and Flatten layers."
            )
    return layers
