"""The arithmetic of the ``Normalization`` layer (internal), with Keras 3's definitions.

Keras's layer keeps one mean and one variance per position of the kept axes (``axis``), both
computed over every other axis (the batch axis included), the variance the population one
(divided by n). It maps ``x`` to ``(x - mean) / maximum(sqrt(variance), epsilon)`` (``invert``:
``mean + x * maximum(sqrt(variance), epsilon)``) with Keras's backend epsilon, 1e-7.

A model runs a chain of layers on flat samples, so the layer's statistics are broadcast to one
sample's shape and flattened: the map is then one shift and one scale per input feature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

# keras.backend.epsilon(): the smallest standard deviation the layer divides by.
EPSILON = 1e-7

Array = NDArray[Any]


def axes(axis: Any) -> tuple[int, ...]:
    """``axis`` as Keras standardizes it: None is (), an int is (axis,), else a tuple of ints."""
    if axis is None:
        return ()
    values = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    try:
        result = tuple(values)
    except TypeError:
        raise TypeError(f"`axis` must be None, an int or a tuple of ints. Received: axis={axis!r}") from None
    if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in result):
        raise TypeError(f"`axis` must be None, an int or a tuple of ints. Received: axis={axis!r}")
    return tuple(int(a) for a in result)


def kept_axes(axis: tuple[int, ...], ndim: int, batch_shape: tuple[Optional[int], ...]) -> tuple[int, ...]:
    """The kept axes of inputs of ``batch_shape`` (batch axis first), non-negative and sorted;
    ValueError (Keras's messages) for an axis out of range or one of unknown size (the batch)."""
    if any(a < -ndim or a >= ndim for a in axis):
        raise ValueError(
            "All `axis` values must be in the range [-ndim, ndim). "
            f"Received inputs with ndim={ndim}, while axis={axis}"
        )
    keep = tuple(sorted({a if a >= 0 else a + ndim for a in axis}))
    for d in keep:
        if batch_shape[d] is None:
            raise ValueError(
                "All `axis` values to be kept must have a known shape. "
                f"Received axis={axis}, inputs.shape={batch_shape}, with unknown axis at index {d}"
            )
    return keep


def stats_shape(axis: tuple[int, ...], sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the adapted mean and variance for samples of ``sample_shape``."""
    batch_shape: tuple[Optional[int], ...] = (None, *sample_shape)
    keep = kept_axes(axis, len(batch_shape), batch_shape)
    return tuple(int(sample_shape[d - 1]) for d in keep)


def per_feature(
    stats: Array, axis: tuple[int, ...], sample_shape: tuple[int, ...], name: str
) -> Array:
    """``stats`` (of rank at most the number of kept axes, aligned to them from the right, as
    Keras broadcasts a given mean) broadcast to one sample and flattened."""
    batch_shape: tuple[Optional[int], ...] = (None, *sample_shape)
    ndim = len(batch_shape)
    keep = kept_axes(axis, ndim, batch_shape)
    if stats.ndim > len(keep):
        raise ValueError(
            f"The rank of `{name}` must be less than or equal to the number of axes ({len(keep)}). "
            f"Received: {name} shape {stats.shape} for axis {axis}"
        )
    expanded = [1] * ndim
    for i in range(1, stats.ndim + 1):
        expanded[keep[-i]] = stats.shape[-i]
    target = [1, *(sample_shape[d - 1] if d in keep else 1 for d in range(1, ndim))]
    try:
        broadcast = np.broadcast_to(stats.reshape(expanded), target)
    except ValueError:
        raise ValueError(
            f"`{name}` of shape {stats.shape} does not fit inputs of shape {batch_shape} with axis={axis}."
        ) from None
    return np.ascontiguousarray(np.broadcast_to(broadcast, (1, *sample_shape)).reshape(-1))


def apply(x: Array, mean: Array, variance: Array, invert: bool) -> Array:
    """The layer's map on rows of flat samples ``x`` (n, features), in ``x``'s dtype; ``mean``
    and ``variance`` hold one value per feature. A new array: ``x`` is left as it was."""
    dtype = x.dtype
    with np.errstate(over="ignore"):
        shift, spread = mean.astype(dtype), variance.astype(dtype)
    if not (np.isfinite(shift).all() and np.isfinite(spread).all()):
        # A variance past the dtype's range would be infinite: every feature divided to 0.
        raise ValueError(
            f"The Normalization layer's statistics are beyond the range of {dtype} (largest |mean| "
            f"{float(np.max(np.abs(mean), initial=0.0)):.3g}, largest variance "
            f"{float(np.max(variance, initial=0.0)):.3g}): scale the data, or use a float64 model."
        )
    scale = np.maximum(np.sqrt(spread), dtype.type(EPSILON))
    out: Array = np.add(shift, np.multiply(x, scale)) if invert else np.divide(np.subtract(x, shift), scale)
    return out


def batches(data: Any, batch_size: Optional[int], steps: Optional[int]) -> Array:
    """The samples ``adapt`` reads, as one float64 array (batch axis first): an array (its first
    ``steps * batch_size`` rows when ``steps`` is given, batches of ``batch_size`` or 32 as Keras
    makes of an array), or an iterable of batches (its first ``steps`` batches). ValueError for
    no samples, non-numbers, NaN or infinity."""
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        array = _numeric(data)
        if steps is not None:
            array = array[: steps * (batch_size or 32)]
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        parts = []
        for index, batch in enumerate(data):
            if steps is not None and index >= steps:
                break
            parts.append(_numeric(batch))
        if not parts:
            raise ValueError(
                "adapt() received an empty iterable (no batches). Expected at least one batch. "
                "Pass a non-empty iterable of arrays, e.g. layer.adapt([x])."
            )
        if len({part.shape[1:] for part in parts}) > 1:
            raise ValueError(
                "adapt() yielded batches of incompatible shapes: "
                f"{sorted({part.shape for part in parts})}"
            )
        array = np.concatenate(parts)
    else:
        raise TypeError(
            f"Unsupported data type: {type(data)}. `adapt` supports NumPy arrays and iterables "
            "of batches (e.g. a list of arrays)."
        )
    if array.ndim == 0 or array.shape[0] == 0 or math.prod(array.shape) == 0:
        raise ValueError(f"adapt() needs at least one sample. Received: data of shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("adapt() data must be finite: it holds NaN or infinity.")
    return array


def _numeric(value: Any) -> Array:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"adapt() data could not be converted to a numeric array: {error}") from None
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number) or np.issubdtype(
        array.dtype, np.complexfloating
    ):
        raise ValueError(f"adapt() data must hold real numbers. Received: dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def moments(data: Array, axis: tuple[int, ...]) -> tuple[Array, Array]:
    """The mean and population variance of ``data`` (batch axis first) over every axis but the
    kept ones, as float64 arrays of ``stats_shape``."""
    batch_shape: tuple[Optional[int], ...] = (None, *data.shape[1:])
    keep = kept_axes(axis, data.ndim, batch_shape)
    reduce = tuple(d for d in range(data.ndim) if d not in keep)
    return np.mean(data, axis=reduce), np.var(data, axis=reduce)
