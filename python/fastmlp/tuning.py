"""Grid and random search over hyper-parameters (the learning rate first of all), without
scikit-learn.

A trial builds a fresh model with the user's ``build_model(**params)``, trains it with ``fit``
and keeps its final loss: the last epoch's ``val_loss`` when there is validation data
(``validation_data`` or ``validation_split``), else its ``loss``; ``monitor`` picks another entry
of the history. Every trial starts with ``fm.utils.set_random_seed(seed)``, so two trials that differ only in the learning rate start
from the same weights and see the batches in the same order: their losses differ because of the
hyper-parameters alone, and the same call gives the same losses every time. Random search draws
its values from a generator of its own, seeded with ``seed`` as well.

A trial whose loss becomes NaN or infinite (a learning rate that is too large) stops at once
(as ``TerminateOnNaN`` stops it, without its message) and its final loss is ``inf``, so it sorts
last and plots off the top.
"""

from __future__ import annotations

import itertools
import math
import numbers
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from . import callbacks, utils
from .models import Sequential

__all__ = ["SearchResult", "grid_search", "log_uniform", "random_search"]

# Parameters with these names go to fit(), not to build_model(): searching over the batch size
# or the number of epochs needs no model code.
FIT_PARAMETERS = ("batch_size", "epochs")

ModelBuilder = Callable[..., Sequential]
Distribution = Union[Sequence[Any], Callable[[np.random.Generator], Any]]


@dataclass(frozen=True)
class SearchResult:
    """The trials of a search, in the order they ran: ``params[i]`` gave ``losses[i]`` (the
    monitored value after the last epoch, ``inf`` for a trial that diverged) and
    ``histories[i]`` (its ``History.history``)."""

    params: list[dict[str, Any]]
    losses: list[float]
    histories: list[dict[str, list[float]]]
    monitor: str

    @property
    def best_index(self) -> int:
        """The trial with the lowest final loss (the first of equals)."""
        if not any(math.isfinite(loss) for loss in self.losses):
            raise ValueError(f"No trial reached a finite {self.monitor}. Received: losses={self.losses}")
        return int(np.argmin(self.losses))

    @property
    def best_params(self) -> dict[str, Any]:
        return self.params[self.best_index]

    @property
    def best_loss(self) -> float:
        return self.losses[self.best_index]


class _StopWhenDiverged(callbacks.Callback):
    """TerminateOnNaN without its message: a diverged trial is an expected result of a search."""

    def on_train_chunk_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        loss = (logs or {}).get("loss")
        if self.model is not None and loss is not None and not math.isfinite(loss):
            self.model.stop_training = True


def log_uniform(low: float, high: float) -> Callable[[np.random.Generator], float]:
    """A distribution for ``random_search``: ``exp(uniform(log low, log high))``, every decade
    between ``low`` and ``high`` equally likely (how a learning rate is usually drawn)."""
    bounds: tuple[tuple[str, object], ...] = (("low", low), ("high", high))  # users pass anything
    for name, value in bounds:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < math.inf:
            raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    if not low < high:
        raise ValueError(f"`low` must be below `high`. Received: low={low!r}, high={high!r}")
    log_low, log_high = math.log(low), math.log(high)

    def draw(rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(log_low, log_high)))

    return draw


def grid_search(
    build_model: ModelBuilder,
    param_grid: Mapping[str, Sequence[Any]],
    x: Any,
    y: Any,
    *,
    epochs: int = 1,
    batch_size: Optional[int] = None,
    validation_data: Optional[tuple[Any, ...]] = None,
    monitor: Optional[str] = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> SearchResult:
    """Train one model for every combination of ``param_grid``'s values (the first key varies
    slowest), e.g. ``grid_search(build, {"learning_rate": [0.001, 0.01, 0.1]}, x, y)``.

    ``build_model(**params)`` must return a compiled ``Sequential``; ``batch_size`` and ``epochs``
    in ``param_grid`` go to ``fit`` instead. Other keywords go to ``fit`` as they are."""
    _check_builder(build_model)
    grid = _checked_grid(param_grid)
    keys = list(grid)
    combinations = (dict(zip(keys, values)) for values in itertools.product(*grid.values()))  # one at a time
    return _run_trials(
        build_model, combinations, x, y, epochs, batch_size, validation_data, monitor, seed, fit_kwargs
    )


def random_search(
    build_model: ModelBuilder,
    param_distributions: Mapping[str, Distribution],
    x: Any,
    y: Any,
    *,
    n_trials: int = 10,
    epochs: int = 1,
    batch_size: Optional[int] = None,
    validation_data: Optional[tuple[Any, ...]] = None,
    monitor: Optional[str] = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> SearchResult:
    """Train ``n_trials`` models, each with values drawn from ``param_distributions``: from a
    list, one of its values (each equally likely); from a callable such as ``log_uniform(1e-4,
    1)``, ``f(rng)`` with a ``numpy.random.Generator``; from an object with ``rvs`` (a
    ``scipy.stats`` distribution), ``rvs(random_state=rng)``. The rest as ``grid_search``."""
    _check_builder(build_model)
    _check_seed(seed)
    trials: object = n_trials  # validated here: users pass anything
    if isinstance(trials, bool) or not isinstance(trials, numbers.Integral) or int(trials) < 1:
        raise ValueError(f"`n_trials` must be a positive integer. Received: n_trials={n_trials!r}")
    if not isinstance(param_distributions, Mapping):
        raise TypeError(
            f"`param_distributions` must be a dict. Received: param_distributions={param_distributions!r}"
        )
    for key, distribution in param_distributions.items():
        if not (callable(distribution) or hasattr(distribution, "rvs")):
            _checked_values(key, distribution, "param_distributions")
    # Drawn as each trial starts, in trial order: no list of n_trials entries before the first
    # trial. _Draws keeps the values those of drawing all first, global generators included.
    drawn = _Draws(param_distributions, np.random.default_rng(seed), int(n_trials))
    return _run_trials(
        build_model, drawn, x, y, epochs, batch_size, validation_data, monitor, seed, fit_kwargs
    )


class _Draws:
    """Each trial's values, drawn when the trial starts, as if all had been drawn before the
    first: a distribution may use NumPy's or Python's global generator, which every trial
    reseeds (``set_random_seed``), so their state between draws is kept here and put back for
    each draw."""

    def __init__(self, distributions: Mapping[str, Distribution], rng: np.random.Generator, n: int) -> None:
        self.distributions, self.rng, self.n = distributions, rng, n
        self.states = (np.random.get_state(), random.getstate())  # noqa: NPY002 (users' draws may use it)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for _ in range(self.n):
            trial_states = (np.random.get_state(), random.getstate())  # noqa: NPY002
            np.random.set_state(self.states[0])  # noqa: NPY002
            random.setstate(self.states[1])
            try:
                values = {key: _draw(distribution, self.rng) for key, distribution in self.distributions.items()}
            finally:
                self.states = (np.random.get_state(), random.getstate())  # noqa: NPY002
                np.random.set_state(trial_states[0])  # noqa: NPY002
                random.setstate(trial_states[1])
            yield values


def _draw(distribution: Any, rng: np.random.Generator) -> Any:
    if hasattr(distribution, "rvs"):
        return distribution.rvs(random_state=rng)
    if callable(distribution):
        return distribution(rng)
    return distribution[int(rng.integers(len(distribution)))]


def _check_builder(build_model: Any) -> None:
    if not callable(build_model):
        raise TypeError(f"`build_model` must be callable. Received: build_model={build_model!r}")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")


def _checked_values(key: Any, values: Any, argument: str) -> list[Any]:
    if not isinstance(key, str):
        raise TypeError(f"The keys of `{argument}` must be parameter names. Received: {key!r}")
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(
            f"`{argument}['{key}']` must be a list of values. Received: {values!r}"
        )
    if len(values) == 0:
        raise ValueError(f"`{argument}['{key}']` needs at least one value. Received: {values!r}")
    return list(values)


def _checked_grid(param_grid: Any) -> dict[str, list[Any]]:
    if not isinstance(param_grid, Mapping):
        raise TypeError(f"`param_grid` must be a dict. Received: param_grid={param_grid!r}")
    return {key: _checked_values(key, values, "param_grid") for key, values in param_grid.items()}


def _run_trials(
    build_model: ModelBuilder,
    trials: Iterable[dict[str, Any]],
    x: Any,
    y: Any,
    epochs: int,
    batch_size: Optional[int],
    validation_data: Optional[tuple[Any, ...]],
    monitor: Optional[str],
    seed: int,
    fit_kwargs: dict[str, Any],
) -> SearchResult:
    _check_seed(seed)
    fit_kwargs = dict(fit_kwargs)
    user_callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    validates = validation_data is not None or bool(fit_kwargs.get("validation_split"))
    watched = monitor if monitor is not None else ("val_loss" if validates else "loss")
    ran: list[dict[str, Any]] = []
    losses: list[float] = []
    histories: list[dict[str, list[float]]] = []
    for params in trials:
        ran.append(params)
        fit_options = {"epochs": epochs, "batch_size": batch_size, "verbose": 0, **fit_kwargs}
        fit_options.update({key: params[key] for key in FIT_PARAMETERS if key in params})
        model_params = {key: value for key, value in params.items() if key not in FIT_PARAMETERS}
        utils.set_random_seed(int(seed))
        model = build_model(**model_params)
        if not isinstance(model, Sequential):
            raise TypeError(
                f"`build_model` must return a compiled fastmlp Sequential. Received: {model!r} "
                f"for params={model_params!r}"
            )
        history = model.fit(
            x, y, validation_data=validation_data, callbacks=[*user_callbacks, _StopWhenDiverged()],
            **fit_options,
        ).history
        if watched not in history:
            raise ValueError(
                f"`monitor` must name an entry of the training history. Received: monitor={watched!r}; "
                f"the history has {sorted(history)}"
            )
        final = float(history[watched][-1])
        losses.append(final if math.isfinite(final) else math.inf)
        histories.append({key: [float(v) for v in values] for key, values in history.items()})
    return SearchResult(params=ran, losses=losses, histories=histories, monitor=watched)
