"""The new losses and optimizers against Keras 3 itself (skipped without ``keras`` and a
backend; the ``compare`` extra has both): the core's per-sample losses on Keras's own loss
functions, and ``fastmlp.reference``'s optimizer steps (which the core is checked against on every
ISA in test_optimizers.py) on Keras's optimizers applied to a variable. float32 in Keras: rtol 1e-5."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

from fastmlp import _core
from fastmlp import reference as ref

keras: Any = import_keras()

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def point(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(len(name))
    shape = (6, 5)
    if name in ("kl_divergence", "poisson", "mean_squared_logarithmic_error"):
        y, p = rng.uniform(0.05, 1.5, shape), rng.uniform(-0.2, 1.5, shape)  # some clipped
        if name == "poisson":
            p = np.abs(p) + 0.05
    elif name in ("hinge", "squared_hinge"):
        y, p = rng.integers(0, 2, shape).astype(float), rng.normal(size=shape)
    elif name == "categorical_hinge":
        y, p = np.eye(5)[rng.integers(0, 5, 6)], rng.normal(size=shape)
    elif name == "mean_absolute_percentage_error":
        y, p = rng.normal(size=shape), rng.normal(size=shape)
        y[0, 0] = 0.0  # divided by eps
    else:
        y, p = rng.normal(0, 2, shape), rng.normal(0, 2, shape)
    return y.astype(np.float32), p.astype(np.float32)


@pytest.mark.parametrize("name", ref.MORE_LOSSES)
def test_losses_equal_keras(name: str) -> None:
    y, p = point(name)
    want = np.asarray(keras.losses.get(name)(y, p), dtype=np.float64)
    _, rows, _ = _core.kernels.loss(name, False, p, y, None, 1.0)
    scale = np.maximum(np.abs(want), 1.0)
    np.testing.assert_allclose(rows, want, rtol=0, atol=1e-5 * float(np.max(scale)))


def test_huber_delta_equals_keras() -> None:
    y, p = point("huber")
    want = np.asarray(keras.losses.Huber(delta=0.4, reduction=None)(y, p), dtype=np.float64)
    _, rows, _ = _core.kernels.loss("huber", False, p, y, None, 1.0, delta=0.4)
    np.testing.assert_allclose(rows, want, rtol=1e-5, atol=1e-6)


OPTIMIZERS = {
    "nadam": {"learning_rate": 0.05, "beta_1": 0.8},
    "adamax": {"learning_rate": 0.05, "beta_2": 0.9},
    "lion": {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95},
    "adadelta": {"learning_rate": 1.0, "rho": 0.8, "epsilon": 1e-3},
    "ftrl": {
        "learning_rate": 0.05,
        "learning_rate_power": -0.7,
        "l1_regularization_strength": 0.01,
        "l2_regularization_strength": 0.02,
        "l2_shrinkage_regularization_strength": 0.01,
        "beta": 0.1,
    },
}
KERAS_CLASSES = {"nadam": "Nadam", "adamax": "Adamax", "lion": "Lion", "adadelta": "Adadelta", "ftrl": "Ftrl"}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_reference_steps_equal_keras(name: str) -> None:
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=7)
    grads = [rng.normal(size=7) for _ in range(6)]
    optimizer = getattr(keras.optimizers, KERAS_CLASSES[name])(**OPTIMIZERS[name], weight_decay=0.1)
    variable = keras.Variable(w0.astype(np.float32))
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype(np.float32)), variable)])
    settings = ref.optimizer_settings(name, **OPTIMIZERS[name], weight_decay=0.1)
    params, state = [w0], ref.optimizer_state(name, [w0], settings)
    for step, g in enumerate(grads):
        params, state = ref.optimizer_step(name, params, [g], state, step, settings)
    assert float(np.max(np.abs(params[0] - w0))) > 1e-2
    np.testing.assert_allclose(np.asarray(variable.numpy(), np.float64), params[0], rtol=1e-5, atol=1e-6)
