"""``layer.trainable = False`` (Keras's frozen layers): fit never changes a frozen layer's
weights, the other layers train exactly as if the frozen weights were constants, a frozen
layer's penalties leave the loss (Keras sums the regularizers of trainable weights only), and
``summary``/``trainable_weights``/``non_trainable_weights`` report the split as Keras does.

Expected trajectories come from ``fastmlp.reference`` (float64 NumPy backpropagation, the
frozen layers' updates left out by hand), every training step and thread count must give the
same bits, and the frozen arrays are compared bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from fastmlp import reference as ref

STEPS = _core.available_steps()


def sparse_data(n: int = 24, features: int = 40, seed: int = 5) -> tuple[Any, Any]:
    """Mostly zero inputs (as MNIST), so the first layer takes the sparse path that fuses plain
    SGD's kernel update into the backward pass."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features))
    x[rng.random(x.shape) < 0.85] = 0
    return x, rng.integers(0, 3, n)


def small_model(frozen: set[int], dtype: str = "float64", regularize: bool = False) -> fm.Sequential:
    fm.utils.set_random_seed(11)
    penalty = fm.regularizers.L2(0.01) if regularize else None
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(40,)),
            fm.layers.Dense(8, activation="tanh", kernel_regularizer=penalty),
            fm.layers.Dense(6, activation="relu", kernel_regularizer=penalty),
            fm.layers.Dense(3, activation="softmax"),
        ],
        dtype=dtype,
    )
    for index in frozen:
        model.layers[index].trainable = False
    return model


def reference_sgd(
    params: list[tuple[Any, Any]], x: Any, y: Any, frozen: set[int], lr: float, batch: int, epochs: int
) -> list[tuple[Any, Any]]:
    """Plain SGD in order (no shuffle), the frozen layers' gradients dropped."""
    activations = ["tanh", "relu", "softmax"]
    for _ in range(epochs):
        for start in range(0, x.shape[0], batch):
            _, grads = ref.gradients(x[start : start + batch], y[start : start + batch], params, activations, "sparse_categorical_crossentropy")
            stepped = ref.sgd_step(params, grads, lr)
            params = [old if i in frozen else new for i, (old, new) in enumerate(zip(params, stepped))]
    return params


@pytest.mark.parametrize("frozen", [{0}, {1}, {0, 2}])
def test_frozen_layers_stay_bit_equal_and_the_rest_follow_the_reference(frozen: set[int]) -> None:
    x, y = sparse_data()
    model = small_model(frozen)
    before = [(layer.kernel.copy(), layer.bias.copy()) for layer in model.layers]  # type: ignore[attr-defined,union-attr]
    model.compile(optimizer=fm.optimizers.SGD(0.3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    expected = reference_sgd(before, x, y, frozen, 0.3, 8, 3)
    for index, layer in enumerate(model.layers):
        kernel, bias = layer.get_weights()
        if index in frozen:
            np.testing.assert_array_equal(kernel, before[index][0])
            np.testing.assert_array_equal(bias, before[index][1])
        else:
            assert not np.array_equal(kernel, before[index][0])  # it did train
        np.testing.assert_allclose(kernel, expected[index][0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bias, expected[index][1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.usefixtures("restore_step_and_threads")
def test_every_step_and_thread_count_freezes_the_same_bits(optimizer: str) -> None:
    x, y = sparse_data(n=60)

    def train() -> list[Any]:
        model = small_model({0}, dtype="float32")
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        first = model.layers[0].get_weights()
        model.fit(x, y, batch_size=20, epochs=2, verbose=0)
        for a, b in zip(first, model.layers[0].get_weights()):
            np.testing.assert_array_equal(a, b)
        return model.get_weights()

    fm.set_num_threads(1)
    _core.set_step("columns")
    expected = train()
    for step in STEPS:
        _core.set_step(step)
        for threads in (1, 2, 3):
            fm.set_num_threads(threads)
            for a, b in zip(expected, train()):
                np.testing.assert_array_equal(a, b)


def test_a_frozen_layer_needs_no_update_from_adam_and_joins_no_global_norm() -> None:
    x, y = sparse_data()
    model = small_model({1})
    params = [(layer.kernel.copy(), layer.bias.copy()) for layer in model.layers]  # type: ignore[attr-defined,union-attr]
    model.compile(optimizer=fm.optimizers.Adam(0.01, global_clipnorm=0.5), loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    _, grads = ref.gradients(x, y, params, ["tanh", "relu", "softmax"], "sparse_categorical_crossentropy")
    trainable = [g for i, (gk, gb) in enumerate(grads) if i != 1 for g in (gk, gb)]
    clipped = ref.clip_by_global_norm(trainable, 0.5)
    # The frozen layer's gradient is left out of the global norm, and out of the update.
    settings = ref.optimizer_settings("adam")
    expected: list[Any] = []
    position = 0
    for i, (kernel, bias) in enumerate(params):
        if i == 1:
            expected += [kernel, bias]
            continue
        for w in (kernel, bias):
            slots = {"momentum": np.zeros_like(w), "velocity": np.zeros_like(w)}
            expected.append(ref.update_step("adam", w, clipped[position], slots, 0.01, 0, settings)[0])
            position += 1
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(model.layers[1].get_weights()[0], params[1][0])


def test_a_frozen_layers_penalty_leaves_the_loss() -> None:
    x, y = sparse_data()
    model = small_model({0}, regularize=True)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    loss = model.evaluate(x, y, verbose=0)
    params = [(layer.kernel, layer.bias) for layer in model.layers]  # type: ignore[attr-defined]
    data_loss = float(np.mean(ref.loss("sparse_categorical_crossentropy", y, ref.predict(x, params, ["tanh", "relu", "softmax"]))))
    penalty = 0.01 * float(np.sum(np.square(params[1][0])))  # layer 1 only: layer 0 is frozen
    assert loss == pytest.approx(data_loss + penalty, rel=1e-10)


def test_unfreezing_takes_effect_at_the_next_step_and_model_trainable_sets_every_layer() -> None:
    x, y = sparse_data()
    model = small_model(set())
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.layers[2].trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.array_equal(after[4], before[4])


def test_weights_lists_and_summary_split_trainable_and_frozen() -> None:
    model = small_model({1})
    model.layers[0].trainable = True
    assert [w.shape for w in model.trainable_weights] == [(40, 8), (8,), (6, 3), (3,)]
    assert [w.shape for w in model.non_trainable_weights] == [(8, 6), (6,)]
    assert [w.shape for w in model.weights] == [w.shape for w in model.get_weights()]
    assert model.layers[1].trainable_weights == [] and len(model.layers[0].non_trainable_weights) == 0
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    total = 40 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    frozen = 8 * 6 + 6
    assert f" Total params: {total:,} ({total * 8 / 1024:.2f} KB)" in lines
    assert f" Trainable params: {total - frozen:,} ({(total - frozen) * 8 / 1024:.2f} KB)" in lines
    assert f" Non-trainable params: {frozen:,} ({frozen * 8:.2f} B)" in lines
    # Keras's show_trainable column, and line_length: every row as wide as the rules.
    lines.clear()
    model.summary(line_length=80, show_trainable=True, print_fn=lines.append)
    flags = [line.split()[-1] for line in lines if line.startswith(" ") and "(Dense)" in line]
    assert flags == ["Y", "N", "Y"]
    assert {len(line) for line in lines if line.startswith(" ") and "(Dense)" in line} == {80}
    assert lines[1] == "_" * 80
    with pytest.raises(ValueError, match="layer_range=None only"):
        model.summary(layer_range=["a", "b"])
    with pytest.raises(ValueError, match="needs at least 59 characters with show_trainable"):
        model.summary(line_length=40, show_trainable=True)
    lines.clear()
    fm.Sequential([fm.layers.Dense(3)]).summary(print_fn=lines.append)  # unbuilt: "0 (unbuilt)"
    assert {len(line) for line in lines if "(Dense)" in line} == {65}


def test_trainable_must_be_a_boolean_at_construction() -> None:
    with pytest.raises(ValueError, match="Expected `trainable` to be a boolean"):
        fm.layers.Dense(3, trainable="no")  # type: ignore[arg-type]


def test_a_frozen_layer_saves_and_loads_frozen(tmp_path: Any) -> None:
    x, y = sparse_data()
    model = small_model({0})
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.fastmlp")
    loaded = fm.models.load_model(tmp_path / "m.fastmlp")
    assert [layer.trainable for layer in loaded.layers] == [False, True, True]
    before = loaded.layers[0].get_weights()
    loaded.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(loaded.layers[0].get_weights()[0], before[0])
