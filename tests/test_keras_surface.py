"""The Keras 3 surface a script written for ``import keras`` reaches for: ``keras.Input``,
``InputLayer``, ``Dense(input_dim=...)``, the functional API (``Model(inputs, outputs)``,
subclassed models), generated names and ``clear_session``, ``keras.utils``, activation
functions, the model attributes and methods of ``keras.Model``, and compile's and fit's
Keras-only arguments.

Expected values are Keras's documented behaviour, written from its source (keras-team/keras:
``layers/core/input_layer.py``, ``ops/function.py``, ``models/model.py``,
``utils/numerical_utils.py``, ``trainers/epoch_iterator.py``), hand calculation, and models
built the Sequential way that the functional ones must equal bit for bit.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest

import fastmlp as fm

layers = fm.layers


@pytest.fixture(autouse=True)
def fresh_session() -> None:
    fm.backend.clear_session(free_memory=False)


def data(n: int = 30, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, classes, n)


# ------------------------------------------------------------------ 1. Input, InputLayer


def test_input_is_a_symbolic_tensor_with_the_batch_axis_first() -> None:
    x = fm.Input((784,))
    assert isinstance(x, fm.KerasTensor)
    assert x.shape == (None, 784) and x.dtype == "float32" and x.ndim == 2
    assert fm.Input(shape=(3,), batch_size=8, dtype="float64").shape == (8, 3)
    assert fm.layers.Input is fm.Input
    with pytest.raises(ValueError, match="You must pass a `shape` argument"):
        fm.Input()
    with pytest.raises(TypeError, match="bool"):
        bool(x)


def test_input_layer_takes_shape_and_warns_for_the_deprecated_input_shape() -> None:
    layer = layers.InputLayer(shape=(5,))
    assert layer.batch_shape == (None, 5) and layer.name == "input_layer"
    with pytest.warns(UserWarning, match="Argument `input_shape` is deprecated. Use `shape` instead."):
        old = layers.InputLayer(input_shape=(5,))
    assert old.batch_shape == (None, 5)
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        layers.InputLayer(shape=(5,), bogus=1)
    model = fm.Sequential([old, layers.Dense(2)])
    assert model.built and model.input_shape == (None, 5)


@pytest.mark.parametrize("first", ["input", "input_layer", "input_dim", "input_shape"])
def test_every_keras_way_to_declare_the_input_builds_the_same_model(first: str) -> None:
    head: list[Any] = {
        "input": [fm.Input((7,))],
        "input_layer": [layers.InputLayer(shape=(7,))],
        "input_dim": [],
        "input_shape": [],
    }[first]
    dense = layers.Dense(4, input_dim=7) if first == "input_dim" else layers.Dense(4, input_shape=(7,))
    model = fm.Sequential([*head, dense, layers.Dense(2)])
    assert model.built and dense.kernel.shape == (7, 4)
    assert model.input_shape == (None, 7) and model.output_shape == (None, 2)


def test_input_dim_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="input_dim"):
        layers.Dense(4, input_dim=0)


# ------------------------------------------------------------------ 2. functional API, names


def functional(units: tuple[int, ...] = (8, 3), features: int = 6) -> tuple[fm.Model, list[Any]]:
    inputs = fm.Input((features,))
    x = inputs
    made = []
    for i, n in enumerate(units):
        layer = layers.Dense(n, activation="relu" if i < len(units) - 1 else "softmax")
        made.append(layer)
        x = layer(x)
    return fm.Model(inputs, x), made


def test_generated_names_follow_keras_and_restart_after_clear_session() -> None:
    model, _ = functional()
    assert [layer.name for layer in model.layers] == ["input_layer", "dense", "dense_1"]
    assert model.name == "functional"
    second_input = fm.Input((2,))
    second = fm.Model(second_input, layers.Dense(1)(second_input))
    assert second.name == "functional_1" and second.layers[0].name == "input_layer_1"
    assert second_input.name.startswith("keras_tensor") and fm.Input((1,), name="x").name == "x"
    assert fm.Sequential().name == "sequential"
    assert layers.Dense(1).name == "dense_3"
    fm.backend.clear_session(free_memory=False)
    assert layers.Dense(1).name == "dense" and fm.Sequential().name == "sequential"


def test_disconnected_graph_is_keras_graph_disconnected_error() -> None:
    a, b = fm.Input((3,)), fm.Input((3,))
    out = layers.Dense(2)(b)
    with pytest.raises(ValueError, match="Graph disconnected"):
        fm.Model(a, out)


def test_a_functional_model_is_the_sequential_model_bit_for_bit() -> None:
    x, y = data()
    fm.utils.set_random_seed(4)
    model, made = functional()
    assert model.layers[1] is made[0] and model.get_layer("dense_1") is made[1]
    assert model.get_layer(index=0).name == "input_layer"
    sequential = fm.Sequential([fm.Input((6,)), layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    sequential.set_weights(model.get_weights())
    for m in (model, sequential):
        fm.utils.set_random_seed(5)  # the same shuffles
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h1 = model.fit(x, y, batch_size=7, epochs=2, verbose=0).history
    h2 = sequential.fit(x, y, batch_size=7, epochs=2, verbose=0).history
    assert h1 == h2
    np.testing.assert_array_equal(model.predict(x, verbose=0), sequential.predict(x, verbose=0))
    assert isinstance(sequential, fm.Model) and isinstance(model, fm.Model)
    assert not isinstance(model, fm.Sequential)


def test_model_takes_keyword_inputs_outputs_name_and_lists_of_one() -> None:
    inputs = fm.Input((4,), name="features")
    outputs = layers.Dense(2)(layers.Dropout(0.5)(layers.Dense(5)(inputs)))
    model = fm.Model(inputs=[inputs], outputs=[outputs], name="mine")
    assert model.name == "mine" and model.inputs[0] is inputs
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert model.output_shape == (None, 2) and model.outputs[0].shape == (None, 2)


def test_get_layer_errors_are_keras_errors() -> None:
    model, _ = functional()
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="Provide only a layer name or a layer index"):
        model.get_layer("dense", 0)
    with pytest.raises(ValueError, match="only has 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="Provide either a layer name or layer index"):
        model.get_layer()


class TwoLayers(fm.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = layers.Dense(8, activation="relu")
        self.drop = layers.Dropout(0.25)
        self.out = layers.Dense(3, activation="softmax")

    def call(self, inputs: Any) -> Any:
        return self.out(self.drop(self.hidden(inputs)))


def test_a_subclassed_model_is_traced_once_and_runs_the_chain() -> None:
    x, y = data()
    fm.utils.set_random_seed(9)
    model = TwoLayers()
    assert model.name == "two_layers" and not model.built
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert [layer.name for layer in model.layers] == [model.hidden.name, model.drop.name, model.out.name]
    params = [(model.hidden.kernel, model.hidden.bias), (model.out.kernel, model.out.bias)]
    expected = fm.reference.predict(x, params, ["relu", "softmax"])  # dropout is off in predict
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


class WithTrainingFlag(fm.Model):  # the keras.Model docstring's subclassing example
    def __init__(self) -> None:
        super().__init__()
        self.dense1 = layers.Dense(8, activation="relu")
        self.dense2 = layers.Dense(3, activation="softmax")
        self.dropout = layers.Dropout(0.5)

    def call(self, inputs: Any, training: bool = False) -> Any:
        x = self.dense1(inputs)
        x = self.dropout(x, training=training)
        return self.dense2(x)


def test_training_is_passed_on_as_keras_passes_it_and_calls_predict_in_inference_mode() -> None:
    x, y = data()
    fm.utils.set_random_seed(9)
    model = WithTrainingFlag()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense"]
    params = [(model.dense1.kernel, model.dense1.bias), (model.dense2.kernel, model.dense2.bias)]
    expected = fm.reference.predict(x, params, ["relu", "softmax"])  # no dropout in inference
    for out in (model(x, training=False), model(x), model.predict(x, verbose=0)):
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="training=True"):
        model(x, training=True)  # a stochastic pass on data: not supported
    with pytest.raises(ValueError, match="training=True"):
        layers.Dropout(0.5)(fm.Input((4,)), training=True)


class DropoutOnlyInTraining(fm.Model):  # the gate Keras's guides also write
    def __init__(self, rate: float, extra: bool = False) -> None:
        super().__init__()
        self.dense1 = layers.Dense(8, activation="relu")
        self.dropout = layers.Dropout(rate)
        self.extra = layers.Dense(8) if extra else None
        self.dense2 = layers.Dense(3, activation="softmax")

    def call(self, inputs: Any, training: bool = False) -> Any:
        x = self.dense1(inputs)
        if training:
            x = self.dropout(x, training=training)
            if self.extra is not None:
                x = self.extra(x)
        return self.dense2(x)


def test_a_dropout_called_only_when_training_acts_in_fit_as_in_keras() -> None:
    x, y = data()
    losses = {}
    for rate, form in ((0.9, DropoutOnlyInTraining), (0.0, DropoutOnlyInTraining), (0.9, None)):
        fm.utils.set_random_seed(9)
        model = form(rate) if form is not None else WithTrainingFlag()
        if form is None:
            model.dropout = layers.Dropout(rate)  # the same network, training passed on
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        losses[(rate, form)] = model.fit(x, y, epochs=2, verbose=0).history["loss"]
        assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dropout", "Dense"]
        params = [(model.dense1.kernel, model.dense1.bias), (model.dense2.kernel, model.dense2.bias)]
        expected = fm.reference.predict(x, params, ["relu", "softmax"])  # no dropout in predict
        np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert losses[(0.9, DropoutOnlyInTraining)] != losses[(0.0, DropoutOnlyInTraining)]
    assert losses[(0.9, DropoutOnlyInTraining)] == losses[(0.9, None)]  # as if passed on


class DropoutOnlyInInference(DropoutOnlyInTraining):
    def call(self, inputs: Any, training: bool = False) -> Any:
        x = self.dense1(inputs)
        if not training:
            x = self.dropout(x)  # the identity in inference: no dropout anywhere, as in Keras
        return self.dense2(x)


class TypoInTraining(DropoutOnlyInTraining):
    def call(self, inputs: Any, training: bool = False) -> Any:
        x = self.dense1(inputs)
        if training:
            x = self.dropot(x)  # type: ignore[attr-defined]  # Keras's fit raises the AttributeError
        return self.dense2(x)


def test_the_training_trace_raises_what_call_raises_and_drops_inference_only_dropout() -> None:
    x, y = data()
    with pytest.raises(AttributeError, match="dropot"):
        TypoInTraining(0.5).predict(x, verbose=0)
    fm.utils.set_random_seed(9)
    model = DropoutOnlyInInference(0.9)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, verbose=0).history["loss"]
    fm.utils.set_random_seed(9)
    plain = DropoutOnlyInTraining(0.0)  # the same network, no dropout in training either
    plain.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert history == plain.fit(x, y, epochs=2, verbose=0).history["loss"]


def test_a_call_with_other_layers_only_in_training_is_refused() -> None:
    model = DropoutOnlyInTraining(0.5, extra=True)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="runs other layers with training=True"):
        model.fit(*data(), epochs=1, verbose=0)


@pytest.mark.parametrize("hook", ["train_step", "test_step", "predict_step", "compute_loss", "compute_metrics"])
@pytest.mark.parametrize("base", [fm.Model, fm.Sequential])
def test_a_subclass_that_customizes_the_steps_is_refused_not_ignored(hook: str, base: type) -> None:
    # Keras's "customizing what happens in fit" hooks: the core never calls them.
    custom = type("Custom", (base,), {hook: lambda self, *args, **kwargs: None})
    with pytest.raises(NotImplementedError, match=f"Custom defines {hook}: .* silently ignore it"):
        custom()
    deeper = type("Deeper", (custom,), {})  # inherited from a user's class: refused as well
    with pytest.raises(NotImplementedError, match=f"Deeper defines {hook}|Custom"):
        deeper()


def test_a_loss_or_metric_class_of_ones_own_is_refused_naming_it() -> None:
    # The guide's custom loss (call) and metric (update_state, result, reset_state) classes:
    # the core never calls them, so they are refused, not misread.
    class CustomMSE(fm.losses.Loss):
        def __init__(self, name: str = "custom_mse") -> None:
            super().__init__(name=name)

        def call(self, y_true: Any, y_pred: Any) -> Any:
            return 0.0

    class CategoricalTruePositives(fm.metrics.Metric):
        def __init__(self, name: str = "categorical_true_positives", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
            pass

        def result(self) -> float:
            return 0.0

        def reset_state(self) -> None:
            pass

    with pytest.raises(NotImplementedError, match="CustomMSE is a loss of your own \\(call\\)"):
        CustomMSE()
    with pytest.raises(NotImplementedError, match="CategoricalTruePositives is a metric of your own"):
        CategoricalTruePositives()
    skipped = object.__new__(CustomMSE)  # made around Loss.__new__ (as copy.copy would)
    model = fm.Sequential([fm.Input((6,)), layers.Dense(3)])
    with pytest.raises(NotImplementedError, match="CustomMSE is a loss of your own"):
        model.compile(optimizer="sgd", loss=skipped)


def test_everyday_keyword_arguments_of_keras(tmp_path: Any) -> None:
    x, y = data(n=100)
    model = fm.Sequential([fm.Input((6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    # steps: the first steps batches of batch_size rows; without batch_size Keras's array
    # adapter makes steps batches of ceil(n / steps) rows, so all rows count.
    np.testing.assert_array_equal(model.predict(x, batch_size=32, steps=2, verbose=0), model.predict(x[:64], verbose=0))
    assert model.predict(x, batch_size=40, steps=3, verbose=0).shape == (100, 3)
    assert model.predict(x, steps=2, verbose=0).shape == (100, 3)
    assert model.evaluate(x, y, batch_size=32, steps=1, verbose=0) == model.evaluate(x[:32], y[:32], verbose=0)
    assert model.evaluate(x, y, steps=3, verbose=0) == model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match="steps"):
        model.predict(x, steps=0, verbose=0)
    # overwrite=False refuses an existing file (Keras asks on the console); True replaces it.
    path = tmp_path / "m.fastmlp"
    model.save(path, overwrite=True)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    with pytest.raises(FileExistsError):
        model.save_weights(weights, overwrite=False)
    model.load_weights(weights, skip_mismatch=False)
    with pytest.raises(ValueError, match="skip_mismatch=False only"):
        model.load_weights(weights, skip_mismatch=True)


def test_ops_on_symbolic_tensors_say_that_a_model_is_a_chain_of_layers() -> None:
    x = fm.Input((6,))
    h = layers.Dense(4)(x)
    for op in (lambda t: t * 2.0, lambda t: 2.0 * t, lambda t: t + t, lambda t: t[:, :2], lambda t: -t,
               fm.activations.relu, np.asarray):
        with pytest.raises(TypeError, match="go through layers only: a model is one chain of layers"):
            op(h)


def test_train_on_batch_weighs_classes_as_fit_does() -> None:
    x, y = data(n=12)
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    per_sample = np.array([weights[int(label)] for label in y])
    trained = []
    for kwargs in ({"class_weight": weights}, {"sample_weight": per_sample}):
        fm.utils.set_random_seed(3)
        model = fm.Sequential([fm.Input((6,)), layers.Dense(3, activation="softmax")])
        model.compile(optimizer=fm.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
        loss = model.train_on_batch(x, y, **kwargs)
        trained.append((loss, model.get_weights()))
    assert trained[0][0] == trained[1][0]
    for a, b in zip(trained[0][1], trained[1][1]):
        np.testing.assert_array_equal(a, b)
    # The weighted loss by hand, from the initial weights (Keras: sum(w * loss) / n).
    fm.utils.set_random_seed(3)
    fresh = fm.Sequential([fm.Input((6,)), layers.Dense(3, activation="softmax")])
    p = fresh.predict(x, verbose=0).astype(np.float64)
    by_hand = np.sum(per_sample * -np.log(p[np.arange(len(y)), y])) / len(y)
    np.testing.assert_allclose(trained[0][0], by_hand, rtol=1e-5)


def test_graphs_the_engine_cannot_run_are_refused_naming_the_layer() -> None:
    inputs = fm.Input((4,))
    shared = layers.Dense(4, name="shared")
    with pytest.raises(ValueError, match=r"'shared'.*more than once"):
        fm.Model(inputs, shared(shared(inputs)))
    a, b = fm.Input((4,)), fm.Input((4,))
    with pytest.raises(ValueError, match="one input and one output"):
        fm.Model([a, b], layers.Dense(1)(a))
    with pytest.raises(ValueError, match="one input and one output"):
        fm.Model(a, [layers.Dense(1)(a), layers.Dense(2)(a)])
    with pytest.raises(ValueError, match=r"'merge'.*takes one input tensor"):
        layers.Dense(2, name="merge")([a, b])
    with pytest.raises(ValueError, match=r"Merge layer 'concatenate' \(Concatenate\) joins several tensors"):
        layers.Concatenate()([a, b])
    with pytest.raises(ValueError, match=r"Merge layer 'add' \(Add\)"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match="a Concatenate layer is not one of them"):
        fm.Sequential([fm.Input((4,)), layers.Concatenate()])
    with pytest.raises(ValueError, match=r"'flat_only'.*Flatten"):
        layers.Dense(2, name="flat_only")(fm.Input((4, 4)))
    with pytest.raises(ValueError, match="LeakyReLU must follow a Dense layer without an activation"):
        fm.Model(a, layers.LeakyReLU()(layers.Dense(2, activation="relu")(a)))


def test_branches_that_do_not_reach_the_output_are_not_part_of_the_model() -> None:
    inputs = fm.Input((4,))
    hidden = layers.Dense(5)(inputs)
    layers.Dense(7)(hidden)  # a branch the model does not use, as Keras ignores it
    model = fm.Model(inputs, layers.Dense(2)(hidden))
    assert [w.shape for w in model.get_weights()] == [(4, 5), (5,), (5, 2), (2,)]


def test_calling_a_layer_or_model_on_data_or_nothing_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="symbolic tensor"):
        layers.Dense(2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match="symbolic tensor"):  # Keras's JAX backend: ValueError
        layers.Dense(2)("x")
    model, _ = functional()
    with pytest.raises(TypeError, match="does not nest models"):
        model(fm.Input((6,)))
    with pytest.raises(TypeError, match="`outputs` must be a symbolic tensor"):
        fm.Model(fm.Input((2,)), np.ones(2))
    with pytest.raises(ValueError, match="needs both `inputs` and `outputs`"):
        fm.Model(inputs=fm.Input((2,)))


def test_a_functional_model_saves_loads_and_pickles_as_a_functional_model(tmp_path: Any) -> None:
    x, y = data()
    model, _ = functional()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "f.fastmlp")
    loaded = fm.models.load_model(tmp_path / "f.fastmlp")
    assert type(loaded) is fm.Model and not isinstance(loaded, fm.Sequential)
    assert [layer.name for layer in loaded.layers] == ["input_layer", "dense", "dense_1"]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert fm.Model.from_config(model.get_config()).get_config() == model.get_config()


# ------------------------------------------------------------------ 3. utils, backend, activations


def test_to_categorical_matches_keras() -> None:
    np.testing.assert_array_equal(
        fm.utils.to_categorical([0, 2, 1]), [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    )
    out = fm.utils.to_categorical(np.array([[1], [3]]), num_classes=5)
    assert out.shape == (2, 5) and out.dtype == np.float64  # the trailing 1 is dropped
    assert out.tolist() == [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
    assert fm.utils.to_categorical(np.zeros((2, 3), int), 2).shape == (2, 3, 2)
    with pytest.raises(IndexError):
        fm.utils.to_categorical([3], num_classes=3)


def test_set_random_seed_makes_initial_weights_and_shuffles_reproducible() -> None:
    x, y = data()

    def run() -> list[Any]:
        fm.utils.set_random_seed(123)
        model, _ = functional()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_activation_functions_compute_keras_formulas_and_select_the_core_activation() -> None:
    z = np.array([[-2.0, -0.5, 0.0, 1.5]])
    act = fm.activations
    np.testing.assert_allclose(act.relu(z), [[0, 0, 0, 1.5]])
    np.testing.assert_allclose(act.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-6)
    np.testing.assert_allclose(act.softmax(z).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(act.leaky_relu(z), np.where(z > 0, z, 0.2 * z), rtol=1e-6)
    np.testing.assert_allclose(act.elu(z), np.where(z > 0, z, np.expm1(z)), rtol=1e-6)
    np.testing.assert_allclose(act.softplus(z), np.log1p(np.exp(z)), rtol=1e-6)
    np.testing.assert_allclose(act.silu(z), z / (1 + np.exp(-z)), rtol=1e-6)
    np.testing.assert_allclose(act.gelu(np.array([1.0])), [0.8413447460685429], rtol=1e-12)  # 1 * Phi(1)
    assert act.swish is act.silu and act.tanh(z).dtype == np.float64
    for name in ("relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu", "softplus", "linear"):
        assert layers.Dense(2, activation=getattr(act, name)).activation == name
    assert layers.Dense(2, activation=act.silu).activation == "swish"
    assert act.deserialize("relu") is act.relu and act.serialize(act.relu) == "relu"
    with pytest.raises(ValueError, match="custom functions are not supported"):
        layers.Dense(2, activation=lambda v: v)


# ------------------------------------------------------------------ 4. model methods


def test_pop_removes_the_last_layer_and_keeps_the_other_weights() -> None:
    model = fm.Sequential([fm.Input((4,)), layers.Dense(3), layers.Dense(2), layers.Dense(1)])
    first = model.get_weights()[:4]
    popped = model.pop()
    assert popped.name == "dense_2" and [layer.name for layer in model.layers] == ["dense", "dense_1"]
    for a, b in zip(first, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.output_shape == (None, 2) and model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    model.pop()
    model.pop()
    assert not model.built
    with pytest.raises(IndexError, match="there are no layers in the model"):
        model.pop()


def test_shapes_inputs_outputs_and_count_params_before_and_after_build() -> None:
    model = fm.Sequential([layers.Flatten(), layers.Dense(3)])
    with pytest.raises(AttributeError):
        _ = model.input_shape
    with pytest.raises(ValueError, match="isn't built"):
        model.count_params()
    model.build((None, 2, 5))
    assert model.input_shape == (None, 2, 5) and model.output_shape == (None, 3)
    assert model.inputs[0].shape == (None, 2, 5) and model.outputs[0].shape == (None, 3)
    assert model.count_params() == 10 * 3 + 3


def test_to_json_and_model_from_json_rebuild_the_architecture_with_new_weights() -> None:
    fm.utils.set_random_seed(1)
    model, _ = functional()
    text = model.to_json()
    assert json.loads(text)["class_name"] == "Model"
    again = fm.models.model_from_json(text)
    assert type(again) is fm.Model and again.get_config() == model.get_config()
    assert not np.array_equal(again.get_weights()[0], model.get_weights()[0])  # freshly drawn
    assert np.abs(again.get_weights()[0]).max() > 0
    seq = fm.Sequential([fm.Input((3,)), layers.Dense(2)])
    assert type(fm.models.model_from_json(seq.to_json())) is fm.Sequential
    with pytest.raises(ValueError, match="json_string"):
        fm.models.model_from_json("{not json")


def test_layer_get_config_from_config_round_trips() -> None:
    dense = layers.Dense(4, activation="tanh", use_bias=False, trainable=False, name="d")
    again = layers.Dense.from_config(dense.get_config())
    assert again.get_config() == dense.get_config() and again.trainable is False


# ------------------------------------------------------------------ 5. compile and fit arguments


def test_compile_accepts_keras_execution_settings_and_refuses_what_it_cannot_honour() -> None:
    model, _ = functional()
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
        jit_compile=False,
        steps_per_execution=4,
        loss_weights=None,
        weighted_metrics=None,
    )
    with pytest.raises(ValueError, match="loss_weights"):
        model.compile(optimizer="sgd", loss="mse", loss_weights=[2.0])
    with pytest.raises(ValueError, match="weighted_metrics"):
        model.compile(optimizer="sgd", loss="mse", weighted_metrics=["mae"])
    with pytest.raises(ValueError, match="steps_per_execution"):
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=0)


def plain_sgd_model(seed: int = 2) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    model = fm.Sequential([fm.Input((6,)), layers.Dense(3, activation="softmax")], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return model


def test_steps_per_epoch_goes_on_where_the_last_epoch_stopped_as_keras() -> None:
    # 30 samples in batches of 7: 5 batches per pass. steps_per_epoch=2 trains batches 0-1,
    # 2-3, then 4 alone (the pass ends: Keras warns and stops the epoch), then 0-1 again.
    x, y = data()
    model = plain_sgd_model()
    reference = plain_sgd_model()
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        history = model.fit(x, y, batch_size=7, epochs=4, steps_per_epoch=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 4
    order = [0, 1, 2, 3, 4, 0, 1]
    for b in order:
        reference.train_on_batch(x[7 * b : 7 * b + 7], y[7 * b : 7 * b + 7])
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_validation_steps_and_batch_size_evaluate_that_many_batches_going_on() -> None:
    x, y = data()
    xv, yv = data(n=10, seed=1)
    seen: list[float] = []

    class Record(fm.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seen.append(logs["val_loss"])

    # Without validation_steps: the whole validation set, whatever validation_batch_size is.
    model = plain_sgd_model()
    model.fit(x, y, epochs=1, shuffle=False, verbose=0, validation_data=(xv, yv), validation_batch_size=3, callbacks=[Record()])
    assert seen[-1] == pytest.approx(model.evaluate(xv, yv, verbose=0), rel=1e-9)
    # validation_steps=2 of batch 4: rows 0-7 each time (Keras resets its evaluation iterator
    # for every evaluation); the same training without validation gives the weights.
    seen.clear()
    plain_sgd_model().fit(
        x, y, epochs=3, shuffle=False, verbose=0, validation_data=(xv, yv), validation_steps=2,
        validation_batch_size=4, callbacks=[Record()],
    )
    model = plain_sgd_model()
    expected = []
    for _ in range(3):
        model.fit(x, y, epochs=1, shuffle=False, verbose=0)
        expected.append(model.evaluate(xv[:8], yv[:8], verbose=0))
    assert seen == pytest.approx(expected, rel=1e-9)
    # More steps than the validation data has: all of it, with Keras's warning.
    with pytest.warns(UserWarning, match="ran out of data"):
        plain_sgd_model().fit(x, y, epochs=1, verbose=0, validation_data=(xv, yv), validation_steps=4, validation_batch_size=4)


def plain_sgd_copy(model: fm.Model) -> fm.Model:
    copy = plain_sgd_model()
    copy.set_weights(model.get_weights())
    return copy


def test_fit_refuses_bad_step_counts() -> None:
    x, y = data()
    model = plain_sgd_model()
    for name in ("steps_per_epoch", "validation_steps", "validation_batch_size"):
        with pytest.raises(ValueError, match=name):
            model.fit(x, y, verbose=0, **{name: 0})


@pytest.mark.parametrize(
    "layer",
    [
        layers.Flatten(),
        layers.Dropout(0.3, name="drop"),
        layers.Activation("tanh"),
        layers.LeakyReLU(0.1),
        layers.InputLayer(shape=(3, 2), batch_size=4),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_every_layer_round_trips_through_its_config(layer: Any) -> None:
    again = type(layer).from_config(layer.get_config())
    assert type(again) is type(layer) and again.get_config() == layer.get_config()


def test_a_subclassed_model_saves_as_its_chain_and_loads_as_a_functional_model(tmp_path: Any) -> None:
    x, y = data()
    model = TwoLayers()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "s.fastmlp")
    loaded = fm.models.load_model(tmp_path / "s.fastmlp")
    assert type(loaded) is fm.Model
    assert [layer.name for layer in loaded.layers][1:] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    again = pickle.loads(pickle.dumps(model))
    assert type(again) is TwoLayers
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_are_named_as_keras_variables_and_assign_into_the_model() -> None:
    model = fm.Sequential(
        [
            fm.Input((4,)),
            layers.Dense(3, name="hidden"),
            layers.BatchNormalization(name="norm"),
            layers.Activation("relu"),
            layers.Dense(2, use_bias=False, name="out"),
        ]
    )
    # Keras 3's names and paths (keras.Variable.name / .path), in get_weights() order.
    assert [(w.name, w.path) for w in model.weights] == [
        ("kernel", "hidden/kernel"),
        ("bias", "hidden/bias"),
        ("gamma", "norm/gamma"),
        ("beta", "norm/beta"),
        ("moving_mean", "norm/moving_mean"),
        ("moving_variance", "norm/moving_variance"),
        ("kernel", "out/kernel"),
    ]
    assert [w.path for w in model.non_trainable_weights] == ["norm/moving_mean", "norm/moving_variance"]
    assert model.layers[0].kernel.path == "hidden/kernel" and model.layers[0].bias.name == "bias"
    for w, expected in zip(model.weights, model.get_weights()):
        np.testing.assert_array_equal(w, expected)
    model.weights[4].assign(np.full(3, 2.0))  # moving_mean, set in the model
    np.testing.assert_array_equal(model.get_weights()[4], np.full(3, 2.0, np.float32))
    assert model.weights[0][:1].name is None  # a slice is not the variable


def test_losses_are_the_weight_penalties_that_evaluate_adds() -> None:
    x, y = data()
    model = fm.Sequential(
        [
            fm.Input((6,)),
            layers.Dense(5, activation="relu", kernel_regularizer=fm.regularizers.L2(0.01), bias_regularizer="l1"),
            layers.Dense(3, activation="softmax", kernel_regularizer=fm.regularizers.L1L2(l1=0.002, l2=0.003)),
        ]
    )
    w1, b1, w2, _ = (w.astype(np.float64) for w in model.get_weights())
    by_hand = [0.01 * np.sum(w1**2), 0.01 * np.sum(np.abs(b1)), 0.002 * np.sum(np.abs(w2)) + 0.003 * np.sum(w2**2)]
    np.testing.assert_allclose(model.losses, by_hand, rtol=1e-6)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    plain = fm.losses.SparseCategoricalCrossentropy()(y, model.predict(x, verbose=0))
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), plain + sum(model.losses), rtol=1e-5)
    model.layers[1].trainable = False  # Keras counts the trainable weights' penalties only
    np.testing.assert_allclose(model.losses, by_hand[:2], rtol=1e-6)
