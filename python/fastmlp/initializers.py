"""Weight initializers, with ``keras.initializers``' names, defaults and formulas.

The variance-scaling family draws with ``scale / n`` variance, n the fan in, the fan out or their
mean: uniform on [-sqrt(3 scale / n), +sqrt(3 scale / n)], or a normal truncated at two standard
deviations whose stddev is sqrt(scale / n) / 0.87962566103423978 (the truncation's correction,
as Keras). Every draw is seeded: ``seed=None`` takes the next seed of fastmlp's stream
(``fm.utils.set_random_seed``), so the same seed gives the same weights.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from . import utils

Shape = tuple[int, ...]
# The stddev of a standard normal truncated to [-2, 2] is 0.8796...: dividing by it gives the
# truncated draw the variance asked for.
_TRUNCATED_NORMAL_STDDEV = 0.87962566103423978


def _fans(shape: Shape) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[-1]


def _truncated_normal(rng: np.random.Generator, mean: float, stddev: float, shape: Shape) -> NDArray[np.float64]:
    """Normal draws, those beyond two standard deviations drawn again (as Keras's)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return mean + stddev * values


class Initializer:
    """Draws an array of a given shape."""

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"`seed` must be None or a non-negative integer. Received: seed={seed!r}")
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(utils.draw_seed() if self.seed is None else self.seed)

    def draw(self, shape: Shape) -> NDArray[Any]:
        raise NotImplementedError

    def __call__(self, shape: Shape, dtype: str = "float32") -> NDArray[np.floating]:
        return np.asarray(self.draw(tuple(int(d) for d in shape))).astype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class Zeros(Initializer):
    def __init__(self) -> None:
        super().__init__(None)

    def draw(self, shape: Shape) -> NDArray[Any]:
        return np.zeros(shape)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Zeros):
    def draw(self, shape: Shape) -> NDArray[Any]:
        return np.ones(shape)


class Constant(Initializer):
    """``value`` everywhere: a number, or an array broadcast to the weight's shape (as Keras's
    ``value * ones(shape)``; e.g. ``Constant(np.log([pos / neg]))`` for an output bias)."""

    def __init__(self, value: Any = 0.0) -> None:
        super().__init__(None)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = np.asarray(np.nan)
        if isinstance(value, bool) or array.dtype == object or not np.isfinite(array).all():
            raise ValueError(f"`value` must be a finite number or array of numbers. Received: value={value!r}")
        self.value: Union[float, list[Any]] = float(array) if array.ndim == 0 else array.tolist()

    def draw(self, shape: Shape) -> NDArray[Any]:
        value = np.asarray(self.value, dtype=np.float64)
        try:
            return np.array(np.broadcast_to(value, shape))
        except ValueError:
            raise ValueError(
                f"Constant initializer of shape {value.shape} cannot fill a weight of shape {shape}."
            ) from None

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomNormal(Initializer):
    """Normal with ``mean`` and ``stddev`` (not truncated)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def draw(self, shape: Shape) -> NDArray[Any]:
        return self._rng().normal(self.mean, self.stddev, shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(Initializer):
    """Normal with ``mean`` and ``stddev``, draws beyond two standard deviations drawn again
    (Keras's ``TruncatedNormal``: ``stddev`` is that of the untruncated normal)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def draw(self, shape: Shape) -> NDArray[Any]:
        return _truncated_normal(self._rng(), self.mean, self.stddev, shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """Uniform on [minval, maxval)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        if not minval < maxval:
            raise ValueError(f"`minval` must be below `maxval`. Received: minval={minval}, maxval={maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def draw(self, shape: Shape) -> NDArray[Any]:
        return self._rng().uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """Variance ``scale / n``, n per ``mode`` (fan_in, fan_out, fan_avg); ``distribution``
    "uniform", "truncated_normal" or "untruncated_normal"."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: Optional[int] = None,
    ) -> None:
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"`scale` must be positive. Received: scale={scale!r}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {mode!r}")
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError(f"Invalid `distribution` argument: {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def draw(self, shape: Shape) -> NDArray[Any]:
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape)
        if self.distribution == "truncated_normal":
            return _truncated_normal(rng, 0.0, math.sqrt(variance) / _TRUNCATED_NORMAL_STDDEV, shape)
        return rng.normal(0.0, math.sqrt(variance), shape)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling(name: str, scale: float, mode: str, distribution: str, doc: str) -> type[VarianceScaling]:
    def __init__(self: VarianceScaling, seed: Optional[int] = None) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self: VarianceScaling) -> dict[str, Any]:
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform", "Uniform, limit sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio).")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal", "Truncated normal, variance 2 / (fan_in + fan_out).")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform", "Uniform, limit sqrt(6 / fan_in) (He et al., for relu).")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal", "Truncated normal, variance 2 / fan_in.")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform", "Uniform, limit sqrt(3 / fan_in).")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal", "Truncated normal, variance 1 / fan_in.")

_BY_NAME: dict[str, type[Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
}
_BY_CLASS: dict[str, type[Initializer]] = {cls.__name__: cls for cls in _BY_NAME.values()}

InitializerLike = Union[str, Initializer]


def get(identifier: InitializerLike) -> Initializer:
    """An initializer from its Keras name (with defaults) or an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"Could not interpret initializer identifier: {identifier!r}. "
        f"Expected one of {sorted(_BY_NAME)} or an Initializer instance."
    )


def serialize(initializer: Initializer) -> dict[str, object]:
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config: dict[str, Any]) -> Initializer:
    cls = _BY_CLASS.get(str(config.get("class_name")))
    if cls is None:
        raise ValueError(f"Unknown initializer in saved config: {config.get('class_name')!r}")
    return cls(**dict(config.get("config", {})))
