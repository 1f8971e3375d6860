"""More everyday Keras 3 scripts for dense networks, run with only the import changed
(``import fastmlp as keras``): the Keras guides (training, callbacks, saving), Deep Learning with
Python (IMDB, Reuters, Boston housing with k-fold), the TensorFlow tutorials (regression with
Normalization, overfitting with l2 and Dropout, imbalanced data with class weights, metric
objects and an initial output bias) and StackOverflow-style scripts. Each ran unchanged with
Keras 3 (JAX backend) first; the expected values are Keras's rules (log names and order,
callback params and hooks) or computed here from the predictions, never fastmlp's output.
Small data and few epochs keep the file fast.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as keras
from fastmlp import layers, regularizers


def blobs(n: int, features: int, classes: int, seed: int, spread: float = 0.6) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, (classes, features))
    y = rng.integers(0, classes, n)
    return (centers[y] + spread * rng.normal(size=(n, features))).astype("float32"), y


def test_imdb_style_multi_hot_history_keys_sorted_as_keras() -> None:
    # Deep Learning with Python, ch. 4: keys as Keras 3 prints them, sorted, val_ after.
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 600).astype("float32")
    x = np.zeros((600, 2000))
    for i, label in enumerate(y):
        x[i, rng.integers(0, 2000, 60)] = 1.0
        x[i, rng.integers(0, 100, 25) + (0 if label else 100)] = 1.0
    model = keras.Sequential([layers.Dense(16, activation="relu"), layers.Dense(16, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x[200:], y[200:], epochs=4, batch_size=128, validation_data=(x[:200], y[:200]), verbose=0)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    results = model.evaluate(x[:200], y[:200], verbose=0)
    assert isinstance(results, list) and len(results) == 2 and results[1] > 0.85
    predicted = (model.predict(x[:200], verbose=0) > 0.5).astype("int32")
    assert predicted.shape == (200, 1)
    assert abs(float(np.mean(predicted[:, 0] == y[:200])) - results[1]) < 1e-6


def test_reuters_style_sparse_labels_with_top_k_of_any_k() -> None:
    x, y = blobs(900, 20, 8, seed=2, spread=1.5)
    model = keras.Sequential([layers.Dense(32, activation="relu"), layers.Dense(8, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=3, name="top3")])
    history = model.fit(x[:700], y[:700], epochs=3, batch_size=64, validation_data=(x[700:], y[700:]), verbose=0)
    assert list(history.history) == ["accuracy", "loss", "top3", "val_accuracy", "val_loss", "val_top3"]
    result = model.evaluate(x[700:], y[700:], return_dict=True, verbose=0)
    assert list(result) == ["accuracy", "loss", "top3"]
    p = model.predict(x[700:], verbose=0)
    # Keras's in_top_k: fewer than k classes score strictly higher.
    higher = np.sum(p > p[np.arange(len(p)), y[700:]][:, None], axis=1)
    assert result["top3"] == pytest.approx(np.mean(higher < 3), abs=1e-6)
    assert result["accuracy"] == pytest.approx(np.mean(p.argmax(axis=1) == y[700:]), abs=1e-6)


def test_boston_style_k_fold_returns_mse_and_mae() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(240, 13))
    targets = data @ rng.normal(size=13) + 2 + 0.3 * rng.normal(size=240)
    data = (data - data.mean(axis=0)) / data.std(axis=0)

    def build_model() -> Any:
        model = keras.Sequential([layers.Dense(32, activation="relu"), layers.Dense(1)])
        model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
        return model

    k, fold = 3, 80
    scores = []
    for i in range(k):
        val_data, val_targets = data[i * fold:(i + 1) * fold], targets[i * fold:(i + 1) * fold]
        train_data = np.concatenate([data[:i * fold], data[(i + 1) * fold:]])
        train_targets = np.concatenate([targets[:i * fold], targets[(i + 1) * fold:]])
        model = build_model()
        history = model.fit(train_data, train_targets, validation_data=(val_data, val_targets),
                            epochs=40, batch_size=16, verbose=0)
        assert len(history.history["val_mae"]) == 40
        val_mse, val_mae = model.evaluate(val_data, val_targets, verbose=0)  # type: ignore[misc]
        error = model.predict(val_data, verbose=0)[:, 0] - val_targets
        assert val_mae == pytest.approx(np.mean(np.abs(error)), rel=1e-4)
        assert val_mse == pytest.approx(np.mean(error**2), rel=1e-4)
        scores.append(val_mae)
    assert np.mean(scores) < 1.0


def test_basic_regression_with_normalization_one_feature_and_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(100, 30, (300, 3))
    labels = 10 - features[:, 0] / 10 + features[:, 1] / 50 + rng.normal(0, 1, 300)
    normalizer = layers.Normalization(axis=-1)
    normalizer.adapt(np.array(features[:240]))
    assert np.array(normalizer.mean).shape == (1, 3)
    np.testing.assert_allclose(np.array(normalizer.mean)[0], features[:240].mean(axis=0), rtol=1e-5)
    first = np.array(features[:1])
    expected = (first - features[:240].mean(axis=0)) / features[:240].std(axis=0)
    np.testing.assert_allclose(np.array(normalizer(first)), expected, rtol=1e-4)

    # One feature: Normalization(input_shape=[1,], axis=None) and x of shape (n,), as the tutorial.
    horsepower = np.array(features[:240, 0])
    horsepower_normalizer = layers.Normalization(input_shape=[1], axis=None)
    horsepower_normalizer.adapt(horsepower)
    horsepower_model = keras.Sequential([horsepower_normalizer, layers.Dense(units=1)])
    assert horsepower_model.predict(horsepower[:10], verbose=0).shape == (10, 1)
    horsepower_model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mean_absolute_error")
    horsepower_model.fit(horsepower, labels[:240], epochs=30, verbose=0, validation_split=0.2)
    assert horsepower_model.evaluate(features[240:, 0], labels[240:], verbose=0) < 2.0

    dnn_model = keras.Sequential([normalizer, layers.Dense(32, activation="relu"), layers.Dense(1)])
    dnn_model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.01))
    dnn_model.fit(features[:240], labels[:240], validation_split=0.2, verbose=0, epochs=40)
    result = dnn_model.evaluate(features[240:], labels[240:], verbose=0)
    assert isinstance(result, float) and result < 2.0
    dnn_model.save(tmp_path / "dnn_model.keras")
    with pytest.warns(keras.saving.OptimizerStateResetWarning):  # Keras's optimizer variables are not read
        reloaded = keras.models.load_model(tmp_path / "dnn_model.keras")
    assert reloaded.evaluate(features[240:], labels[240:], verbose=0) == pytest.approx(result, rel=1e-5)


def test_overfit_tutorial_cross_entropy_metric_without_the_penalty() -> None:
    # TensorFlow's "Overfit and underfit": l2, Dropout, InverseTimeDecay, a BinaryCrossentropy metric.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(700, 28)).astype("float32")
    y = (x[:, :5].sum(axis=1) > 0).astype("float32").reshape(-1, 1)
    lr_schedule = keras.optimizers.schedules.InverseTimeDecay(0.001, decay_steps=20 * 1000, decay_rate=1, staircase=False)
    model = keras.Sequential([
        layers.Dense(64, activation="elu", kernel_regularizer=regularizers.l2(0.001), input_shape=(28,)),
        layers.Dropout(0.5),
        layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(lr_schedule),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryCrossentropy(from_logits=True, name="binary_crossentropy"), "accuracy"])
    history = model.fit(x[:500], y[:500], batch_size=50, steps_per_epoch=10, epochs=30, validation_data=(x[500:], y[500:]),
                        callbacks=[keras.callbacks.EarlyStopping(monitor="val_binary_crossentropy", patience=200)],
                        verbose=0)
    assert list(history.history) == ["accuracy", "binary_crossentropy", "loss",
                                     "val_accuracy", "val_binary_crossentropy", "val_loss"]
    # The loss holds the l2 penalty, the metric does not.
    assert history.history["loss"][-1] > history.history["binary_crossentropy"][-1]
    # The validation metric is Keras's formula on the logits (dropout is off in evaluation).
    logits = model.predict(x[500:], verbose=0).astype(np.float64)
    t = y[500:]
    expected = np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))))
    assert history.history["val_binary_crossentropy"][-1] == pytest.approx(expected, rel=1e-4)
    assert history.history["val_accuracy"][-1] > 0.85


def test_imbalanced_tutorial_metric_objects_bias_and_class_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 29)).astype("float32")
    labels = (rng.random(3000) < 1 / (1 + np.exp(-(2 * x[:, 0] + x[:, 1] - 3.5)))).astype("float32").reshape(-1, 1)
    train_x, val_x, train_y, val_y = x[:2400], x[2400:], labels[:2400], labels[2400:]
    neg, pos = np.bincount(train_y.astype(int).ravel())
    metrics = [
        keras.metrics.BinaryCrossentropy(name="cross entropy"),
        keras.metrics.MeanSquaredError(name="Brier score"),
        keras.metrics.TruePositives(name="tp"),
        keras.metrics.FalseNegatives(name="fn"),
        keras.metrics.BinaryAccuracy(name="accuracy"),
        keras.metrics.Precision(name="precision"),
        keras.metrics.AUC(name="auc"),
        keras.metrics.AUC(name="prc", curve="PR"),
    ]

    def make_model(output_bias: Any = None) -> Any:
        if output_bias is not None:
            output_bias = keras.initializers.Constant(output_bias)
        model = keras.Sequential([
            keras.layers.Dense(16, activation="relu", input_shape=(29,)),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1, activation="sigmoid", bias_initializer=output_bias),
        ])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=keras.losses.BinaryCrossentropy(),
                      metrics=metrics)
        return model

    initial_bias = np.log([pos / neg])
    model = make_model(output_bias=initial_bias)
    np.testing.assert_allclose(model.layers[-1].bias, initial_bias, rtol=1e-6)
    initial_weights = str(tmp_path / "initial.weights.h5")
    model.save_weights(initial_weights)
    model = make_model()
    model.load_weights(initial_weights)
    model.layers[-1].bias.assign([0.0])
    assert model.layers[-1].get_weights()[1][0] == 0.0
    weighted = make_model()
    weighted.load_weights(initial_weights)
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_prc", patience=10, mode="max", restore_best_weights=True)
    history = weighted.fit(train_x, train_y, batch_size=256, epochs=6, callbacks=[early_stopping],
                           validation_data=(val_x, val_y), verbose=0,
                           class_weight={0: (1 / neg) * (len(train_y) / 2.0), 1: (1 / pos) * (len(train_y) / 2.0)})
    names = sorted(["Brier score", "accuracy", "auc", "cross entropy", "fn", "loss", "prc", "precision", "tp"])
    assert list(history.history) == names + ["val_" + name for name in names]
    assert weighted.metrics_names == ["loss", "compile_metrics"]
    results = weighted.evaluate(val_x, val_y, batch_size=256, verbose=0)
    assert len(results) == 9  # type: ignore[arg-type]
    p = weighted.predict(val_x, verbose=0)[:, 0].astype(np.float64)
    truth = val_y[:, 0] == 1
    values = dict(zip(["loss", *[m.name for m in metrics]], results))  # type: ignore[arg-type]
    assert values["tp"] == np.sum((p > 0.5) & truth) and values["fn"] == np.sum((p <= 0.5) & truth)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    cross_entropy = -np.mean(truth * np.log(clipped) + (~truth) * np.log(1 - clipped))
    assert values["cross entropy"] == pytest.approx(cross_entropy, rel=1e-4)
    assert values["Brier score"] == pytest.approx(np.mean((p - truth) ** 2), rel=1e-4)
    # The objects given to compile hold the last loop's state (this evaluate), as in Keras 3.
    assert float(metrics[6].result()) == pytest.approx(values["auc"], abs=1e-12)
    assert float(metrics[2].result()) == values["tp"]


def test_guide_callbacks_get_dicts_and_every_batch_hook() -> None:
    # "Writing your own callbacks": the hooks Keras 3 calls, each with a dict.
    rng = np.random.default_rng(9)
    x = rng.random((500, 20)).astype("float32")
    y = x[:, :5].sum(axis=1).astype("float32")
    calls: Counter[str] = Counter()

    class CustomCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            calls["train_begin"] += len(list(logs.keys())) + 1

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            calls["epoch_begin"] += len(list(logs.keys())) + 1

        def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
            calls["test_batch_end"] += 1
            assert set(logs) == {"loss", "mean_absolute_error"}

        def on_predict_batch_end(self, batch: int, logs: Any = None) -> None:
            calls["predict_batch_end"] += 1
            calls["predicted_rows"] += len(logs["outputs"])

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            calls["train_batch_end"] += 1

    model = keras.Sequential()
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1), loss="mean_squared_error",
                  metrics=["mean_absolute_error"])
    history = model.fit(x, y, batch_size=128, epochs=1, verbose=0, validation_split=0.5, callbacks=[CustomCallback()])
    assert history.params == {"verbose": 0, "epochs": 1, "steps": 2}
    model.evaluate(x, y, batch_size=128, verbose=0, callbacks=[CustomCallback()])
    out = model.predict(x, callbacks=[CustomCallback()], verbose=0)
    assert calls["train_begin"] == 1 and calls["epoch_begin"] == 1 and calls["train_batch_end"] == 2
    assert calls["test_batch_end"] == 2 + 4 and calls["predict_batch_end"] == 16 and calls["predicted_rows"] == 500
    np.testing.assert_array_equal(out, model.predict(x, verbose=0))


def test_stackoverflow_callbacks_csv_and_best_checkpoint(tmp_path: Path) -> None:
    x, y = blobs(900, 12, 3, seed=11)
    counts = np.bincount(y[:700])
    class_weights = {i: 700 / (3 * c) for i, c in enumerate(counts)}
    model = keras.models.Sequential()
    model.add(keras.layers.Dense(32, activation="relu", input_dim=12))
    model.add(keras.layers.Dropout(0.3))
    model.add(keras.layers.Dense(3, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    epoch_losses: list[float] = []
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="val_accuracy", save_best_only=True, mode="max"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=2, min_lr=1e-5),
        keras.callbacks.CSVLogger(str(tmp_path / "training.log")),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epoch_losses.append(logs["loss"])),
    ]
    history = model.fit(x[:700], y[:700], epochs=8, batch_size=64, validation_split=0.2, class_weight=class_weights,
                        callbacks=callbacks, verbose=0)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"]
    assert epoch_losses == history.history["loss"]
    assert history.params == {"verbose": 0, "epochs": 8, "steps": 9}
    header = (tmp_path / "training.log").read_text().splitlines()[0]
    assert header == "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    with pytest.warns(keras.saving.OptimizerStateResetWarning):  # Keras's optimizer variables are not read
        best = keras.models.load_model(tmp_path / "best.keras")
    y_pred = best.predict(x[700:], verbose=0).argmax(axis=1)
    _, accuracy = best.evaluate(x[700:], y[700:], verbose=0)  # type: ignore[misc]
    assert accuracy == pytest.approx(np.mean(y_pred == y[700:]), abs=1e-6) and accuracy > 0.85


def test_textbook_layer_access_params_and_rmse_metric_name() -> None:
    # Hands-On ML style: Flatten(input_shape), model.layers[1].name, history.params, "RootMeanSquaredError".
    keras.backend.clear_session()
    keras.utils.set_random_seed(42)
    images, labels = blobs(600, 64, 10, seed=12)
    images = images.reshape(600, 8, 8)
    model = keras.models.Sequential([
        keras.layers.Flatten(input_shape=[8, 8]),
        keras.layers.Dense(30, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    hidden1 = model.layers[1]
    assert hidden1.name == "dense" and model.get_layer("dense") is hidden1
    weights, biases = hidden1.get_weights()
    assert weights.shape == (64, 30) and not biases.any()
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(learning_rate=0.05),
                  metrics=["accuracy"])
    history = model.fit(images[:500], labels[:500], epochs=3, validation_data=(images[500:], labels[500:]))
    assert history.epoch == [0, 1, 2]
    assert history.params == {"verbose": "auto", "epochs": 3, "steps": 16}
    x = np.random.default_rng(13).normal(size=(400, 8))
    targets = x @ np.linspace(-1, 1, 8) + 2
    norm_layer = keras.layers.Normalization(input_shape=x.shape[1:])
    model = keras.Sequential([norm_layer, keras.layers.Dense(30, activation="relu", kernel_initializer="he_normal"),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-2), metrics=["RootMeanSquaredError"])
    norm_layer.adapt(x[:300])
    history = model.fit(x[:300], targets[:300], epochs=20, validation_data=(x[300:], targets[300:]), verbose=0)
    assert list(history.history) == ["RootMeanSquaredError", "loss", "val_RootMeanSquaredError", "val_loss"]
    mse_test, rmse_test = model.evaluate(x[300:], targets[300:], verbose=0)  # type: ignore[misc]
    assert rmse_test == pytest.approx(math.sqrt(mse_test), rel=1e-5) and rmse_test < 0.3 * np.std(targets)


def test_restarts_past_the_end_of_shrinking_periods_are_an_error_not_nan() -> None:
    # t_mul = 0.5: periods of 10, 5, 2.5, ... steps end after 10 / (1 - 0.5) = 20 steps.
    shrinking = keras.optimizers.schedules.CosineDecayRestarts(0.1, 10, t_mul=0.5)
    assert shrinking(5) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert shrinking(12.5) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # halfway through the 5
    with pytest.raises(ValueError, match="all end after .* = 20 steps; step 20 has no learning rate"):
        shrinking(20)
    with pytest.raises(ValueError, match="beyond float's range"):
        keras.optimizers.schedules.CosineDecayRestarts(0.1, 1, t_mul=1e308)(3)


def test_learning_rate_schedules_of_keras_including_polynomial_and_restarts() -> None:
    x, y = blobs(400, 10, 2, seed=10)
    lr_schedules = [
        keras.optimizers.schedules.PolynomialDecay(1e-2, 20, end_learning_rate=1e-4, power=0.5),
        keras.optimizers.schedules.CosineDecayRestarts(1e-2, 10),
    ]
    for schedule in lr_schedules:
        model = keras.Sequential([keras.Input((10,)), layers.Dense(16, activation="relu"), layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        assert history.history["accuracy"][-1] > 0.85
    # Keras's formulas: PolynomialDecay (cycle=False) and SGDR with t_mul=2.
    assert float(lr_schedules[0](5)) == pytest.approx((1e-2 - 1e-4) * (1 - 5 / 20) ** 0.5 + 1e-4)
    assert float(lr_schedules[0](50)) == pytest.approx(1e-4)
    # Step 15: restart 1 (its period is 20 steps from step 10), a quarter through it.
    assert float(lr_schedules[1](15)) == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 0.25)))

    def scheduler(epoch: int, lr: float) -> float:
        return lr if epoch < 2 else lr * math.exp(-0.1)

    model = keras.Sequential([keras.Input((10,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert round(model.optimizer.learning_rate, 5) == 0.01
    history = model.fit(x, y, epochs=5, callbacks=[keras.callbacks.LearningRateScheduler(scheduler)], verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * math.exp(-0.3), rel=1e-6)
    assert list(history.history) == ["accuracy", "loss", "learning_rate"]


def test_compiled_metric_objects_hold_the_last_loop_state() -> None:
    x, y = blobs(600, 6, 2, seed=15, spread=1.5)
    auc = keras.metrics.AUC(name="auc")
    accuracy = keras.metrics.BinaryAccuracy()
    model = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[auc, accuracy])
    assert model.metrics_names == ["loss", "compile_metrics"]
    history = model.fit(x, y, epochs=2, batch_size=50, verbose=0)
    assert float(auc.result()) == pytest.approx(history.history["auc"][-1], abs=1e-12)
    assert model.metrics[0].result() == pytest.approx(history.history["loss"][-1], abs=1e-12)
    assert model.metrics[1].result() == {"auc": history.history["auc"][-1],
                                         "binary_accuracy": history.history["binary_accuracy"][-1]}
    model.evaluate(x[:200], y[:200], verbose=0)
    p = model.predict(x[:200], verbose=0)[:, 0]
    assert float(accuracy.result()) == pytest.approx(np.mean((p > 0.5) == (y[:200] == 1)), abs=1e-6)
    history = model.fit(x, y, epochs=1, batch_size=50, verbose=0, validation_data=(x[:100], y[:100]))
    assert float(auc.result()) == pytest.approx(history.history["val_auc"][-1], abs=1e-12)
    model.reset_metrics()
    assert float(auc.result()) == 0.0 and float(accuracy.result()) == 0.0


def test_train_on_batch_loop_and_clone_model() -> None:
    rng = np.random.default_rng(17)
    x = rng.normal(size=(512, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    model = keras.Sequential([keras.Input((6,)), layers.Dense(16, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Nadam(learning_rate=0.01), loss=keras.losses.Huber(delta=1.0),
                  metrics=["mae", "mse"])
    for _ in range(3):
        for i in range(0, 512, 128):
            out = model.train_on_batch(x[i:i + 128], y[i:i + 128])
    assert isinstance(out, list) and len(out) == 3 and int(model.optimizer.iterations) == 12
    assert sorted(model.test_on_batch(x[:128], y[:128], return_dict=True)) == ["loss", "mae", "mse"]  # type: ignore[arg-type]
    clone = keras.models.clone_model(model)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.count_params() == model.count_params() and clone.optimizer is None
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])


def test_weights_h5_is_keras_hdf5_layout_and_round_trips(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(1)])
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as root:  # Keras 3's layout: layers/<layer name>/vars/<i>
        np.testing.assert_array_equal(root["layers/dense/vars/0"][()], model.get_weights()[0])
        np.testing.assert_array_equal(root["layers/dense_1/vars/1"][()], model.get_weights()[3])
    keras.backend.clear_session()
    again = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(1)])
    again.load_weights(path)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = keras.Sequential([keras.Input((5,)), layers.Dense(3), layers.Dense(1)])
    with pytest.raises(keras.saving.FileFormatError):
        other.load_weights(path)  # the kernel's shape does not fit
    native = tmp_path / "weights.bin"  # other names keep fastmlp's format
    model.save_weights(native)
    again.load_weights(native)


def test_a_weights_h5_with_a_damaged_superblock_is_a_format_error(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    data = bytearray(path.read_bytes())
    data[48:55] = bytes(7)  # h5py then raises OverflowError (a size beyond a C ssize_t)
    path.write_bytes(bytes(data))
    with pytest.raises(keras.saving.FileFormatError, match="not a readable HDF5 file"):
        model.load_weights(path)


def test_a_weights_h5_larger_than_its_weights_can_be_is_refused_unread(tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(1)])
    path = tmp_path / "model.weights.h5"
    model.save_weights(path)
    with open(path, "r+b") as handle:  # a sparse tail of 3 GB: no disk used, but read() would take it all
        handle.truncate(3 << 30)
    started = time.perf_counter()
    with pytest.raises(keras.saving.FileFormatError, match="more than a weights file of this model"):
        model.load_weights(path)
    assert time.perf_counter() - started < 5
    model.save_weights(path)  # anew; a little trailing junk is read as Keras's h5py reads it
    with open(path, "ab") as handle:
        handle.write(b"\0" * 1000)
    model.load_weights(path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # NumPy 2's copy keyword, inside Keras/JAX/h5py
def test_weights_h5_exchanged_with_keras(tmp_path: Path) -> None:
    real = import_keras()
    pytest.importorskip("h5py")
    keras.backend.clear_session()
    ours = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(1)])
    ours.save_weights(tmp_path / "ours.weights.h5")
    real.backend.clear_session()
    theirs = real.Sequential([real.Input((4,)), real.layers.Dense(3, activation="relu"), real.layers.Dense(1)])
    theirs.load_weights(tmp_path / "ours.weights.h5")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs.compile("adam", "mse")
    theirs.fit(x, np.ones((5, 1)), verbose=0)
    theirs.save_weights(tmp_path / "theirs.weights.h5")
    ours.load_weights(tmp_path / "theirs.weights.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), np.asarray(theirs.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)


def test_small_keras_names_scripts_use() -> None:
    assert keras.backend.floatx() == "float32" and keras.backend.epsilon() == 1e-7
    init = keras.initializers.TruncatedNormal(mean=1.0, stddev=0.5, seed=3)
    values = init((2000,))
    assert np.all(np.abs(values - 1.0) <= 1.0) and abs(float(np.std(values)) - 0.5 * 0.8796) < 0.03
    layer = layers.Dense(4, kernel_initializer="truncated_normal")
    assert type(layer.kernel_initializer).__name__ == "TruncatedNormal"


def test_save_model_function(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    keras.models.save_model(model, tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        keras.models.save_model(model, tmp_path / "m.keras", overwrite=False)
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "m.keras").get_weights()[0], model.get_weights()[0])


def test_quickstart_loss_object_called_on_predictions_and_loss_functions() -> None:
    # TensorFlow's beginner quickstart, Keras-only: loss_fn(y, predictions) before training.
    images, labels = blobs(400, 16, 4, seed=30)
    model = keras.Sequential([keras.Input((4, 4)), layers.Flatten(), layers.Dense(32, activation="relu"),
                              layers.Dropout(0.2), layers.Dense(4)])
    predictions = np.asarray(model(images.reshape(-1, 4, 4)[:1]))
    probabilities = np.asarray(keras.activations.softmax(predictions), dtype=np.float64)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss_fn(labels[:1], predictions) == pytest.approx(-math.log(probabilities[0, labels[0]]), rel=1e-5)
    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    model.fit(images.reshape(-1, 4, 4), labels, epochs=5, verbose=0)
    logits = model.predict(images.reshape(-1, 4, 4), verbose=0).astype(np.float64)
    log_q = logits - logits.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    expected = -np.mean(log_q[np.arange(400), labels])
    assert loss_fn(labels, logits) == pytest.approx(expected, rel=1e-6)
    loss, accuracy = model.evaluate(images.reshape(-1, 4, 4), labels, verbose=0)  # type: ignore[misc]
    assert loss == pytest.approx(expected, rel=1e-4) and accuracy > 0.9
    # Keras's reduction: weighted values summed over the number of samples (not the weights).
    weights = np.linspace(0, 2, 400)
    assert loss_fn(labels, logits, sample_weight=weights) == pytest.approx(
        np.sum(-log_q[np.arange(400), labels] * weights) / 400, rel=1e-6)
    # Loss and metric functions in compile, logged under their names as Keras.
    y = (images[:, 0] > images[:, 0].mean()).astype("float32")
    binary = keras.Sequential([keras.Input((16,)), layers.Dense(1, activation="sigmoid")])
    binary.compile(optimizer="adam", loss=keras.losses.binary_crossentropy, metrics=[keras.metrics.binary_accuracy])
    history = binary.fit(images, y, epochs=2, verbose=0)
    assert list(history.history) == ["binary_accuracy", "loss"]
    p = binary.predict(images, verbose=0).astype(np.float64)
    np.testing.assert_allclose(keras.losses.binary_crossentropy(y[:, None], p),
                               -(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0])), rtol=1e-6)
    np.testing.assert_array_equal(keras.metrics.binary_accuracy(y[:, None], p), (p[:, 0] > 0.5) == (y == 1))
    assert keras.losses.Huber(delta=1.0)([[0.0, 0.0]], [[0.5, 3.0]]) == pytest.approx((0.125 + 2.5) / 2)


def test_loss_objects_called_as_keras_computes_them() -> None:
    real = import_keras()
    rng = np.random.default_rng(31)
    t = (rng.random((6, 3)) > 0.5).astype("float32")
    p = rng.random((6, 3)).astype("float32")
    w = rng.random(6).astype("float32")
    for name in ("MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy", "CategoricalCrossentropy", "LogCosh",
                 "Poisson", "KLDivergence", "Hinge", "SquaredHinge", "CategoricalHinge", "MeanAbsolutePercentageError",
                 "MeanSquaredLogarithmicError", "Huber"):
        ours = getattr(keras.losses, name)()(t, p, sample_weight=w)
        theirs = float(np.asarray(getattr(real.losses, name)()(t, p, sample_weight=w)))
        assert ours == pytest.approx(theirs, rel=1e-5), name


def test_relu_and_softmax_layers_after_dense(tmp_path: Path) -> None:
    keras.backend.clear_session()
    x, y = blobs(300, 6, 3, seed=40)
    model = keras.Sequential([keras.Input((6,)), layers.Dense(16), layers.ReLU(), layers.Dense(3), layers.Softmax()])
    assert [layer.name for layer in model.layers] == ["dense", "re_lu", "dense_1", "softmax"]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, verbose=0)
    kernel, bias, kernel_1, bias_1 = model.get_weights()
    logits = np.maximum(x @ kernel + bias, 0) @ kernel_1 + bias_1
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "m.keras")  # saved as the Activation layers they equal
    model.save(tmp_path / "m.fastmlp")
    with pytest.warns(keras.saving.OptimizerStateResetWarning):
        from_keras_file = keras.models.load_model(tmp_path / "m.keras")
    for loaded in (from_keras_file, keras.models.load_model(tmp_path / "m.fastmlp")):
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="LeakyReLU"):
        layers.ReLU(negative_slope=0.1)
    with pytest.raises(ValueError, match="axis"):
        layers.Softmax(axis=0)


def test_f1_score_in_fit_and_files(tmp_path: Path) -> None:
    x, y = blobs(400, 6, 3, seed=50, spread=2.0)
    targets = np.eye(3)[y]
    f1 = keras.metrics.F1Score(average="macro")
    model = keras.Sequential([keras.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[f1, keras.metrics.FBetaScore(average="weighted", beta=2.0, threshold=0.4, name="f2"),
                           keras.metrics.CategoricalCrossentropy(name="ce")])
    model.fit(x, targets, epochs=3, verbose=0)
    result = model.evaluate(x, targets, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0).astype(np.float64)

    def fbeta(predicted: Any, beta: float) -> Any:  # Keras's formula, 1e-7 in each division
        tp = np.sum(predicted * targets, axis=0)
        fp = np.sum(predicted * (1 - targets), axis=0)
        fn = np.sum((1 - predicted) * targets, axis=0)
        precision, recall = tp / (tp + fp + 1e-7), tp / (tp + fn + 1e-7)
        return (1 + beta**2) * precision * recall / (beta**2 * precision + recall + 1e-7)

    one_hot_max = (p == p.max(axis=1, keepdims=True)).astype(float)
    assert result["f1_score"] == pytest.approx(np.mean(fbeta(one_hot_max, 1.0)), rel=1e-6)
    weights = targets.sum(axis=0) / (targets.sum() + 1e-7)
    assert result["f2"] == pytest.approx(np.sum(fbeta((p > 0.4).astype(float), 2.0) * weights), rel=1e-6)
    assert result["ce"] == pytest.approx(-np.mean(np.log(p[np.arange(400), y])), rel=1e-5)
    assert float(f1.result()) == result["f1_score"]
    per_class = keras.metrics.F1Score()
    per_class.update_state(targets, p)
    np.testing.assert_allclose(per_class.result(), fbeta(one_hot_max, 1.0), rtol=1e-6)
    model.save(tmp_path / "m.fastmlp")
    again = keras.models.load_model(tmp_path / "m.fastmlp")
    assert again.evaluate(x, targets, verbose=0, return_dict=True) == pytest.approx(result)
