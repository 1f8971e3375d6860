"""Real Keras 3 for the side-by-side tests, or a skip: on JAX when it is installed, else on
PyTorch (the `compare` extra has both), unless KERAS_BACKEND already names a backend."""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

import pytest


def import_keras() -> Any:
    """The ``keras`` module with its backend importable, or skip the calling test (or module)."""
    os.environ.setdefault("KERAS_BACKEND", "jax" if importlib.util.find_spec("jax") is not None else "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the backends' own import-time deprecation notes
        pytest.importorskip(os.environ["KERAS_BACKEND"])
        return pytest.importorskip("keras")
