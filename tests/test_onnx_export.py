"""ONNX export: the graph passes onnx's full check, and onnxruntime computes what ``predict``
(``predict_proba``) computes, within 1e-5, for every activation and both dtypes.

Estimators are checked with scikit-learn's own MLPClassifier/MLPRegressor (same fitted
attributes as fastmlp's, and an independent implementation to compare with) and, where it is
installed, with ``fastmlp.sklearn``'s."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp.layers import ELU, GELU, Activation, Dense, Dropout, Flatten, Input, LeakyReLU

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
fm_onnx = pytest.importorskip("fastmlp.onnx")

TOLERANCE = 1e-5
DTYPES = ("float32", "float64")


def run(proto: Any, x: np.ndarray) -> list[np.ndarray]:
    """The model checked, then run by onnxruntime on ``x``."""
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["X"]
    outputs: list[np.ndarray] = session.run(None, {"X": x})
    return outputs


def inputs(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    # Spread enough to reach the saturating and negative parts of every activation.
    return (3.0 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", fm.activations.ACTIVATIONS)
def test_every_activation_in_both_dtypes_matches_predict(activation: str, dtype: str) -> None:
    model = fm.Sequential(
        [Input((6,)), Dense(9, activation=activation), Dropout(0.5), Dense(4, activation=activation)],
        dtype=dtype,
    )
    x = inputs((13, 6), dtype)
    (output,) = run(fm_onnx.to_onnx(model), x)
    assert output.dtype == np.dtype(dtype)
    np.testing.assert_allclose(output, model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_layers_bias_free_layers_and_a_flattened_input(dtype: str) -> None:
    model = fm.Sequential(
        [
            Input((3, 4)),
            Flatten(),
            Dense(8, use_bias=False),
            LeakyReLU(negative_slope=0.05),
            Dense(8),
            ELU(alpha=0.5),
            Dropout(0.2),
            Dense(8),
            GELU(approximate=True),
            Dense(5),
            Activation("softplus"),
            Dense(3, activation="softmax", use_bias=False),
        ],
        dtype=dtype,
    )
    for n in (1, 17):  # the batch axis is dynamic
        x = inputs((n, 3, 4), dtype, seed=n)
        (output,) = run(fm_onnx.to_onnx(model), x)
        assert output.shape == (n, 3)
        np.testing.assert_allclose(output, model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_normalization_is_folded_into_its_dense_layer(dtype: str) -> None:
    model = fm.Sequential(
        [
            Input((6,)),
            Dense(9),
            fm.layers.BatchNormalization(),
            Activation("relu"),
            Dense(5, use_bias=False),
            fm.layers.BatchNormalization(center=False),
            Dense(3),
        ],
        dtype=dtype,
    )
    model.compile(optimizer="adam", loss="mse")
    x = inputs((40, 6), dtype)
    model.fit(x, np.ones((40, 3), dtype), batch_size=8, epochs=3, verbose=0)  # moving statistics away from 0 and 1
    (output,) = run(fm_onnx.to_onnx(model), x)
    np.testing.assert_allclose(output, model.predict(x, verbose=0), rtol=1e-5, atol=TOLERANCE)


def test_the_layer_parameters_reach_the_graph() -> None:
    """A slope other than the default changes the outputs: the test above would notice a
    graph that ignored it only if the two slopes disagree somewhere, so check that here."""
    x = inputs((20, 4), "float64")
    results = []
    for slope in (0.05, 0.5):
        fm.utils.set_random_seed(3)
        model = fm.Sequential([Input((4,)), Dense(5), LeakyReLU(negative_slope=slope)], dtype="float64")
        (output,) = run(fm_onnx.to_onnx(model), x)
        np.testing.assert_allclose(output, model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)
        results.append(output)
    assert not np.allclose(results[0], results[1])


def test_every_opset_from_the_oldest_passes_the_checker() -> None:
    model = fm.Sequential([Input((5,))] + [Dense(4, activation=a) for a in fm.activations.ACTIVATIONS])
    x = inputs((7, 5), "float32")
    expected = model.predict(x, verbose=0)
    for opset in range(fm_onnx.MIN_OPSET, onnx.defs.onnx_opset_version() + 1):
        proto = fm_onnx.to_onnx(model, target_opset=opset)
        assert [o.version for o in proto.opset_import] == [opset]
        onnx.checker.check_model(proto, full_check=True)
    for opset in (fm_onnx.MIN_OPSET, None):
        (output,) = run(fm_onnx.to_onnx(model, target_opset=opset), x)
        np.testing.assert_allclose(output, expected, rtol=0, atol=TOLERANCE)
    assert [o.version for o in fm_onnx.to_onnx(model).opset_import] == [fm_onnx.DEFAULT_OPSET]


@pytest.mark.parametrize("opset", [0, 12, 10_000, 17.0, True, "17"])
def test_an_unknown_opset_is_refused(opset: Any) -> None:
    model = fm.Sequential([Input((2,)), Dense(1)])
    with pytest.raises(ValueError, match="target_opset"):
        fm_onnx.to_onnx(model, target_opset=opset)


def test_an_unbuilt_model_is_refused() -> None:
    with pytest.raises(ValueError, match="not built"):
        fm_onnx.to_onnx(fm.Sequential([Dense(3)]))


def test_a_layer_of_the_users_own_never_reaches_the_exporter() -> None:
    class Scale(fm.layers.Layer):  # a layer of the user's own: neither the engine nor ONNX runs it
        pass

    # The model refuses it when it is made, so no model the exporter sees can hold it.
    with pytest.raises(ValueError, match="a Scale layer is not one of them"):
        fm.Sequential([Input((3,)), Dense(2), Scale(name="my_scale")])


@pytest.mark.parametrize("model", [None, "model.onnx", object(), np.zeros(3)])
def test_other_objects_are_refused(model: Any) -> None:
    with pytest.raises(TypeError, match="Sequential"):
        fm_onnx.to_onnx(model)


def test_export_writes_the_file_and_a_failed_export_keeps_the_old_one(tmp_path: Path) -> None:
    model = fm.Sequential([Input((3,)), Dense(2, activation="tanh")])
    path = tmp_path / "model.onnx"
    fm_onnx.export(model, path)
    loaded = onnx.load(str(path))
    x = inputs((4, 3), "float32")
    np.testing.assert_allclose(run(loaded, x)[0], model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)

    before = path.read_bytes()
    with pytest.raises(ValueError, match="not built"):
        fm_onnx.export(fm.Sequential([Dense(3)]), path)
    assert path.read_bytes() == before
    with pytest.raises(IsADirectoryError):
        fm_onnx.export(model, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]  # no temporary file left behind


# ----------------------------------------------------------------- scikit-learn style estimators


def fit(kind: str, dtype: str, activation: str, y: np.ndarray, **params: Any) -> Any:
    neural_network = pytest.importorskip("sklearn.neural_network")
    cls = neural_network.MLPClassifier if kind == "classifier" else neural_network.MLPRegressor
    x = inputs((60, 5), dtype, seed=1)
    estimator = cls(hidden_layer_sizes=(7, 6), activation=activation, max_iter=30, random_state=0, **params)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 30 iterations do not converge
        estimator.fit(x, y)
    return estimator


def classes(kind: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if kind == "binary":
        return np.where(rng.random(60) < 0.5, "no", "yes")
    if kind == "multiclass":
        return rng.choice(np.array([3, 7, 11]), size=60)
    return (rng.random((60, 4)) < 0.4).astype(np.int64)  # multi-label indicator


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("problem", ["binary", "multiclass", "multilabel"])
def test_a_classifier_gives_predict_and_predict_proba(problem: str, activation: str, dtype: str) -> None:
    estimator = fit("classifier", dtype, activation, classes(problem))
    x = inputs((25, 5), dtype, seed=4)
    label, probabilities = run(fm_onnx.to_onnx(estimator), x)
    assert probabilities.dtype == np.dtype(dtype)
    np.testing.assert_allclose(probabilities, estimator.predict_proba(x), rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(label, estimator.predict(x))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_a_regressor_gives_predict(loss: str, outputs: int, dtype: str) -> None:
    y = np.random.default_rng(5).random((60, outputs)) + 0.5
    estimator = fit("regressor", dtype, "tanh", y[:, 0] if outputs == 1 else y, loss=loss)
    x = inputs((25, 5), dtype, seed=6)
    (variable,) = run(fm_onnx.to_onnx(estimator), x)
    assert variable.dtype == np.dtype(dtype)
    assert variable.shape == estimator.predict(x).shape
    np.testing.assert_allclose(variable, estimator.predict(x), rtol=0, atol=TOLERANCE)


def test_unsigned_labels_beyond_int64_keep_their_values() -> None:
    # int64 would wrap 2^63 + 5 to a negative number: the graph's labels are uint64 instead.
    y = np.where(classes("binary") == "yes", np.uint64(2**63 + 5), np.uint64(1))
    estimator = fit("classifier", "float64", "relu", y)
    x = inputs((25, 5), "float64", seed=4)
    label, _ = run(fm_onnx.to_onnx(estimator), x)
    assert label.dtype == np.uint64
    np.testing.assert_array_equal(label, estimator.predict(x))


def test_an_intercept_that_does_not_fit_its_kernel_is_refused() -> None:
    # The checker passes such a graph; onnxruntime refuses it when it runs (a Gemm's bias).
    estimator = fit("classifier", "float32", "relu", classes("multiclass"))
    estimator.intercepts_[0] = estimator.intercepts_[0][:5]
    with pytest.raises(ValueError, match=r"layer 0 does not fit its neighbours: coefs_\[0\] has shape \(5, 7\) and intercepts_\[0\] \(5,\)"):
        fm_onnx.to_onnx(estimator)


def test_an_unfitted_estimator_raises_not_fitted_error() -> None:
    neural_network = pytest.importorskip("sklearn.neural_network")
    exceptions = pytest.importorskip("sklearn.exceptions")
    for cls in (neural_network.MLPClassifier, neural_network.MLPRegressor):
        with pytest.raises(exceptions.NotFittedError):
            fm_onnx.to_onnx(cls())


def test_other_estimators_are_refused() -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    with pytest.raises(TypeError, match="MLPClassifier"):
        fm_onnx.to_onnx(linear_model.LogisticRegression())


def test_an_activation_the_exporter_cannot_express_is_named() -> None:
    estimator = fit("classifier", "float64", "relu", classes("multiclass"))
    estimator.activation = "mish"
    with pytest.raises(ValueError, match="cannot express the activation activation='mish'"):
        fm_onnx.to_onnx(estimator)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fastmlp_estimators(dtype: str) -> None:
    fm_sklearn = pytest.importorskip("fastmlp.sklearn")
    x = inputs((60, 5), dtype, seed=1)
    rng = np.random.default_rng(7)
    settings = {"hidden_layer_sizes": (8, 5), "activation": "tanh", "max_iter": 5, "random_state": 0, "dtype": dtype}
    for estimator, y in [
        (fm_sklearn.MLPClassifier(**settings), rng.choice([0, 1, 2], 60)),
        (fm_sklearn.MLPClassifier(**settings), rng.choice(["a", "b"], 60)),
        (fm_sklearn.MLPClassifier(**settings), (rng.random((60, 3)) < 0.5).astype(int)),
        (fm_sklearn.MLPRegressor(**settings), rng.random(60)),
        (fm_sklearn.MLPRegressor(**settings), rng.random((60, 2))),
    ]:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(x, y)
        outputs = run(fm_onnx.to_onnx(estimator), x)
        if len(outputs) == 2:
            np.testing.assert_array_equal(outputs[0], estimator.predict(x))
            np.testing.assert_allclose(outputs[1], estimator.predict_proba(x), rtol=0, atol=TOLERANCE)
        else:
            np.testing.assert_allclose(outputs[0], estimator.predict(x), rtol=0, atol=TOLERANCE)
    with pytest.raises(pytest.importorskip("sklearn.exceptions").NotFittedError):
        fm_onnx.to_onnx(fm_sklearn.MLPRegressor())
