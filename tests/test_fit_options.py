"""fit's sample_weight, class_weight, validation data with weights, and validation_freq."""

from __future__ import annotations

from typing import Any

import fastmlp as fm
import numpy as np
import pytest

RNG = np.random.default_rng(21)
X = RNG.standard_normal((40, 5))
LABELS = RNG.integers(0, 3, 40)


def model(loss: str = "sparse_categorical_crossentropy", outputs: int = 3, activation: str = "softmax") -> fm.Sequential:
    fm.utils.set_random_seed(9)
    m = fm.Sequential([fm.layers.Input(shape=(5,)), fm.layers.Dense(6, activation="tanh"), fm.layers.Dense(outputs, activation=activation)], dtype="float64")
    m.compile(optimizer=fm.optimizers.SGD(0.2), loss=loss, metrics=["accuracy"])
    return m


def same(a: fm.Sequential, b: fm.Sequential) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_fit_sample_weight_equals_train_on_batch_with_weights() -> None:
    w = RNG.random(40) * 3
    a, b = model(), model()
    history = a.fit(X, LABELS, batch_size=40, epochs=3, shuffle=False, sample_weight=w, verbose=0)
    losses = [b.train_on_batch(X, LABELS, sample_weight=w) for _ in range(3)]
    assert same(a, b)
    assert history.history["loss"] == pytest.approx([loss[0] for loss in losses], rel=1e-12)


@pytest.mark.parametrize("kind", ["sparse", "onehot", "binary"])
def test_class_weight_is_a_per_class_sample_weight(kind: str) -> None:
    if kind == "sparse":
        y: Any = LABELS
        classes = LABELS
        make = model
    elif kind == "onehot":
        y = np.eye(3)[LABELS]
        classes = LABELS
        make = lambda: model("categorical_crossentropy")  # noqa: E731
    else:
        y = (LABELS == 1).astype(float)[:, None]
        classes = (LABELS == 1).astype(int)
        make = lambda: model("binary_crossentropy", 1, "sigmoid")  # noqa: E731
    class_weight = {0: 0.5, 1: 2.0} if kind == "binary" else {0: 0.5, 2: 3.0}  # class 1 unlisted: 1
    lookup = np.array([class_weight.get(c, 1.0) for c in range(3)])
    a, b, c = make(), make(), make()
    a.fit(X, y, batch_size=8, epochs=2, class_weight=class_weight, verbose=0)
    b.fit(X, y, batch_size=8, epochs=2, sample_weight=lookup[classes], verbose=0)
    assert same(a, b)
    # Both together multiply.
    extra = RNG.random(40)
    a2, b2 = make(), make()
    a2.fit(X, y, batch_size=8, epochs=1, class_weight=class_weight, sample_weight=extra, verbose=0)
    b2.fit(X, y, batch_size=8, epochs=1, sample_weight=extra * lookup[classes], verbose=0)
    assert same(a2, b2)
    c.fit(X, y, batch_size=8, epochs=2, verbose=0)
    assert not same(a, c)


def test_validation_weights_and_split() -> None:
    w = RNG.random(40) + 0.5
    m = model()
    history = m.fit(X[:30], LABELS[:30], epochs=1, validation_data=(X[30:], LABELS[30:], w[30:]), verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(m.evaluate(X[30:], LABELS[30:], sample_weight=w[30:], verbose=0)[0], rel=1e-12)
    # validation_split takes the last quarter of the weights with the data.
    a, b = model(), model()
    ha = a.fit(X, LABELS, epochs=1, validation_split=0.25, sample_weight=w, shuffle=False, verbose=0)
    hb = b.fit(X[:30], LABELS[:30], epochs=1, validation_data=(X[30:], LABELS[30:], w[30:]), sample_weight=w[:30], shuffle=False, verbose=0)
    assert ha.history == hb.history


def test_weighted_loss_definition() -> None:
    m = model()
    w = np.zeros(40)
    w[:10] = 4.0
    # sum(w * l) / n: four times the mean loss of the first 10, scaled by 10/40.
    first = m.evaluate(X[:10], LABELS[:10], verbose=0)[0]
    assert m.evaluate(X, LABELS, sample_weight=w, verbose=0)[0] == pytest.approx(first, rel=1e-12)


@pytest.mark.parametrize("freq,expected", [(1, [1, 2, 3, 4]), (2, [2, 4]), ([1, 3], [1, 3])])
def test_validation_freq(freq: Any, expected: list[int]) -> None:
    seen: list[int] = []
    callback = fm.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch + 1) if "val_loss" in logs else None)
    m = model()
    history = m.fit(X, LABELS, epochs=4, validation_data=(X, LABELS), validation_freq=freq, callbacks=[callback], verbose=0)
    assert seen == expected
    assert len(history.history["val_loss"]) == len(expected)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"class_weight": {5: 1.0}}, "class indices"),
        ({"class_weight": {0: float("nan")}}, "finite"),
        ({"class_weight": []}, "dict"),
        ({"sample_weight": np.ones(39)}, "sample_weight"),
        ({"validation_freq": 0}, "validation_freq"),
        ({"validation_data": (X,)}, "validation_data"),
    ],
)
def test_bad_fit_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        model().fit(X, LABELS, epochs=1, verbose=0, **kwargs)


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_validation_split_weighs_classes_in_training_only(with_sample_weight: bool) -> None:
    # Keras splits off the validation rows before it turns class_weight into sample weights:
    # val_loss is evaluate's on the last rows, with their sample weights only.
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    w = RNG.random(40) + 0.5 if with_sample_weight else None
    m = model()
    m.compile(optimizer=fm.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")  # weights fixed
    history = m.fit(X, LABELS, batch_size=8, epochs=1, class_weight=class_weight, sample_weight=w,
                    validation_split=0.25, shuffle=False, verbose=0)
    p = m.predict(X[30:], verbose=0)
    per_sample = -np.log(p[np.arange(10), LABELS[30:]])
    expected = np.mean(per_sample if w is None else w[30:] * per_sample)  # Keras: sum(w * loss) / n
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)
    lookup = np.array([1.0, 3.0, 0.5])[LABELS[:30]]
    p_train = m.predict(X[:30], verbose=0)
    train_loss = -np.log(p_train[np.arange(30), LABELS[:30]]) * lookup * (1.0 if w is None else w[:30])
    assert history.history["loss"][0] == pytest.approx(np.mean(train_loss), rel=1e-12)


def test_class_weights_beyond_the_models_dtype_are_named() -> None:
    # 1e300 is a float64 but infinite in float32: the error names class_weight, not the core's
    # per-sample weights it becomes.
    model = fm.Sequential([fm.Input((3,)), fm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="`class_weight` holds a value beyond the range of float32"):
        model.fit(x, y, class_weight={0: 1e300, 1: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="`class_weight` times `sample_weight`"):
        model.fit(x, y, class_weight={0: 1e30, 1: 1.0}, sample_weight=np.full(4, 1e20), verbose=0)
    with pytest.raises(ValueError, match="`class_weight` holds a value beyond the range of float32"):
        model.train_on_batch(x, y, class_weight={0: 1e300, 1: 1.0})
