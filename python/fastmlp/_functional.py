"""The functional API's graphs as the engine runs them (internal): the chain of layers from one
input tensor to one output tensor.

fastmlp's engine runs a chain (each layer takes the one output of the layer before), as
``Sequential`` does; ``Model(inputs, outputs)`` and a subclassed model's ``call`` describe one
by symbolic tensors (``fastmlp._symbolic``). A graph that is not a chain (several inputs or
outputs, a layer used twice) is refused here with an error naming what does not fit. Branches
that do not lead to the output are not part of the model, as in Keras.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ._symbolic import KerasTensor, training_trace
from .layers import Dropout, InputLayer, Layer


def single_tensor(value: Any, argument: str) -> KerasTensor:
    """The one tensor of ``inputs`` or ``outputs`` (a tensor, or a list, tuple or dict of one)."""
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{argument}` argument cannot be empty. Received: {argument}={value!r}")
        if len(value) > 1:
            names = [getattr(t, "name", repr(t)) for t in value]
            raise ValueError(
                f"fastmlp runs models with one input and one output (a chain of layers); for the "
                "features of several layers, make one feature extractor per layer "
                "(`Model(inputs, layer.output)`). "
                f"Received: {argument} with {len(value)} tensors {names}"
            )
        value = value[0]
    if not isinstance(value, KerasTensor):
        raise TypeError(
            f"`{argument}` must be a symbolic tensor (from fastmlp.Input, or a layer called on one). "
            f"Received: {argument}={value!r} (of type {type(value).__name__})"
        )
    return value


def chain(inputs: Any, outputs: Any) -> tuple[InputLayer, list[Layer]]:
    """The input layer and the layers from ``inputs`` to ``outputs``, in order. ValueError
    (Keras's "Graph disconnected") when ``outputs`` does not come from ``inputs``."""
    source = single_tensor(inputs, "inputs")
    target = single_tensor(outputs, "outputs")
    if not isinstance(source.operation, InputLayer) or source.parent is not None:
        raise ValueError(
            "`inputs` must be the tensor of a fastmlp.Input (an input layer). "
            f"Received: inputs={source!r}, made by {source.operation!r}"
        )
    layers: list[Layer] = []
    tensor = target
    while tensor is not source:
        parent = tensor.parent
        if parent is None:
            raise ValueError(
                f"Graph disconnected: cannot find parent for tensor {source!r} at operation "
                f"'{getattr(tensor.operation, 'name', tensor.operation)}'. The model's outputs "
                "do not depend on its inputs."
            )
        layers.append(tensor.operation)
        tensor = parent
    layers.reverse()
    seen: dict[int, Layer] = {}
    for layer in layers:
        if id(layer) in seen:
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) is used more than once in this model; "
                "fastmlp runs each layer once (no shared weights): use a new layer for each use."
            )
        seen[id(layer)] = layer
    names = [layer.name for layer in layers] + [source.operation.name]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f'The name "{name}" is used {names.count(name)} times in the model. '
                "All operation names should be unique."
            )
    return source.operation, layers


def trace(call: Any, sample_shape: tuple[int, ...], dtype: str) -> tuple[InputLayer, list[Layer]]:
    """A subclassed model's ``call`` run on a symbolic input of ``sample_shape``: its input
    layer and chain of layers.

    A ``call`` that takes ``training`` runs twice, as Keras runs it in ``predict`` and in
    ``fit``: with its default, then with ``training=True`` (an error in that run is raised, as
    Keras's fit would). Chains that differ only by Dropout layers give the training one: a
    Dropout only there (``if training: x = self.dropout(x)``) acts in fit only, as in Keras,
    and one only in the inference chain is the identity anyway. Any other difference (other
    layers in training) cannot be one chain: a ValueError. A training run that makes its own
    layers (layers created inside ``call``) leaves the first run's chain, as a single run did."""
    input_layer = InputLayer(shape=sample_shape, dtype=dtype)
    source, layers = chain(input_layer.output, call(input_layer.output))
    if not _takes_training(call):
        return source, layers
    with training_trace():
        again = InputLayer(shape=sample_shape, dtype=dtype, name=f"{input_layer.name}_training")
        _, trained = chain(again.output, call(again.output, training=True))
    if [id(layer) for layer in trained] == [id(layer) for layer in layers]:
        return source, layers
    kept = {id(layer) for layer in layers}
    if not kept & {id(layer) for layer in trained}:
        return source, layers
    if _without_dropout(trained) == _without_dropout(layers):
        tensor = source.output
        for layer in trained:  # the chain's tensors, those of the training chain
            tensor = layer.place_in_chain(tensor)
        return source, trained
    raise ValueError(
        "The model's `call` runs other layers with training=True "
        f"({[layer.name for layer in trained]}) than without "
        f"({[layer.name for layer in layers]}): fastmlp runs one chain of layers in fit and in "
        "predict. Only Dropout may be left out of the inference path (it acts in fit only anyway); "
        "call the other layers in both, and pass `training` on to them."
    )


def _without_dropout(layers: list[Layer]) -> list[int]:
    return [id(layer) for layer in layers if not isinstance(layer, Dropout)]


def _takes_training(call: Any) -> bool:
    try:
        parameters = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
