"""fm.metrics objects and names (issue #18, item 3) against Keras's formulas, written here from
Keras 3's source (keras/src/metrics/confusion_metrics.py and metrics_utils.py) independently of
fastmlp.metrics; and against Keras itself where it is installed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as fm

EPS = 1e-7  # keras.backend.epsilon()


# ------------------------------------------------------------------ Keras's formulas, in NumPy


def keras_auc_thresholds(num_thresholds: int) -> np.ndarray:
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return np.array([0.0 - EPS, *inner, 1.0 + EPS])


def keras_bucket_counts(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """_update_confusion_matrix_variables_optimized with thresholds_with_epsilon, in float32
    as Keras's metric variables: segment sums over ceil(p * (n - 1)) - 1, then reverse cumsum."""
    pred = np.clip(y_pred.astype(np.float32).reshape(-1), 0.0, 1.0)
    true = (y_true.reshape(-1) != 0).astype(np.float64)
    index = np.ceil(pred * np.float32(n - 1)) - np.float32(1)
    index = np.maximum(index, 0).astype(np.int64)
    tp_bucket = np.bincount(index, weights=true, minlength=n)
    fp_bucket = np.bincount(index, weights=1.0 - true, minlength=n)
    tp = np.cumsum(tp_bucket[::-1])[::-1]
    fp = np.cumsum(fp_bucket[::-1])[::-1]
    return tp, fp, np.sum(1.0 - true) - fp, np.sum(true) - tp


def no_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


def keras_roc_auc(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> float:
    x = no_nan(fp, fp + tn)
    y = no_nan(tp, tp + fn)
    return float(np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2.0))


def keras_pr_auc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """AUC.interpolate_pr_auc (Davis & Goadrich's interpolation)."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = no_nan(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    ratio = np.ones_like(p[1:])
    ok = (p[:-1] > 0) & (p[1:] > 0)
    ratio[ok] = p[:-1][ok] / p[1:][ok]
    return float(np.sum(no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))))


def keras_counts_at(y_true: np.ndarray, y_pred: np.ndarray, threshold: float) -> tuple[float, ...]:
    pos = y_pred.astype(np.float32) > np.float32(threshold)
    true = y_true != 0
    return (
        float(np.sum(pos & true)),
        float(np.sum(pos & ~true)),
        float(np.sum(~pos & ~true)),
        float(np.sum(~pos & true)),
    )


def keras_values(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """What Keras logs for these metrics on these predictions (dense targets)."""
    tp, fp, tn, fn = keras_bucket_counts(y_true, y_pred, 200)
    c_tp, c_fp, c_tn, c_fn = keras_counts_at(y_true, y_pred, 0.5)
    err = y_pred.astype(np.float64) - y_true
    return {
        "auc": keras_roc_auc(tp, fp, tn, fn),
        "pr": keras_pr_auc(tp, fp, fn),
        "precision": c_tp / (c_tp + c_fp) if c_tp + c_fp else 0.0,
        "recall": c_tp / (c_tp + c_fn) if c_tp + c_fn else 0.0,
        "true_positives": c_tp,
        "false_positives": c_fp,
        "true_negatives": c_tn,
        "false_negatives": c_fn,
        "rmse": math.sqrt(float(np.mean(err**2))),
        "mse": float(np.mean(err**2)),
    }


# ------------------------------------------------------------------ data and models


def binary_data(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = ((x[:, 0] + 0.7 * rng.normal(size=n)) > 0).astype(np.float32).reshape(-1, 1)
    return x, y


def multiclass_data(n: int = 240, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    labels = np.argmax(x[:, :4] + 0.8 * rng.normal(size=(n, 4)), axis=1)
    return x, np.eye(4, dtype=np.float32)[labels]


def model_for(outputs: int, activation: str, seed: int = 3) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    return fm.Sequential([fm.layers.Input((5 if outputs == 1 else 6,)), fm.layers.Dense(8, activation="tanh"),
                          fm.layers.Dense(outputs, activation=activation)])


class PerBatch(fm.callbacks.Callback):
    """Wants per-batch hooks: fit then calls the core once per batch, so the states of many
    calls are added up."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass


def frozen_sgd() -> fm.optimizers.SGD:
    """A step that changes nothing, so that the epoch's metrics are those of predict's outputs."""
    return fm.optimizers.SGD(learning_rate=0.0)


# ------------------------------------------------------------------ standalone (Keras's examples)


def test_auc_docstring_example() -> None:
    m = fm.metrics.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.thresholds == pytest.approx([-1e-7, 0.5, 1 + 1e-7])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)


def test_precision_recall_docstring_examples() -> None:
    p = fm.metrics.Precision()
    p.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert p.result() == pytest.approx(2 / 3)
    p.reset_state()
    p.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
    assert p.result() == pytest.approx(1.0)
    r = fm.metrics.Recall()
    r.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert r.result() == pytest.approx(2 / 3)
    # class_id picks one output column of 2-D data.
    pc = fm.metrics.Precision(class_id=1)
    pc.update_state([[0, 1], [1, 0], [0, 1]], [[0.2, 0.9], [0.1, 0.8], [0.7, 0.3]])
    assert pc.result() == pytest.approx(0.5)
    # top_k: only each row's k largest predictions count as positive.
    pk = fm.metrics.Precision(top_k=1)
    pk.update_state([[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.4], [0.3, 0.6, 0.1]])
    assert pk.result() == pytest.approx(0.5)


def test_counts_and_accuracies_standalone() -> None:
    y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    p = np.array([[0.9], [0.6], [0.4], [0.2], [0.51]])
    for cls, expected in [(fm.metrics.TruePositives, 2), (fm.metrics.FalsePositives, 1),
                          (fm.metrics.TrueNegatives, 1), (fm.metrics.FalseNegatives, 1)]:
        m = cls()
        m.update_state(y, p)
        assert m.result() == expected
    acc = fm.metrics.BinaryAccuracy(threshold=0.55)
    acc.update_state(y, p)
    assert acc.result() == pytest.approx(2 / 5)
    rmse = fm.metrics.RootMeanSquaredError()
    rmse.update_state(y, p)
    assert rmse.result() == pytest.approx(math.sqrt(np.mean((y - p) ** 2)))
    top = fm.metrics.TopKCategoricalAccuracy(k=1)
    top.update_state([[0, 1, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
    assert top.result() == pytest.approx(0.5)


def test_standalone_auc_matches_formulas_on_random_predictions() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.4).astype(np.float64)
    p = np.clip(0.3 * y + 0.7 * rng.random(500), 0, 1).astype(np.float32)
    tp, fp, tn, fn = keras_bucket_counts(y, p, 200)
    roc = fm.metrics.AUC()
    roc.update_state(y, p)
    assert roc.result() == pytest.approx(keras_roc_auc(tp, fp, tn, fn), abs=1e-6)
    pr = fm.metrics.AUC(curve="PR")
    pr.update_state(y[:250], p[:250])
    pr.update_state(y[250:], p[250:])
    assert pr.result() == pytest.approx(keras_pr_auc(tp, fp, fn), abs=1e-6)
    # The bucketed AUC approximates the exact one (Mann-Whitney).
    pos, neg = p[y == 1], p[y == 0]
    exact = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    assert roc.result() == pytest.approx(exact, abs=1e-2)


# ------------------------------------------------------------------ fit and evaluate in the core


def test_binary_fit_logs_keras_values_over_many_chunks() -> None:
    fm.backend.clear_session()  # default names without a _1: no other TruePositives before
    x, y = binary_data()
    model = model_for(1, "sigmoid")
    model.compile(frozen_sgd(), "binary_crossentropy",
                  metrics=["auc", fm.metrics.AUC(curve="PR", name="pr"), "precision", "recall",
                           fm.metrics.TruePositives(), fm.metrics.FalsePositives(), fm.metrics.TrueNegatives(),
                           fm.metrics.FalseNegatives(), fm.metrics.RootMeanSquaredError(name="rmse"),
                           fm.metrics.MeanSquaredError(name="mse"), "acc"])
    history = model.fit(x, y, batch_size=7, epochs=1, verbose=0, shuffle=True,
                        validation_data=(x[:100], y[:100]), callbacks=[PerBatch()])
    expected = keras_values(y, model.predict(x, verbose=0))
    expected_val = keras_values(y[:100], model.predict(x[:100], verbose=0))
    for name, value in expected.items():
        tolerance = 1e-4 if name in ("auc", "pr") else 1e-6
        assert history.history[name][0] == pytest.approx(value, abs=tolerance), name
        assert history.history["val_" + name][0] == pytest.approx(expected_val[name], abs=tolerance), name
    evaluated = model.evaluate(x, y, batch_size=11, verbose=0, return_dict=True)
    for name, value in expected.items():
        assert evaluated[name] == pytest.approx(value, abs=1e-4 if name in ("auc", "pr") else 1e-6), name


def test_multiclass_fit_and_evaluate_match_formulas() -> None:
    fm.backend.clear_session()
    x, y = multiclass_data()
    model = model_for(4, "softmax")
    model.compile(frozen_sgd(), "categorical_crossentropy",
                  metrics=[fm.metrics.AUC(), fm.metrics.AUC(multi_label=True, name="ml_auc"),
                           fm.metrics.Precision(class_id=2), fm.metrics.Recall(top_k=2),
                           fm.metrics.TopKCategoricalAccuracy(), "categorical_accuracy",
                           fm.metrics.BinaryAccuracy(threshold=0.3)])
    logs = model.evaluate(x, y, batch_size=9, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    tp, fp, tn, fn = keras_bucket_counts(y, p, 200)
    assert logs["auc"] == pytest.approx(keras_roc_auc(tp, fp, tn, fn), abs=1e-4)
    per_label = [keras_roc_auc(*keras_bucket_counts(y[:, j], p[:, j], 200)) for j in range(4)]
    assert logs["ml_auc"] == pytest.approx(np.mean(per_label), abs=1e-4)
    c_tp, c_fp, _, _ = keras_counts_at(y[:, 2], p[:, 2], 0.5)
    assert logs["precision"] == pytest.approx(c_tp / (c_tp + c_fp) if c_tp + c_fp else 0.0, abs=1e-6)
    top2 = np.argsort(-p, axis=1, kind="stable")[:, :2]
    hits = np.take_along_axis(y, top2, axis=1).sum()
    assert logs["recall"] == pytest.approx(hits / y.sum(), abs=1e-6)
    ranks = np.sum(p > np.sum(p * y, axis=1, keepdims=True), axis=1)
    assert logs["top_k_categorical_accuracy"] == pytest.approx(np.mean(ranks < 5), abs=1e-6)
    assert logs["categorical_accuracy"] == pytest.approx(np.mean(p.argmax(1) == y.argmax(1)), abs=1e-6)
    assert logs["binary_accuracy"] == pytest.approx(np.mean((p > 0.3) == (y == 1)), abs=1e-6)


def test_metric_states_do_not_depend_on_threads() -> None:
    x, y = multiclass_data(600)
    results = []
    saved = fm.get_num_threads()
    try:
        for threads in (1, 2, 3):
            fm.set_num_threads(threads)
            model = model_for(4, "softmax", seed=7)
            model.compile("adam", "categorical_crossentropy",
                          metrics=["auc", fm.metrics.AUC(curve="PR", name="pr"), "precision", "recall",
                                   fm.metrics.RootMeanSquaredError()])
            history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.2)
            results.append(history.history)
    finally:
        fm.set_num_threads(saved)
    assert results[0] == results[1] == results[2]


def test_names_in_history_as_keras() -> None:
    fm.backend.clear_session()
    x, y = binary_data(60)
    first = fm.metrics.AUC()
    second = fm.metrics.AUC()
    assert (first.name, second.name) == ("auc", "auc_1")
    assert fm.metrics.Precision().name == "precision"
    assert fm.metrics.TruePositives().name == "true_positives"
    model = model_for(1, "sigmoid")
    model.compile("adam", "binary_crossentropy", metrics=["auc", "auc", "acc", "AUC", fm.metrics.Recall(name="r")])
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25)
    # Keras 3 sorts the logs by name (pythonify_logs); the validation logs follow.
    assert list(history.history) == ["AUC", "acc", "auc", "auc_1", "loss", "r",
                                     "val_AUC", "val_acc", "val_auc", "val_auc_1", "val_loss", "val_r"]
    assert model.metrics_names == ["loss", "compile_metrics"]
    assert list(model.metrics[1].result()) == ["auc", "auc_1", "acc", "AUC", "r"]
    assert len(model.evaluate(x, y, verbose=0)) == 6


def test_save_and_load_keep_metric_objects(tmp_path: Any) -> None:
    x, y = binary_data(80)
    model = model_for(1, "sigmoid")
    model.compile("adam", "binary_crossentropy",
                  metrics=[fm.metrics.AUC(curve="PR", num_thresholds=50, name="pr"), "precision",
                           fm.metrics.Recall(thresholds=0.3), "mae"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.fastmlp"
    model.save(str(path))
    loaded = fm.models.load_model(str(path))
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)


# ------------------------------------------------------------------ bad input


def test_bad_metric_input() -> None:
    model = model_for(3, "softmax")
    with pytest.raises(ValueError, match="Unknown metric") as refused:
        model.compile("adam", "categorical_crossentropy", metrics=["no_such_metric"])
    for name in ("'auc'", "'precision'", "'recall'", "'f1_score'"):  # the names compile does take
        assert name in str(refused.value)
    for name in ("auc", "precision", "recall", "f1_score"):
        model.compile("adam", "categorical_crossentropy", metrics=[name])
    with pytest.raises(ValueError, match="num_thresholds"):
        fm.metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        fm.metrics.AUC(curve="ROCK")
    with pytest.raises(ValueError, match="summation"):
        fm.metrics.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError, match="Threshold"):
        fm.metrics.Precision(thresholds=1.5)
    with pytest.raises(ValueError, match="class_id"):
        model.compile("adam", "categorical_crossentropy", metrics=[fm.metrics.Precision(class_id=3)])
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["auc"])
    with pytest.raises(ValueError, match="num_labels"):
        model.compile("adam", "categorical_crossentropy", metrics=[fm.metrics.AUC(multi_label=True, num_labels=2)])
    with pytest.raises(ValueError, match="thresholds"):
        model.compile("adam", "categorical_crossentropy", metrics=[fm.metrics.Precision(thresholds=[0.3, 0.6])])
    with pytest.raises(ValueError, match="label_smoothing"):
        fm.metrics.CategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(ValueError, match="k"):
        fm.metrics.TopKCategoricalAccuracy(k=0)
    with pytest.raises(TypeError):
        model.compile("adam", "categorical_crossentropy", metrics=[3])
    with pytest.raises(ValueError, match="same shape"):
        fm.metrics.AUC().update_state([[0, 1]], [[0.1, 0.2, 0.3]])
    # A refused compile leaves the model as it was.
    model.compile("adam", "categorical_crossentropy", metrics=["auc"])
    with pytest.raises(ValueError):
        model.compile("adam", "categorical_crossentropy", metrics=[fm.metrics.Recall(class_id=7)])
    assert [m.name for m in model.metrics[1].metrics] == ["auc"]


# ------------------------------------------------------------------ against Keras itself


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_real_keras() -> None:
    keras = import_keras()
    rng = np.random.default_rng(11)
    y = (rng.random((300, 3)) < 0.3).astype(np.float32)
    p = np.clip(0.35 * y + 0.65 * rng.random((300, 3)), 0, 1).astype(np.float32)
    pairs = [
        (fm.metrics.AUC(), keras.metrics.AUC()),
        (fm.metrics.AUC(curve="PR"), keras.metrics.AUC(curve="PR")),
        (fm.metrics.AUC(multi_label=True), keras.metrics.AUC(multi_label=True)),
        (fm.metrics.AUC(num_thresholds=17, summation_method="minoring"),
         keras.metrics.AUC(num_thresholds=17, summation_method="minoring")),
        (fm.metrics.Precision(), keras.metrics.Precision()),
        (fm.metrics.Recall(top_k=2), keras.metrics.Recall(top_k=2)),
        (fm.metrics.Precision(class_id=1), keras.metrics.Precision(class_id=1)),
        (fm.metrics.TrueNegatives(thresholds=0.4), keras.metrics.TrueNegatives(thresholds=0.4)),
        (fm.metrics.BinaryAccuracy(), keras.metrics.BinaryAccuracy()),
        (fm.metrics.RootMeanSquaredError(), keras.metrics.RootMeanSquaredError()),
        (fm.metrics.CategoricalAccuracy(), keras.metrics.CategoricalAccuracy()),
    ]
    for ours, theirs in pairs:
        ours.update_state(y[:150], p[:150])
        ours.update_state(y[150:], p[150:])
        theirs.update_state(y[:150], p[:150])
        theirs.update_state(y[150:], p[150:])
        tolerance = 1e-4 if isinstance(ours, fm.metrics.AUC) else 1e-6
        assert ours.result() == pytest.approx(float(theirs.result()), abs=tolerance), type(ours).__name__
    # The core's states over many batches give Keras's values on the model's predictions.
    fm.backend.clear_session()
    x, yb = binary_data()
    model = model_for(1, "sigmoid")
    model.compile("adam", "binary_crossentropy", metrics=["auc", fm.metrics.AUC(curve="PR", name="pr"), "precision"])
    logs = model.evaluate(x, yb, batch_size=13, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    for name, theirs in [("auc", keras.metrics.AUC()), ("pr", keras.metrics.AUC(curve="PR")),
                         ("precision", keras.metrics.Precision())]:
        theirs.update_state(yb, pred)
        assert logs[name] == pytest.approx(float(theirs.result()), abs=1e-4 if name != "precision" else 1e-6), name
