"""Feature extraction as in the Keras guides ("The Sequential model", "The Functional API"):
``Model(inputs=model.inputs, outputs=layer.output)`` shares the model's first layers and
predicts with its current weights. Expected values are NumPy recomputations from the owner's
``get_weights()``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastmlp as keras
from fastmlp import layers


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def guide_model() -> keras.Sequential:
    # The Sequential guide's code, with only the import changed.
    return keras.Sequential(
        [
            keras.Input(shape=(20,)),
            layers.Dense(32, activation="relu"),
            layers.Dense(32, activation="relu", name="my_intermediate_layer"),
            layers.Dense(4),
        ]
    )


def intermediate(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = (w.astype(np.float64) for w in weights[:4])
    return relu(relu(x @ w1 + b1) @ w2 + b2)


def test_the_sequential_guides_feature_extractor() -> None:
    initial_model = guide_model()
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=initial_model.get_layer(name="my_intermediate_layer").output,
    )
    x = np.random.default_rng(0).normal(size=(10, 20)).astype(np.float32)
    features = feature_extractor(x)
    assert features.shape == (10, 32)
    expected = intermediate(initial_model.get_weights(), x.astype(np.float64))
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(feature_extractor.predict(x, verbose=0), features)
    np.testing.assert_array_equal(feature_extractor.predict_on_batch(x), features)
    shared = feature_extractor.get_weights()
    assert len(shared) == 4
    for mine, theirs in zip(shared, initial_model.get_weights()[:4]):
        np.testing.assert_array_equal(mine, theirs)


def test_the_extractor_follows_the_owners_training() -> None:
    initial_model = guide_model()
    extractor = keras.Model(initial_model.inputs, initial_model.get_layer("my_intermediate_layer").output)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.normal(size=(64, 4)).astype(np.float32)
    before = extractor(x)
    initial_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    initial_model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = extractor(x)
    assert not np.array_equal(before, after)
    np.testing.assert_allclose(after, intermediate(initial_model.get_weights(), x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    initial_model.get_layer(index=0).set_weights([np.zeros((20, 32), np.float32), np.ones(32, np.float32)])
    np.testing.assert_allclose(extractor(x), intermediate(initial_model.get_weights(), x.astype(np.float64)), rtol=1e-5, atol=1e-5)


def test_the_functional_guides_encoder_layer() -> None:
    encoder_input = keras.Input(shape=(8,), name="img")
    h = layers.Dense(16, activation="relu")(encoder_input)
    h = layers.Dense(6, activation="tanh", name="dense_3")(h)
    encoder_output = layers.Dense(3)(h)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    extractor = keras.Model(inputs=encoder.inputs, outputs=encoder.get_layer("dense_3").output)
    x = np.random.default_rng(2).normal(size=(5, 8))
    w1, b1, w2, b2, _, _ = (w.astype(np.float64) for w in encoder.get_weights())
    np.testing.assert_allclose(extractor.predict(x, verbose=0), np.tanh(relu(x @ w1 + b1) @ w2 + b2), rtol=1e-5, atol=1e-5)
    assert extractor.get_layer("dense_3").output.shape == (None, 6)
    assert encoder.get_layer("dense_3").input is h.parent


def test_the_last_layers_output_is_the_whole_model() -> None:
    model = guide_model()
    extractor = keras.Model(model.inputs, model.layers[-1].output)
    x = np.random.default_rng(3).normal(size=(7, 20)).astype(np.float32)
    np.testing.assert_array_equal(extractor(x), model(x))


def test_layer_input_and_output_in_a_sequential_model() -> None:
    model = guide_model()
    first, second, _ = model.layers
    assert first.input is model.inputs[0]
    assert second.input is first.output
    assert second.output.shape == (None, 32)
    built_later = keras.Sequential([layers.Dense(3, input_shape=(5,)), layers.Dense(2)])
    assert built_later.layers[1].input is built_later.layers[0].output
    assert built_later.layers[0].input is built_later.inputs[0]


def test_a_layer_never_called_has_no_output() -> None:
    layer = layers.Dense(3, name="lonely")
    with pytest.raises(AttributeError, match="lonely has never been called and thus has no defined output"):
        _ = layer.output
    with pytest.raises(AttributeError, match="no defined input"):
        _ = layer.input
    unbuilt = keras.Sequential([layers.Dense(3)])
    assert not hasattr(unbuilt.layers[0], "output")


def test_an_extractor_refuses_training() -> None:
    model = guide_model()
    extractor = keras.Model(model.inputs, model.get_layer("my_intermediate_layer").output)
    with pytest.raises(ValueError, match=r"feature extractor.*while those shared layers are frozen"):
        extractor.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="up to 'my_intermediate_layer'"):
        extractor.fit(np.zeros((4, 20)), np.zeros((4, 32)), verbose=0)
    with pytest.raises(ValueError, match="feature extractor"):
        extractor.set_weights(extractor.get_weights())


def test_a_layer_of_another_model_is_still_refused_elsewhere() -> None:
    model = guide_model()
    other = keras.Input(shape=(20,))
    with pytest.raises(ValueError, match="already belongs to a model"):
        keras.Model(other, model.layers[0](other))
    inputs = keras.Input(shape=(20,))
    mine = layers.Dense(32)(inputs)
    borrowed = model.get_layer("my_intermediate_layer")
    with pytest.raises(ValueError, match="already belongs to a model"):
        keras.Model(inputs, borrowed(mine))


def test_a_layer_used_twice_in_one_model_is_still_refused() -> None:
    inputs = keras.Input(shape=(4,))
    dense = layers.Dense(4)
    with pytest.raises(ValueError, match="used more than once"):
        keras.Model(inputs, dense(dense(inputs)))


def test_several_outputs_are_refused_with_their_names() -> None:
    model = guide_model()
    with pytest.raises(ValueError, match=r"one feature extractor per layer.*3 tensors"):
        keras.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])


def test_the_quickstarts_probability_model_nests_the_trained_model() -> None:
    # TensorFlow's beginner quickstart, with only the import changed (and smaller data).
    rng = np.random.default_rng(0)
    x_train, y_train = rng.random((200, 4, 3)).astype(np.float32), rng.integers(0, 5, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's deprecation of input_shape, which the quickstart uses
        flatten = layers.Flatten(input_shape=(4, 3))
    model = keras.models.Sequential([flatten, layers.Dense(8, activation="relu"), layers.Dropout(0.2), layers.Dense(5)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=2, verbose=0)
    probability_model = keras.Sequential([model, keras.layers.Softmax()])

    def softmax_of_the_logits(x: np.ndarray) -> np.ndarray:  # from the trained model's weights
        w1, b1, w2, b2 = (w.astype(np.float64) for w in model.get_weights())
        z = relu(x.reshape(len(x), -1) @ w1 + b1) @ w2 + b2
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    np.testing.assert_allclose(probability_model(x_train[:5]), softmax_of_the_logits(x_train[:5]), rtol=1e-5, atol=1e-6)
    model.fit(x_train, y_train, epochs=1, verbose=0)  # it follows the model's training
    np.testing.assert_allclose(probability_model.predict(x_train, verbose=0), softmax_of_the_logits(x_train), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="To train the shared layers too, train 'sequential"):
        probability_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")


def test_a_new_head_trains_on_a_frozen_nested_base_as_in_the_transfer_learning_guide() -> None:
    # The Sequential guide's transfer learning: base.trainable = False, then a new head on it.
    rng = np.random.default_rng(3)
    x, y = rng.random((120, 20)).astype(np.float32), rng.integers(0, 3, 120)
    base = guide_model()
    base.compile(optimizer="adam", loss="mse")
    base.fit(x, rng.random((120, 4)), epochs=1, verbose=0)  # "pretrained"
    base.trainable = False
    model = keras.Sequential([base, layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in base.get_weights()]
    head = [w.copy() for w in model.get_weights()[6:]]
    model.fit(x, y, batch_size=120, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(before, base.get_weights()):  # the base did not move
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 2
    # One full-batch SGD step of the head alone on the base's features (NumPy).
    w = [a.astype(np.float64) for a in before]
    features = relu(relu(x @ w[0] + w[1]) @ w[2] + w[3]) @ w[4] + w[5]
    kernel, bias = (h.astype(np.float64) for h in head)
    z = features @ kernel + bias
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(3)[y]) / len(y)
    np.testing.assert_allclose(model.get_weights()[6], kernel - 0.5 * features.T @ delta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.get_weights()[7], bias - 0.5 * delta.sum(axis=0), rtol=1e-4, atol=1e-6)
    base.trainable = True  # fine-tuning the nested base in place is not supported: refused, named
    with pytest.raises(ValueError, match="To train the shared layers too, train 'sequential"):
        model.fit(x, y, epochs=1, verbose=0)
    base.trainable = False
    model.fit(x, y, epochs=1, verbose=0)  # frozen again: the head trains
    model.trainable = True  # the guide's fine-tuning step, through the outer model: refused too
    with pytest.raises(ValueError, match="not unfrozen through this model"):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")


def test_a_nested_model_must_be_built_first_and_come_first() -> None:
    model = guide_model()
    with pytest.raises(TypeError, match="only as its first entry"):
        keras.Sequential([keras.Input(shape=(20,)), model])
    with pytest.raises(ValueError, match="is not built"):
        keras.Sequential([keras.Sequential([layers.Dense(3)])])
    with pytest.raises(ValueError, match="dtype='float32'"):
        keras.Sequential([model], dtype="float64")
    nested = keras.Sequential([model, layers.Dense(2)])  # a head of its own after the copies
    x = np.random.default_rng(1).random((6, 20)).astype(np.float32)
    w = [a.astype(np.float64) for a in nested.get_weights()]
    z = relu(relu(x @ w[0] + w[1]) @ w[2] + w[3]) @ w[4] + w[5]
    np.testing.assert_allclose(nested.predict(x, verbose=0), z @ w[6] + w[7], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(w[0], model.get_weights()[0])


def test_an_extractor_and_its_owners_fit_take_their_locks_in_one_order() -> None:
    # A thread reading the extractor's weights while a callback of the owner's fit predicts
    # with the extractor: each call waits for the other's lock unless both take the owner's
    # first (a deadlock before the fix; here fit must end within the join's timeout).
    import threading

    owner = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(16), layers.Dense(3)])
    owner.compile(optimizer="sgd", loss="mse")
    extractor = keras.Model(owner.inputs, owner.layers[0].output)
    x = np.random.default_rng(0).random((4000, 6)).astype(np.float32)

    class PredictsWithTheExtractor(keras.callbacks.Callback):
        def on_batch_end(self, batch: int, logs: object = None) -> None:
            extractor.predict_on_batch(x[:1])

    stop = threading.Event()
    errors: list[BaseException] = []

    def reads_weights() -> None:
        try:
            while not stop.is_set():
                extractor.get_weights()
                extractor.predict(x[:2], verbose=0)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    reader = threading.Thread(target=reads_weights, daemon=True)
    reader.start()
    fit = threading.Thread(
        target=lambda: owner.fit(x, x[:, :3], batch_size=64, epochs=2, verbose=0, callbacks=[PredictsWithTheExtractor()]),
        daemon=True,
    )
    fit.start()
    fit.join(30)
    stop.set()
    reader.join(30)
    assert not fit.is_alive() and not reader.is_alive(), "the two calls wait for each other's lock"
    assert not errors
    np.testing.assert_array_equal(extractor.get_weights()[0], owner.get_weights()[0])
