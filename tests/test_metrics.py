"""Metrics computed in C++ during training and evaluation, against NumPy definitions."""

from __future__ import annotations

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import reference as ref


def model(outputs: int, loss: str, metrics: list[str]) -> fm.Sequential:
    fm.utils.set_random_seed(0)
    m = fm.Sequential([fm.layers.Input(shape=(4,)), fm.layers.Dense(outputs, activation="softmax")], dtype="float64")
    m.compile(optimizer="sgd", loss=loss, metrics=metrics)
    return m


def in_top_k(pred: np.ndarray, target: np.ndarray, k: int = 5) -> np.ndarray:
    # TensorFlow's in_top_k: fewer than k classes score strictly higher than the target.
    higher = (pred > pred[np.arange(len(target)), target][:, None]).sum(axis=1)
    return higher < k


def test_top_k_dense_and_sparse() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 4)) * 3
    labels = rng.integers(0, 12, 300)
    onehot = np.eye(12)[labels]
    dense = model(12, "categorical_crossentropy", ["top_k_categorical_accuracy", "categorical_accuracy"])
    sparse = model(12, "sparse_categorical_crossentropy", ["sparse_top_k_categorical_accuracy", "accuracy"])
    pred = dense.predict(x, verbose=0)
    expected = in_top_k(pred, labels).mean()
    assert 0.2 < expected < 0.9  # the test data is informative
    _, top_k, acc = dense.evaluate(x, onehot, verbose=0)
    assert top_k == pytest.approx(expected, abs=1e-12)
    assert acc == pytest.approx(ref.accuracy("categorical", onehot, pred).mean(), abs=1e-12)
    _, sparse_top_k, sparse_acc = sparse.evaluate(x, labels, verbose=0)
    assert sparse_top_k == pytest.approx(expected, abs=1e-12)
    assert sparse_acc == pytest.approx(acc, abs=1e-12)


def test_top_k_counts_ties_as_in() -> None:
    m = model(7, "sparse_categorical_crossentropy", ["sparse_top_k_categorical_accuracy"])
    m.set_weights([np.zeros((4, 7)), np.zeros(7)])  # every class scores the same
    assert m.evaluate(np.ones((3, 4)), [0, 3, 6], verbose=0)[1] == 1.0


def test_metric_and_target_kinds_must_agree() -> None:
    with pytest.raises(ValueError, match="integer labels"):
        model(3, "categorical_crossentropy", ["sparse_top_k_categorical_accuracy"])
    with pytest.raises(ValueError, match="dense"):
        model(3, "sparse_categorical_crossentropy", ["top_k_categorical_accuracy"])
    with pytest.raises(ValueError, match="Unknown metric"):
        model(3, "mse", ["f1"])


def test_mse_mae_metrics() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4))
    y = rng.random((50, 3))
    m = model(3, "mse", ["mae", "mse"])
    pred = m.predict(x, verbose=0)
    loss, mae, mse = m.evaluate(x, y, verbose=0)
    assert mae == pytest.approx(np.abs(pred - y).mean(), rel=1e-12)
    assert mse == pytest.approx(np.square(pred - y).mean(), rel=1e-12)
    assert loss == pytest.approx(mse, rel=1e-12)
