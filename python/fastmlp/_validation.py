"""Checks at the border: user data becomes C-contiguous arrays of the model's dtype, once, or a
ValueError/TypeError that names the argument and the shapes or values at fault (internal)."""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from . import _core

# Finiteness is checked this many rows at a time, so the check never allocates a mask as large
# as the data set.
_CHUNK_ROWS = 8192


def as_numeric_array(value: Any, name: str) -> NDArray[Any]:
    if value is None:
        raise ValueError(f"`{name}` is required; received None.")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`{name}` could not be converted to a numeric array: {error}") from None
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"`{name}` must hold real numbers; received an array of dtype {array.dtype}.")
    return array


def first_non_finite(array: NDArray[Any]) -> Optional[int]:
    """Index of the first sample (row) holding NaN or infinity, or None."""
    if not np.issubdtype(array.dtype, np.floating):
        return None
    rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(-1, 1)
    if rows.dtype in (np.float32, np.float64) and rows.flags.c_contiguous and rows.flags.aligned and rows.size:
        # In C++ over the pool's threads, without a mask: it reads the whole data set (fit checks
        # its x while training when it can, and then calls this only to name the sample at fault).
        bad = _core.first_non_finite_row(rows)
        return None if bad < 0 else bad
    for start in range(0, rows.shape[0], _CHUNK_ROWS):
        ok = np.isfinite(rows[start : start + _CHUNK_ROWS]).all(axis=1)
        if not ok.all():
            return start + int(np.argmin(ok))
    return None


def check_finite(array: NDArray[Any], name: str, source: Optional[NDArray[Any]] = None) -> None:
    """Raise if `array` holds NaN or infinity. `source` is the data before a cast to `array`'s
    dtype: a finite value there that became infinite is reported as out of range."""
    bad = first_non_finite(array)
    if bad is None:
        return
    if source is not None and first_non_finite(source[bad : bad + 1]) is None:
        limit = np.finfo(array.dtype).max
        raise ValueError(
            f"`{name}` holds a value beyond the range of {array.dtype} (|x| > {limit:.4g}) in "
            f"sample {bad}; rescale the data or use a float64 model (dtype='float64')."
        )
    raise ValueError(
        f"`{name}` contains NaN or infinity (first in sample {bad}); "
        "clean or impute the data before training."
    )


def flat_source(x: Any, converted: NDArray[Any]) -> NDArray[Any]:
    """The user's x as (n, features) before features() converted it (for check_finite)."""
    return np.asarray(x).reshape(converted.shape[0], -1)


def for_core(array: Any, dtype: Any) -> NDArray[Any]:
    """The array as the core reads it: C-contiguous, of `dtype`, and aligned for it (a view into
    a byte buffer at an odd offset is not: the core's loads of it would be undefined behaviour);
    copied only when it is not already so."""
    return np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def cast(array: NDArray[Any], dtype: str) -> NDArray[Any]:
    """for_core's array in `dtype`; overflow becomes inf, which check_finite then reports,
    instead of a NumPy warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return for_core(array, dtype)


def features(
    x: Any, sample_shape: Optional[tuple[int, ...]], flatten: bool, dtype: str, name: str = "x", finite: bool = True
) -> NDArray[Any]:
    """x as a C-contiguous (n, features) array of `dtype` (no copy when it already is one).
    finite=False skips the check for NaN and infinity (for fit, whose core checks as it trains)."""
    array = as_numeric_array(x, name)
    expected = "(n, " + ", ".join(map(str, sample_shape)) + ")" if sample_shape else "(n, features)"
    if array.ndim == 1 and sample_shape == (1,):
        # Keras 3 (Functional._adjust_input_rank): one value per sample for a one-feature input.
        array = array.reshape(-1, 1)
    if array.ndim < 2:
        raise ValueError(
            f"`{name}` must have a batch axis: expected shape {expected}, received shape "
            f"{array.shape}. For a single sample use {name}[None, :]."
        )
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}): there is nothing to compute on.")
    if sample_shape is not None and array.shape[1:] != sample_shape:
        raise ValueError(
            f"`{name}` has shape {array.shape}, but the model expects {expected}: the number "
            "of features does not match the model's input."
        )
    if array.ndim > 2 and not flatten:
        raise ValueError(
            f"`{name}` has shape {array.shape}: Dense layers take flat samples; add "
            "fastmlp.layers.Flatten() as the first layer, or reshape the data to (n, features)."
        )
    flat = array.reshape(array.shape[0], -1)
    converted = cast(flat, dtype)
    if finite:
        check_finite(converted, name, flat)
    return converted


def sparse_labels(y: Any, n: int, num_classes: int, name: str = "y") -> NDArray[np.int32]:
    """Integer class labels in [0, num_classes) as int32 of shape (n,)."""
    array = as_numeric_array(y, name)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"sparse_categorical_crossentropy takes integer class labels of shape ({n},); "
            f"received `{name}` of shape {array.shape}. For one-hot targets use "
            "categorical_crossentropy."
        )
    check_length(array, n, name)
    if np.issubdtype(array.dtype, np.floating):
        check_finite(array, name)
        fractional = np.flatnonzero(array != np.round(array))
        if fractional.size:
            i = int(fractional[0])
            raise ValueError(
                f"`{name}` must hold integer class labels; received {array[i].item()!r} at index {i}."
            )
    outside = np.flatnonzero((array < 0) | (array >= num_classes))
    if outside.size:
        i = int(outside[0])
        raise ValueError(
            f"`{name}` holds label {array[i].item()!r} at index {i}, but labels must lie in "
            f"[0, {num_classes}) for a model with {num_classes} outputs."
        )
    return for_core(array, np.int32)


def dense_targets(y: Any, n: int, outputs: int, loss_name: str, dtype: str, name: str = "y") -> NDArray[Any]:
    """Targets as a C-contiguous (n, outputs) array of `dtype`."""
    array = as_numeric_array(y, name)
    if array.ndim == 1 and outputs == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != outputs:
        hint = ""
        if array.ndim == 1 and loss_name == "categorical_crossentropy":
            hint = (
                " These look like integer class labels: use the loss "
                "sparse_categorical_crossentropy, or one-hot encode them."
            )
        raise ValueError(
            f"`{name}` has shape {array.shape}, but the model has {outputs} output"
            f"{'s' if outputs != 1 else ''}: {loss_name} expects targets of shape "
            f"({n}, {outputs}).{hint}"
        )
    check_length(array, n, name)
    converted = cast(array, dtype)
    check_finite(converted, name, array)
    return converted


def check_length(array: NDArray[Any], n: int, name: str) -> None:
    if array.shape[0] != n:
        raise ValueError(
            f"`x` and `{name}` must have the same number of samples: x has {n}, "
            f"{name} has {array.shape[0]}."
        )


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0. Received: {name}={value!r}")
    return int(value)


def verbosity(value: Any) -> int:
    if value == "auto":
        return 1
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={value!r}")
    return int(value)


def is_real(value: Any) -> bool:
    """A real number: an int or a float, NumPy's included; not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_finite(value: Any) -> bool:
    try:
        return is_real(value) and math.isfinite(float(value))
    except OverflowError:  # an int beyond float's range
        return False


def finite_number(value: Any, name: str) -> float:
    if not _is_finite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    return float(value)


def non_negative_number(value: Any, name: str) -> float:
    if not _is_finite(value) or float(value) < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def positive_number(value: Any, name: str) -> float:
    if not _is_finite(value) or not float(value) > 0:
        raise ValueError(f"`{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def inference_mode(caller: str, training: Any) -> None:
    """A ValueError unless ``training`` is None or False. A layer call passes a subclassed
    model's ``training`` argument on, and a model call on data predicts: fastmlp runs Dropout
    and BatchNormalization in training mode during fit and in inference mode otherwise, and
    has no stochastic pass on data outside training."""
    if training is None or training is False:
        return
    raise ValueError(
        f"{caller} was called with training={training!r}: fastmlp runs Dropout and "
        "BatchNormalization in training mode during fit (and train_on_batch) and in inference mode "
        "otherwise, so it takes training=None or training=False (as a subclassed model's call "
        "passes its own `training` argument on); calling a model on data predicts."
    )


def user_overrides(cls: type, methods: tuple[str, ...]) -> list[str]:
    """Which of ``methods`` a class of ``cls``'s hierarchy defined outside fastmlp (a user's
    subclass) defines: code that fastmlp's core, which computes on its own, would never call."""
    found: list[str] = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != "fastmlp":
            found.extend(name for name in methods if name in vars(klass) and name not in found)
    return found
