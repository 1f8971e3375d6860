"""Which layer may follow which in a Sequential model (internal): the one rule that
``Sequential.add`` applies as each layer comes, and the model-file reader applies to a saved
config, whose layers ``Sequential.from_config`` sets at once instead of adding them.

- Only the layers named below (and their subclasses) run at all.
- An ``Input`` comes first.
- A ``Normalization`` comes first, or right after the ``Input``: the model applies it to the
  data before the core runs the rest.
- An activation layer (``Activation``, ``LeakyReLU``, ``ELU``, ``GELU``) follows a ``Dense``
  layer without an activation (``Flatten`` between them aside): it is folded into that layer.
- A ``BatchNormalization`` follows a ``Dense`` layer without an activation, directly: it is folded
  into that layer, between its product and its activation (an activation layer may follow it).
- A ``Dropout`` follows some ``Dense`` layer (it drops a layer's outputs), and not another
  ``Dropout``.
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


def misplaced(layers: Sequence[Placement]) -> Optional[tuple[int, str]]:
    """The first layer that may not follow the ones before it, and why; None if every layer
    is in its place."""
    before: Optional[Placement] = None  # the layer before
    carrier: Optional[Placement] = None  # the last layer before other than Flatten
    seen_dense = False
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
        elif issubclass(layer.cls, BatchNormalization) and not (
            before is not None and issubclass(before.cls, Dense) and before.linear
        ):
            problem = (
                "BatchNormalization must directly follow a Dense layer without an activation: fastmlp "
                "normalizes that layer's outputs before its activation (e.g. Dense(64), "
                "BatchNormalization(), Activation('relu'))."
            )
        elif issubclass(layer.cls, Dropout) and not seen_dense:
            problem = "Dropout must follow a Dense layer: fastmlp drops a layer's outputs, not its inputs."
        elif issubclass(layer.cls, Dropout) and before is not None and issubclass(before.cls, Dropout):
            problem = "Two Dropout layers in a row: use one with the combined rate."
        if problem is not None:
            return index, problem
        before = layer
        # A BatchNormalization leaves its Dense layer the one an activation layer folds into.
        if not issubclass(layer.cls, (Flatten, BatchNormalization)):
            carrier = layer
        seen_dense = seen_dense or issubclass(layer.cls, Dense)
    return None
