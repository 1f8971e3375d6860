"""fm.tuning: grid and random search over hyper-parameters.

The expected losses come from gradient descent written out in NumPy (float64) on a linear model
whose weights start at zero, never from fastmlp's own output.
"""

from __future__ import annotations

import math
import random
import tracemalloc
from typing import Any

import fastmlp as fm
import numpy as np
import pytest

RNG = np.random.default_rng(7)
X = RNG.normal(size=(40, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * RNG.normal(size=40)
EPOCHS = 6


def linear(learning_rate: float = 0.1, momentum: float = 0.0, zeros: bool = True) -> fm.Sequential:
    init = "zeros" if zeros else "glorot_uniform"
    model = fm.Sequential([fm.layers.Input(shape=(3,)), fm.layers.Dense(1, kernel_initializer=init)])
    model.compile(optimizer=fm.optimizers.SGD(learning_rate=learning_rate, momentum=momentum), loss="mse")
    return model


def numpy_final_loss(learning_rate: float, epochs: int = EPOCHS) -> float:
    """fit's last epoch loss for full-batch gradient descent: J before the last step."""
    x1 = np.column_stack([X, np.ones(len(X))])
    w = np.zeros(4)
    loss = math.nan
    for _ in range(epochs):
        error = x1 @ w - Y
        loss = float(np.mean(error**2))  # J(w) = 1/n ||X w - y||^2
        w = w - learning_rate * 2 / len(Y) * x1.T @ error  # w <- w - eta 2/n X^T (X w - y)
    return loss


def test_grid_search_losses_are_those_of_gradient_descent() -> None:
    rates = [0.001, 0.01, 0.1, 0.3]
    result = fm.tuning.grid_search(linear, {"learning_rate": rates}, X, Y, epochs=EPOCHS, batch_size=len(X))
    assert result.monitor == "loss"
    assert result.params == [{"learning_rate": rate} for rate in rates]
    np.testing.assert_allclose(result.losses, [numpy_final_loss(rate) for rate in rates], rtol=1e-4)
    assert all(len(history["loss"]) == EPOCHS for history in result.histories)
    # The largest rate still below 2 / lambda_max converges fastest here.
    assert result.best_params == {"learning_rate": 0.3}
    assert result.best_loss == min(result.losses)


def test_grid_order_first_key_slowest_and_fit_parameters_go_to_fit() -> None:
    seen: list[dict[str, Any]] = []

    def build(**params: Any) -> fm.Sequential:
        seen.append(params)
        return linear(**params)

    grid = {"learning_rate": [0.01, 0.1], "momentum": [0.0, 0.9], "epochs": [2, 3]}
    result = fm.tuning.grid_search(build, grid, X, Y, batch_size=8)
    assert [tuple(p.values()) for p in result.params] == [
        (lr, mom, ep) for lr in (0.01, 0.1) for mom in (0.0, 0.9) for ep in (2, 3)
    ]
    assert all("epochs" not in params for params in seen)  # epochs went to fit
    assert [len(h["loss"]) for h in result.histories] == [p["epochs"] for p in result.params]


def test_every_trial_starts_from_the_same_weights_and_repeats() -> None:
    build = lambda learning_rate: linear(learning_rate, zeros=False)  # noqa: E731  (glorot: seeded)
    grid = {"learning_rate": [0.05, 0.05]}
    first = fm.tuning.grid_search(build, grid, X, Y, epochs=3, batch_size=8, seed=3)
    again = fm.tuning.grid_search(build, grid, X, Y, epochs=3, batch_size=8, seed=3)
    other = fm.tuning.grid_search(build, grid, X, Y, epochs=3, batch_size=8, seed=4)
    assert first.losses[0] == first.losses[1]  # same rate, same start, same batches
    assert first.histories == again.histories
    assert other.losses[0] != first.losses[0]


def test_random_search_draws_reproducibly_from_its_distributions() -> None:
    class Uniform:  # the scipy.stats interface: rvs(random_state=...)
        def rvs(self, random_state: np.random.Generator) -> float:
            return float(random_state.uniform(0.0, 0.5))

    space = {"learning_rate": fm.tuning.log_uniform(1e-3, 1e-1), "momentum": Uniform(), "epochs": [1, 2]}
    result = fm.tuning.random_search(linear, space, X, Y, n_trials=12, batch_size=len(X), seed=5)
    again = fm.tuning.random_search(linear, space, X, Y, n_trials=12, batch_size=len(X), seed=5)
    other = fm.tuning.random_search(linear, space, X, Y, n_trials=12, batch_size=len(X), seed=6)
    assert len(result.params) == len(result.losses) == 12
    assert result.params == again.params and result.losses == again.losses
    assert result.params != other.params
    rates = [p["learning_rate"] for p in result.params]
    assert all(1e-3 <= rate <= 1e-1 for rate in rates)
    assert all(0.0 <= p["momentum"] <= 0.5 for p in result.params)
    assert {p["epochs"] for p in result.params} == {1, 2}
    for params, loss in zip(result.params, result.losses):
        if params["momentum"] == 0.0:
            assert loss == pytest.approx(numpy_final_loss(params["learning_rate"], params["epochs"]), rel=1e-4)


def test_log_uniform_spreads_evenly_over_decades() -> None:
    draw = fm.tuning.log_uniform(1e-4, 1.0)
    values = np.array([draw(np.random.default_rng(seed)) for seed in range(4000)])
    decades = np.histogram(np.log10(values), bins=4, range=(-4, 0))[0]
    assert decades.min() > 850  # about 1000 per decade


def test_diverging_trials_get_inf_and_are_never_best() -> None:
    result = fm.tuning.grid_search(linear, {"learning_rate": [0.05, 1e6]}, X, Y, epochs=50, batch_size=len(X))
    assert math.isfinite(result.losses[0]) and result.losses[1] == math.inf
    assert len(result.histories[1]["loss"]) < 50  # TerminateOnNaN stopped it
    assert result.best_index == 0
    diverged = fm.tuning.grid_search(linear, {"learning_rate": [1e6]}, X, Y, epochs=50, batch_size=len(X))
    with pytest.raises(ValueError, match="No trial reached a finite loss"):
        _ = diverged.best_params


def test_validation_data_is_monitored() -> None:
    result = fm.tuning.grid_search(
        linear, {"learning_rate": [0.1]}, X[:30], Y[:30], epochs=2, batch_size=30, validation_data=(X[30:], Y[30:])
    )
    assert result.monitor == "val_loss"
    assert result.losses == [result.histories[0]["val_loss"][-1]]
    split = fm.tuning.grid_search(linear, {"learning_rate": [0.1]}, X, Y, epochs=2, validation_split=0.25)
    assert split.monitor == "val_loss"
    with pytest.raises(ValueError, match=r"monitor='accuracy'.*\['loss'\]"):
        fm.tuning.grid_search(linear, {"learning_rate": [0.1]}, X, Y, monitor="accuracy")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: fm.tuning.grid_search("linear", {}, X, Y), TypeError, "`build_model` must be callable"),  # type: ignore[arg-type]
        (lambda: fm.tuning.grid_search(linear, [0.1], X, Y), TypeError, "`param_grid` must be a dict"),  # type: ignore[arg-type]
        (lambda: fm.tuning.grid_search(linear, {"learning_rate": 0.1}, X, Y), TypeError, r"param_grid\['learning_rate'\]` must be a list"),  # type: ignore[dict-item]
        (lambda: fm.tuning.grid_search(linear, {"learning_rate": "0.1"}, X, Y), TypeError, "must be a list"),
        (lambda: fm.tuning.grid_search(linear, {"learning_rate": []}, X, Y), ValueError, "needs at least one value"),
        (lambda: fm.tuning.grid_search(linear, {"learning_rate": [0.1]}, X, Y, seed=-1), ValueError, "seed=-1"),
        (lambda: fm.tuning.grid_search(lambda **p: "model", {"learning_rate": [0.1]}, X, Y), TypeError, "must return a compiled fastmlp Sequential"),
        (lambda: fm.tuning.random_search(linear, {"learning_rate": [0.1]}, X, Y, n_trials=0), ValueError, "n_trials=0"),
        (lambda: fm.tuning.random_search(linear, {"learning_rate": 0.1}, X, Y), TypeError, "must be a list"),  # type: ignore[dict-item]
        (lambda: fm.tuning.log_uniform(0.0, 1.0), ValueError, "low=0.0"),
        (lambda: fm.tuning.log_uniform(1.0, 0.1), ValueError, "`low` must be below `high`"),
        (lambda: fm.tuning.log_uniform(1e-3, math.inf), ValueError, "high=inf"),
    ],
)
def test_bad_arguments(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("search", ["grid", "random"])
def test_trials_are_made_one_at_a_time_not_all_before_the_first(search: str) -> None:
    # 90,000 trials: made up front, their dicts would take megabytes before the first trial
    # (and 10^9 of them would never finish). The builder stops the search at its third call.
    calls: list[dict[str, Any]] = []
    held: list[int] = []

    class Enough(Exception):
        pass

    def build(**params: Any) -> fm.Sequential:
        held.append(tracemalloc.get_traced_memory()[0])
        calls.append(params)
        if len(calls) == 3:
            raise Enough
        return linear(**params)

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(Enough):
            if search == "grid":
                grid = {"learning_rate": [0.01] + [0.02] * 299, "momentum": [0.0] * 300}
                fm.tuning.grid_search(build, grid, X, Y, batch_size=len(X))
            else:
                fm.tuning.random_search(build, {"learning_rate": fm.tuning.log_uniform(1e-3, 1e-1)}, X, Y,
                                        n_trials=90_000, batch_size=len(X), seed=5)
    finally:
        tracemalloc.stop()
    assert held[0] - before < 1_000_000
    if search == "grid":
        assert calls == [{"learning_rate": 0.01, "momentum": 0.0}] * 3  # the first key varies slowest
    else:  # the same first three values as a search of three trials draws
        few = fm.tuning.random_search(linear, {"learning_rate": fm.tuning.log_uniform(1e-3, 1e-1)}, X, Y,
                                      n_trials=3, batch_size=len(X), seed=5)
        assert calls == few.params


def test_draws_from_the_global_generators_are_those_of_drawing_all_first() -> None:
    # Every trial reseeds NumPy's and Python's global generators (set_random_seed); a
    # distribution that draws from them still gets the values of drawing every trial first.
    space = {"learning_rate": lambda rng: float(np.random.uniform(1e-3, 1e-1)),  # noqa: NPY002
             "epochs": lambda rng: random.randint(1, 3)}
    np.random.seed(123)  # noqa: NPY002
    random.seed(456)
    expected = [{"learning_rate": float(np.random.uniform(1e-3, 1e-1)), "epochs": random.randint(1, 3)}  # noqa: NPY002
                for _ in range(4)]
    np.random.seed(123)  # noqa: NPY002
    random.seed(456)
    result = fm.tuning.random_search(linear, space, X, Y, n_trials=4, batch_size=len(X), seed=5)
    assert result.params == expected
    assert len({p["learning_rate"] for p in result.params}) == 4
