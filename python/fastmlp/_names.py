"""Keras's default names for layers and models: the class's snake_case name, then ``_1``,
``_2``, ... for each further object of that name (internal)."""

from __future__ import annotations

import re

_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    count = _counts.get(base, 0)
    _counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset() -> None:
    """Names start over: the next Dense layer is ``dense`` again (``clear_session``)."""
    _counts.clear()


def snake_case(class_name: str) -> str:
    """Keras's to_snake_case: LeakyReLU -> leaky_re_lu, GELU -> gelu, InputLayer -> input_layer."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
