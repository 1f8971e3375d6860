"""Learning-rate schedules (``fastmlp.optimizers.schedules``) against Keras 3's formulas.

* Each schedule's Python ``__call__`` equals the reference function (``fastmlp.reference``) at
  many steps, and a few values of each are worked out by hand in the comments.
* During training the C++ core evaluates the same formula: with plain SGD (no momentum) each
  train_on_batch must change the weights by exactly -lr(step) * g, g from compute_gradients on
  the same batch and step the number of updates before it (Keras evaluates
  ``learning_rate(iterations)`` before incrementing iterations). float64, every ISA.

Tolerances: the Python schedule and the reference compute the same double expression, but
through math.cos/np.cos and ** / np.power, which may differ by an ulp: rtol=1e-14. During
training, lr(step) comes from C++'s std::pow/std::cos (an ulp or two from NumPy's) and the update
w - lr * g is one multiply and one subtract in both: rtol=1e-13 on the weights (atol 1e-16 for
the rare entry near zero). A step taken at the wrong step count is off by the ratio of two
consecutive rates, 1e-2 or more in every case below.
"""

from __future__ import annotations

import math
from typing import Any

import fastmlp as fm
import numpy as np
import pytest
from fastmlp import _core
from fastmlp import reference as ref
from fastmlp.optimizers import schedules

# (fastmlp class, keyword arguments): the reference takes the same keywords, under the Keras
# snake_case name of the class.
CONFIGS: list[tuple[type[schedules.LearningRateSchedule], dict[str, Any]]] = [
    (schedules.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
    (
        schedules.ExponentialDecay,
        dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=0.9, staircase=True),
    ),
    (schedules.ExponentialDecay, dict(initial_learning_rate=1.0, decay_steps=2.5, decay_rate=0.97)),
    (schedules.InverseTimeDecay, dict(initial_learning_rate=1.0, decay_steps=10, decay_rate=0.5)),
    (
        schedules.InverseTimeDecay,
        dict(initial_learning_rate=0.2, decay_steps=3, decay_rate=2.0, staircase=True),
    ),
    (schedules.PiecewiseConstantDecay, dict(boundaries=[100, 110], values=[1.0, 0.5, 0.1])),
    (schedules.PiecewiseConstantDecay, dict(boundaries=[3], values=[0.2, 0.7])),
    (
        schedules.PiecewiseConstantDecay,
        dict(boundaries=[0, 5, 6, 40], values=[0.9, 0.4, 0.3, 0.2, 0.01]),
    ),
    (schedules.CosineDecay, dict(initial_learning_rate=0.1, decay_steps=100)),
    (schedules.CosineDecay, dict(initial_learning_rate=0.1, decay_steps=37, alpha=0.25)),
    (
        schedules.CosineDecay,
        dict(
            initial_learning_rate=0.0,
            decay_steps=100,
            alpha=0.1,
            warmup_target=0.2,
            warmup_steps=10,
        ),
    ),
    (
        schedules.CosineDecay,
        dict(initial_learning_rate=0.05, decay_steps=20, warmup_target=0.25, warmup_steps=4),
    ),
]


def reference_for(cls: type[schedules.LearningRateSchedule], kwargs: dict[str, Any]) -> Any:
    return ref.schedule(cls.kind, **kwargs)


def config_id(config: tuple[type[Any], dict[str, Any]]) -> str:
    cls, kwargs = config
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


STEPS = [*range(0, 130), 150, 199, 200, 201, 999, 10_000, 123_456]


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_python_schedule_matches_reference(
    config: tuple[type[schedules.LearningRateSchedule], dict[str, Any]],
) -> None:
    cls, kwargs = config
    schedule = cls(**kwargs)
    expected = reference_for(cls, kwargs)
    got = [schedule(step) for step in STEPS]
    want = [expected(step) for step in STEPS]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert all(isinstance(value, float) for value in got)
    assert len(set(want)) >= 2  # the schedule does change over these steps


# ---------------------------------------------------------------------------------------------
# Values worked out by hand (for the Python class and the reference alike)
# ---------------------------------------------------------------------------------------------

HAND: list[tuple[schedules.LearningRateSchedule, Any, list[tuple[int, float]]]] = [
    (
        schedules.ExponentialDecay(0.1, 10, 0.5),
        ref.schedule(
            "exponential_decay", initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5
        ),
        [
            (0, 0.1),  # 0.1 * 0.5^0
            (5, 0.1 * math.sqrt(0.5)),  # 0.1 * 0.5^(5/10) = 0.0707106...
            (10, 0.05),  # 0.1 * 0.5^1
            (19, 0.1 * 2**-1.9),  # 0.1 * 0.5^1.9 = 0.0267949...
            (20, 0.025),  # 0.1 * 0.5^2
        ],
    ),
    (
        schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
        ref.schedule(
            "exponential_decay",
            initial_learning_rate=0.1,
            decay_steps=10,
            decay_rate=0.5,
            staircase=True,
        ),
        [
            (0, 0.1),
            (9, 0.1),  # floor(0.9) = 0
            (10, 0.05),  # floor(1.0) = 1
            (19, 0.05),  # floor(1.9) = 1
            (20, 0.025),  # floor(2.0) = 2: 0.1 * 0.25
        ],
    ),
    (
        schedules.InverseTimeDecay(1.0, 10, 0.5),
        ref.schedule(
            "inverse_time_decay", initial_learning_rate=1.0, decay_steps=10, decay_rate=0.5
        ),
        [
            (0, 1.0),  # 1 / (1 + 0)
            (5, 0.8),  # 1 / (1 + 0.5 * 0.5) = 1 / 1.25
            (15, 1 / 1.75),  # 1 / (1 + 0.5 * 1.5) = 0.5714...
            (20, 0.5),  # 1 / (1 + 0.5 * 2)
        ],
    ),
    (
        schedules.InverseTimeDecay(1.0, 10, 0.5, staircase=True),
        ref.schedule(
            "inverse_time_decay",
            initial_learning_rate=1.0,
            decay_steps=10,
            decay_rate=0.5,
            staircase=True,
        ),
        [
            (9, 1.0),  # floor(0.9) = 0
            (15, 1 / 1.5),  # floor(1.5) = 1: 1 / (1 + 0.5)
            (20, 0.5),  # floor(2) = 2: 1 / 2
        ],
    ),
    (
        # Keras's docstring example: 1.0 for the first 100001 steps, 0.5 for the next 10000.
        schedules.PiecewiseConstantDecay([100, 110], [1.0, 0.5, 0.1]),
        ref.schedule("piecewise_constant_decay", boundaries=[100, 110], values=[1.0, 0.5, 0.1]),
        [
            (0, 1.0),
            (100, 1.0),  # step == boundary: still the earlier value (step <= 100)
            (101, 0.5),
            (110, 0.5),  # step == boundary again
            (111, 0.1),
            (10**6, 0.1),
        ],
    ),
    (
        schedules.CosineDecay(0.1, 100),
        ref.schedule("cosine_decay", initial_learning_rate=0.1, decay_steps=100),
        [
            (0, 0.1),  # 0.1 * 0.5 * (1 + cos 0)
            (50, 0.05),  # 0.1 * 0.5 * (1 + cos(pi/2)) = 0.1 * 0.5
            (100, 0.0),  # 0.1 * 0.5 * (1 + cos pi) = 0
            (250, 0.0),  # the step is clamped at decay_steps
        ],
    ),
    (
        schedules.CosineDecay(0.1, 100, alpha=0.1),
        ref.schedule("cosine_decay", initial_learning_rate=0.1, decay_steps=100, alpha=0.1),
        [
            (0, 0.1),  # 0.1 * (0.9 * 1 + 0.1)
            (50, 0.055),  # 0.1 * (0.9 * 0.5 + 0.1)
            (100, 0.01),  # 0.1 * (0.9 * 0 + 0.1) = alpha * initial
            (1000, 0.01),
        ],
    ),
    (
        # Warmup from 0 to 0.2 over 10 steps, then cosine from 0.2 to alpha * 0.2 over 100.
        schedules.CosineDecay(0.0, 100, alpha=0.1, warmup_target=0.2, warmup_steps=10),
        ref.schedule(
            "cosine_decay",
            initial_learning_rate=0.0,
            decay_steps=100,
            alpha=0.1,
            warmup_target=0.2,
            warmup_steps=10,
        ),
        [
            (0, 0.0),  # start of the ramp: the initial rate
            (5, 0.1),  # 0 + (0.2 - 0) * 5/10
            (9, 0.18),  # 0.2 * 9/10
            (10, 0.2),  # cosine at 0: the warmup target
            (60, 0.11),  # 0.2 * (0.9 * 0.5 * (1 + cos(pi * 50/100)) + 0.1) = 0.2 * 0.55
            (110, 0.02),  # decay_steps + warmup_steps: alpha * target
            (5000, 0.02),  # and it stays there
        ],
    ),
    (
        schedules.CosineDecay(0.05, 20, warmup_target=0.25, warmup_steps=4),
        ref.schedule(
            "cosine_decay",
            initial_learning_rate=0.05,
            decay_steps=20,
            warmup_target=0.25,
            warmup_steps=4,
        ),
        [
            (1, 0.1),  # 0.05 + (0.25 - 0.05) * 1/4
            (3, 0.2),  # 0.05 + 0.2 * 3/4
            (4, 0.25),
            (14, 0.125),  # 0.25 * 0.5 * (1 + cos(pi * 10/20))
            (24, 0.0),  # alpha = 0
        ],
    ),
]


@pytest.mark.parametrize("index", range(len(HAND)))
def test_hand_computed_values(index: int) -> None:
    schedule, reference, values = HAND[index]
    for step, expected in values:
        assert schedule(step) == pytest.approx(expected, rel=1e-14, abs=1e-17), (schedule, step)
        assert reference(step) == pytest.approx(expected, rel=1e-14, abs=1e-17), (schedule, step)


# ---------------------------------------------------------------------------------------------
# The C++ evaluation during training
# ---------------------------------------------------------------------------------------------

# Schedules that change within the first 14 steps, boundaries and warmups included.
TRAINING: list[tuple[type[schedules.LearningRateSchedule], dict[str, Any]]] = [
    (schedules.ExponentialDecay, dict(initial_learning_rate=0.5, decay_steps=3, decay_rate=0.6)),
    (
        schedules.ExponentialDecay,
        dict(initial_learning_rate=0.5, decay_steps=3, decay_rate=0.5, staircase=True),
    ),
    (schedules.InverseTimeDecay, dict(initial_learning_rate=0.5, decay_steps=2, decay_rate=1.0)),
    (
        schedules.InverseTimeDecay,
        dict(initial_learning_rate=0.5, decay_steps=4, decay_rate=3.0, staircase=True),
    ),
    (schedules.PiecewiseConstantDecay, dict(boundaries=[2, 5], values=[0.5, 0.1, 0.02])),
    (schedules.CosineDecay, dict(initial_learning_rate=0.5, decay_steps=10, alpha=0.1)),
    (
        schedules.CosineDecay,
        dict(
            initial_learning_rate=0.0,
            decay_steps=8,
            alpha=0.2,
            warmup_target=0.5,
            warmup_steps=4,
        ),
    ),
]
TRAIN_STEPS = 14


def make_model(
    schedule: schedules.LearningRateSchedule, sparse: bool
) -> tuple[fm.Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 20))
    if sparse:
        # 80% zeros: below the sparse-path threshold, so the first layer's kernel update is
        # fused into its gradient computation (plain SGD) with the scheduled rate.
        x[rng.random(x.shape) < 0.8] = 0.0
        assert _core.sparse_density_threshold() > 0.2
    y = rng.normal(size=(12, 3))
    fm.utils.set_random_seed(2)
    model = fm.Sequential(
        [fm.layers.Input(shape=(20,)), fm.layers.Dense(9, activation="tanh"), fm.layers.Dense(3)],
        dtype="float64",
    )
    model.compile(optimizer=fm.optimizers.SGD(schedule), loss="mse")
    return model, x, y


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("config", TRAINING, ids=config_id)
def test_core_evaluates_the_schedule_at_each_step(
    isa: str, config: tuple[type[schedules.LearningRateSchedule], dict[str, Any]], sparse: bool
) -> None:
    cls, kwargs = config
    rate = reference_for(cls, kwargs)
    model, x, y = make_model(cls(**kwargs), sparse)
    assert model.optimizer is not None
    batches = [np.arange(12)[s % 3 :: 3] for s in range(TRAIN_STEPS)]  # 3 batches of 4, in turn
    for step, idx in enumerate(batches):
        assert model.optimizer.iterations == step
        before = model.get_weights()
        grads = ref.flatten_params(model.compute_gradients(x[idx], y[idx]))
        model.train_on_batch(x[idx], y[idx])
        lr = rate(step)
        for i, (after, w, g) in enumerate(zip(model.get_weights(), before, grads)):
            np.testing.assert_allclose(
                after, w - lr * g, rtol=1e-13, atol=1e-16, err_msg=f"step {step}, weight {i}"
            )
    assert model.optimizer.iterations == TRAIN_STEPS
    # The rate changes over these steps (so a rate evaluated at the wrong step shows).
    assert len({rate(s) for s in range(TRAIN_STEPS)}) >= 3


def test_zero_rate_at_the_start_of_a_warmup_leaves_the_weights() -> None:
    """CosineDecay(0, ..., warmup_target=...) starts at exactly 0: the first update is w - 0 * g."""
    model, x, y = make_model(
        schedules.CosineDecay(0.0, 8, warmup_target=0.5, warmup_steps=4), sparse=False
    )
    before = model.get_weights()
    model.train_on_batch(x, y)
    for after, w in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, w)
    model.train_on_batch(x, y)
    assert any(not np.array_equal(a, w) for a, w in zip(model.get_weights(), before))


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_schedule_config_round_trip(
    config: tuple[type[schedules.LearningRateSchedule], dict[str, Any]],
) -> None:
    """What the optimizer's config holds (and the core reads) rebuilds the same schedule."""
    cls, kwargs = config
    schedule = cls(**kwargs)
    optimizer = fm.optimizers.from_config(fm.optimizers.SGD(schedule).get_config())
    rebuilt = optimizer.schedule
    assert isinstance(rebuilt, cls)
    assert float(optimizer.learning_rate) == schedule(0)  # Keras 3: the value at iterations
    assert [rebuilt(s) for s in STEPS] == [schedule(s) for s in STEPS]


INVALID: list[tuple[Any, str]] = [
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: schedules.ExponentialDecay(0.1, -1, 0.5), "decay_steps"),
    (lambda: schedules.ExponentialDecay(-0.1, 10, 0.5), "initial_learning_rate"),
    (lambda: schedules.ExponentialDecay(0.1, 10, -0.5), "decay_rate"),
    (lambda: schedules.InverseTimeDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: schedules.InverseTimeDecay(0.1, 10, float("nan")), "decay_rate"),
    (lambda: schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5]), "values"),
    (lambda: schedules.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]), "boundaries"),
    (lambda: schedules.PiecewiseConstantDecay([10], [1.0, -0.5]), "values"),
    (lambda: schedules.CosineDecay(0.1, 0), "decay_steps"),
    (lambda: schedules.CosineDecay(0.1, 10, alpha=-0.1), "alpha"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_target=0.5), "warmup_steps"),
    (lambda: schedules.CosineDecay(0.1, 10, warmup_target=0.5, warmup_steps=-2), "warmup_steps"),
]


@pytest.mark.parametrize(
    "make,argument", INVALID, ids=[f"{i}-{a}" for i, (_, a) in enumerate(INVALID)]
)
def test_invalid_schedule_arguments_raise(make: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        make()
