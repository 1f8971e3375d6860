"""Global settings, named as in ``keras.config``."""

from __future__ import annotations

_FLOATX = "float32"
_SUPPORTED = ("float32", "float64")


def floatx() -> str:
    """The default dtype of new models: ``"float32"`` (training) unless changed."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default dtype of models built from now on: ``"float32"`` or ``"float64"``."""
    global _FLOATX
    if value not in _SUPPORTED:
        raise ValueError(f"Unknown dtype: {value!r}. Expected one of {_SUPPORTED}.")
    _FLOATX = value
