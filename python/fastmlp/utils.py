"""Utilities named as in ``keras.utils``: seeding."""

from __future__ import annotations

import random

import numpy as np

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
    np.random.seed(int(seed) % 2**32)


def draw_seed() -> int:
    """The next 63-bit seed of fastmlp's stream (used internally)."""
    return int(_seed_stream.integers(0, 2**63 - 1))
