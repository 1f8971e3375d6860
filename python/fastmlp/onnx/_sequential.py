"""A built ``Sequential`` model as the dense layers its ONNX graph computes, read through the
model's public API (its layers, their weights and configuration).

An activation layer (``Activation``, ``LeakyReLU``, ``ELU``, ``GELU``) is folded into the Dense
layer before it, as the model itself does; ``Dropout`` does nothing at inference and ``Flatten``
is the graph's input reshape, so neither adds a layer. A ``BatchNormalization`` computes, at
inference, an affine map with the moving statistics: right after a Dense layer without an
activation, of that layer's outputs, folded into its kernel and bias; anywhere else, of the next
Dense layer's inputs, folded into that layer's kernel and bias (in float64, then the model's
dtype).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from .. import activations
from ..layers import Activation, BatchNormalization, Dense, Dropout, Flatten, InputLayer, Layer
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
    pending: Optional[BatchNormalization] = None  # normalizes the next Dense layer's input
    previous: Optional[Layer] = None
    for layer in model.layers:
        if isinstance(layer, Dense):
            weights = layer.get_weights()
            dense = DenseLayer(
                name=layer.name,
                kernel=weights[0],
                bias=weights[1] if layer.use_bias else None,
                activation=layer.activation,
                alpha=activations.DEFAULT_ALPHA.get(layer.activation, 0.0),
            )
            layers.append(dense if pending is None else _folded_input(pending, dense))
            pending = None
        elif isinstance(layer, Activation):  # the model's order rules put a Dense layer before it
            alpha = activations.DEFAULT_ALPHA.get(layer.activation, 0.0) if layer.alpha is None else layer.alpha
            layers[-1] = dataclasses.replace(layers[-1], activation=layer.activation, alpha=alpha)
        elif isinstance(layer, BatchNormalization) and isinstance(previous, Dense) and previous.activation == "linear":
            layers[-1] = _folded(layers[-1], layer)  # right after its Dense layer, before the activation
        elif isinstance(layer, BatchNormalization):
            pending = layer
        elif not isinstance(layer, (Dropout, Flatten, InputLayer)):
            raise ValueError(
                f"The ONNX exporter cannot express layer {layer.name!r} of type "
                f"{type(layer).__name__}. It exports Dense, Activation, LeakyReLU, ELU, GELU, "
                "Dropout, BatchNormalization and Flatten layers."
            )
        previous = layer
    if pending is not None:
        raise ValueError(f"BatchNormalization layer {pending.name!r} comes after the last Dense layer: nothing to export.")
    return layers


def _inference_map(norm: BatchNormalization) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(scale, shift) of the normalization at inference, ``x * scale + shift``, in float64:
    ``scale = gamma / sqrt(moving_variance + epsilon)``, ``shift = beta - moving_mean * scale``."""
    scale = 1.0 / np.sqrt(norm.moving_variance.astype(np.float64) + norm.epsilon)
    if norm.gamma is not None:
        scale = scale * norm.gamma.astype(np.float64)
    shift = -norm.moving_mean.astype(np.float64) * scale
    if norm.beta is not None:
        shift = shift + norm.beta.astype(np.float64)
    return scale, shift


def _folded_input(norm: BatchNormalization, dense: DenseLayer) -> DenseLayer:
    """The normalization's inference map of the inputs, then the Dense layer, as one Dense
    layer: ``(x * scale + shift) @ kernel + bias = x @ (scale[:, None] * kernel) + (shift @
    kernel + bias)``."""
    dtype = dense.kernel.dtype
    scale, shift = _inference_map(norm)
    kernel = dense.kernel.astype(np.float64)
    bias = shift @ kernel if dense.bias is None else shift @ kernel + dense.bias.astype(np.float64)
    return dataclasses.replace(dense, kernel=(scale[:, None] * kernel).astype(dtype), bias=bias.astype(dtype))


def _folded(dense: DenseLayer, norm: BatchNormalization) -> DenseLayer:
    """The Dense layer followed by the normalization's inference map, ``(z - moving_mean) *
    scale + beta`` with ``scale = gamma / sqrt(moving_variance + epsilon)``, as one Dense layer."""
    dtype = dense.kernel.dtype
    scale, shift = _inference_map(norm)
    bias = shift if dense.bias is None else dense.bias.astype(np.float64) * scale + shift
    kernel = dense.kernel.astype(np.float64) * scale
    return dataclasses.replace(dense, kernel=kernel.astype(dtype), bias=bias.astype(dtype))
