"""Utilities named as in ``keras.utils``: seeding."""

from __future__ import annotations

import random

import numpy as np

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
