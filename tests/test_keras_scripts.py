"""Everyday Keras 3 scripts for dense networks, as the Keras guides write them, run with only the
import changed (``import fastmlp as keras``): each must run and learn a task a dense network
solves (a linearly separable 3-class problem: accuracy well above chance's 1/3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import fastmlp as keras
from fastmlp import layers


def separable(n: int = 600, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    centers = np.array([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.normal(size=(n, 4))).astype("float32"), y


def test_functional_mlp_with_dropout_one_hot_targets_and_early_stopping() -> None:
    x, y = separable()
    keras.utils.set_random_seed(42)
    keras.backend.clear_session()
    inputs = keras.Input(shape=(4,), name="features")
    x1 = layers.Dense(32, activation="relu", name="hidden")(inputs)
    x1 = layers.Dropout(0.2)(x1)
    outputs = layers.Dense(3, activation=keras.activations.softmax)(x1)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mlp")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-2),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    history = model.fit(
        x,
        keras.utils.to_categorical(y, 3),
        batch_size=32,
        epochs=20,
        validation_split=0.2,
        callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)],
        verbose=0,
    )
    assert history.history["val_accuracy"][-1] > 0.9
    assert model.get_layer("hidden").kernel.shape == (4, 32)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert lines[0] == 'Model: "mlp"' and any("features (InputLayer)" in line for line in lines)


class Classifier(keras.Model):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.hidden = layers.Dense(16, activation="relu")
        self.out = layers.Dense(classes)

    def call(self, inputs: Any) -> Any:
        return self.out(self.hidden(inputs))


def test_subclassed_model_with_logits_and_sparse_labels() -> None:
    x, y = separable(seed=1)
    keras.utils.set_random_seed(3)
    model = Classifier(3)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=8,
        run_eagerly=False,
    )
    model.fit(x, y, epochs=10, batch_size=30, steps_per_epoch=10, verbose=0)  # 20 batches: 2 epochs a pass
    _, accuracy = model.evaluate(x, y, verbose=0)  # type: ignore[misc]
    assert accuracy > 0.8 and model.count_params() == 4 * 16 + 16 + 16 * 3 + 3


def test_fine_tuning_a_frozen_base() -> None:
    x, y = separable(seed=2)
    keras.utils.set_random_seed(5)
    base = keras.Sequential([keras.Input((4,)), layers.Dense(16, activation="tanh", input_dim=4)])
    base_weights = base.get_weights()
    model = keras.Sequential([keras.Input((4,)), layers.Dense(16, activation="tanh"), layers.Dense(3, activation="softmax")])
    model.layers[0].set_weights(base_weights)
    model.layers[0].trainable = False
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=15, verbose=0)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], base_weights[0])
    assert model.evaluate(x, y, verbose=0)[1] > 0.9  # type: ignore[index]
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
