"""A user's ``LearningRateSchedule`` subclass (Keras's ``keras.optimizers.schedules``
extension point) and ``optimizer.learning_rate`` as Keras 3's variable.

* The core trains with the rates Python evaluates for each chunk's steps: a subclass computing a
  built-in schedule's formula in the same double expression (``InverseTimeDecay``: one divide,
  one multiply-add; ``ExponentialDecay``: ``**`` is the C library's pow, as the core's
  ``std::pow``) gives the built-in schedule's weights bit for bit.
* The trajectory equals plain SGD in NumPy (float64): ``w -= schedule(t) * g`` with the
  gradient of the mean squared error of one linear layer, taken on the whole data each step
  (rtol 1e-12: the same sums in another order).
* Chunk boundaries change nothing: one step per chunk (a per-batch callback) gives the same
  bits as the chunks ``fit`` picks.
"""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from real_keras import import_keras

import fastmlp as fm
from fastmlp.optimizers import schedules


class MyInverseTime(fm.optimizers.schedules.LearningRateSchedule):
    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float) -> None:
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * (step / self.decay_steps))

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
        }


class MyExponential(fm.optimizers.schedules.LearningRateSchedule):
    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float) -> None:
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** (step / self.decay_steps)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
        }


class Returns(fm.optimizers.schedules.LearningRateSchedule):
    """Returns ``value`` from step ``at`` on (0.01 before)."""

    def __init__(self, value: Any, at: int = 0) -> None:
        self.value = value
        self.at = at

    def __call__(self, step: int) -> Any:
        return self.value if step >= self.at else 0.01

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value, "at": self.at}


class Recording(fm.optimizers.schedules.LearningRateSchedule):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def __call__(self, step: int) -> float:
        self.steps.append(step)
        return 0.01

    def get_config(self) -> dict[str, Any]:
        return {}


class PerBatch(fm.callbacks.Callback):
    """Asks for per-batch hooks, so fit hands the core one batch per call."""

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        pass


def data(n: int = 40, d: int = 3, out: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, out)) + 0.1 * rng.normal(size=(n, out))
    return x, y


def trained(
    learning_rate: Any, epochs: int = 6, batch_size: int = 8, callbacks: Any = None, dtype: str = "float32"
) -> fm.Sequential:
    fm.utils.set_random_seed(3)
    x, y = data()
    model = fm.Sequential(
        [fm.layers.Input((3,)), fm.layers.Dense(5, activation="tanh"), fm.layers.Dense(2)], dtype=dtype
    )
    model.compile(optimizer=fm.optimizers.SGD(learning_rate, momentum=0.5), loss="mse")
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=callbacks)
    return model


def same_bits(a: fm.Sequential, b: fm.Sequential) -> None:
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "custom, builtin",
    [
        (MyInverseTime(0.2, 3, 0.7), schedules.InverseTimeDecay(0.2, 3, 0.7)),
        (MyExponential(0.2, 4, 0.5), schedules.ExponentialDecay(0.2, 4, 0.5)),
    ],
)
def test_custom_schedule_trains_as_the_builtin_with_its_formula(custom: Any, builtin: Any) -> None:
    mine, theirs = trained(custom), trained(builtin)
    assert mine.optimizer is not None and mine.optimizer.iterations == 30
    same_bits(mine, theirs)
    # Keras 3: with a schedule, optimizer.learning_rate is its value at optimizer.iterations.
    assert float(mine.optimizer.learning_rate) == custom(30)


def test_chunk_boundaries_change_nothing() -> None:
    schedule = MyInverseTime(0.2, 3, 0.7)
    same_bits(trained(schedule), trained(schedule, callbacks=[PerBatch()]))


def test_trajectory_is_numpy_sgd() -> None:
    """One linear layer, MSE, the whole data set per step, no shuffle: each step is
    ``w -= lr(t) * grad`` with Keras's step count t = 0, 1, 2, ..."""
    schedule = MyInverseTime(0.3, 2, 1.5)
    x, y = data()
    model = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)], dtype="float64")
    model.compile(optimizer=fm.optimizers.SGD(schedule), loss="mse")
    w, b = (np.array(a, dtype=np.float64) for a in model.get_weights())
    steps = 7
    model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    for t in range(steps):
        residual = x @ w + b - y
        scale = 2.0 / residual.size  # d/dp of mean((p - y)^2) over all entries
        gw, gb = scale * x.T @ residual, scale * residual.sum(axis=0)
        lr = 0.3 / (1.0 + 1.5 * t / 2)
        w, b = w - lr * gw, b - lr * gb
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got_b, b, rtol=1e-12, atol=1e-15)


def test_schedule_is_called_with_keras_step_counts() -> None:
    schedule = Recording()
    trained(schedule, epochs=2)  # 5 batches per epoch
    assert sorted(set(schedule.steps)) == list(range(10))


def test_train_on_batch_uses_the_schedule_at_each_step() -> None:
    x, y = data()
    a = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)], dtype="float64")
    b = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)], dtype="float64")
    b.set_weights(a.get_weights())
    a.compile(optimizer=fm.optimizers.SGD(MyInverseTime(0.2, 1, 1.0)), loss="mse")
    b.compile(optimizer=fm.optimizers.SGD(schedules.InverseTimeDecay(0.2, 1, 1.0)), loss="mse")
    for _ in range(4):
        a.train_on_batch(x, y)
        b.train_on_batch(x, y)
    same_bits(a, b)


@pytest.mark.parametrize(
    "value, error, match",
    [
        ("fast", TypeError, r"Returns must return a number; at step 3 it returned 'fast'"),
        (None, TypeError, r"Returns must return a number; at step 3"),
        (True, TypeError, r"Returns must return a number"),
        (math.nan, ValueError, r"Returns must return a finite number >= 0; at step 3 it returned nan"),
        (math.inf, ValueError, r"at step 3"),
        (-0.1, ValueError, r"at step 3 it returned -0.1"),
    ],
)
def test_a_bad_rate_names_the_schedule_and_the_step(value: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        trained(Returns(value, at=3), epochs=1)


def test_numpy_results_are_numbers() -> None:
    for value in (np.float32(0.05), np.float64(0.05), np.array(0.05), np.array([0.05]), np.int64(0)):
        assert schedules.rate_at(Returns(value), 0) == pytest.approx(float(np.asarray(value).ravel()[0]))
    with pytest.raises(TypeError, match="must return a number"):
        schedules.rate_at(Returns(np.array([0.1, 0.2])), 0)


def test_learning_rate_behaves_as_keras_variable() -> None:
    optimizer = fm.optimizers.SGD(0.25)
    assert float(optimizer.learning_rate) == 0.25
    value = optimizer.learning_rate.numpy()
    assert value.dtype == np.float32 and value.shape == () and value == np.float32(0.25)
    optimizer.learning_rate.assign(0.5)
    assert float(optimizer.learning_rate) == 0.5
    optimizer.learning_rate = 0.125
    assert optimizer.learning_rate == 0.125
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate.assign(-1.0)
    copied = copy.deepcopy(optimizer.learning_rate)
    assert float(copied) == 0.125 and float(pickle.loads(pickle.dumps(optimizer.learning_rate))) == 0.125


def test_assign_changes_the_rate_the_core_trains_with() -> None:
    x, y = data()
    a = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)], dtype="float64")
    b = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)], dtype="float64")
    b.set_weights(a.get_weights())
    a.compile(optimizer=fm.optimizers.SGD(0.1), loss="mse")
    b.compile(optimizer=fm.optimizers.SGD(0.03), loss="mse")
    assert a.optimizer is not None
    a.optimizer.learning_rate.assign(0.03)
    a.train_on_batch(x, y)
    b.train_on_batch(x, y)
    same_bits(a, b)


def test_a_schedule_is_not_assignable() -> None:
    optimizer = fm.optimizers.SGD(MyInverseTime(0.2, 3, 0.7))
    assert float(optimizer.learning_rate) == 0.2
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        optimizer.learning_rate.assign(0.1)
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        optimizer.learning_rate = 0.1
    assert optimizer.schedule is not None and optimizer.schedule.get_config()["decay_rate"] == 0.7


def test_keras_callbacks_read_the_scheduled_rate_and_refuse_to_set_it() -> None:
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        trained(MyInverseTime(0.2, 3, 0.7), callbacks=[fm.callbacks.LearningRateScheduler(lambda e, lr: lr)])
    # ReduceLROnPlateau only logs the rate until it has to reduce it (as Keras).
    model = trained(MyInverseTime(0.2, 3, 0.7), epochs=2, callbacks=[fm.callbacks.ReduceLROnPlateau(monitor="loss", patience=5)])
    assert model.history is not None
    assert model.history.history["learning_rate"][0] == pytest.approx(MyInverseTime(0.2, 3, 0.7)(5))


def test_learning_rate_scheduler_still_sets_a_float_rate() -> None:
    model = trained(0.1, epochs=3, callbacks=[fm.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert model.optimizer is not None and float(model.optimizer.learning_rate) == pytest.approx(0.1 / 3)


def test_saved_custom_schedule_needs_custom_objects(tmp_path: Path) -> None:
    model = trained(MyInverseTime(0.2, 3, 0.7), epochs=2)
    path = tmp_path / "model.fastmlp"
    model.save(path)
    with pytest.raises(ValueError, match=r"custom_objects=\{'MyInverseTime': MyInverseTime\}"):
        fm.saving.load_model(path)
    loaded = fm.saving.load_model(path, custom_objects={"MyInverseTime": MyInverseTime})
    assert loaded.optimizer is not None and isinstance(loaded.optimizer.schedule, MyInverseTime)
    assert loaded.optimizer.iterations == model.optimizer.iterations  # type: ignore[union-attr]
    x, y = data()
    for m in (model, loaded):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    same_bits(model, loaded)
    # A class under that name must be a schedule: nothing else is called.
    with pytest.raises(ValueError, match="custom_objects"):
        fm.saving.load_model(path, custom_objects={"MyInverseTime": dict})


def test_a_registered_schedule_loads_without_custom_objects(tmp_path: Path) -> None:
    # Keras's custom_object_scope and @register_keras_serializable, as its saving guide uses them.
    model = trained(MyInverseTime(0.2, 3, 0.7), epochs=2)
    path = tmp_path / "model.fastmlp"
    model.save(path)
    registry = fm.saving.get_custom_objects()
    with fm.saving.custom_object_scope({"MyInverseTime": MyInverseTime}):
        assert "MyInverseTime" not in registry  # a scope does not touch the registry (Keras)
        loaded = fm.saving.load_model(path)
    assert isinstance(loaded.optimizer.schedule, MyInverseTime)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="custom_objects"):  # the scope ended
        fm.saving.load_model(path)
    saved = dict(registry)
    try:
        decorated = fm.saving.register_keras_serializable(package="my_package")(MyInverseTime)
        assert decorated is MyInverseTime and registry == {**saved, "my_package>MyInverseTime": MyInverseTime}
        loaded = fm.models.load_model(path)  # a file naming the class alone: its one registration
        assert isinstance(loaded.optimizer.schedule, MyInverseTime)  # type: ignore[union-attr]
        same_bits(model, loaded)
        # Saved now, the class is named by its key; a same-named class elsewhere stays apart.
        model.save(path)
        other = type("MyInverseTime", (MyInverseTime,), {})
        fm.saving.register_keras_serializable(package="other_package")(other)
        loaded = fm.models.load_model(path)
        assert type(loaded.optimizer.schedule) is MyInverseTime  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="already been registered"):
            fm.saving.register_keras_serializable(package="my_package")(other)
        with pytest.raises(ValueError, match="get_config"):
            fm.saving.register_keras_serializable()(type("NoConfig", (), {}))
    finally:
        registry.clear()
        registry.update(saved)


# Keras's variables warn under NumPy 2 (their __array__ takes no copy keyword): theirs, not ours.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_keras() -> None:
    """The same schedule subclassed in Keras 3 and here, the same model, weights and batches:
    the same weights after 15 steps and the same ``optimizer.learning_rate`` (float32: 1e-5)."""
    keras = import_keras()

    class KerasInverseTime(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
        def __call__(self, step: Any) -> Any:
            return 0.2 / (1.0 + 0.7 * keras.ops.cast(step, "float32") / 3)

        def get_config(self) -> dict[str, Any]:
            return {}

    x, y = (a.astype(np.float32) for a in data())
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    theirs.compile(optimizer=keras.optimizers.SGD(KerasInverseTime()), loss="mse")
    ours = fm.Sequential([fm.layers.Input((3,)), fm.layers.Dense(2)])
    ours.set_weights(theirs.get_weights())
    ours.compile(optimizer=fm.optimizers.SGD(MyInverseTime(0.2, 3, 0.7)), loss="mse")
    for model in (theirs, ours):
        model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert ours.optimizer is not None and ours.optimizer.iterations == int(theirs.optimizer.iterations) == 15
    assert float(ours.optimizer.learning_rate) == pytest.approx(float(theirs.optimizer.learning_rate), rel=1e-6)
