"""Keras's default names for layers and models: the class's snake_case name, then ``_1``,
``_2``, ... for each further object of that name (internal)."""

from __future__ import annotations

_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    count = _counts.get(base, 0)
    _counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"
