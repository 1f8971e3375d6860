"""BatchNormalization after an activation, a Dropout or the Input (Keras's most common
placement), which fastmlp runs as a normalization of the next Dense layer's input: whole
training steps against ``fastmlp.reference.layers_gradients`` and central finite differences,
the moving statistics against a NumPy recomputation, inference with the moving statistics, a
frozen layer, the same bits for every thread count, weights in Keras's order, counts, saving,
ONNX, and the placements still refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _core
from fastmlp import reference as ref

EPS = 1e-3
L = fm.layers


def data(n: int = 12, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)) * 2 + 1, rng.integers(0, 3, n)


# Each model: its layers and, per layer with weights, the reference's description (filled from
# the model's weights by `stages`).
PLACEMENTS = {
    # Dense(activation) -> BatchNormalization -> Dense: Keras's most common placement.
    "after_dense_activation": lambda: [L.Input((4,)), L.Dense(6, activation="tanh"), L.BatchNormalization(),
                                       L.Dense(3, activation="softmax")],
    # Dense -> Activation -> BatchNormalization -> Dense.
    "after_activation_layer": lambda: [L.Input((4,)), L.Dense(6), L.Activation("tanh"), L.BatchNormalization(),
                                       L.Dense(3, activation="softmax")],
    # BatchNormalization of the raw features, right after the Input.
    "first": lambda: [L.Input((4,)), L.BatchNormalization(), L.Dense(6, activation="tanh"), L.Dense(3, activation="softmax")],
    # Both kinds in one model: before an activation and after it.
    "both": lambda: [L.Input((4,)), L.Dense(6), L.BatchNormalization(center=False), L.Activation("tanh"),
                     L.BatchNormalization(scale=False), L.Dense(5, activation="sigmoid"), L.BatchNormalization(),
                     L.Dense(3, activation="softmax")],
}


def build(name: str, dtype: str = "float64") -> fm.Sequential:
    fm.utils.set_random_seed(5)
    return fm.Sequential(PLACEMENTS[name](), dtype=dtype)


def stages(model: fm.Sequential, weights: list[Any]) -> list[dict[str, Any]]:
    """The reference's layers for ``model`` with ``weights`` (get_weights order)."""
    out: list[dict[str, Any]] = []
    position = 0
    for layer in model.layers:
        if isinstance(layer, L.Dense):
            bias = weights[position + 1] if layer.use_bias else None
            out.append({"kind": "dense", "kernel": weights[position], "bias": bias, "activation": layer.activation})
            position += 2 if layer.use_bias else 1
        elif isinstance(layer, L.Activation):
            out.append({"kind": "activation", "activation": layer.activation})
        elif isinstance(layer, L.BatchNormalization):
            arrays = weights[position : position + len(layer.get_weights())]
            position += len(arrays)
            gamma = arrays.pop(0) if layer.scale else None
            beta = arrays.pop(0) if layer.center else None
            out.append({"kind": "batch_norm", "gamma": gamma, "beta": beta, "moving_mean": arrays[0],
                        "moving_variance": arrays[1], "epsilon": layer.epsilon, "trainable": layer.trainable})
    return out


def reference_gradients(model: fm.Sequential, weights: list[Any], x: Any, y: Any) -> tuple[float, list[Any], list[Any]]:
    """(loss, gradient per trainable array in get_weights order, caches) by the reference."""
    layers = stages(model, weights)
    loss, grads, caches = ref.layers_gradients(x, np.eye(3)[y], layers, "categorical_crossentropy")
    flat = [g for pair in grads for g in pair if g is not None]  # an activation layer has none
    return loss, flat, caches


def trainable_positions(model: fm.Sequential) -> list[int]:
    positions: list[int] = []
    position = 0
    for layer in model.layers:
        if isinstance(layer, L.Dense):
            count = trained = len(layer.get_weights())
        elif isinstance(layer, L.BatchNormalization):
            count, trained = len(layer.get_weights()), int(layer.scale) + int(layer.center)
        else:
            count = trained = 0
        positions.extend(range(position, position + trained))
        position += count
    return positions


def perturbed(model: fm.Sequential) -> list[Any]:
    """The model's weights with non-trivial gamma, beta and moving statistics."""
    rng = np.random.default_rng(2)
    weights = [w + rng.uniform(-0.3, 0.3, w.shape) if w.ndim == 1 else w for w in model.get_weights()]
    model.set_weights(weights)
    return weights


@pytest.mark.parametrize("name", list(PLACEMENTS))
def test_a_training_step_matches_the_reference_and_finite_differences(name: str) -> None:
    model = build(name)
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    weights = perturbed(model)
    x, y = data()
    loss = model.train_on_batch(x, y)
    after = model.get_weights()
    positions = trainable_positions(model)
    want_loss, want, caches = reference_gradients(model, weights, x, y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    assert len(positions) == len(want)
    for i, expected in zip(positions, want):
        np.testing.assert_allclose(weights[i] - after[i], expected, rtol=1e-9, atol=1e-12)
    # The moving statistics moved once, with the batch's mean and biased variance.
    norms = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    batch_stats = [cache for cache in caches if "mean" in cache]
    moving = [stage for stage in stages(model, weights) if stage["kind"] == "batch_norm"]
    for norm, cache, before in zip(norms, batch_stats, moving):
        np.testing.assert_allclose(norm.moving_mean, ref.moving_statistics_update(before["moving_mean"], cache["mean"], 0.99),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(
            norm.moving_variance, ref.moving_statistics_update(before["moving_variance"], cache["variance"], 0.99),
            rtol=1e-12, atol=1e-14)

    # Central differences of the training-mode loss in a few entries of every trainable array.
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1e-30), loss="sparse_categorical_crossentropy")
    h = 1e-6

    def loss_at(ws: list[Any]) -> float:
        model.set_weights(ws)
        return float(model.train_on_batch(x, y))

    for i, gradient in zip(positions, want):
        for position in {0, weights[i].size - 1}:
            plus = [w.copy() for w in weights]
            minus = [w.copy() for w in weights]
            plus[i].flat[position] += h
            minus[i].flat[position] -= h
            difference = (loss_at(plus) - loss_at(minus)) / (2 * h)
            assert difference == pytest.approx(gradient.flat[position], rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_isa_gives_the_references_step(isa: str, dtype: str) -> None:
    """Both kinds of normalization, with the kernels of each instruction set the CPU has."""
    model = build("both", dtype)
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    perturbed(model)
    weights = [w.astype(np.float64) for w in model.get_weights()]  # as the model holds them
    x, y = data(23)
    model.train_on_batch(x, y)
    after = model.get_weights()
    _, want, _ = reference_gradients(model, weights, x.astype(dtype).astype(np.float64), y)
    tolerance = 2e-4 if dtype == "float32" else 1e-9
    for i, expected in zip(trainable_positions(model), want, strict=True):
        np.testing.assert_allclose(weights[i] - after[i], expected, rtol=tolerance, atol=tolerance)


def test_the_moving_statistics_after_fit_equal_a_numpy_recomputation() -> None:
    fm.utils.set_random_seed(1)
    dense = L.Dense(5, activation="relu", trainable=False)  # frozen: every batch's input is known
    norm = L.BatchNormalization(momentum=0.9)
    first = L.BatchNormalization(momentum=0.8)
    model = fm.Sequential([L.Input((4,)), first, dense, norm, L.Dropout(0.3), L.Dense(2)], dtype="float64")
    model.compile(optimizer="adam", loss="mse")
    x, _ = data(37, seed=3)
    y = np.random.default_rng(4).standard_normal((37, 2))
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    # The first normalization's statistics depend on x alone.
    mean0, variance0 = np.zeros(4), np.ones(4)
    for _ in range(3):
        for start in range(0, 37, 8):  # 5 batches: the last of 5 rows
            batch = x[start : start + 8]
            mean0 = ref.moving_statistics_update(mean0, batch.mean(0), 0.8)
            variance0 = ref.moving_statistics_update(variance0, batch.var(0), 0.8)
    np.testing.assert_allclose(first.moving_mean, mean0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(first.moving_variance, variance0, rtol=1e-12, atol=1e-14)
    # predict and evaluate use the moving statistics (and move nothing).
    layers = stages(model, model.get_weights())
    want, _ = ref.layers_forward(x, layers, training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-10, atol=1e-12)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(float(np.mean((want - y) ** 2)), rel=1e-10)
    before = model.get_weights()
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_second_normalizations_statistics_follow_a_frozen_path() -> None:
    """Dense(relu) (frozen) -> BatchNormalization: its input per batch is known in advance."""
    fm.utils.set_random_seed(3)
    dense = L.Dense(5, activation="relu", trainable=False)
    norm = L.BatchNormalization(momentum=0.9)
    model = fm.Sequential([L.Input((4,)), dense, norm, L.Dense(2)], dtype="float64")
    model.compile(optimizer="adam", loss="mse")
    x, _ = data(37, seed=3)
    y = np.random.default_rng(4).standard_normal((37, 2))
    kernel, bias = dense.get_weights()
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    mean, variance = np.zeros(5), np.ones(5)
    for _ in range(3):
        for start in range(0, 37, 8):
            a = np.maximum(x[start : start + 8] @ kernel + bias, 0)
            mean = ref.moving_statistics_update(mean, a.mean(0), 0.9)
            variance = ref.moving_statistics_update(variance, a.var(0), 0.9)
    np.testing.assert_allclose(norm.moving_mean, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(norm.moving_variance, variance, rtol=1e-12, atol=1e-14)


def test_a_frozen_normalization_of_inputs_runs_in_inference_mode() -> None:
    model = build("after_dense_activation")
    norm = model.layers[1]
    assert isinstance(norm, L.BatchNormalization)
    norm.trainable = False
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    weights = perturbed(model)
    x, y = data(16)
    before = norm.get_weights()
    loss = model.train_on_batch(x, y)
    for a, b in zip(before, norm.get_weights()):
        np.testing.assert_array_equal(a, b)  # gamma, beta and the moving statistics unchanged
    layers = stages(model, weights)
    p, _ = ref.layers_forward(x, layers, training=True)  # a frozen layer: the moving statistics
    assert loss == pytest.approx(float(np.mean(ref.loss("sparse_categorical_crossentropy", y, p))), rel=1e-10)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4
    assert not np.array_equal(model.get_weights()[0], weights[0])  # the Dense layers still train
    norm.trainable = True
    model.train_on_batch(x, y)
    assert not np.array_equal(norm.moving_mean, before[2])


def test_dropout_after_the_normalization_drops_its_outputs_and_not_its_statistics() -> None:
    """Dense(relu) -> BN -> Dropout -> Dense: the statistics see the undropped activations; in
    predict nothing is dropped."""
    fm.utils.set_random_seed(4)
    dense = L.Dense(6, activation="relu", trainable=False)
    norm = L.BatchNormalization(momentum=0.0)  # the moving statistics are the last batch's
    model = fm.Sequential([L.Input((4,)), dense, norm, L.Dropout(0.5), L.Dense(3, activation="softmax")], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x, y = data(20)
    no_drop = model.evaluate(x, y, verbose=0)
    dropped = model.train_on_batch(x, y)
    a = np.maximum(x @ dense.get_weights()[0] + dense.get_weights()[1], 0)
    np.testing.assert_allclose(norm.moving_mean, a.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(norm.moving_variance, a.var(0), rtol=1e-12, atol=1e-14)
    assert dropped != pytest.approx(no_drop)  # the training loss saw the masks
    want, _ = ref.layers_forward(x, stages(model, model.get_weights()), training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# the same bits for every thread count
# ---------------------------------------------------------------------------


def train_wide(x: Any, y: Any) -> tuple[fm.Sequential, dict[str, list[float]]]:
    fm.utils.set_random_seed(9)
    model = fm.Sequential(
        [
            L.Input((x.shape[1],)),
            L.BatchNormalization(),
            L.Dense(41, activation="relu"),
            L.BatchNormalization(),
            L.Dropout(0.3),
            L.Dense(24, activation="relu"),
            L.Dropout(0.2),
            L.BatchNormalization(momentum=0.5, center=False),
            L.Dense(5, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, validation_split=0.2).history
    return model, history


def test_every_thread_count_and_step_gives_the_same_bits(restore_step_and_threads: None) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 30)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0  # sparse: the first layer would take its sparse path
    y = rng.integers(0, 5, 300)
    fm.set_num_threads(1)
    _core.set_step("columns")
    reference, reference_history = train_wide(x, y)
    for step, threads in (("columns", 2), ("columns", 3), ("rows", 2), ("pipeline", 3)):
        _core.set_step(step)
        fm.set_num_threads(threads)
        model, history = train_wide(x, y)
        for a, b in zip(reference.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert history == reference_history


def test_a_sparse_first_layer_with_normalized_inputs_matches_the_reference() -> None:
    """Inputs mostly zero: the normalized inputs are dense, so the product reads those."""
    fm.utils.set_random_seed(6)
    model = fm.Sequential([L.Input((10,)), L.BatchNormalization(), L.Dense(3, activation="softmax")], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=1.0), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 10)) * (rng.random((40, 10)) < 0.1)
    y = rng.integers(0, 3, 40)
    weights = perturbed(model)
    model.train_on_batch(x, y)
    _, want, _ = ref.layers_gradients(x, np.eye(3)[y], stages(model, weights), "categorical_crossentropy")
    got = [weights[i] - w for i, w in enumerate(model.get_weights()) if i not in (2, 3)]
    for a, b in zip(got, [g for pair in want for g in pair if g is not None]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------
# weights, counts, saving, ONNX
# ---------------------------------------------------------------------------


def test_weights_counts_and_summary_as_keras() -> None:
    model = build("after_dense_activation", dtype="float32")
    assert [w.shape for w in model.get_weights()] == [(4, 6), (6,), (6,), (6,), (6,), (6,), (6, 3), (3,)]
    model = build("first", dtype="float32")
    assert [w.shape for w in model.get_weights()] == [(4,), (4,), (4,), (4,), (4, 6), (6,), (6, 3), (3,)]
    _, _, mean, variance, *_ = model.get_weights()
    np.testing.assert_array_equal(mean, np.zeros(4))
    np.testing.assert_array_equal(variance, np.ones(4))
    norm = model.layers[0]
    assert norm.count_params() == 16 and model.count_params() == 16 + 30 + 21
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 67" in text and "Trainable params: 59" in text and "Non-trainable params: 8" in text


def test_initializers_and_set_weights() -> None:
    fm.utils.set_random_seed(0)
    norm = L.BatchNormalization(gamma_initializer=fm.initializers.Constant(2.0), moving_variance_initializer="zeros")
    model = fm.Sequential([L.Input((3,)), L.Dense(4, activation="relu"), norm, L.Dense(2)])
    np.testing.assert_array_equal(norm.gamma, np.full(4, 2.0, np.float32))
    np.testing.assert_array_equal(norm.moving_variance, np.zeros(4, np.float32))
    new = [np.arange(4.0), np.ones(4), np.full(4, 0.5), np.full(4, 3.0)]
    norm.set_weights(new)
    for a, b in zip(norm.get_weights(), new):
        np.testing.assert_array_equal(a, b.astype(np.float32))
    np.testing.assert_array_equal(model.get_weights()[2], np.arange(4.0, dtype=np.float32))
    with pytest.raises(ValueError, match="moving_variance"):
        norm.set_weights([np.ones(4), np.ones(4), np.ones(4), -np.ones(4)])
    with pytest.raises(ValueError):
        norm.set_weights([np.ones(3)] * 4)


def trained(dtype: str = "float32") -> fm.Sequential:
    fm.utils.set_random_seed(7)
    model = fm.Sequential([L.Input((4,)), L.BatchNormalization(), L.Dense(8, activation="relu"), L.BatchNormalization(),
                           L.Dropout(0.3), L.Dense(3, activation="softmax")], dtype=dtype)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data(40)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return model


@pytest.mark.parametrize("suffix", [".fastmlp", ".keras"])
def test_saving_and_loading_keeps_every_array_and_the_predictions(tmp_path: Path, suffix: str) -> None:
    if suffix == ".keras":
        pytest.importorskip("h5py")
    model = trained()
    path = tmp_path / f"bn{suffix}"
    model.save(path)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", fm.saving.OptimizerStateResetWarning)
        loaded = fm.models.load_model(path)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x, _ = data(9, seed=5)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_onnx_export_folds_the_normalizations_into_the_next_dense_layer(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = trained()
    norm = model.layers[2]
    norm.set_weights([w + 0.2 for w in norm.get_weights()])  # non-trivial gamma, beta and statistics
    path = tmp_path / "m.onnx"
    fm.onnx.export(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = data(11, seed=6)[0].astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------
# what stays refused
# ---------------------------------------------------------------------------


def test_a_normalization_after_the_last_dense_layer_is_refused_by_name() -> None:
    model = fm.Sequential([L.Input((4,)), L.Dense(3, activation="softmax"), L.BatchNormalization(name="last_norm")])
    model.compile(optimizer="adam", loss="mse")
    x, _ = data()
    for call in (lambda: model.predict(x, verbose=0), lambda: model.fit(x, np.zeros((12, 3)), verbose=0),
                 lambda: model.predict_on_batch(x.astype(np.float32))):
        with pytest.raises(ValueError, match=r"'last_norm'.*after the last Dense layer"):
            call()
    model.add(L.Dense(2))  # a Dense layer after it: it normalizes that layer's input
    assert model.predict(x, verbose=0).shape == (12, 2)


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [L.BatchNormalization(), L.Dropout(0.2), L.Dense(3)],
        lambda: [L.Dense(5, activation="relu"), L.Dropout(0.2), L.BatchNormalization(), L.Dropout(0.1), L.Dense(3)],
        lambda: [L.Dense(5), L.BatchNormalization(), L.BatchNormalization(), L.Dense(3)],
        lambda: [L.Dense(5), L.Dropout(0.2), L.BatchNormalization(), L.Dense(3)],
    ],
    ids=["first-then-dropout", "between-dropouts", "before-and-after-an-identity", "after-a-linear-dense-dropout"],
)
def test_placements_accepted(layers: Any) -> None:
    """Each trains and predicts; its predictions are the reference's (dropout off)."""
    fm.utils.set_random_seed(0)
    model = fm.Sequential([L.Input((4,)), *layers()], dtype="float64")
    model.compile(optimizer="adam", loss="mse")
    x, _ = data(16)
    model.fit(x, np.ones((16, 3)), batch_size=8, epochs=2, verbose=0)
    want, _ = ref.layers_forward(x, stages(model, model.get_weights()), training=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (lambda: [L.Dense(3, activation="relu"), L.BatchNormalization(), L.BatchNormalization()], "Two BatchNormalization"),
        (lambda: [L.Dense(3, activation="relu"), L.BatchNormalization(), L.Activation("relu")], "must follow a Dense"),
        (lambda: [L.BatchNormalization(), L.Flatten()], "Flatten after a BatchNormalization"),
    ],
)
def test_placements_still_refused(layers: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fm.Sequential([L.Input((4,)), *layers()])


def test_the_hessian_and_full_batch_optimizers_are_refused() -> None:
    model = build("first")
    with pytest.raises(ValueError, match="BatchNormalization on its input"):
        model.compile(optimizer=fm.optimizers.LBFGS(), loss="sparse_categorical_crossentropy")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data()
    with pytest.raises(ValueError, match="batch normalization"):
        model.compute_hessian(x, y)


def test_the_functional_api_and_pop() -> None:
    inputs = fm.Input((4,))
    h = L.Dense(8, activation="relu")(inputs)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.3)(h)
    model = fm.Model(inputs, L.Dense(2)(h))
    assert [w.shape for w in model.get_weights()] == [(4, 8), (8,), (8,), (8,), (8,), (8,), (8, 2), (2,)]
    seq = fm.Sequential([L.Input((4,)), L.BatchNormalization(), L.Dense(5, activation="relu"), L.BatchNormalization(),
                         L.Dense(2)])
    first = seq.get_weights()[:6]
    seq.pop()  # the last Dense layer: the BatchNormalization of its input has no weights without it
    assert [w.shape for w in seq.get_weights()] == [(4,), (4,), (4,), (4,), (4, 5), (5,)]
    for a, b in zip(first, seq.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="after the last Dense layer"):
        seq.predict(data()[0], verbose=0)
    seq.add(L.Dense(3))
    assert [w.shape for w in seq.get_weights()][6:] == [(5,), (5,), (5,), (5,), (5, 3), (3,)]
