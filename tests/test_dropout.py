"""Dropout: inverted, seeded, only while training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import reference as ref


@pytest.fixture
def restore_threads() -> Iterator[None]:
    threads = fm.get_num_threads()
    yield
    fm.set_num_threads(threads)


def probe(rate: float, width: int) -> fm.Sequential:
    """x = 1 -> Dense(width) of ones -> Dropout -> Dense(1) of ones: the hidden values are all 1,
    and the second layer's gradient for one sample is (dropped hidden value) * delta, so one step
    shows the mask."""
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(1,)),
            fm.layers.Dense(width, use_bias=False),
            fm.layers.Dropout(rate),
            fm.layers.Dense(1, use_bias=False),
        ],
        dtype="float64",
    )
    model.set_weights([np.ones((1, width)), np.ones((width, 1))])
    model.compile(optimizer=fm.optimizers.SGD(1.0), loss="mse")
    return model


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_keep_rate_and_scaling(isa: str, rate: float) -> None:
    fm.utils.set_random_seed(0)
    width = 20000
    model = probe(rate, width)
    x = np.ones((1, 1))
    y = np.zeros((1, 1))
    # Forward of the training step: p = sum(kept * scale); delta = 2 (p - y); dW2 = dropped * delta.
    model.train_on_batch(x, y)
    change = 1.0 - model.get_weights()[1][:, 0]
    kept = change != 0
    # The kept fraction is a binomial proportion: within 5 standard errors of 1 - rate.
    se = np.sqrt(rate * (1 - rate) / width)
    assert abs(kept.mean() - (1 - rate)) < 5 * se
    # Every kept value was scaled by the same 1 / (1 - rate): all changes are equal, and equal to
    # (1 / (1 - rate)) * delta with delta = 2 * p, p = (number kept) / (1 - rate).
    p = kept.sum() / (1 - rate)
    np.testing.assert_allclose(change[kept], (1 / (1 - rate)) * 2 * p, rtol=1e-12)


def test_inference_ignores_dropout() -> None:
    fm.utils.set_random_seed(1)
    model = fm.Sequential([fm.layers.Input(shape=(6,)), fm.layers.Dense(8, activation="tanh"), fm.layers.Dropout(0.5), fm.layers.Dense(2)], dtype="float64")
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((5, 6))
    w = model.get_weights()
    expected = ref.predict(x, [(w[0], w[1]), (w[2], w[3])], ["tanh", "linear"])
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-12)
    y = np.zeros((5, 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(np.mean(expected**2), rel=1e-12)
    # compute_gradients is the inference-mode gradient: no mask, equal to the reference's.
    _, grads = ref.gradients(x, y, [(w[0], w[1]), (w[2], w[3])], ["tanh", "linear"], "mse")
    np.testing.assert_allclose(model.compute_gradients(x, y)[0][0], grads[0][0], rtol=1e-10)


def train(seed: int, threads: int) -> list[np.ndarray]:
    fm.set_num_threads(threads)
    fm.utils.set_random_seed(seed)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 30)).astype(np.float32)
    y = rng.integers(0, 4, 400)
    model = fm.Sequential([fm.layers.Input(shape=(30,)), fm.layers.Dense(256, activation="relu"), fm.layers.Dropout(0.3), fm.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=50, epochs=2, verbose=0)
    return model.get_weights()


def test_dropout_is_seeded_and_thread_independent(restore_threads: None) -> None:
    a, b, c = train(3, 1), train(3, 2), train(4, 1)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


def test_dropout_changes_training() -> None:
    fm.utils.set_random_seed(5)
    x = np.ones((1, 1))
    model = probe(0.5, 50)
    first = model.get_weights()[1]
    model.train_on_batch(x, np.zeros((1, 1)))
    second_step_start = model.get_weights()[1]
    model.train_on_batch(x, np.zeros((1, 1)))
    masks = [(first - second_step_start) != 0, (second_step_start - model.get_weights()[1]) != 0]
    assert not np.array_equal(*masks)  # a new mask every step


def test_misplaced_dropout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must follow a Dense"):
        fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dropout(0.5)])
    with pytest.raises(ValueError, match="in a row"):
        fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(2), fm.layers.Dropout(0.5), fm.layers.Dropout(0.5)])
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(2), fm.layers.Dropout(0.5)])
    with pytest.raises(ValueError, match="last Dense"):
        model.compile(optimizer="sgd", loss="mse")
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(ValueError, match="rate"):
            fm.layers.Dropout(bad)  # type: ignore[arg-type]
    ok = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(4), fm.layers.Dropout(0.25), fm.layers.Dense(1)])
    ok.compile(optimizer="sgd", loss="mse")
    ok.save(tmp_path / "m.fastmlp")
    assert fm.models.load_model(tmp_path / "m.fastmlp").get_config() == ok.get_config()
