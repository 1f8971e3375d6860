"""Which layer may follow which in a Sequential model (internal): the one rule that
``Sequential.add`` applies as each layer comes, and the model-file reader applies to a saved
config, whose layers ``Sequential.from_config`` sets at once instead of adding them.

- Only the layers named below (and their subclasses) run at all.
- An ``Input`` comes first.
- A ``Normalization`` comes first, or right after the ``Input``: the model applies it to the
  data before the core runs the rest.
- An activation layer (``Activation``, ``LeakyReLU``, ``ELU``, ``GELU``) follows a ``Dense``
  layer without an activation (``Flatten`` between them aside): it is folded into that layer.
- A ``BatchNormalization`` right after a ``Dense`` layer without an activation is folded into that
  layer, between its product and its activation (an activation layer may follow it). Anywhere
  else (after an activation, a ``Dropout``, the ``Input`` or nothing) it normalizes the input of
  the next ``Dense`` layer: no activation layer or ``Flatten`` follows it, and no second such
  ``BatchNormalization`` comes before that ``Dense`` layer.
- A ``Dropout`` follows some ``Dense`` layer (it drops a layer's outputs) or a
  ``BatchNormalization`` of the next layer's input (it drops the normalized values), and not
  another ``Dropout``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from .layers import (
    ELU,
    GELU,
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    Layer,
    LeakyReLU,
    Normalization,
)

# The layer classes a saved config names, by their names there.
CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (InputLayer, Normalization, Flatten, Dense, Activation, LeakyReLU, ELU, GELU, Dropout, BatchNormalization)
}


@dataclass(frozen=True)
class Placement:
    """A layer as the rule sees it."""

    cls: type[Layer]
    linear: bool = False  # a Dense layer without an activation

    @classmethod
    def of(cls, layer: Layer) -> Placement:
        return cls(type(layer), isinstance(layer, Dense) and layer.activation == "linear")

    @classmethod
    def of_config(cls, config: dict[str, Any]) -> Placement:
        """For ``{"class_name": ..., "config": ...}`` whose class is one of ``CLASSES``."""
        layer_class = CLASSES[config["class_name"]]
        activation = config.get("config", {}).get("activation", "linear")
        return cls(layer_class, issubclass(layer_class, Dense) and activation == "linear")


def norm_slot(before: Sequence[Placement]) -> tuple[int, bool]:
    """Where the weights of a BatchNormalization after the layers ``before`` live in the core,
    as (the index of a Dense layer among them, on_input): right after a Dense layer without an
    activation, in that layer (``on_input`` False: it normalizes the product, before the
    activation); anywhere else in the next Dense layer, whose input it normalizes."""
    dense = sum(1 for layer in before if issubclass(layer.cls, Dense))
    if before and issubclass(before[-1].cls, Dense) and before[-1].linear:
        return dense - 1, False
    return dense, True


def trailing_norm(layers: Sequence[Placement]) -> Optional[int]:
    """The position of a BatchNormalization that normalizes the input of a Dense layer after
    the last of ``layers`` (which none follows), if any."""
    for position in range(len(layers) - 1, -1, -1):
        if issubclass(layers[position].cls, Dense):
            return None
        if issubclass(layers[position].cls, BatchNormalization) and norm_slot(layers[:position])[1]:
            return position
    return None


def misplaced(layers: Sequence[Placement]) -> Optional[tuple[int, str]]:
    """The first layer that may not follow the ones before it, and why; None if every layer
    is in its place."""
    before: Optional[Placement] = None  # the layer before
    carrier: Optional[Placement] = None  # the last layer before other than Flatten
    seen_dense = False
    open_norm = False  # a BatchNormalization of the next Dense layer's input came since the last
    for index, layer in enumerate(layers):
        problem = None
        if not issubclass(layer.cls, tuple(CLASSES.values())):
            problem = (
                f"fastmlp's engine runs {', '.join(CLASSES)} layers; a {layer.cls.__name__} layer is not "
                "one of them."
            )
        elif issubclass(layer.cls, InputLayer) and index > 0:
            problem = "An Input can only be the first layer of a Sequential model."
        elif issubclass(layer.cls, Normalization) and not (
            before is None or (issubclass(before.cls, InputLayer) and index == 1)
        ):
            problem = (
                "Normalization must be the model's first layer (after its Input): fastmlp applies it "
                "to the data before the rest of the model runs."
            )
        elif issubclass(layer.cls, Activation) and not (
            carrier is not None and issubclass(carrier.cls, Dense) and carrier.linear
        ):
            problem = (
                f"{layer.cls.__name__} must follow a Dense layer without an activation: fastmlp "
                "folds it into that layer (e.g. Dense(64), LeakyReLU())."
            )
        elif issubclass(layer.cls, BatchNormalization) and open_norm:
            problem = (
                "Two BatchNormalization layers before one Dense layer: fastmlp normalizes the next "
                "Dense layer's input once."
            )
        elif issubclass(layer.cls, Flatten) and open_norm:
            problem = (
                "Flatten after a BatchNormalization: fastmlp's BatchNormalization normalizes the "
                "features of flat samples; put it after the Flatten."
            )
        elif issubclass(layer.cls, Dropout) and not (seen_dense or open_norm):
            problem = "Dropout must follow a Dense layer: fastmlp drops a layer's outputs, not its inputs."
        elif issubclass(layer.cls, Dropout) and before is not None and issubclass(before.cls, Dropout):
            problem = "Two Dropout layers in a row: use one with the combined rate."
        if problem is not None:
            return index, problem
        folded_norm = (
            issubclass(layer.cls, BatchNormalization) and before is not None and issubclass(before.cls, Dense) and before.linear
        )
        if issubclass(layer.cls, Dense):
            open_norm = False
        elif issubclass(layer.cls, BatchNormalization) and not folded_norm:
            open_norm = True
        before = layer
        # A folded BatchNormalization leaves its Dense layer the one an activation layer folds into.
        if not issubclass(layer.cls, Flatten) and not folded_norm:
            carrier = layer
        seen_dense = seen_dense or issubclass(layer.cls, Dense)
    return None
