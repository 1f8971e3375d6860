"""``fm.layers.Normalization`` against Keras 3's definition, written from its source
(keras/src/layers/preprocessing/normalization.py):

* ``adapt`` keeps the mean and the population variance (``np.var``, ddof 0) over every axis
  but ``axis``; the output is ``(x - mean) / maximum(sqrt(variance), 1e-7)`` in the compute
  dtype, ``invert=True`` its inverse ``mean + x * maximum(sqrt(variance), 1e-7)``.
* Adapted statistics are the non-trainable weights ``[mean, variance, count]`` (count stays 0:
  Keras 3 keeps it only for old files); given ``mean`` and ``variance`` make no weights.
* An un-adapted layer is built with mean 0 and variance 1, so it passes data through (Keras
  raises nothing either).

Expected values come from NumPy: the statistics from ``np.mean``/``np.var`` on float64 data, the
output from the formula in float32 (the same IEEE operations, so bit for bit), a model's
predictions from ``normalize(x) @ W + b`` in float64 (rtol 1e-5 for the float32 model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as fm

EPS = np.float32(1e-7)


def normalized(x: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    x32 = np.asarray(x, dtype=np.float32)
    return (x32 - mean.astype(np.float32)) / np.maximum(np.sqrt(variance.astype(np.float32)), EPS)


def features(n: int = 64, d: int = 4) -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.normal(size=(n, d)) * np.array([1.0, 10.0, 0.01, 3.0])[:d] + np.array([5.0, -2.0, 0.0, 100.0])[:d]


def test_adapt_keeps_mean_and_population_variance() -> None:
    x = features()
    layer = fm.layers.Normalization()
    layer.adapt(x)
    mean, variance, count = layer.get_weights()
    np.testing.assert_allclose(mean, x.mean(axis=0).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(variance, x.var(axis=0).astype(np.float32), rtol=1e-6)
    assert count.shape == () and count == 0
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 3
    assert layer.count_params() == 2 * 4 + 1


@pytest.mark.parametrize("axis, keep", [(-1, (2,)), ((1, 2), (1, 2)), (1, (1,)), (None, ())])
def test_axes_as_keras(axis: Any, keep: tuple[int, ...]) -> None:
    x = np.random.default_rng(2).normal(size=(10, 3, 4)) + np.arange(12).reshape(3, 4)
    layer = fm.layers.Normalization(axis=axis)
    layer.adapt(x)
    reduce = tuple(d for d in range(3) if d not in keep)
    mean, variance = x.mean(axis=reduce), x.var(axis=reduce)
    got_mean, got_variance, _ = layer.get_weights()
    np.testing.assert_allclose(got_mean, mean, rtol=1e-6)
    np.testing.assert_allclose(got_variance, variance, rtol=1e-6)
    shape = [x.shape[d] if d in keep else 1 for d in range(3)]
    expected = normalized(x, mean.reshape(shape), variance.reshape(shape))
    np.testing.assert_array_equal(layer(x), expected)


def test_call_on_data_and_invert() -> None:
    x = features()
    layer = fm.layers.Normalization()
    layer.adapt(x)
    mean, variance = x.mean(axis=0), x.var(axis=0)
    out = layer(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, normalized(x, mean, variance))
    inverse = fm.layers.Normalization(invert=True)
    inverse.adapt(x)
    scale = np.maximum(np.sqrt(variance.astype(np.float32)), EPS)
    np.testing.assert_array_equal(inverse(out), mean.astype(np.float32) + out * scale)


def test_keras_docstring_example() -> None:
    """keras.layers.Normalization's own example: adapt, then normalize [1, 2, 3]."""
    adapt_data = np.array([[0.0, 7.0, 4.0], [2.0, 9.0, 6.0], [0.0, 7.0, 4.0], [2.0, 9.0, 6.0]], dtype="float32")
    layer = fm.layers.Normalization(axis=-1)
    layer.adapt(adapt_data)
    np.testing.assert_allclose(layer(np.array([[1.0, 2.0, 3.0]])), [[0.0, -6.0, -2.0]])
    inverse = fm.layers.Normalization(axis=-1, invert=True)
    inverse.adapt(adapt_data)
    np.testing.assert_allclose(inverse(np.array([[1.0, 2.0, 3.0]])), [[2.0, 10.0, 8.0]])


def test_given_mean_and_variance() -> None:
    x = features()
    layer = fm.layers.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[4.0, 1.0, 0.0, 9.0])
    assert layer.get_weights() == []
    expected = normalized(x, np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 0.0, 9.0]))
    np.testing.assert_array_equal(layer(x), expected)  # variance 0 divides by epsilon
    scalar = fm.layers.Normalization(mean=2.0, variance=4.0)
    np.testing.assert_array_equal(scalar(x), normalized(x, np.array(2.0), np.array(4.0)))


def model_with(layer: fm.layers.Normalization, functional: bool = False, dtype: str = "float32") -> fm.Model:
    fm.utils.set_random_seed(1)
    if functional:
        inputs = fm.Input((4,), dtype=dtype)
        outputs = fm.layers.Dense(2)(fm.layers.Dense(8, activation="relu")(layer(inputs)))
        return fm.Model(inputs, outputs)
    return fm.Sequential(
        [fm.layers.Input((4,)), layer, fm.layers.Dense(8, activation="relu"), fm.layers.Dense(2)], dtype=dtype
    )


@pytest.mark.parametrize("functional", [False, True])
def test_predict_is_dense_on_normalized_inputs(functional: bool) -> None:
    x = features()
    layer = fm.layers.Normalization()
    layer.adapt(x)
    model = model_with(layer, functional)
    _, _, _, w1, b1, w2, b2 = model.get_weights()
    z = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0))
    expected = np.maximum(z @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_fit_trains_on_the_normalized_data() -> None:
    """The core sees exactly the normalized array: the same bits as a model without the layer
    trained on NumPy's normalized data."""
    x, y = features(), np.random.default_rng(4).normal(size=(64, 2))
    layer = fm.layers.Normalization()
    layer.adapt(x)
    with_layer = model_with(layer)
    fm.utils.set_random_seed(1)
    plain = fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(8, activation="relu"), fm.layers.Dense(2)])
    plain.set_weights(with_layer.get_weights()[3:])
    for model in (with_layer, plain):
        fm.utils.set_random_seed(9)
        model.compile(optimizer="adam", loss="mse")
    with_layer.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)
    plain.fit(normalized(x, x.mean(axis=0), x.var(axis=0)), y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)
    for a, b in zip(with_layer.get_weights()[3:], plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(with_layer.get_weights()[0], np.float32(x.mean(axis=0)))  # not trained


def test_model_weights_summary_and_save(tmp_path: Path) -> None:
    x = features()
    layer = fm.layers.Normalization()
    layer.adapt(x)
    model = model_with(layer)
    model.compile(optimizer="sgd", loss="mse")
    assert model.count_params() == 9 + (4 * 8 + 8) + (8 * 2 + 2)
    assert [w.shape for w in model.non_trainable_weights] == [(4,), (4,), ()]
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert any("Non-trainable params: 9 " in line for line in lines)
    path = tmp_path / "norm.fastmlp"
    model.save(path)
    loaded = fm.saving.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    given = model_with(fm.layers.Normalization(mean=[1, 2, 3, 4], variance=[1, 4, 9, 16]))
    given.save(tmp_path / "given.fastmlp")
    again = fm.saving.load_model(tmp_path / "given.fastmlp")
    np.testing.assert_array_equal(again.predict(x, verbose=0), given.predict(x, verbose=0))


def test_set_weights_round_trip_and_refusal() -> None:
    layer = fm.layers.Normalization()
    layer.adapt(features())
    model = model_with(layer)
    weights = model.get_weights()
    weights[0] = weights[0] + 1
    model.set_weights(weights)
    np.testing.assert_array_equal(layer.get_weights()[0], weights[0])
    bad = list(weights)
    bad[1] = -np.ones(4, dtype=np.float32)
    before = model.get_weights()
    with pytest.raises(ValueError, match="variance"):
        model.set_weights(bad)
    bad = list(weights)
    bad[4] = np.zeros(3)  # a Dense bias of the wrong shape: the statistics stay too
    with pytest.raises(ValueError):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_unadapted_layer_passes_data_through() -> None:
    x = features()
    model = model_with(fm.layers.Normalization())
    plain = fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(8, activation="relu"), fm.layers.Dense(2)])
    plain.set_weights(model.get_weights()[3:])
    np.testing.assert_array_equal(model.predict(x, verbose=0), plain.predict(x, verbose=0))


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((0, 4)), "at least one sample"),
        ([], "empty iterable"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, np.inf]]), "NaN or infinity"),
        (np.array(["a", "b"]), "real numbers"),
    ],
)
def test_adapt_refuses(data: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fm.layers.Normalization().adapt(data)


def test_bad_settings_and_places() -> None:
    with pytest.raises(ValueError, match="both `mean` and `variance` must be set"):
        fm.layers.Normalization(mean=[1.0])
    with pytest.raises(ValueError, match="same shape"):
        fm.layers.Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="variance"):
        fm.layers.Normalization(mean=[1.0], variance=[-1.0])
    with pytest.raises(ValueError, match="rank of `mean`"):
        fm.layers.Normalization(mean=np.ones((2, 2)), variance=np.ones((2, 2)))
    with pytest.raises(ValueError, match="first layer"):
        fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(3), fm.layers.Normalization()])
    layer = fm.layers.Normalization()
    layer.adapt(features(d=3))
    with pytest.raises(ValueError, match="cannot take inputs of shape"):
        model_with(layer).predict(features(), verbose=0)
    with pytest.raises(ValueError, match="range"):
        fm.layers.Normalization(axis=3).adapt(features())
    with pytest.raises(ValueError, match="known shape"):
        fm.layers.Normalization(axis=0).adapt(features())


# Keras's variables warn under NumPy 2 (their __array__ takes no copy keyword): theirs, not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_keras() -> None:
    keras = import_keras()
    x = features().astype(np.float32)
    theirs = keras.layers.Normalization()
    theirs.adapt(x)
    mine = fm.layers.Normalization()
    mine.adapt(x)
    for a, b in zip(mine.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # Keras averages float32 data in float32, fastmlp in float64: the means differ by about an
    # ulp of float32 (7.6e-6 at 100), which is about 3e-6 after dividing by the deviation.
    np.testing.assert_allclose(mine(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-5)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(theirs(inputs)))
    kernel, bias = model.layers[-1].get_weights()
    ours = fm.Sequential([fm.layers.Input((4,)), fm.layers.Normalization(), fm.layers.Dense(2)])
    ours.set_weights([*theirs.get_weights(), kernel, bias])  # Keras's weights, count included
    assert ours.count_params() == model.count_params() == 9 + 10
    np.testing.assert_allclose(ours.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_statistics_beyond_the_models_dtype_are_an_error_not_zeros() -> None:
    # The variance of data near 1e30 is about 1e60: finite in float64, infinite in float32,
    # where every feature would be divided to 0 and the model would predict its biases.
    x = np.random.default_rng(0).normal(size=(50, 3)) * 1e30
    norm = fm.layers.Normalization()
    norm.adapt(x)
    model = fm.Sequential([fm.layers.Input((3,)), norm, fm.layers.Dense(2)])
    with pytest.raises(ValueError, match="beyond the range of float32"):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        model.predict_on_batch(x[:1])
    given = fm.Sequential([fm.layers.Input((3,)), fm.layers.Normalization(mean=0.0, variance=1e300), fm.layers.Dense(2)])
    with pytest.raises(ValueError, match="beyond the range of float32"):
        given.predict(np.ones((2, 3)), verbose=0)
    wide = fm.layers.Normalization()
    wide.adapt(x)
    in_float64 = fm.Sequential([fm.layers.Input((3,)), wide, fm.layers.Dense(2)], dtype="float64")
    w, b = in_float64.layers[1].get_weights()
    expected = ((x - x.mean(axis=0)) / x.std(axis=0)) @ w + b
    np.testing.assert_allclose(in_float64.predict(x, verbose=0), expected, rtol=1e-6)
