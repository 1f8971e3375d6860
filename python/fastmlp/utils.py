"""Utilities named as in ``keras.utils``: seeding and ``to_categorical``."""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from . import _core

# Every random choice in fastmlp (weight initialization, the trainer's shuffle stream) draws its
# seed from this one stream, in program order: the same seed gives bit-identical weights.
_seed_stream = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed fastmlp, NumPy's global generator and Python's ``random``, as Keras does."""
    global _seed_stream
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Expected `seed` to be a non-negative integer. Received: seed={seed!r}")
    _seed_stream = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002  (Keras seeds NumPy's global generator too)


def to_categorical(x: Any, num_classes: Optional[int] = None) -> NDArray[np.float64]:
    """Class indices as one-hot rows, as ``keras.utils.to_categorical``: an array of shape
    ``x.shape + (num_classes,)`` (a trailing axis of 1 dropped first) of float64 zeros and ones;
    ``num_classes`` defaults to ``max(x) + 1``."""
    try:
        labels = np.array(x, dtype="int64")
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"`x` must hold integer class indices. Received: x={x!r}") from None
    shape = labels.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = tuple(shape[:-1])
    flat = labels.reshape(-1)
    if num_classes is None or (not isinstance(num_classes, bool) and num_classes == 0):
        if flat.size == 0:
            raise ValueError("`num_classes` must be given for an empty `x`.")
        num_classes = int(np.max(flat)) + 1
    given: Any = num_classes
    if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or given < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}")
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = flat[(flat < 0) | (flat >= num_classes)][0]
        # IndexError as Keras's (NumPy's) for an index past the end; a negative one too, where
        # Keras would wrap around silently.
        raise IndexError(f"Class index {bad} is out of range for num_classes={num_classes}. Received: x={x!r}")
    categorical = np.zeros((flat.shape[0], int(num_classes)))
    categorical[np.arange(flat.shape[0]), flat] = 1
    return categorical.reshape((*shape, int(num_classes)))


def draw_seed() -> int:
    """The next 63-bit seed of fastmlp's stream (used internally)."""
    return int(_seed_stream.integers(0, 2**63 - 1))


def peak_gflops(threads: int = 1, seconds: float = 0.2, dtype: str = "float32") -> float:
    """The machine's measured FMA peak in GFLOP/s for the active instruction set: independent
    fused multiply-adds on ``threads`` threads at once for about ``seconds``. Benchmarks report
    their speed as a fraction of it."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"Unknown dtype: {dtype!r}. Expected 'float32' or 'float64'.")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"`threads` must be a positive integer. Received: threads={threads!r}")
    if not seconds > 0:
        raise ValueError(f"`seconds` must be > 0. Received: seconds={seconds!r}")
    return float(_core.peak_gflops(threads, float(seconds), dtype == "float64"))
