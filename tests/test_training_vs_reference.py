"""End-to-end trajectory tests (DESIGN.md, "End-to-end test like tinygrad's").

The same small MLP is trained by fastmlp's C++ core and by ``fastmlp.reference`` (plain float64
NumPy) from the same initial weights, over the same batches, and every weight is compared at the
end. The batches come from a seeded permutation per epoch, include a short last batch, and one
epoch uses batch size 1 (the core's matrix-vector path), so every code path of a training step is
exercised. This runs once per instruction set the CPU supports (the ``isa`` fixture).

Tolerances:

* float64: the core and the reference compute the same formulas in the same precision; they
  differ only by summation order and FMA contraction, ~1e-16 relative per operation. After ~30
  steps on a network this small the drift stays far below 1e-12, so rtol=1e-10 (atol=1e-12 for
  entries that happen to be near zero) leaves a wide margin yet catches any real math error,
  which shows up at 1e-3 or more.
* float32: the core rounds every intermediate to float32 (eps = 6e-8) and keeps the weights in
  float32 between steps; the reference does not. Each step adds a few eps of relative error per
  weight and the errors grow at most linearly over ~30 steps with learning rates <= 0.5 on
  gradients of order 1, so ~1e-5 relative is expected; rtol=1e-4, atol=1e-6 (weights are O(0.1-1))
  leaves a 10x margin while a wrong gradient (e.g. a missing 1/batch, a wrong activation
  derivative) is off by 1e-2 or more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import reference as ref

N_SAMPLES = 23
N_FEATURES = 5


@dataclass(frozen=True)
class Case:
    """A small network: (units, activation, use_bias) per Dense layer, and its loss."""

    name: str
    layers: tuple[tuple[int, str, bool], ...]
    loss: str
    from_logits: bool = False
    learning_rate: float = 0.2
    loss_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def activations(self) -> list[str]:
        return [act for _, act, _ in self.layers]

    @property
    def outputs(self) -> int:
        return self.layers[-1][0]

    def loss_object(self) -> Any:
        if self.loss == "binary_crossentropy" and self.from_logits:
            return fm.losses.BinaryCrossentropy(from_logits=True)
        if self.loss == "categorical_crossentropy" and self.from_logits:
            return fm.losses.CategoricalCrossentropy(from_logits=True)
        if self.loss == "sparse_categorical_crossentropy" and self.from_logits:
            return fm.losses.SparseCategoricalCrossentropy(from_logits=True)
        return self.loss


CASES = [
    # The example shape: tanh -> relu -> softmax with integer labels.
    Case(
        "softmax_sparse",
        ((7, "tanh", True), (6, "relu", True), (3, "softmax", True)),
        "sparse_categorical_crossentropy",
    ),
    Case(
        "softmax_categorical",
        ((7, "tanh", True), (6, "relu", True), (3, "softmax", True)),
        "categorical_crossentropy",
    ),
    # Two independent sigmoid outputs: binary cross-entropy averages over the outputs.
    Case(
        "sigmoid_bce",
        ((7, "tanh", True), (6, "relu", True), (2, "sigmoid", True)),
        "binary_crossentropy",
        learning_rate=0.5,
    ),
    Case(
        "linear_mse",
        ((7, "sigmoid", True), (6, "tanh", True), (2, "linear", True)),
        "mse",
        learning_rate=0.1,
    ),
    # use_bias=False in a hidden layer and in the output layer.
    Case(
        "no_bias",
        ((7, "tanh", True), (6, "relu", False), (3, "linear", False)),
        "mse",
        learning_rate=0.1,
    ),
    Case(
        "logits_categorical",
        ((7, "tanh", True), (3, "linear", True)),
        "categorical_crossentropy",
        from_logits=True,
    ),
    Case(
        "logits_binary",
        ((6, "relu", True), (1, "linear", True)),
        "binary_crossentropy",
        from_logits=True,
        learning_rate=0.5,
    ),
    # Wider layers than one SIMD register (8 float32 / 4 float64 lanes for AVX2), with tails.
    Case(
        "wide_softmax",
        ((33, "relu", True), (17, "tanh", True), (10, "softmax", True)),
        "sparse_categorical_crossentropy",
        learning_rate=0.1,
    ),
    # Targets far from the outputs keep mae away from its kink at p == y.
    Case("linear_mae", ((7, "tanh", True), (2, "linear", True)), "mae", learning_rate=0.3),
]

DTYPES = {
    "float64": dict(rtol=1e-10, atol=1e-12),
    "float32": dict(rtol=1e-4, atol=1e-6),
}


def make_data(case: Case, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets for `case`, already representable in `dtype` so that the core (which
    converts to its dtype) and the reference (float64) see exactly the same numbers."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    k = case.outputs
    if case.loss == "sparse_categorical_crossentropy":
        y: np.ndarray = rng.integers(0, k, size=N_SAMPLES)
    elif case.loss == "categorical_crossentropy":
        y = np.eye(k, dtype=dtype)[rng.integers(0, k, size=N_SAMPLES)]
    elif case.loss == "binary_crossentropy":
        y = rng.integers(0, 2, size=(N_SAMPLES, k)).astype(dtype)
    elif case.loss == "mae":
        y = (3.0 * rng.choice([-1.0, 1.0], size=(N_SAMPLES, k))).astype(dtype)
    else:
        y = rng.normal(size=(N_SAMPLES, k)).astype(dtype)
    return x, y


def build(case: Case, dtype: str, seed: int = 1) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [fm.layers.Input(shape=(N_FEATURES,))]
        + [fm.layers.Dense(u, activation=a, use_bias=b) for u, a, b in case.layers],
        dtype=dtype,
    )
    model.compile(
        optimizer=fm.optimizers.SGD(learning_rate=case.learning_rate), loss=case.loss_object()
    )
    return model


def to_params(model: fm.Sequential, case: Case) -> ref.Params:
    """The model's weights as reference parameters: [(kernel, bias or None), ...] in float64."""
    flat = [np.asarray(w, dtype=np.float64) for w in model.get_weights()]
    params: ref.Params = []
    i = 0
    for _, _, use_bias in case.layers:
        kernel = flat[i]
        bias = flat[i + 1] if use_bias else None
        i += 2 if use_bias else 1
        params.append((kernel, bias))
    assert i == len(flat)
    return params


def flatten(params: ref.Params) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for kernel, bias in params:
        out.append(kernel)
        if bias is not None:
            out.append(bias)
    return out


def batch_schedule(seed: int = 2) -> list[np.ndarray]:
    """Index arrays of the batches: three epochs over a fresh permutation each, with batch sizes
    5 (last batch 3), 8 (last batch 7) and 1 (per-sample SGD, 23 steps): 31 steps in all."""
    rng = np.random.default_rng(seed)
    batches = []
    for batch_size in (5, 8, 1):
        order = rng.permutation(N_SAMPLES)
        batches.extend(order[i : i + batch_size] for i in range(0, N_SAMPLES, batch_size))
    sizes = [len(b) for b in batches]
    assert len(batches) >= 20 and 3 in sizes and 7 in sizes and 1 in sizes
    return batches


def assert_weights_close(
    actual: list[np.ndarray], expected: list[np.ndarray], **tol: float
) -> None:
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"weight {i}: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(a, e, err_msg=f"weight {i}", **tol)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_train_on_batch_trajectory_matches_reference(isa: str, case: Case, dtype: str) -> None:
    tol = DTYPES[dtype]
    x, y = make_data(case, dtype)
    model = build(case, dtype)
    params = to_params(model, case)
    initial = flatten(params)
    for weight in model.get_weights():
        assert weight.dtype == np.dtype(dtype)

    for step, idx in enumerate(batch_schedule()):
        loss = model.train_on_batch(x[idx], y[idx])
        ref_loss, grads = ref.gradients(
            x[idx], y[idx], params, case.activations, case.loss, case.from_logits
        )
        params = ref.sgd_step(params, grads, case.learning_rate)
        # train_on_batch returns the batch's loss taken before its update (as Keras).
        np.testing.assert_allclose(loss, ref_loss, err_msg=f"loss of step {step}", **tol)

    final = [np.asarray(w, dtype=np.float64) for w in model.get_weights()]
    assert_weights_close(final, flatten(params), **tol)
    # The comparison is meaningful only if training moved the weights well beyond the tolerance.
    moved = max(float(np.max(np.abs(f - i))) for f, i in zip(final, initial))
    assert moved > 1e-2


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", CASES[:5], ids=lambda c: c.name)
def test_fit_matches_reference_train_sgd(isa: str, case: Case, dtype: str) -> None:
    """fit(shuffle=False) is reference.train_sgd with the identity order in every epoch; the
    History's per-epoch loss is the per-sample mean of the batch losses, each taken before that
    batch's update (Keras 3), which is what train_sgd reports."""
    tol = DTYPES[dtype]
    x, y = make_data(case, dtype)
    model = build(case, dtype)
    params = to_params(model, case)
    batch_size, epochs = 7, 4  # 23 = 7 + 7 + 7 + 2: a short last batch
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    identity = [np.arange(N_SAMPLES)] * epochs
    expected, epoch_losses = ref.train_sgd(
        x,
        y,
        params,
        case.activations,
        case.loss,
        case.learning_rate,
        batch_size,
        epochs,
        identity,
        case.from_logits,
    )
    assert_weights_close(
        [np.asarray(w, np.float64) for w in model.get_weights()], flatten(expected), **tol
    )
    assert history.epoch == list(range(epochs))
    assert len(history.history["loss"]) == epochs
    np.testing.assert_allclose(history.history["loss"], epoch_losses, **tol)
    # An unweighted mean of the batch losses would differ (the last batch has 2 samples, not 7):
    # make sure that, on these data, the two means are distinguishable, so the check above
    # really tests the weighting by batch size.
    batch_losses, sizes, current = [], [], params
    for start in range(0, N_SAMPLES, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        batch_loss, grads = ref.gradients(
            xb, yb, current, case.activations, case.loss, case.from_logits
        )
        current = ref.sgd_step(current, grads, case.learning_rate)
        batch_losses.append(batch_loss)
        sizes.append(len(xb))
    assert sizes == [7, 7, 7, 2]
    np.testing.assert_allclose(np.average(batch_losses, weights=sizes), epoch_losses[0], rtol=1e-12)
    assert abs(np.mean(batch_losses) - epoch_losses[0]) > 10 * tol["rtol"] * abs(epoch_losses[0])


def accuracy_kind(case: Case) -> str:
    return {
        "binary_crossentropy": "binary",
        "categorical_crossentropy": "categorical",
        "sparse_categorical_crossentropy": "sparse_categorical",
    }[case.loss]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2]], ids=lambda c: c.name)
def test_fit_history_metrics_and_validation_match_reference(
    isa: str, case: Case, dtype: str
) -> None:
    """History's accuracy is the running accuracy over the epoch's batches (each batch scored
    with the weights before its update); val_loss/val_accuracy use the weights at the end of the
    epoch. The reference loop below computes both by hand."""
    tol = DTYPES[dtype]
    x, y = make_data(case, dtype)
    x_val, y_val = make_data(case, dtype, seed=5)
    model = build(case, dtype)
    model.compile(
        optimizer=fm.optimizers.SGD(learning_rate=case.learning_rate),
        loss=case.loss_object(),
        metrics=["accuracy"],
    )
    params = to_params(model, case)
    batch_size, epochs = 4, 3
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        validation_data=(x_val, y_val),
    )
    kind = accuracy_kind(case)
    expected: dict[str, list[float]] = {
        "loss": [],
        "accuracy": [],
        "val_loss": [],
        "val_accuracy": [],
    }
    for _ in range(epochs):
        loss_sum = hits = 0.0
        for start in range(0, N_SAMPLES, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            hits += float(np.sum(ref.accuracy(kind, yb, ref.predict(xb, params, case.activations))))
            batch_loss, grads = ref.gradients(xb, yb, params, case.activations, case.loss)
            loss_sum += batch_loss * len(xb)
            params = ref.sgd_step(params, grads, case.learning_rate)
        expected["loss"].append(loss_sum / N_SAMPLES)
        expected["accuracy"].append(hits / N_SAMPLES)
        val_out = ref.forward(x_val, params, case.activations)[-1]
        expected["val_loss"].append(
            float(
                np.mean(
                    ref.output_loss_and_delta(
                        case.loss, case.activations[-1], False, y_val, *val_out
                    )[0]
                )
            )
        )
        expected["val_accuracy"].append(float(np.mean(ref.accuracy(kind, y_val, val_out[1]))))
    assert sorted(history.history) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(history.history[name], values, err_msg=name, **tol)
    assert_weights_close(
        [np.asarray(w, np.float64) for w in model.get_weights()], flatten(params), **tol
    )


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_fit_full_batch_does_not_depend_on_shuffle(isa: str, dtype: str) -> None:
    """With one batch holding every sample, the order cannot matter beyond rounding: fit with
    shuffle=True must follow full-batch gradient descent of the reference."""
    case = CASES[0]
    tol = DTYPES[dtype]
    x, y = make_data(case, dtype)
    model = build(case, dtype)
    params = to_params(model, case)
    epochs = 20
    model.fit(x, y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)
    order = [np.arange(N_SAMPLES)] * epochs
    expected, _ = ref.train_sgd(
        x, y, params, case.activations, case.loss, case.learning_rate, 64, epochs, order
    )
    # Summing the batch in another order changes float32 gradients by a few eps: same tolerance.
    assert_weights_close(
        [np.asarray(w, np.float64) for w in model.get_weights()], flatten(expected), **tol
    )


@pytest.mark.parametrize("units", [1, 2, 7])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_layer_narrower_than_a_vector_gets_its_activation_on_large_batches(units: int, threads: int) -> None:
    """Fewer than 8 units and at least 2048 values: the elementwise step still runs (as one task)."""
    before = fm.get_num_threads()
    fm.set_num_threads(threads)
    try:
        model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(units, activation="sigmoid")], dtype="float64")
        x = np.random.default_rng(units).standard_normal((2048, 3))
        kernel, bias = model.get_weights()
        got = model.predict(x, batch_size=2048, verbose=0)
        np.testing.assert_allclose(got, ref.sigmoid(x @ kernel + bias), rtol=1e-12, atol=1e-15)
    finally:
        fm.set_num_threads(before)
