"""Weight initializers, named and defined as in ``keras.initializers``."""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

from . import utils


class Initializer:
    """Draws an array of a given shape. ``seed=None`` takes the next seed of fastmlp's stream."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(utils.draw_seed() if self.seed is None else self.seed)

    def __call__(self, shape: tuple[int, ...], dtype: str = "float32") -> NDArray[np.floating]:
        raise NotImplementedError

    def get_config(self) -> dict[str, object]:
        return {"seed": self.seed}


class Zeros(Initializer):
    def __call__(self, shape: tuple[int, ...], dtype: str = "float32") -> NDArray[np.floating]:
        return np.zeros(shape, dtype=dtype)


class GlorotUniform(Initializer):
    """Uniform on [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""

    def __call__(self, shape: tuple[int, ...], dtype: str = "float32") -> NDArray[np.floating]:
        fan_in, fan_out = shape[0], shape[-1]
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return self._rng().uniform(-limit, limit, size=shape).astype(dtype)


_BY_NAME: dict[str, type[Initializer]] = {"zeros": Zeros, "glorot_uniform": GlorotUniform}
_BY_CLASS: dict[str, type[Initializer]] = {cls.__name__: cls for cls in _BY_NAME.values()}


def serialize(initializer: Initializer) -> dict[str, object]:
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict[str, Any]) -> Initializer:
    cls = _BY_CLASS.get(str(config.get("class_name")))
    if cls is None:
        raise ValueError(f"Unknown initializer in saved config: {config.get('class_name')!r}")
    return cls(**dict(config.get("config", {})))

InitializerLike = Union[str, Initializer]


def get(identifier: InitializerLike) -> Initializer:
    """An initializer from its Keras name or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"Could not interpret initializer identifier: {identifier!r}. "
        f"Expected one of {sorted(_BY_NAME)} or an Initializer instance."
    )
