"""Learning a small synthetic problem, determinism, shuffling, dtypes and inference consistency.

The data set is two interleaving half-moons generated here with NumPy (as scikit-learn's
make_moons, with Gaussian noise of standard deviation 0.15): not linearly separable (a logistic
regression stays near 87%), but an MLP with two small tanh layers separates it almost perfectly.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import fastmlp as fm
import numpy as np
import pytest


def two_moons(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points on two interleaving half circles (labels 0 and 1), shuffled, float32."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(scale=noise, size=(n, 2))
    y = np.concatenate([np.zeros(n0, dtype=np.int64), np.ones(n - n0, dtype=np.int64)])
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = two_moons(2000, noise=0.15, seed=0)
    return x[:1500], y[:1500], x[1500:], y[1500:]


def moons_model(
    output: str = "sigmoid", hidden: tuple[int, ...] = (16, 16), seed: int = 0
) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    layers: list[Any] = [fm.layers.Input(shape=(2,))]
    layers += [fm.layers.Dense(h, activation="tanh") for h in hidden]
    if output == "sigmoid":
        layers.append(fm.layers.Dense(1, activation="sigmoid"))
        loss = "binary_crossentropy"
    else:
        layers.append(fm.layers.Dense(2, activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    model = fm.Sequential(layers)
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.5), loss=loss, metrics=["accuracy"])
    return model


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_two_moons_reaches_97_percent_on_held_out_data(isa: str, moons: Any, output: str) -> None:
    x_train, y_train, x_test, y_test = moons
    model = moons_model(output)
    history = model.fit(x_train, y_train, batch_size=32, epochs=40, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 40
    assert losses[-1] < 0.2 * losses[0]
    # Accuracy computed here from the predictions, independently of fastmlp's metric...
    probs = model.predict(x_test, verbose=0)
    predicted = (probs[:, 0] > 0.5).astype(int) if output == "sigmoid" else probs.argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    assert accuracy >= 0.97
    # ... and fastmlp's own accuracy metric agrees with it.
    loss, metric = model.evaluate(x_test, y_test, verbose=0)  # type: ignore[misc]
    assert metric == pytest.approx(accuracy, abs=1e-9)
    assert loss < 0.15


def test_two_moons_needs_the_hidden_layers(moons: Any) -> None:
    """The problem is not linearly separable: the same training without hidden layers stays far
    below the MLP's accuracy, so the test above really checks that hidden layers learn."""
    x_train, y_train, x_test, y_test = moons
    model = moons_model("sigmoid", hidden=())
    model.fit(x_train, y_train, batch_size=32, epochs=40, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)  # type: ignore[misc]
    assert 0.75 < accuracy < 0.92


# ----------------------------------------------------------------------------- determinism


def train_weights(seed: int, moons: Any, shuffle: bool = True, epochs: int = 3) -> list[np.ndarray]:
    x_train, y_train, _, _ = moons
    model = moons_model("softmax", seed=seed)
    model.fit(x_train, y_train, batch_size=16, epochs=epochs, shuffle=shuffle, verbose=0)
    return model.get_weights()


def all_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_same_seed_gives_bit_identical_weights(isa: str, moons: Any) -> None:
    first = train_weights(7, moons)
    second = train_weights(7, moons)
    assert all_equal(first, second)


def test_different_seed_gives_different_weights(moons: Any) -> None:
    assert not any(
        np.array_equal(a, b) for a, b in zip(train_weights(7, moons), train_weights(8, moons))
    )


def test_same_seed_gives_identical_initial_weights() -> None:
    def initial(seed: int) -> list[np.ndarray]:
        fm.utils.set_random_seed(seed)
        model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(4), fm.layers.Dense(2)])
        return model.get_weights()

    assert all_equal(initial(3), initial(3))
    assert not all_equal(initial(3), initial(4))


WEIGHT_HASH_SCRIPT = textwrap.dedent(
    """
    import hashlib
    import numpy as np
    import fastmlp as fm
    fm.utils.set_random_seed(11)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = fm.Sequential([fm.layers.Input(shape=(2,)), fm.layers.Dense(8, activation="tanh"),
                           fm.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.3),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=True, verbose=0)
    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights()))
    print(fm.active_isa(), digest.hexdigest())
    """
)


def weight_hash_in_subprocess(isa: str) -> str:
    env = dict(os.environ, FASTMLP_ISA=isa)
    result = subprocess.run(
        [sys.executable, "-c", WEIGHT_HASH_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_determinism_across_processes(isa: str) -> None:
    """Two fresh interpreters (and this one) train the same model to bit-identical weights."""
    first = weight_hash_in_subprocess(isa)
    second = weight_hash_in_subprocess(isa)
    assert first.split()[0] == isa
    assert first == second
    namespace: dict[str, Any] = {
        "print": lambda *args: namespace.__setitem__("out", " ".join(args))
    }
    exec(WEIGHT_HASH_SCRIPT, namespace)  # our own script, run in this process
    assert namespace["out"] == first


# ----------------------------------------------------------------------------- shuffling


class WeightRecorder(fm.callbacks.Callback):
    """Keeps a copy of the first kernel after every batch (this asks for per-batch hooks)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[np.ndarray] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        assert self.model is not None
        self.kernels.append(self.model.get_weights()[0].copy())


def observed_batches(
    seed: int, n: int, batch_size: int, epochs: int, shuffle: bool
) -> list[list[int]]:
    """Recover the samples of every batch fit used.

    Sample i is the i-th unit vector (x = identity), the model is a bias-free linear layer with
    one output, and the targets are 1 with initial weights 0: every sample in a batch has a
    non-zero gradient, but the gradient of kernel row j is non-zero only when sample j is in the
    batch. So the kernel rows that change during a batch are exactly that batch's samples.
    """
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(n,)),
            fm.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.01), loss="mse")
    recorder = WeightRecorder()
    model.fit(
        np.eye(n, dtype=np.float32),
        np.ones(n, dtype=np.float32),
        batch_size=batch_size,
        epochs=epochs,
        shuffle=shuffle,
        verbose=0,
        callbacks=[recorder],
    )
    batches = []
    previous = np.zeros((n, 1), dtype=np.float32)
    for kernel in recorder.kernels:
        batches.append(sorted(np.flatnonzero(kernel[:, 0] != previous[:, 0]).tolist()))
        previous = kernel
    return batches


def epoch_orders(batches: list[list[int]], per_epoch: int) -> list[list[int]]:
    return [
        list(itertools.chain(*batches[e : e + per_epoch]))
        for e in range(0, len(batches), per_epoch)
    ]


def test_shuffle_false_visits_samples_in_order() -> None:
    batches = observed_batches(seed=1, n=10, batch_size=3, epochs=2, shuffle=False)
    expected = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert batches == expected + expected


def test_shuffle_true_permutes_every_epoch_differently_and_reproducibly() -> None:
    n, batch_size, epochs = 12, 1, 4
    batches = observed_batches(seed=5, n=n, batch_size=batch_size, epochs=epochs, shuffle=True)
    assert all(len(b) == 1 for b in batches)
    orders = [[b[0] for b in batches[e * n : (e + 1) * n]] for e in range(epochs)]
    for order in orders:
        assert sorted(order) == list(range(n))  # every sample exactly once per epoch
        assert order != list(range(n))  # actually shuffled
    assert len({tuple(o) for o in orders}) == epochs  # a fresh permutation each epoch
    # The same seed reproduces the same orders; another seed gives others.
    assert (
        observed_batches(seed=5, n=n, batch_size=batch_size, epochs=epochs, shuffle=True) == batches
    )
    assert (
        observed_batches(seed=6, n=n, batch_size=batch_size, epochs=epochs, shuffle=True) != batches
    )


def test_shuffle_true_batches_partition_the_data() -> None:
    n, batch_size = 11, 4
    batches = observed_batches(seed=2, n=n, batch_size=batch_size, epochs=2, shuffle=True)
    assert [len(b) for b in batches] == [4, 4, 3] * 2
    for order in epoch_orders(batches, 3):
        assert sorted(order) == list(range(n))


def test_shuffle_changes_results_but_is_reproducible(isa: str, moons: Any) -> None:
    shuffled = train_weights(3, moons, shuffle=True)
    assert all_equal(shuffled, train_weights(3, moons, shuffle=True))
    in_order = train_weights(3, moons, shuffle=False)
    assert all_equal(in_order, train_weights(3, moons, shuffle=False))
    assert not any(np.array_equal(a, b) for a, b in zip(shuffled, in_order))


def test_per_batch_callbacks_do_not_change_training(moons: Any) -> None:
    """A callback with per-batch hooks makes fit return to Python after every batch; the
    training itself (shuffle stream included) must be the same as in chunks."""
    x_train, y_train, _, _ = moons
    plain = moons_model("softmax", seed=4)
    plain.fit(x_train, y_train, batch_size=16, epochs=2, verbose=0)
    hooked = moons_model("softmax", seed=4)
    recorder = WeightRecorder()
    hooked.fit(x_train, y_train, batch_size=16, epochs=2, verbose=0, callbacks=[recorder])
    assert len(recorder.kernels) == 2 * ((len(x_train) + 15) // 16)
    assert all_equal(plain.get_weights(), hooked.get_weights())


# ----------------------------------------------------------------------------- dtypes


@pytest.fixture
def floatx_float64() -> Iterator[None]:
    previous = fm.config.floatx()
    fm.config.set_floatx("float64")
    try:
        yield
    finally:
        fm.config.set_floatx(previous)


def small_model(dtype: str | None = None) -> fm.Sequential:
    fm.utils.set_random_seed(0)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(3,)),
            fm.layers.Dense(4, activation="tanh"),
            fm.layers.Dense(2, activation="softmax"),
        ],
        dtype=dtype,
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


X_SMALL = np.random.default_rng(0).normal(size=(9, 3))
Y_SMALL = np.arange(9) % 2


def test_predict_returns_float32_by_default() -> None:
    assert fm.config.floatx() == "float32"
    model = small_model()
    assert model.dtype == "float32"
    for x in (
        X_SMALL,
        X_SMALL.astype(np.float32),
        X_SMALL.tolist(),
        (X_SMALL * 10).astype(np.int64),
    ):
        out = model.predict(x, verbose=0)
        assert out.dtype == np.float32 and out.shape == (9, 2)
    assert model.predict_on_batch(X_SMALL).dtype == np.float32
    assert all(w.dtype == np.float32 for w in model.get_weights())
    grads = model.compute_gradients(X_SMALL, Y_SMALL)
    assert all(g.dtype == np.float32 for pair in grads for g in pair if g is not None)


def test_set_floatx_float64_gives_float64_models(floatx_float64: None) -> None:
    model = small_model()
    assert model.dtype == "float64"
    assert all(w.dtype == np.float64 for w in model.get_weights())
    out = model.predict(X_SMALL.astype(np.float32), verbose=0)
    assert out.dtype == np.float64
    model.fit(X_SMALL, Y_SMALL, verbose=0)
    assert all(w.dtype == np.float64 for w in model.get_weights())
    # A per-model dtype overrides floatx.
    assert small_model("float32").predict(X_SMALL, verbose=0).dtype == np.float32


def test_per_model_float64(isa: str) -> None:
    model64 = small_model("float64")
    assert fm.config.floatx() == "float32"
    assert model64.dtype == "float64"
    out64 = model64.predict(X_SMALL, verbose=0)
    assert out64.dtype == np.float64
    # Same seed, same architecture: the float32 model starts from the same weights rounded to
    # float32, so both compute the same function to float32 accuracy.
    model32 = small_model("float32")
    for w32, w64 in zip(model32.get_weights(), model64.get_weights()):
        np.testing.assert_allclose(w32, w64, rtol=1e-6, atol=1e-7)
    model32.set_weights(model64.get_weights())
    np.testing.assert_allclose(model32.predict(X_SMALL, verbose=0), out64, rtol=1e-5, atol=1e-6)
    # The float64 outputs are really float64 accurate: compare with the float64 reference.
    weights = model64.get_weights()
    expected = fm.reference.predict(
        X_SMALL, [(weights[0], weights[1]), (weights[2], weights[3])], ["tanh", "softmax"]
    )
    np.testing.assert_allclose(out64, expected, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- inference


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_does_not_depend_on_batch_size(isa: str, dtype: str) -> None:
    """Every row is computed the same way whatever batch it is in (the matrix-vector path for
    one row included), so the results are bitwise equal, not just close."""
    fm.utils.set_random_seed(1)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(13,)),
            fm.layers.Dense(37, activation="relu"),
            fm.layers.Dense(19, activation="tanh"),
            fm.layers.Dense(5, activation="softmax"),
        ],
        dtype=dtype,
    )
    model.set_weights([w + 0.1 for w in model.get_weights()])  # non-zero biases
    # More rows than predict's default chunk of 1024, so the chunking is exercised too.
    x = np.random.default_rng(2).normal(size=(1100, 13)).astype(dtype)
    full = model.predict(x, verbose=0)
    assert full.shape == (1100, 5) and full.dtype == np.dtype(dtype)
    for batch_size in (1, 7, 16, 1000, 1024, 4096):
        assert np.array_equal(model.predict(x, batch_size=batch_size, verbose=0), full), batch_size
    assert np.array_equal(model.predict_on_batch(x), full)
    assert np.array_equal(model(x), full)
    # A single row, and any slice, alone gives the same bits as in the full batch.
    for i in (0, 17, 44, 1099):
        assert np.array_equal(model.predict_on_batch(x[i : i + 1]), full[i : i + 1]), i
    assert np.array_equal(model.predict_on_batch(x[3:11]), full[3:11])
    # And the values are right (float32: 13-37-19-term reductions, rtol 1e-5 is generous).
    w = [np.asarray(v, np.float64) for v in model.get_weights()]
    expected = fm.reference.predict(
        x, [(w[0], w[1]), (w[2], w[3]), (w[4], w[5])], ["relu", "tanh", "softmax"]
    )
    np.testing.assert_allclose(
        full, expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-7
    )


def test_weights_hash_is_stable_in_process(moons: Any) -> None:
    """Training twice in one process after the same seed, with other models trained in between,
    gives the same digest (no hidden global state besides the seed)."""

    def digest() -> str:
        return hashlib.sha256(
            b"".join(w.tobytes() for w in train_weights(9, moons, epochs=1))
        ).hexdigest()

    first = digest()
    train_weights(10, moons, epochs=1)
    assert digest() == first
