"""Optimizers against the float64 reference (``fastmlp.reference``, Keras 3's formulas).

Three levels:

* trajectories: the same small MLP trained N = 24 steps by ``train_on_batch`` and by
  ``reference.train_steps`` from the same weights over the same batches, for every optimizer with
  default and non-default settings, every clipping mode, weight decay and schedules, on every
  instruction set (``isa`` fixture) and in both dtypes;
* the fused update kernel (``fastmlp._core.kernels.optimizer_update``) for one step against
  ``reference.update_step``, at lengths around the SIMD width;
* the Python API: Keras's defaults, ``iterations``, ``learning_rate``, validation, and the
  differences from PyTorch that ``fastmlp.optimizers``' docstring documents.

Tolerances of the trajectories:

* float64: the core and the reference evaluate the same formulas in the same precision; they
  differ by summation order (gradients) and FMA contraction, ~1e-16 relative per operation.
  Over 24 steps the largest difference measured is 1e-15; rtol=1e-9 (atol=1e-11 for entries
  near zero) is a 10^4-fold margin, while a wrong formula (epsilon on the wrong side of a root,
  a missing bias correction, decay by the wrong rate) moves the weights by 1e-4 or more: every
  case also checks that turning its distinguishing feature off changes the reference by far more
  than the tolerance.
* float32: every intermediate and the weights and slots between steps are rounded to float32
  (u = 6e-8). The adaptive optimizers divide by sqrt(v): the relative error of an update is a few
  u, so after 24 steps of updates of size ~lr the weights carry ~24 * few u * |w| + few u *
  sum |update| ~ 1e-6 relative; gradients of near-cancelling sums have large *relative* errors,
  but Adam/RMSprop's epsilon bounds the step such a gradient can take. rtol=1e-4, atol=1e-5
  (weights are O(0.1-1), steps O(lr) <= 0.5) allows at least 1e-5 per weight, 5x the worst
  absolute error measured over all cases and both ISAs (2e-6, AdamW with decay), and still
  catches any formula error of the size above on the non-default cases (checked in float32 too,
  unless the case is marked weak).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref
from fastmlp.optimizers import schedules

K = _core.kernels
N_SAMPLES = 23
N_FEATURES = 5
# 5 -> 9 tanh -> 4 sigmoid (no bias) -> 3 softmax: parameter arrays of 45, 9, 36, 12 and 3
# elements, so every array has a SIMD tail (8 float32 / 4 float64 lanes) and one has no bias.
LAYERS: tuple[tuple[int, str, bool], ...] = (
    (9, "tanh", True),
    (4, "sigmoid", False),
    (3, "softmax", True),
)
ACTIVATIONS = [act for _, act, _ in LAYERS]
LOSS = "sparse_categorical_crossentropy"
STEPS = 24

TOL = {
    "float64": dict(rtol=1e-9, atol=1e-11),
    "float32": dict(rtol=1e-4, atol=1e-5),
}


@dataclass(frozen=True)
class Case:
    """An optimizer as fastmlp builds it, the same as reference settings, and (for the check that
    the case tests something) the reference settings with its distinguishing feature removed."""

    id: str
    make: Callable[[], Any]  # the fastmlp optimizer, or a string name
    name: str  # the reference's optimizer name
    settings: dict[str, Any] = field(default_factory=dict)
    without: dict[str, Any] = field(default_factory=dict)  # overrides that remove the feature
    # The feature's effect is below float32's tolerance (Keras's small defaults): checked in
    # float64 only.
    weak: bool = False


OPT = fm.optimizers
SCHED = schedules

CASES = [
    # Defaults, by string and by class: Keras's default hyperparameters.
    Case("sgd_string", lambda: "sgd", "sgd"),
    Case("sgd_default", lambda: OPT.SGD(), "sgd"),
    Case("sgd_lr", lambda: OPT.SGD(0.5), "sgd", {"learning_rate": 0.5}, {"learning_rate": 0.4}),
    Case(
        "sgd_momentum",
        lambda: OPT.SGD(0.1, momentum=0.9),
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.9},
        {"momentum": 0.0},
    ),
    Case(
        "sgd_nesterov",
        lambda: OPT.SGD(0.1, momentum=0.8, nesterov=True),
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True},
        {"nesterov": False},
    ),
    Case("adam_string", lambda: "adam", "adam"),
    Case("adam_default", lambda: OPT.Adam(), "adam", {}, {"epsilon": 1e-3}),
    Case(
        "adam_custom",
        lambda: OPT.Adam(0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
        "adam",
        {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3},
        {"epsilon": 1e-7},
    ),
    Case(
        "adam_amsgrad",
        lambda: OPT.Adam(0.05, beta_2=0.9, amsgrad=True),
        "adam",
        {"learning_rate": 0.05, "beta_2": 0.9, "amsgrad": True},
        {"amsgrad": False},
    ),
    Case("adamw_string", lambda: "adamw", "adamw", {}, {"weight_decay": None}, weak=True),
    Case(
        "adamw_decay",
        lambda: OPT.AdamW(0.02, weight_decay=0.5),
        "adamw",
        {"learning_rate": 0.02, "weight_decay": 0.5},
        {"weight_decay": None},
    ),
    Case(
        "adamw_amsgrad",
        lambda: OPT.AdamW(0.02, weight_decay=0.2, beta_1=0.5, epsilon=1e-4, amsgrad=True),
        "adamw",
        {
            "learning_rate": 0.02,
            "weight_decay": 0.2,
            "beta_1": 0.5,
            "epsilon": 1e-4,
            "amsgrad": True,
        },
        {"weight_decay": None},
    ),
    Case("adagrad_string", lambda: "adagrad", "adagrad", {}, {"initial_accumulator_value": 1.0}),
    Case(
        "adagrad_custom",
        lambda: OPT.Adagrad(0.1, initial_accumulator_value=0.01, epsilon=1e-3),
        "adagrad",
        {"learning_rate": 0.1, "initial_accumulator_value": 0.01, "epsilon": 1e-3},
        {"initial_accumulator_value": 0.1},
    ),
    Case("rmsprop_string", lambda: "rmsprop", "rmsprop", {}, {"rho": 0.99}),
    Case(
        "rmsprop_centered",
        lambda: OPT.RMSprop(0.01, centered=True),
        "rmsprop",
        {"learning_rate": 0.01, "centered": True},
        {"centered": False},
    ),
    Case(
        "rmsprop_momentum",
        lambda: OPT.RMSprop(0.005, rho=0.8, momentum=0.7, epsilon=1e-4),
        "rmsprop",
        {"learning_rate": 0.005, "rho": 0.8, "momentum": 0.7, "epsilon": 1e-4},
        {"momentum": 0.0},
    ),
    Case(
        "rmsprop_centered_momentum",
        lambda: OPT.RMSprop(0.005, rho=0.5, momentum=0.5, epsilon=1e-3, centered=True),
        "rmsprop",
        {"learning_rate": 0.005, "rho": 0.5, "momentum": 0.5, "epsilon": 1e-3, "centered": True},
        {"centered": False},
    ),
    # Clipping, each mode with more than one optimizer (thresholds below the gradients' norms).
    Case(
        "sgd_clipnorm",
        lambda: OPT.SGD(0.5, clipnorm=0.05),
        "sgd",
        {"learning_rate": 0.5, "clipnorm": 0.05},
        {"clipnorm": None},
    ),
    Case(
        "adagrad_clipnorm",
        lambda: OPT.Adagrad(0.1, clipnorm=0.02),
        "adagrad",
        {"learning_rate": 0.1, "clipnorm": 0.02},
        {"clipnorm": None},
    ),
    Case(
        "sgd_momentum_global_clipnorm",
        lambda: OPT.SGD(0.5, momentum=0.5, global_clipnorm=0.1),
        "sgd",
        {"learning_rate": 0.5, "momentum": 0.5, "global_clipnorm": 0.1},
        {"global_clipnorm": None},
    ),
    Case(
        "rmsprop_global_clipnorm",
        lambda: OPT.RMSprop(0.01, epsilon=1e-3, global_clipnorm=0.05),
        "rmsprop",
        {"learning_rate": 0.01, "epsilon": 1e-3, "global_clipnorm": 0.05},
        {"global_clipnorm": None},
    ),
    Case(
        "sgd_clipvalue",
        lambda: OPT.SGD(0.5, clipvalue=0.02),
        "sgd",
        {"learning_rate": 0.5, "clipvalue": 0.02},
        {"clipvalue": None},
    ),
    Case(
        "adam_clipvalue",
        lambda: OPT.Adam(0.02, epsilon=1e-3, clipvalue=0.01),
        "adam",
        {"learning_rate": 0.02, "epsilon": 1e-3, "clipvalue": 0.01},
        {"clipvalue": None},
    ),
    # Weight decay on an optimizer other than AdamW (Keras's base optimizer allows it).
    Case(
        "sgd_momentum_weight_decay",
        lambda: OPT.SGD(0.1, momentum=0.9, weight_decay=0.3),
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.3},
        {"weight_decay": None},
    ),
    # Schedules as learning_rate (the decay of AdamW follows the scheduled rate too).
    Case(
        "adam_exponential_decay",
        lambda: OPT.Adam(SCHED.ExponentialDecay(0.05, 5, 0.3)),
        "adam",
        {
            "learning_rate": ref.schedule(
                "exponential_decay", initial_learning_rate=0.05, decay_steps=5, decay_rate=0.3
            )
        },
        {"learning_rate": 0.05},
    ),
    Case(
        "sgd_piecewise",
        lambda: OPT.SGD(SCHED.PiecewiseConstantDecay([5, 12], [0.5, 0.2, 0.05]), momentum=0.9),
        "sgd",
        {
            "learning_rate": ref.schedule(
                "piecewise_constant_decay", boundaries=[5, 12], values=[0.5, 0.2, 0.05]
            ),
            "momentum": 0.9,
        },
        {"learning_rate": 0.5},
    ),
    Case(
        "adamw_cosine_warmup",
        lambda: OPT.AdamW(
            SCHED.CosineDecay(0.001, 10, alpha=0.1, warmup_target=0.03, warmup_steps=6),
            weight_decay=0.5,
        ),
        "adamw",
        {
            "learning_rate": ref.schedule(
                "cosine_decay",
                initial_learning_rate=0.001,
                decay_steps=10,
                alpha=0.1,
                warmup_target=0.03,
                warmup_steps=6,
            ),
            "weight_decay": 0.5,
        },
        {"learning_rate": 0.03},
    ),
    Case(
        "rmsprop_inverse_time_staircase",
        lambda: OPT.RMSprop(SCHED.InverseTimeDecay(0.01, 4, 1.0, staircase=True)),
        "rmsprop",
        {
            "learning_rate": ref.schedule(
                "inverse_time_decay",
                initial_learning_rate=0.01,
                decay_steps=4,
                decay_rate=1.0,
                staircase=True,
            )
        },
        {"learning_rate": 0.01},
    ),
    # Keras's other per-batch optimizers (Nadam, Adamax, Lion, Adadelta, Ftrl).
    Case("nadam_string", lambda: "nadam", "nadam", {}, {"beta_1": 0.5}),
    Case(
        "nadam_custom",
        lambda: OPT.Nadam(0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
        "nadam",
        {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3},
        {"epsilon": 1e-7},
    ),
    Case("adamax_string", lambda: "adamax", "adamax", {}, {"beta_1": 0.5}),
    Case(
        "adamax_custom_clipnorm",
        lambda: OPT.Adamax(0.02, beta_1=0.7, beta_2=0.9, epsilon=1e-3, clipnorm=0.05),
        "adamax",
        {"learning_rate": 0.02, "beta_1": 0.7, "beta_2": 0.9, "epsilon": 1e-3, "clipnorm": 0.05},
        {"clipnorm": None},
    ),
    Case("lion_string", lambda: "lion", "lion", {}, {"beta_1": 0.5}),
    Case(
        "lion_weight_decay",
        lambda: OPT.Lion(0.01, beta_1=0.8, beta_2=0.95, weight_decay=0.3),
        "lion",
        {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "weight_decay": 0.3},
        {"weight_decay": None},
    ),
    Case(
        "adadelta_custom",
        lambda: OPT.Adadelta(1.0, rho=0.8, epsilon=1e-3),
        "adadelta",
        {"learning_rate": 1.0, "rho": 0.8, "epsilon": 1e-3},
        {"rho": 0.95},
    ),
    Case(
        "adadelta_global_clipnorm",
        lambda: OPT.Adadelta(2.0, epsilon=1e-2, global_clipnorm=0.05),
        "adadelta",
        {"learning_rate": 2.0, "epsilon": 1e-2, "global_clipnorm": 0.05},
        {"global_clipnorm": None},
    ),
    Case("ftrl_string", lambda: "ftrl", "ftrl", {}, {"initial_accumulator_value": 1.0}),
    Case(
        "ftrl_regularized",
        lambda: OPT.Ftrl(
            0.05,
            learning_rate_power=-0.7,
            initial_accumulator_value=0.5,
            l1_regularization_strength=0.001,
            l2_regularization_strength=0.02,
            l2_shrinkage_regularization_strength=0.01,
            beta=0.1,
        ),
        "ftrl",
        {
            "learning_rate": 0.05,
            "learning_rate_power": -0.7,
            "initial_accumulator_value": 0.5,
            "l1_regularization_strength": 0.001,
            "l2_regularization_strength": 0.02,
            "l2_shrinkage_regularization_strength": 0.01,
            "beta": 0.1,
        },
        {"l2_shrinkage_regularization_strength": 0.0},
    ),
    Case(
        "nadam_exponential_decay",
        lambda: OPT.Nadam(SCHED.ExponentialDecay(0.05, 5, 0.3)),
        "nadam",
        {
            "learning_rate": ref.schedule(
                "exponential_decay", initial_learning_rate=0.05, decay_steps=5, decay_rate=0.3
            )
        },
        {"learning_rate": 0.05},
    ),
    Case(
        "adagrad_exponential_staircase_clipvalue",
        lambda: OPT.Adagrad(SCHED.ExponentialDecay(0.2, 6, 0.5, staircase=True), clipvalue=0.05),
        "adagrad",
        {
            "learning_rate": ref.schedule(
                "exponential_decay",
                initial_learning_rate=0.2,
                decay_steps=6,
                decay_rate=0.5,
                staircase=True,
            ),
            "clipvalue": 0.05,
        },
        {"learning_rate": 0.2},
    ),
]


def make_data(dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs already representable in ``dtype`` (the core and the reference see the same
    numbers) and integer class labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    y = rng.integers(0, LAYERS[-1][0], size=N_SAMPLES)
    return x, y


def batch_schedule(seed: int = 3) -> list[np.ndarray]:
    """STEPS index arrays of sizes 5, 8, 1, 3, 23 (the whole set) and 7 in turn, each a slice of a
    fresh seeded permutation: batch 1 (matrix-vector path) and full batches both occur."""
    rng = np.random.default_rng(seed)
    sizes = (5, 8, 1, 3, 23, 7)
    return [rng.permutation(N_SAMPLES)[: sizes[i % len(sizes)]] for i in range(STEPS)]


def build(optimizer: Any, dtype: str, seed: int = 1) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [fm.layers.Input(shape=(N_FEATURES,))]
        + [fm.layers.Dense(u, activation=a, use_bias=b) for u, a, b in LAYERS],
        dtype=dtype,
    )
    model.compile(optimizer=optimizer, loss=LOSS)
    return model


def to_params(weights: list[np.ndarray]) -> ref.Params:
    flat = [np.asarray(w, dtype=np.float64) for w in weights]
    like: ref.Params = [(np.zeros(0), np.zeros(0) if b else None) for _, _, b in LAYERS]
    return ref.unflatten_params(flat, like)


def max_abs_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - y))) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------
# N steps of train_on_batch against reference.train_steps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_trajectory_matches_reference(isa: str, case: Case, dtype: str) -> None:
    tol = TOL[dtype]
    x, y = make_data(dtype)
    batches = batch_schedule()
    model = build(case.make(), dtype)
    params = to_params(model.get_weights())
    settings = ref.optimizer_settings(case.name, **case.settings)

    losses = [model.train_on_batch(x[idx], y[idx]) for idx in batches]
    assert model.optimizer is not None and model.optimizer.iterations == STEPS

    expected, expected_losses = ref.train_steps(
        x, y, params, ACTIVATIONS, LOSS, case.name, settings, batches
    )
    np.testing.assert_allclose(losses, expected_losses, err_msg="batch losses", **tol)
    final = model.get_weights()
    want = ref.flatten_params(expected)
    assert len(final) == len(want)
    for i, (got, exp) in enumerate(zip(final, want)):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, exp, err_msg=f"weight {i}", **tol)

    # The comparison means something only if training moved the weights far beyond the
    # tolerance, and if the case's feature (a non-default setting, clipping, decay, schedule)
    # changes the result by far more than the tolerance too.
    initial = ref.flatten_params(params)
    assert max_abs_difference(final, initial) > 1e-3
    if case.without and (dtype == "float64" or not case.weak):
        other_settings = ref.optimizer_settings(case.name, **{**case.settings, **case.without})
        other, _ = ref.train_steps(
            x, y, params, ACTIVATIONS, LOSS, case.name, other_settings, batches
        )
        assert max_abs_difference(ref.flatten_params(other), want) > 20 * tol["atol"], (
            f"{case.without} does not change the result: this case tests nothing"
        )


def test_fit_keeps_optimizer_state_across_batches_and_epochs(isa: str) -> None:
    """fit (shuffle=False) is train_steps over consecutive batches: the slots and the step count
    carry over from batch to batch and epoch to epoch."""
    x, y = make_data("float64")
    model = build(OPT.Adam(0.02, amsgrad=True), "float64")
    params = to_params(model.get_weights())
    model.fit(x, y, batch_size=6, epochs=3, shuffle=False, verbose=0)  # 4 batches per epoch
    batches = [np.arange(N_SAMPLES)[s : s + 6] for s in range(0, N_SAMPLES, 6)] * 3
    settings = ref.optimizer_settings("adam", learning_rate=0.02, amsgrad=True)
    expected, _ = ref.train_steps(x, y, params, ACTIVATIONS, LOSS, "adam", settings, batches)
    assert model.optimizer is not None and model.optimizer.iterations == 12
    for got, want in zip(model.get_weights(), ref.flatten_params(expected)):
        np.testing.assert_allclose(got, want, **TOL["float64"])


# ---------------------------------------------------------------------------------------------
# The fused update kernel, one step, against reference.update_step
# ---------------------------------------------------------------------------------------------

LENGTHS = (1, 7, 8, 9, 17, 100)
# The slots the kernel takes, in its order (kernels.h): the reference's names for them.
KERNEL_SLOTS = {
    "sgd": ("momentum",),
    "adam": ("momentum", "velocity", "velocity_hat"),
    "adagrad": ("accumulator",),
    "rmsprop": ("velocity", "average_gradient", "momentum"),
}
# (kind, settings): epsilons large enough that putting one on the wrong side of a square root
# shows, momenta and decay rates far from 0 and 1.
KERNEL_CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.7, "nesterov": True}),
    ("adam", {"beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-2}),
    ("adam", {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-3, "amsgrad": True}),
    ("adagrad", {"epsilon": 1e-2}),
    ("rmsprop", {"rho": 0.8, "epsilon": 1e-2}),
    ("rmsprop", {"rho": 0.7, "epsilon": 1e-2, "centered": True}),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-3, "momentum": 0.6}),
    ("rmsprop", {"rho": 0.6, "epsilon": 1e-2, "centered": True, "momentum": 0.3}),
]
# What is done to the gradient and the weights before the update: the kernel's grad_scale
# (clipnorm), clip_value (clipvalue) and decay (= weight_decay * lr).
PRE = {
    "plain": {},
    "scale_clip_decay": {"grad_scale": 0.7, "clip_value": 0.4, "decay": 0.05},
}
LEARNING_RATE, STEP = 0.3, 4  # Adam: the step count for its bias correction


def slots_for(
    kind: str, settings: dict[str, Any], n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """A plausible state after a few steps: moments of either sign, second moments positive and,
    for centered RMSprop, velocity > average^2 (as an exponential average of g^2 always is)."""
    if kind == "sgd":
        return {"momentum": rng.normal(size=n)} if settings.get("momentum") else {}
    if kind == "adam":
        slots = {"momentum": rng.normal(size=n) * 0.3, "velocity": rng.uniform(0.01, 1.0, n)}
        if settings.get("amsgrad"):
            # Some entries above the new velocity, some below.
            slots["velocity_hat"] = slots["velocity"] * rng.uniform(0.5, 1.5, n)
        return slots
    if kind == "adagrad":
        return {"accumulator": rng.uniform(0.01, 2.0, n)}
    slots = {}
    average = rng.normal(size=n) * 0.3
    slots["velocity"] = average**2 + rng.uniform(0.01, 1.0, n)
    if settings.get("centered"):
        slots["average_gradient"] = average
    if settings.get("momentum"):
        slots["momentum"] = rng.normal(size=n) * 0.1
    return slots


def kernel_reference(
    kind: str,
    settings: dict[str, Any],
    pre: dict[str, float],
    w: np.ndarray,
    g: np.ndarray,
    slots: dict[str, np.ndarray],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One step of the reference in float64 from the same inputs: clip (norm scale, then value),
    decay, then Keras's update_step (as BaseOptimizer.apply orders them)."""
    full = ref.optimizer_settings(kind, learning_rate=LEARNING_RATE, **settings)
    g = np.asarray(g, np.float64) * pre.get("grad_scale", 1.0)
    clip = pre.get("clip_value")
    if clip is not None:
        g = ref.clip_gradients([g], clipvalue=clip)[0]
    w = np.asarray(w, np.float64)
    if pre.get("decay"):
        w = w - w * pre["decay"]
    f64 = {k: np.asarray(v, np.float64) for k, v in slots.items()}
    return ref.update_step(kind, w, g, f64, LEARNING_RATE, STEP, full)


def kernel_hyper(kind: str, settings: dict[str, Any], pre: dict[str, float]) -> dict[str, Any]:
    hyper: dict[str, Any] = {**settings, **pre}
    lr = LEARNING_RATE
    if kind == "adam":
        # The kernel takes Adam's bias-corrected step size (optimizer.cpp computes it per step).
        lr = ref.adam_alpha(LEARNING_RATE, settings["beta_1"], settings["beta_2"], STEP)
    hyper["learning_rate"] = lr
    return hyper


def run_kernel(
    kind: str,
    hyper: dict[str, Any],
    w: np.ndarray,
    g: np.ndarray,
    slots: dict[str, np.ndarray],
    dtype: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w_k = w.astype(dtype)
    g_k = g.astype(dtype)
    state = {name: value.astype(dtype) for name, value in slots.items()}
    state_list = [state.get(name) for name in KERNEL_SLOTS[kind]]
    K.optimizer_update(kind, w_k, g_k, state_list, hyper)
    return w_k, state


def assert_close_elementwise(
    got: np.ndarray, want: np.ndarray, scale: np.ndarray, dtype: Any, what: str
) -> None:
    """|got - want| <= 16 u * scale elementwise. The update is a chain of at most ~10 roundings
    (scale, clip, decay, two moment updates, square root, division, momentum, final subtraction),
    each at most u relative to the magnitudes involved, which ``scale`` bounds; 16 u leaves a
    margin, while a wrong formula is off by a large fraction of the update itself."""
    u = float(np.finfo(dtype).eps) / 2
    err = np.abs(np.asarray(got, np.float64) - want)
    bound = 16 * u * scale + np.finfo(dtype).tiny
    worst = int(np.argmax(err - bound))
    assert np.all(err <= bound), (
        f"{what}: element {worst}: got {got[worst]!r}, want {want[worst]!r} "
        f"(error {err[worst]:.3g} > bound {bound[worst]:.3g})"
    )


@pytest.mark.parametrize("pre", list(PRE))
@pytest.mark.parametrize(
    "kind,settings", KERNEL_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(KERNEL_CASES)]
)
def test_update_kernel_matches_reference(
    isa: str, dtype: Any, kind: str, settings: dict[str, Any], pre: str
) -> None:
    rng = np.random.default_rng(len(kind) * 100 + len(settings))
    hyper = kernel_hyper(kind, settings, PRE[pre])
    for n in LENGTHS:
        # Inputs rounded to dtype first, so the reference sees exactly what the kernel sees.
        w = rng.normal(size=n).astype(dtype).astype(np.float64)
        g = rng.normal(size=n).astype(dtype).astype(np.float64)
        slots = {
            k: v.astype(dtype).astype(np.float64)
            for k, v in slots_for(kind, settings, n, rng).items()
        }
        want_w, want_slots = kernel_reference(kind, settings, PRE[pre], w, g, slots)
        got_w, got_slots = run_kernel(kind, hyper, w, g, slots, dtype)
        step = want_w - w
        # The bound below is ~16 u * |w|; the steps are many orders of magnitude larger.
        assert np.mean(np.abs(step)) > 1e-3
        assert_close_elementwise(
            got_w, want_w, np.abs(w) + 4 * np.abs(step), dtype, f"{kind} n={n} w"
        )
        assert sorted(got_slots) == sorted(want_slots)
        for name, want in want_slots.items():
            old = slots[name]
            assert_close_elementwise(
                got_slots[name], want, np.abs(old) + 4 * np.abs(want), dtype, f"{kind} n={n} {name}"
            )


@pytest.mark.parametrize(
    "kind,settings", KERNEL_CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(KERNEL_CASES)]
)
def test_update_kernel_bitwise_equal_across_isas(
    dtype: Any, kind: str, settings: dict[str, Any]
) -> None:
    """The AVX2 update performs the scalar twin's operations in the same order without FMA
    (cpp/src/kernels/avx2/optimizer_update.cpp), so both give the same bits."""
    isas = fm.available_isas()
    if len(isas) < 2:
        pytest.skip("only one instruction set on this CPU")
    rng = np.random.default_rng(7)
    n = 37
    w, g = rng.normal(size=n), rng.normal(size=n)
    slots = slots_for(kind, settings, n, rng)
    hyper = kernel_hyper(kind, settings, PRE["scale_clip_decay"])
    results = {}
    previous = fm.active_isa()
    try:
        for name in isas:
            _core.set_isa(name)
            results[name] = run_kernel(kind, hyper, w, g, slots, dtype)
    finally:
        _core.set_isa(previous)
    first_w, first_slots = results[isas[0]]
    for name in isas[1:]:
        other_w, other_slots = results[name]
        np.testing.assert_array_equal(other_w, first_w, err_msg=f"{name} vs {isas[0]}")
        for slot in first_slots:
            np.testing.assert_array_equal(other_slots[slot], first_slots[slot], err_msg=slot)


def float32_square_root_probes() -> np.ndarray:
    """Every 61st float32 of [1, 4) (both parities of the exponent: a root's rounding depends
    only on those bits while no step under- or overflows), random mantissas in every binade,
    the bounds of the AVX-512 root's fast range (2^-96 and FLT_MAX) and their neighbours, and
    zeros, subnormals, infinities, NaN and negatives."""
    one, four = np.float32(1).view(np.uint32), np.float32(4).view(np.uint32)
    dense = np.arange(one, four, 61, dtype=np.uint32).view(np.float32)
    rng = np.random.default_rng(11)
    exponents = np.repeat(np.arange(0, 255, dtype=np.uint32), 64)
    binades = ((exponents << 23) | rng.integers(0, 1 << 23, exponents.size, dtype=np.uint32)).view(np.float32)
    bounds = np.array([2.0**-96, np.finfo(np.float32).max, np.finfo(np.float32).tiny], np.float32)
    with np.errstate(over="ignore"):  # FLT_MAX's upper neighbour is infinity
        near = np.concatenate([np.nextafter(bounds, np.float32(0)), bounds, np.nextafter(bounds, np.float32(np.inf))])
    special = np.array([0.0, -0.0, 1e-45, 1e-40, np.inf, -np.inf, np.nan, -1.0, -1e-30], np.float32)
    return np.concatenate([dense, binades, near, special]).astype(np.float32)


def test_update_kernel_square_root_is_correctly_rounded(isa: str) -> None:
    """The kernels' float32 square root gives IEEE's correctly rounded result (numpy's): with
    beta_1 = beta_2 = 1, g = 0 and m = sqrt(v) rounded, Adam's step is -m / sqrt(v), exactly -1
    where the kernel's root equals m and 1 -+ 2^-24 or further from it where it is one ulp off.
    The AVX-512 root is computed from an estimate (avx512/vec.h); the others are the instruction."""
    v = float32_square_root_probes()
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.sqrt(v)
        want = np.float32(0) - (m * np.float32(1)) / (np.sqrt(v) + np.float32(0))
    w = np.zeros_like(v)
    state = [m.copy(), v.copy(), None]
    K.optimizer_update("adam", w, np.zeros_like(v), state, {"learning_rate": 1.0, "beta_1": 1.0, "beta_2": 1.0, "epsilon": 0.0})
    finite = np.isfinite(v)  # v + (0 - v) * 0 is NaN at infinities
    np.testing.assert_array_equal(state[1][finite], v[finite])  # the moments did not move
    bad = np.flatnonzero(~((w == want) | (np.isnan(w) & np.isnan(want))))
    assert bad.size == 0, f"{bad.size} roots differ, first at v = {v[bad[0]]!r}: step {w[bad[0]]!r}, want {want[bad[0]]!r}"
    assert np.count_nonzero(want == -1) > v.size * 0.9  # the probes are mostly ordinary numbers


def test_update_kernel_zero_learning_rate_and_no_decay_keeps_weights(isa: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=17).astype(dtype)
    for kind, settings in KERNEL_CASES:
        if settings.get("momentum"):
            continue  # a momentum keeps moving the weights at rate 0
        slots = slots_for(kind, settings, 17, rng)
        got, _ = run_kernel(
            kind, {**settings, "learning_rate": 0.0}, w, rng.normal(size=17), slots, dtype
        )
        np.testing.assert_array_equal(got, w, err_msg=f"{kind} {settings}")


def test_update_kernel_rejects_missing_state() -> None:
    w = np.zeros(4)
    with pytest.raises(ValueError, match="state array 1"):
        K.optimizer_update("adam", w, w.copy(), [np.zeros(4)], {})
    with pytest.raises(ValueError, match="unknown optimizer kind"):
        K.optimizer_update("lbfgs", w, w.copy(), [], {})


# ---------------------------------------------------------------------------------------------
# The Python API: defaults, iterations, learning_rate, validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ref.OPTIMIZERS)
def test_string_names_give_keras_defaults(name: str) -> None:
    """The defaults in reference.OPTIMIZER_DEFAULTS were read from Keras 3's optimizer files:
    SGD 0.01/0.0/False; Adam 0.001/0.9/0.999/1e-7/False; AdamW the same with weight_decay 0.004;
    Adagrad 0.001, initial_accumulator_value 0.1, epsilon 1e-7; RMSprop 0.001, rho 0.9,
    momentum 0.0, epsilon 1e-7, centered False. No clipping and (but AdamW) no weight decay."""
    expected = ref.optimizer_settings(name)
    for optimizer in (OPT.get(name), OPT.get(name.upper()), type(OPT.get(name))()):
        config = optimizer.get_config()
        assert config.pop("name") == name
        assert config == expected
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(2)])
    model.compile(optimizer=name, loss="mse")
    assert model.optimizer is not None and model.optimizer.get_config()["name"] == name
    assert model.optimizer.learning_rate == expected["learning_rate"]


def test_spot_check_keras_defaults() -> None:
    """The values the issue names, spelled out (independently of reference.OPTIMIZER_DEFAULTS)."""
    assert (
        OPT.SGD().learning_rate == 0.01
        and OPT.SGD().momentum == 0.0
        and OPT.SGD().nesterov is False
    )
    adam = OPT.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    assert OPT.AdamW().weight_decay == 0.004 and OPT.AdamW().epsilon == 1e-7
    assert OPT.Adagrad().initial_accumulator_value == 0.1 and OPT.Adagrad().epsilon == 1e-7
    rms = OPT.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (
        0.001,
        0.9,
        0.0,
        1e-7,
        False,
    )
    # Keras's Model.compile defaults to RMSprop.
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(2)])
    model.compile(loss="mse")
    assert isinstance(model.optimizer, OPT.RMSprop)


def test_unknown_name_raises() -> None:
    with pytest.raises(ValueError, match="'adabelief'"):
        OPT.get("adabelief")


# Epsilon 0 is refused (it lets 0/0 reach the weights); this one is below half an ulp of every
# denominator it is added to in these float64 runs, so both forms compute as with epsilon 0.
NEGLIGIBLE_EPSILON = 1e-30


def tiny_model(
    optimizer: Any, dtype: str = "float64"
) -> tuple[fm.Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(10, 4))
    y = rng.normal(size=(10, 3))
    fm.utils.set_random_seed(5)
    model = fm.Sequential([fm.layers.Input(shape=(4,)), fm.layers.Dense(3)], dtype=dtype)
    model.compile(optimizer=optimizer, loss="mse")
    return model, x, y


def test_iterations_count_updates() -> None:
    optimizer = OPT.Adam()
    assert optimizer.iterations == 0  # not attached to a model yet
    model, x, y = tiny_model(optimizer)
    assert model.optimizer is optimizer and optimizer.iterations == 0
    for i in range(3):
        model.train_on_batch(x, y)
        assert optimizer.iterations == i + 1
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    model.compute_gradients(x, y)
    assert optimizer.iterations == 3  # only updates count
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)  # 3 batches per epoch
    assert optimizer.iterations == 9


def test_setting_learning_rate_changes_the_next_step() -> None:
    """Plain SGD: each step is w - lr * g with g from compute_gradients, and the rate set on the
    compiled model's optimizer is the one the next step uses (and the one it reports)."""
    model, x, y = tiny_model(OPT.SGD(0.1))
    assert model.optimizer is not None
    rates = [0.1, 0.1, 0.025, 0.025, 0.4]
    for step, lr in enumerate(rates):
        if step in (2, 4):
            model.optimizer.learning_rate = lr
        assert model.optimizer.learning_rate == lr
        w = model.get_weights()
        grads = ref.flatten_params(model.compute_gradients(x, y))
        model.train_on_batch(x, y)
        for got, w0, g in zip(model.get_weights(), w, grads):
            np.testing.assert_allclose(got, w0 - lr * g, rtol=1e-13, atol=1e-15)
    assert model.optimizer.get_config()["learning_rate"] == 0.4


def test_setting_a_number_on_a_scheduled_optimizer_is_refused() -> None:
    """As Keras: an optimizer built with a schedule has no settable rate (TypeError), and the
    refused assignment changes nothing: the next steps still follow the schedule, and Adam's
    bias correction keeps counting."""
    schedule = SCHED.ExponentialDecay(0.05, 2, 0.5)
    model, x, y = tiny_model(OPT.Adam(schedule))
    assert model.optimizer is not None
    params = [(np.asarray(model.get_weights()[0]), np.asarray(model.get_weights()[1]))]
    for _ in range(3):
        model.train_on_batch(x, y)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        model.optimizer.learning_rate = 0.01
    for _ in range(3):
        model.train_on_batch(x, y)

    settings = ref.optimizer_settings("adam", learning_rate=lambda step: ref.exponential_decay(step, 0.05, 2, 0.5))
    expected, _ = ref.train_steps(
        x, y, params, ["linear"], "mse", "adam", settings, [np.arange(10)] * 6
    )
    for got, want in zip(model.get_weights(), ref.flatten_params(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_learning_rate_setter_validates() -> None:
    model, _, _ = tiny_model(OPT.SGD(0.1))
    assert model.optimizer is not None
    with pytest.raises(ValueError, match="learning_rate"):
        model.optimizer.learning_rate = -1.0
    assert model.optimizer.learning_rate == 0.1
    with pytest.raises(ValueError, match="schedule"):
        model.optimizer.learning_rate = SCHED.ExponentialDecay(0.1, 10, 0.5)


def test_rejected_schedule_assignment_leaves_the_optimizer_unchanged() -> None:
    """A schedule cannot be set on a compiled model's optimizer (ValueError), and a failed
    assignment must not change anything: the rate reported, saved (get_config) and used stays
    0.1."""
    model, x, y = tiny_model(OPT.SGD(0.1))
    assert model.optimizer is not None
    with pytest.raises(ValueError, match="schedule"):
        model.optimizer.learning_rate = SCHED.ExponentialDecay(0.5, 1, 0.5)
    # The core kept 0.1 ...
    w = model.get_weights()
    grads = ref.flatten_params(model.compute_gradients(x, y))
    model.train_on_batch(x, y)
    for got, w0, g in zip(model.get_weights(), w, grads):
        np.testing.assert_allclose(got, w0 - 0.1 * g, rtol=1e-13, atol=1e-15)
    # ... and so must the optimizer's own state, which get_config (and so model.save) records.
    assert model.optimizer.get_config()["learning_rate"] == 0.1
    assert model.optimizer.learning_rate == 0.1


INVALID = [
    (lambda: OPT.SGD(learning_rate=-0.1), "learning_rate"),
    (lambda: OPT.SGD(learning_rate=float("nan")), "learning_rate"),
    (lambda: OPT.Adam(learning_rate=float("inf")), "learning_rate"),
    (lambda: OPT.SGD(momentum=-0.5), "momentum"),
    (lambda: OPT.SGD(momentum=1.5), "momentum"),
    (lambda: OPT.Adam(beta_1=1.0), "beta_1"),
    (lambda: OPT.Adam(beta_1=-0.1), "beta_1"),
    (lambda: OPT.Adam(beta_2=1.0), "beta_2"),
    (lambda: OPT.Adam(epsilon=-1e-7), "epsilon"),
    (lambda: OPT.AdamW(weight_decay=-0.1), "weight_decay"),
    (lambda: OPT.AdamW(beta_2=2.0), "beta_2"),
    (lambda: OPT.Adagrad(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: OPT.Adagrad(epsilon=-1.0), "epsilon"),
    (lambda: OPT.RMSprop(rho=1.5), "rho"),
    (lambda: OPT.RMSprop(rho=-0.1), "rho"),
    (lambda: OPT.RMSprop(momentum=-0.1), "momentum"),
    (lambda: OPT.RMSprop(epsilon=-1e-7), "epsilon"),
    (lambda: OPT.Nadam(beta_1=1.0), "beta_1"),
    (lambda: OPT.Nadam(epsilon=0.0), "epsilon"),
    (lambda: OPT.Adamax(beta_2=1.5), "beta_2"),
    (lambda: OPT.Lion(beta_1=0.0), "beta_1"),
    (lambda: OPT.Lion(beta_2=1.5), "beta_2"),
    (lambda: OPT.Adadelta(rho=1.5), "rho"),
    (lambda: OPT.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
    (lambda: OPT.Ftrl(initial_accumulator_value=-0.1), "initial_accumulator_value"),
    (lambda: OPT.Ftrl(l1_regularization_strength=-1.0), "l1_regularization_strength"),
    (lambda: OPT.Ftrl(l2_shrinkage_regularization_strength=-1.0), "l2_shrinkage_regularization_strength"),
    (lambda: OPT.Ftrl(beta=float("nan")), "beta"),
    (lambda: OPT.SGD(clipnorm=-1.0), "clipnorm"),
    (lambda: OPT.SGD(clipvalue=-1.0), "clipvalue"),
    (lambda: OPT.SGD(global_clipnorm=float("nan")), "global_clipnorm"),
    (lambda: OPT.SGD(weight_decay=-1.0), "weight_decay"),
    (lambda: OPT.Adam(clipnorm=1.0, clipvalue=1.0), "clipnorm"),
    (lambda: OPT.Adam(clipnorm=1.0, global_clipnorm=1.0), "global_clipnorm"),
]


def test_a_hyper_parameter_beyond_floats_range_says_so() -> None:
    # An integer too large for a float (2**1100) becomes infinite: the message names finiteness,
    # not the lower bound the value does meet, and does not print all its 332 digits.
    with pytest.raises(ValueError, match=r"`epsilon` must be >= 0.0 and finite .*\(332 characters\)$"):
        OPT.Adam(epsilon=2**1100)
    with pytest.raises(ValueError, match=r"`momentum` must be in \[0.0, 1.0\]\. Received: momentum=-1.0$"):
        OPT.SGD(momentum=-1.0)


@pytest.mark.parametrize(
    "make,argument", INVALID, ids=[f"{i}-{a}" for i, (_, a) in enumerate(INVALID)]
)
def test_invalid_hyperparameters_raise_value_error(make: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize(
    "make,argument",
    [
        (lambda: OPT.SGD(learning_rate="0.1"), "learning_rate"),
        (lambda: OPT.Adam(beta_1=None), "beta_1"),
    ],
)
def test_non_numbers_raise_naming_the_argument(make: Callable[[], Any], argument: str) -> None:
    # A wrong type is a TypeError in Python's convention; either way the argument is named.
    with pytest.raises((TypeError, ValueError), match=argument):
        make()


# ---------------------------------------------------------------------------------------------
# The docstring's comparison with PyTorch, checked without torch (its update rules in NumPy)
# ---------------------------------------------------------------------------------------------


def torch_style_run(
    model: fm.Sequential,
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
    update: Callable[[int, list[np.ndarray], list[np.ndarray], dict[str, Any]], list[np.ndarray]],
) -> list[np.ndarray]:
    """``steps`` full-batch steps of a PyTorch-style update written in NumPy, from the model's
    weights, with the reference's gradients (model: one linear Dense layer, mse)."""
    w = [np.asarray(a, np.float64) for a in model.get_weights()]
    state: dict[str, Any] = {}
    for step in range(steps):
        _, grads = ref.gradients(x, y, [(w[0], w[1])], ["linear"], "mse")
        w = update(step, w, ref.flatten_params(grads), state)
    return w


def torch_sgd(
    lr: Callable[[int], float], momentum: float, nesterov: bool = False
) -> Callable[..., list[np.ndarray]]:
    """torch.optim.SGD (dampening 0): b = momentum * b + g (b = g at the first step);
    nesterov: g + momentum * b; w -= lr * that."""

    def update(
        step: int, w: list[np.ndarray], g: list[np.ndarray], state: dict[str, Any]
    ) -> list[np.ndarray]:
        bufs = state.setdefault("b", [None] * len(w))
        out = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            bufs[i] = gi.copy() if bufs[i] is None else momentum * bufs[i] + gi
            d = gi + momentum * bufs[i] if nesterov else bufs[i]
            out.append(wi - lr(step) * d)
        return out

    return update


def torch_adam(
    lr: float, beta_1: float, beta_2: float, eps: float, weight_decay: float = 0.0
) -> Callable[..., list[np.ndarray]]:
    """torch.optim.Adam / AdamW (weight_decay: w *= 1 - lr * weight_decay first):
    w -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)."""

    def update(
        step: int, w: list[np.ndarray], g: list[np.ndarray], state: dict[str, Any]
    ) -> list[np.ndarray]:
        t = step + 1
        ms = state.setdefault("m", [np.zeros_like(a) for a in w])
        vs = state.setdefault("v", [np.zeros_like(a) for a in w])
        out = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            wi = wi * (1 - lr * weight_decay)
            ms[i] = beta_1 * ms[i] + (1 - beta_1) * gi
            vs[i] = beta_2 * vs[i] + (1 - beta_2) * gi * gi
            denom = np.sqrt(vs[i] / (1 - beta_2**t)) + eps
            out.append(wi - lr / (1 - beta_1**t) * ms[i] / denom)
        return out

    return update


def torch_rmsprop(lr: float, alpha: float, eps: float) -> Callable[..., list[np.ndarray]]:
    """torch.optim.RMSprop: v = alpha v + (1 - alpha) g^2; w -= lr g / (sqrt(v) + eps)."""

    def update(
        step: int, w: list[np.ndarray], g: list[np.ndarray], state: dict[str, Any]
    ) -> list[np.ndarray]:
        vs = state.setdefault("v", [np.zeros_like(a) for a in w])
        out = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            vs[i] = alpha * vs[i] + (1 - alpha) * gi * gi
            out.append(wi - lr * gi / (np.sqrt(vs[i]) + eps))
        return out

    return update


def torch_adagrad(lr: float, eps: float, initial: float = 0.0) -> Callable[..., list[np.ndarray]]:
    """torch.optim.Adagrad (lr_decay 0): s += g^2; w -= lr g / (sqrt(s) + eps)."""

    def update(
        step: int, w: list[np.ndarray], g: list[np.ndarray], state: dict[str, Any]
    ) -> list[np.ndarray]:
        ss = state.setdefault("s", [np.full_like(a, initial) for a in w])
        out = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            ss[i] = ss[i] + gi * gi
            out.append(wi - lr * gi / (np.sqrt(ss[i]) + eps))
        return out

    return update


def train_full_batch(
    model: fm.Sequential,
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
    rates: dict[int, float] | None = None,
) -> list[np.ndarray]:
    for step in range(steps):
        if rates and step in rates:
            assert model.optimizer is not None
            model.optimizer.learning_rate = rates[step]
        model.train_on_batch(x, y)
    return model.get_weights()


def assert_same(a: list[np.ndarray], b: list[np.ndarray], rtol: float = 1e-11) -> None:
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-13)


def assert_differ(a: list[np.ndarray], b: list[np.ndarray], by: float = 1e-6) -> None:
    assert max_abs_difference(a, b) > by


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_agrees_with_pytorch_form_for_constant_rate(nesterov: bool) -> None:
    model, x, y = tiny_model(OPT.SGD(0.05, momentum=0.9, nesterov=nesterov))
    expected = torch_style_run(model, x, y, 20, torch_sgd(lambda s: 0.05, 0.9, nesterov))
    assert_same(train_full_batch(model, x, y, 20), expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_differs_from_pytorch_form_after_a_rate_change(nesterov: bool) -> None:
    """Keras's velocity holds lr * g terms, so a new rate only affects new gradients; PyTorch's
    buffer holds raw gradients, so a new rate rescales the whole history."""
    model, x, y = tiny_model(OPT.SGD(0.05, momentum=0.9, nesterov=nesterov))
    params = [(np.asarray(model.get_weights()[0]), np.asarray(model.get_weights()[1]))]

    def rate(step: int) -> float:
        return 0.05 if step < 10 else 0.01

    got = train_full_batch(model, x, y, 20, {10: 0.01})
    settings = ref.optimizer_settings("sgd", learning_rate=rate, momentum=0.9, nesterov=nesterov)
    keras, _ = ref.train_steps(
        x, y, params, ["linear"], "mse", "sgd", settings, [np.arange(10)] * 20
    )
    assert_same(got, ref.flatten_params(keras))
    pytorch = torch_style_run(model_copy(params), x, y, 20, torch_sgd(rate, 0.9, nesterov))
    assert_differ(got, pytorch, by=1e-4)


def model_copy(params: ref.Params) -> fm.Sequential:
    """A stand-in holding ``params`` for torch_style_run (only get_weights is used)."""
    model, _, _ = tiny_model("sgd")
    model.set_weights(ref.flatten_params(params))
    return model


def test_adam_agrees_with_pytorch_form_for_zero_epsilon() -> None:
    model, x, y = tiny_model(OPT.Adam(0.02, beta_1=0.8, beta_2=0.99, epsilon=NEGLIGIBLE_EPSILON))
    expected = torch_style_run(model, x, y, 20, torch_adam(0.02, 0.8, 0.99, NEGLIGIBLE_EPSILON))
    assert_same(train_full_batch(model, x, y, 20), expected)


def test_adam_epsilon_conversion_from_pytorch_is_exact_per_step() -> None:
    """eps_keras = eps_torch * sqrt(1 - beta_2^t) reproduces PyTorch's step t; checked for the first
    step (t = 1) with an epsilon large enough to matter, which the unconverted one does not."""
    eps_torch, beta_2 = 0.05, 0.99
    converted, x, y = tiny_model(
        OPT.Adam(0.02, beta_2=beta_2, epsilon=eps_torch * np.sqrt(1 - beta_2))
    )
    expected = torch_style_run(converted, x, y, 1, torch_adam(0.02, 0.9, beta_2, eps_torch))
    assert_same(train_full_batch(converted, x, y, 1), expected)
    unconverted, _, _ = tiny_model(OPT.Adam(0.02, beta_2=beta_2, epsilon=eps_torch))
    assert_differ(train_full_batch(unconverted, x, y, 1), expected, by=1e-4)


def test_adamw_decay_is_pytorchs() -> None:
    """Keras's w -= w * wd * lr before the Adam step is PyTorch's w *= 1 - lr * wd."""
    model, x, y = tiny_model(OPT.AdamW(0.02, weight_decay=0.5, epsilon=NEGLIGIBLE_EPSILON))
    expected = torch_style_run(model, x, y, 20, torch_adam(0.02, 0.9, 0.999, NEGLIGIBLE_EPSILON, weight_decay=0.5))
    without_decay = torch_style_run(model, x, y, 20, torch_adam(0.02, 0.9, 0.999, NEGLIGIBLE_EPSILON))
    got = train_full_batch(model, x, y, 20)
    assert_same(got, expected)
    assert_differ(got, without_decay, by=1e-4)


def test_rmsprop_epsilon_inside_the_root_unlike_pytorch() -> None:
    """One step from zero state with rho = alpha: Keras divides by sqrt(v + eps), PyTorch by
    sqrt(v) + eps. With a negligible eps the two agree over many steps; with eps = 1e-3 (v ~ 1e-3 here)
    fastmlp follows Keras's form and not PyTorch's."""
    model, x, y = tiny_model(OPT.RMSprop(0.01, rho=0.9, epsilon=NEGLIGIBLE_EPSILON))
    expected = torch_style_run(model, x, y, 20, torch_rmsprop(0.01, 0.9, NEGLIGIBLE_EPSILON))
    assert_same(train_full_batch(model, x, y, 20), expected)

    model, x, y = tiny_model(OPT.RMSprop(0.01, rho=0.9, epsilon=1e-3))
    w0 = model.get_weights()
    _, grads = ref.gradients(x, y, [(w0[0], w0[1])], ["linear"], "mse")
    g = ref.flatten_params(grads)
    keras_form = [w - 0.01 * gi / np.sqrt(0.1 * gi * gi + 1e-3) for w, gi in zip(w0, g)]
    pytorch_form = [w - 0.01 * gi / (np.sqrt(0.1 * gi * gi) + 1e-3) for w, gi in zip(w0, g)]
    got = train_full_batch(model, x, y, 1)
    assert_same(got, keras_form)
    assert_differ(got, pytorch_form, by=1e-4)


def test_adagrad_matches_pytorch_with_zero_start_and_epsilon() -> None:
    """Keras starts the accumulator at 0.1 and adds epsilon inside the root; with the start at 0
    and a negligible epsilon fastmlp's Adagrad is PyTorch's, and with Keras's defaults it is not."""
    model, x, y = tiny_model(OPT.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=NEGLIGIBLE_EPSILON))
    expected = torch_style_run(model, x, y, 20, torch_adagrad(0.1, NEGLIGIBLE_EPSILON))
    assert_same(train_full_batch(model, x, y, 20), expected)
    model, x, y = tiny_model(OPT.Adagrad(0.1))
    assert_differ(train_full_batch(model, x, y, 20), expected, by=1e-4)


# ---------------------------------------------------------------------------------------------
# Against torch.optim itself, when PyTorch is installed
# ---------------------------------------------------------------------------------------------


def torch_trajectory(
    torch: Any,
    make_optimizer: Callable[[Any], Any],
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
) -> list[np.ndarray]:
    """``steps`` full-batch steps of torch.optim on nn.Linear in float64 (mean squared error over
    samples and outputs: Keras's mse)."""
    layer = torch.nn.Linear(weights[0].shape[0], weights[0].shape[1]).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[0].T)))
        layer.bias.copy_(torch.from_numpy(weights[1]))
    optimizer = make_optimizer(layer.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.mean((layer(xt) - yt) ** 2)
        loss.backward()
        optimizer.step()
    return [layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()]


TORCH_CASES = [
    (
        "sgd_momentum",
        lambda: OPT.SGD(0.05, momentum=0.9),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    (
        "sgd_nesterov",
        lambda: OPT.SGD(0.05, momentum=0.8, nesterov=True),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    ),
    (
        "adam_eps0",
        lambda: OPT.Adam(0.02, beta_1=0.8, beta_2=0.99, epsilon=NEGLIGIBLE_EPSILON),
        lambda t, p: t.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=0.0),
    ),
    (
        "adamw_eps0",
        lambda: OPT.AdamW(0.02, weight_decay=0.5, epsilon=NEGLIGIBLE_EPSILON),
        lambda t, p: t.optim.AdamW(p, lr=0.02, weight_decay=0.5, eps=0.0),
    ),
]


@pytest.mark.parametrize(
    "make_fm,make_torch", [c[1:] for c in TORCH_CASES], ids=[c[0] for c in TORCH_CASES]
)
def test_against_torch_optim(
    make_fm: Callable[[], Any], make_torch: Callable[[Any, Any], Any]
) -> None:
    torch = pytest.importorskip("torch")
    model, x, y = tiny_model(make_fm())
    initial = model.get_weights()
    expected = torch_trajectory(torch, lambda p: make_torch(torch, p), initial, x, y, 20)
    got = train_full_batch(model, x, y, 20)
    assert_differ(got, initial, by=1e-3)
    assert_same(got, expected, rtol=1e-10)
