"""The Keras surface against Keras 3 itself, run side by side (skipped without ``keras`` and a
backend: JAX if installed, else PyTorch; the ``compare`` extra installs Keras and PyTorch).

The same functional model, with the same weights and the same batches, must give the same
predictions and the same trajectory under plain SGD (float32: 1e-5), with a frozen layer and
with ``steps_per_epoch``; names, shapes, parameter counts and ``to_categorical`` must be equal.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as fm

keras: Any = import_keras()

# Keras's variables warn under NumPy 2 (their __array__ takes no copy keyword): theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def data(n: int = 30, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def pair(frozen: bool = False) -> tuple[Any, fm.Model]:
    """The same functional model in Keras and in fastmlp, with the same weights, compiled with
    plain SGD and MSE."""
    models = []
    for lib in (keras, fm):
        inputs = lib.Input((6,))
        hidden = lib.layers.Dense(5, activation="tanh")(inputs)
        outputs = lib.layers.Dense(2)(hidden)
        model = lib.Model(inputs, outputs)
        if frozen:
            model.layers[1].trainable = False
        models.append(model)
    weights = [np.random.default_rng(9).normal(size=w.shape).astype("float32") * 0.5 for w in models[0].get_weights()]
    for model in models:
        model.set_weights(weights)
        model.compile(optimizer=model_optimizer(model), loss="mse")
    return models[0], models[1]


def model_optimizer(model: Any) -> Any:
    return keras.optimizers.SGD(0.1) if isinstance(model, keras.Model) else fm.optimizers.SGD(0.1)


def assert_same_weights(a: Any, b: fm.Model) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, np.asarray(wa), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("frozen", [False, True])
def test_a_functional_model_trains_as_keras_trains_it(frozen: bool) -> None:
    x, y = data()
    theirs, ours = pair(frozen)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    before = ours.layers[1].get_weights()[0]
    theirs.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    assert_same_weights(theirs, ours)
    if frozen:
        np.testing.assert_array_equal(ours.layers[1].get_weights()[0], before)


def test_steps_per_epoch_trains_the_batches_keras_trains() -> None:
    x, y = data()
    theirs, ours = pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # both warn that an epoch ran out of data
        theirs.fit(x, y, batch_size=7, epochs=4, steps_per_epoch=2, shuffle=False, verbose=0)
        ours.fit(x, y, batch_size=7, epochs=4, steps_per_epoch=2, shuffle=False, verbose=0)
    assert_same_weights(theirs, ours)


def test_names_shapes_counts_and_utilities_are_keras_own() -> None:
    results = []
    for lib in (keras, fm):
        lib.backend.clear_session()
        inputs = lib.Input((4,))
        x = lib.layers.Dense(3)(inputs)
        model = lib.Model(inputs, lib.layers.Dense(2)(lib.layers.Dropout(0.1)(x)))
        model.layers[1].trainable = False
        sequential = lib.Sequential([lib.Input((5,)), lib.layers.Dense(2)])
        results.append(
            (
                [layer.name for layer in model.layers],
                model.name,
                sequential.name,
                tuple(model.input_shape),
                tuple(model.output_shape),
                model.count_params(),
                [tuple(w.shape) for w in model.trainable_weights],
                [tuple(w.shape) for w in model.non_trainable_weights],
                lib.utils.to_categorical([[2], [0]], 4).tolist(),
            )
        )
    assert results[1] == results[0]


@pytest.mark.parametrize("frozen", [False, True])
def test_batch_normalization_trains_and_predicts_as_keras(frozen: bool) -> None:
    """Training mode in fit (batch statistics, moving statistics moved once per batch), the
    moving statistics in predict and evaluate, inference mode for a frozen layer."""
    x, y = data(31)
    models = []
    for lib in (keras, fm):
        inputs = lib.Input((6,))
        h = lib.layers.Dense(5)(inputs)
        h = lib.layers.BatchNormalization(momentum=0.8, epsilon=0.01)(h)
        h = lib.layers.Activation("tanh")(h)
        model = lib.Model(inputs, lib.layers.Dense(2)(h))
        if frozen:
            model.layers[2].trainable = False
        models.append(model)
    theirs, ours = models
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    rng = np.random.default_rng(3)
    weights = [(rng.normal(size=w.shape) * 0.5 + (1.0 if i == 5 else 0.0)).astype("float32") for i, w in enumerate(theirs.get_weights())]
    weights[5] = np.abs(weights[5])  # a moving variance
    for model in models:
        model.set_weights(weights)
        model.compile(optimizer=model_optimizer(model), loss="mse")
    assert ours.count_params() == theirs.count_params()
    assert len(ours.trainable_weights) == len(theirs.trainable_weights)
    assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights)
    theirs.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    assert_same_weights(theirs, ours)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-5)


# Keras's common placements of BatchNormalization: after an activation (then Dropout), after an
# Activation layer and a Dropout, and on the raw features right after the Input.
NORM_PLACEMENTS = {
    "after_activation": lambda lib: [lib.layers.Dense(5, activation="relu"), lib.layers.BatchNormalization(momentum=0.8),
                                     lib.layers.Dense(2)],
    "after_activation_layer_and_dropout": lambda lib: [lib.layers.Dense(5), lib.layers.Activation("tanh"),
                                                       lib.layers.Dropout(0.0), lib.layers.BatchNormalization(epsilon=0.01),
                                                       lib.layers.Dense(2)],
    "first": lambda lib: [lib.layers.BatchNormalization(momentum=0.9), lib.layers.Dense(5, activation="tanh"),
                          lib.layers.BatchNormalization(center=False), lib.layers.Dense(2)],
}


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("placement", list(NORM_PLACEMENTS))
def test_batch_normalization_on_inputs_trains_and_predicts_as_keras(placement: str, frozen: bool) -> None:
    """The same Sequential model, weights and batches: the same weights after 3 epochs (moving
    statistics included), predictions and evaluation; frozen, in inference mode."""
    x, y = data(31)
    x = x * 2 + 1  # features far from mean 0 and variance 1
    models = []
    for lib in (keras, fm):
        model = lib.Sequential([lib.Input((6,)), *NORM_PLACEMENTS[placement](lib)])
        if frozen:
            next(layer for layer in model.layers if "batch_normalization" in layer.name).trainable = False
        models.append(model)
    theirs, ours = models
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    rng = np.random.default_rng(3)
    weights = [(rng.normal(size=w.shape) * 0.3).astype("float32") for w in theirs.get_weights()]
    for model in models:
        model.set_weights([np.abs(w) + 0.5 if w.ndim == 1 else w for w in weights])  # variances > 0
        model.compile(optimizer=model_optimizer(model), loss="mse")
    assert ours.count_params() == theirs.count_params()
    assert len(ours.trainable_weights) == len(theirs.trainable_weights)
    assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights)
    theirs.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=7, epochs=3, shuffle=False, verbose=0)
    assert all(np.isfinite(w).all() for w in ours.get_weights())
    # float32 on both sides: each normalization scales the rounding by 1 / sqrt(variance + epsilon).
    for wa, wb in zip(theirs.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(wb, np.asarray(wa), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-4)
