"""scikit-learn's multi-layer perceptron (``sklearn.neural_network``'s
``BaseMultilayerPerceptron``), trained by fastmlp's core (internal).

The estimator keeps scikit-learn's state (``coefs_``, ``intercepts_``, the loss curve, the
convergence counters) and a ``fastmlp.Sequential`` that trains: one ``Sequential.fit`` call runs
all the epochs of a ``fit``, and scikit-learn's per-epoch logic (the convergence test, the SGD
learning-rate schedule, early stopping) runs between epochs in a callback.

How scikit-learn's objective maps onto the core's (per batch of ``B`` rows):
- scikit-learn minimizes ``sum(w * l) / sum(w) + 0.5 * alpha * ||W||^2 / sum(w)``; the core
  ``sum(w' * l) / B + l2 * ||W||^2``. With ``w' = w / mean(w)`` (mean over the training rows) and
  ``l2 = alpha / (2 * B * mean(w))`` they are equal wherever the batch's weights sum to
  ``B * mean(w)``: always without sample weights, and for every full batch of a full-batch fit.
  The last, smaller batch of an epoch keeps ``B`` in the penalty (scikit-learn divides by its
  own size): its weight-decay step is ``rows / B`` of scikit-learn's.
- scikit-learn's gradient at the output is ``(p - y)`` per output and row; the core's
  ``binary_crossentropy`` and ``mse`` average over the outputs (and ``mse`` doubles), so each
  row's weight is multiplied by ``n_outputs`` (logistic outputs) or ``n_outputs / 2`` (identity
  outputs). The loss the core reports is then scikit-learn's, except for multi-output
  regression, where scikit-learn reports the mean over the outputs (see ``_sklearn_loss``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any, ClassVar, Optional, Union

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from .. import KerasTensor, get_num_threads, layers, optimizers, regularizers, set_num_threads
from ..models import Sequential
from ._epoch_hook import EpochHook

Array = NDArray[Any]

STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's activation names and the core's.
_CORE_ACTIVATION = {
    "identity": "linear",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


def has_stochastic_solver(estimator: Any) -> bool:
    """``partial_fit`` exists for 'sgd' and 'adam' only (scikit-learn's ``_check_solver``)."""
    if estimator.solver not in STOCHASTIC_SOLVERS:
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {estimator.solver} is not stochastic."
        )
    return True


# scikit-learn's constraints (checked by ``BaseEstimator._validate_params``) plus the extras.
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "n_threads": [None, Interval(Integral, 1, 1024, closed="both")],
    "dtype": [StrOptions({"float32", "float64"})],
}


class BaseMultilayerPerceptron(BaseEstimator):  # type: ignore[misc]
    """Shared by ``MLPClassifier`` and ``MLPRegressor``: scikit-learn's parameters plus
    ``n_threads`` and ``dtype``."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = PARAMETER_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes: Any,
        activation: str,
        solver: str,
        alpha: float,
        batch_size: Any,
        learning_rate: str,
        learning_rate_init: float,
        power_t: float,
        max_iter: int,
        loss: str,
        shuffle: bool,
        random_state: Any,
        tol: float,
        verbose: Any,
        warm_start: bool,
        momentum: float,
        nesterovs_momentum: bool,
        early_stopping: bool,
        validation_fraction: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
        n_iter_no_change: Any,
        max_fun: int,
        n_threads: Optional[int],
        dtype: str,
    ) -> None:
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.n_threads = n_threads
        self.dtype = dtype

    # ------------------------------------------------------------------ subclass hooks

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Array]:
        raise NotImplementedError

    def _output_activation(self) -> str:
        raise NotImplementedError

    def _validation_targets(self, y: Array) -> Array:
        """The held-out targets in the form ``_score`` takes."""
        raise NotImplementedError

    def _score(self, X: Any, y: Any, sample_weight: Optional[Array] = None) -> float:
        raise NotImplementedError

    def _predict(self, X: Any, check_input: bool = True) -> Array:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False) -> BaseMultilayerPerceptron:
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden = list(hidden_layer_sizes)
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_features = X.shape[1]
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        for units in hidden:  # as scikit-learn, whose initialization takes only integers
            if isinstance(units, (bool, np.bool_)) or not isinstance(units, Integral):
                raise TypeError(f"hidden_layer_sizes must hold integers, got {hidden}.")
        layer_units = [n_features, *(int(units) for units in hidden), self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units)
        elif layer_units != self._layer_units():
            raise ValueError(
                f"The network was fitted with layer sizes {self._layer_units()}; this call needs "
                f"{layer_units}. Set warm_start=False (or call fit) to start a new network."
            )
        x = self._core_input(X)
        with self._threads():
            if self.solver in STOCHASTIC_SOLVERS:
                self._fit_stochastic(x, y, weights, incremental)
            else:
                self._fit_lbfgs(x, y, weights)
        if not all(np.isfinite(w).all() for w in [*self.coefs_, *self.intercepts_]):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _layer_units(self) -> list[int]:
        # np.shape: users may set coefs_ as nested lists, which scikit-learn's predict accepts.
        return [np.shape(self.coefs_[0])[0], *(np.shape(c)[1] for c in self.coefs_)]

    def _initialize(self, y: Array, layer_units: list[int]) -> None:
        """scikit-learn's ``_initialize``: the same attributes, and the same initial weights
        (the same draws from the same ``random_state``), in ``dtype``."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        self.coefs_: list[Array] = []
        self.intercepts_: list[Array] = []
        # Glorot et al.'s uniform bound, with factor 2 instead of 6 for logistic units.
        factor = 2.0 if self.activation == "logistic" else 6.0
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(self.dtype))
            self.intercepts_.append(intercept.astype(self.dtype))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [i.copy() for i in self.intercepts_]
        self._model: Optional[Sequential] = None  # built for the first fit call
        self._l2 = -1.0
        self._model_structure: tuple[Any, ...] = ()
        if self.solver in STOCHASTIC_SOLVERS:
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            if self.early_stopping:
                # None or a list/number, as scikit-learn's (Any: mypy cannot follow the
                # early_stopping switch).
                self.validation_scores_: Any = []
                self.best_validation_score_: Any = -np.inf
                self.best_loss_: Any = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _core_input(self, X: Any) -> Array:
        """X as the core reads it: dense, C-contiguous, in ``dtype`` (one copy at most)."""
        if sp.issparse(X):
            X = X.toarray()
        if X.dtype == self.dtype:
            return np.ascontiguousarray(X)
        # X is finite (scikit-learn's checks): an overflow in the cast is a value beyond the
        # range of ``dtype``, which scikit-learn (in float64) would have taken.
        try:
            with np.errstate(over="raise"):
                return np.ascontiguousarray(X, dtype=self.dtype)
        except FloatingPointError:
            raise ValueError(
                f"Input X holds a value beyond the range of {self.dtype} (|x| > "
                f"{np.finfo(self.dtype).max:.4g}). Scale the data, or use dtype='float64'."
            ) from None

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        """fastmlp's thread count is process-wide: ``n_threads`` sets it for this call only."""
        if self.n_threads is None:
            yield
            return
        before = get_num_threads()
        set_num_threads(int(self.n_threads))
        try:
            yield
        finally:
            set_num_threads(before)

    # ------------------------------------------------------------------ the core's model

    def _core_targets(self, y: Array) -> tuple[str, Array, float]:
        """The core's loss, its targets and the per-row weight that makes its gradient
        scikit-learn's (see the module docstring)."""
        if self.out_activation_ == "softmax":
            return "sparse_categorical_crossentropy", np.argmax(y, axis=1).astype(np.int32), 1.0
        try:  # y is finite (scikit-learn's checks): an overflow is a value beyond the dtype
            with np.errstate(over="raise"):
                targets = np.ascontiguousarray(y, dtype=self.dtype)
        except FloatingPointError:
            raise ValueError(
                f"Input y holds a value beyond the range of {self.dtype} (|y| > "
                f"{np.finfo(self.dtype).max:.4g}). Scale the targets, or use dtype='float64'."
            ) from None
        if self.out_activation_ == "logistic":
            return "binary_crossentropy", targets, float(self.n_outputs_)
        return "mse", targets, self.n_outputs_ / 2.0

    def _new_optimizer(self) -> optimizers.Optimizer:
        if self.solver == "sgd":
            return optimizers.SGD(
                learning_rate=self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum,
            )
        if self.solver == "adam":
            return optimizers.Adam(
                learning_rate=self.learning_rate_init,
                beta_1=self.beta_1,
                beta_2=self.beta_2,
                epsilon=self.epsilon,
            )
        # scipy's L-BFGS-B as scikit-learn calls it: 10 pairs of history, gtol=tol, maxfun.
        return optimizers.LBFGS(
            history=10, tolerance_grad=self.tol, tolerance_change=_LBFGS_FTOL, max_fun=self.max_fun
        )

    def _structure(self) -> tuple[Any, ...]:
        """What the core's network is built from (scikit-learn reads these at every forward
        pass, so a change by ``set_params`` or to ``coefs_`` takes effect)."""
        return (tuple(self._layer_units()), self.activation, self.out_activation_, self.dtype)

    def _core_model(self, l2: float, loss: str, keep_state: bool) -> Sequential:
        """The model that trains: the existing one when its optimizer state is to be kept and
        it has this structure, penalty and loss; else a new one, which takes the optimizer
        state over when asked and the structure is the same. Its weights are set from
        ``coefs_``/``intercepts_``."""
        old = self._model
        same_structure = old is not None and self._model_structure == self._structure()
        reuse = same_structure and keep_state and l2 == self._l2 and old is not None and old.loss is not None and old.loss.name == loss
        if reuse and old is not None:
            model = old
        else:
            model = self._build_model(l2)
            model.compile(optimizer=self._new_optimizer(), loss=loss)
            if keep_state and same_structure and old is not None and old.optimizer is not None:
                state = old.get_training_state()
                if state is not None:
                    self._sync_weights(model)
                    model.set_training_state(state)
                    model.optimizer.learning_rate = float(old.optimizer.learning_rate)  # type: ignore[union-attr]
            self._model, self._l2, self._model_structure = model, l2, self._structure()
        self._sync_weights(model)
        return model

    def _build_model(self, l2: float) -> Sequential:
        units = [c.shape[1] for c in self.coefs_]
        stack: list[Union[layers.Layer, KerasTensor]] = [layers.Input(shape=(self.coefs_[0].shape[0],))]
        for index, width in enumerate(units):
            last = index == len(units) - 1
            stack.append(
                layers.Dense(
                    width,
                    activation=_CORE_ACTIVATION[self.out_activation_ if last else self.activation],
                    kernel_initializer="zeros",  # set from coefs_ at once: no seed is drawn
                    kernel_regularizer=regularizers.L2(l2) if l2 > 0 else None,
                    name=f"dense_{index}",
                )
            )
        return Sequential(stack, name="mlp", dtype=self.dtype)

    def _check_layers(self) -> None:
        """``coefs_``/``intercepts_`` (which users may set) make ``n_layers_ - 1`` layers ending in
        ``n_outputs_`` units: else a prediction would come out of another shape, silently."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        layers = self.n_layers_ - 1
        if len(coefs) != layers or len(intercepts) != layers:
            raise ValueError(
                f"The estimator has {len(coefs)} coefs_ and {len(intercepts)} intercepts_, but "
                f"n_layers_={self.n_layers_} needs {layers} of each."
            )
        last = np.shape(coefs[-1])
        if len(last) != 2 or last[1] != self.n_outputs_:
            raise ValueError(
                f"coefs_[-1] has shape {last}, but the estimator has n_outputs_={self.n_outputs_} "
                "outputs: the last layer must have that many columns."
            )

    def _sync_weights(self, model: Sequential) -> None:
        """``coefs_``/``intercepts_`` (which users may set) into the core."""
        weights: list[Array] = []
        for coef, intercept in zip(self.coefs_, self.intercepts_):
            weights.append(np.ascontiguousarray(coef, dtype=self.dtype))
            weights.append(np.ascontiguousarray(intercept, dtype=self.dtype))
        model.set_weights(weights)

    def _read_weights(self, model: Sequential) -> tuple[list[Array], list[Array]]:
        weights = model.get_weights()
        return weights[0::2], weights[1::2]

    def _predict_model(self) -> Sequential:
        """A model holding ``coefs_``/``intercepts_`` for prediction."""
        self._check_layers()
        if self._model is None or self._model_structure != self._structure():
            self._model = self._build_model(0.0)
            self._l2, self._model_structure = 0.0, self._structure()
        self._sync_weights(self._model)
        return self._model

    def _forward_pass_fast(self, X: Any, check_input: bool = True) -> Array:
        if check_input:
            X = self._validate_predict_input(X)
        x = self._core_input(X)
        model = self._predict_model()
        with self._threads():
            out: Array = model.predict(x, verbose=0)
        return out

    def _validate_predict_input(self, X: Any) -> Any:
        return validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False)

    # ------------------------------------------------------------------ stochastic solvers

    def _fit_stochastic(self, x: Array, y: Array, weights: Optional[Array], incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        x_val: Optional[Array] = None
        y_val: Optional[Array] = None
        w_val: Optional[Array] = None
        w_train = weights
        if self.early_stopping:
            # scikit-learn's split: the same draw from the same random_state, stratified where
            # scikit-learn stratifies (classifiers with one output column: binary labels).
            stratify = y if self._stratify() else None
            if weights is None:
                x_train, x_val, y_train, y_held = train_test_split(
                    x, y, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
                )
            else:
                x_train, x_val, y_train, y_held, w_train, w_val = train_test_split(
                    x, y, weights, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
                )
            if x_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            x_train = np.ascontiguousarray(x_train)
            y_val = self._validation_targets(y_held)
        else:
            x_train, y_train = x, y
        n_samples = x_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                    stacklevel=5,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        loss, targets, row_scale = self._core_targets(y_train)
        row_weights, mean_weight = self._row_weights(w_train, n_samples, row_scale)
        l2 = self.alpha / (2.0 * batch_size * mean_weight)
        model = self._core_model(l2, loss, keep_state=incremental)
        self._seed_shuffle(model)

        self._epoch = _EpochData(
            n_samples=n_samples,
            batch_size=batch_size,
            l2=l2,
            incremental=incremental,
            x_val=x_val,
            y_val=y_val,
            w_val=w_val,
            model=model,
        )
        self.n_iter_ = 0
        self._reached_max_iter = False
        try:
            model.fit(
                x_train,
                targets,
                batch_size=batch_size,
                epochs=1 if incremental else self.max_iter,
                verbose=0,
                shuffle=bool(self.shuffle),
                sample_weight=row_weights,
                callbacks=[EpochHook(self._end_epoch)],
            )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=5)
        finally:
            del self._epoch  # it holds the validation data: not to be pickled with the estimator
        self.coefs_, self.intercepts_ = self._read_weights(model)
        if self._reached_max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts

    def _stratify(self) -> bool:
        return False

    def _seed_shuffle(self, model: Sequential) -> None:
        """The core's shuffle generator, seeded from ``random_state`` (as scikit-learn shuffles
        with it), so that a seeded fit repeats exactly."""
        state = model.get_training_state()
        if state is None:
            return
        words = self._random_state.randint(1, np.iinfo(np.int64).max, size=4, dtype=np.int64)
        state["rng"] = [int(word) for word in words]
        model.set_training_state(state)

    def _sklearn_loss(self, core_loss: float) -> float:
        """scikit-learn's ``loss_`` from the core's epoch loss. They are equal except for
        multi-output regression: there the core's data term sums over the outputs where
        scikit-learn's averages (its gradient sums, its reported loss averages); the penalty
        part is taken out first, from the weights' squared norm at the epoch's start and end."""
        if self.out_activation_ != "identity" or self.n_outputs_ == 1:
            return core_loss
        epoch = self._epoch
        after = _squared_norm(epoch.model)
        norm = 0.5 * (epoch.penalty_before + after)
        epoch.penalty_before = after
        core_penalty = epoch.l2 * norm
        sklearn_penalty = core_penalty * epoch.penalty_ratio()
        return float((core_loss - core_penalty) / self.n_outputs_ + sklearn_penalty)

    def _end_epoch(self, core_loss: float) -> bool:
        """scikit-learn's work after each epoch; True to stop."""
        epoch = self._epoch
        self.n_iter_ += 1
        self.loss_ = self._sklearn_loss(core_loss)
        self.t_ += epoch.n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
        self._update_no_improvement_count(epoch)
        self._iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            if self.early_stopping:
                msg = (
                    f"Validation score did not improve more than tol={self.tol:f} for "
                    f"{self.n_iter_no_change} consecutive epochs."
                )
            else:
                msg = (
                    f"Training loss did not improve more than tol={self.tol:f} for "
                    f"{self.n_iter_no_change} consecutive epochs."
                )
            if self._trigger_stopping(msg):
                return True
            self._no_improvement_count = 0
        if epoch.incremental:
            return True
        if self.n_iter_ == self.max_iter:
            self._reached_max_iter = True
        return False

    def _update_no_improvement_count(self, epoch: _EpochData) -> None:
        if self.early_stopping:
            self.coefs_, self.intercepts_ = self._read_weights(epoch.model)
            val_score = self._score(epoch.x_val, epoch.y_val, sample_weight=epoch.w_val)
            self.validation_scores_.append(val_score)
            if self.verbose:
                print(f"Validation score: {self.validation_scores_[-1]:f}")
            if val_score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if val_score > self.best_validation_score_:
                self.best_validation_score_ = val_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [i.copy() for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _current_learning_rate(self) -> float:
        return float(self._epoch.optimizer.learning_rate)

    def _set_learning_rate(self, rate: float) -> None:
        self._epoch.optimizer.learning_rate = rate

    def _iteration_ends(self, time_step: int) -> None:
        """scikit-learn's ``SGDOptimizer.iteration_ends`` ('invscaling'); Adam has none."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._set_learning_rate(float(self.learning_rate_init) / (time_step + 1) ** self.power_t)

    def _trigger_stopping(self, msg: str) -> bool:
        """scikit-learn's ``trigger_stopping``: SGD with 'adaptive' divides the learning rate by
        5 (until it is at most 1e-6) instead of stopping."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        rate = self._current_learning_rate()
        if rate <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        rate /= 5.0
        self._set_learning_rate(rate)
        if self.verbose:
            print(msg + f" Setting learning rate to {rate:f}")
        return False

    # ------------------------------------------------------------------ L-BFGS

    def _fit_lbfgs(self, x: Array, y: Array, weights: Optional[Array]) -> None:
        """Full-batch L-BFGS in the core (``fm.optimizers.LBFGS``): one ``fit`` epoch is one
        L-BFGS iteration; it stops at ``max_iter`` iterations, at ``max_fun`` evaluations, or
        when converged (largest gradient entry at most ``tol``, or a step that changes the loss
        or the weights by less than scipy's ``ftol``); scikit-learn's ConvergenceWarning when it
        did not converge."""
        n_samples = x.shape[0]
        loss, targets, row_scale = self._core_targets(y)
        row_weights, mean_weight = self._row_weights(weights, n_samples, row_scale)
        l2 = self.alpha / (2.0 * n_samples * mean_weight)
        model = self._core_model(l2, loss, keep_state=False)
        self._epoch = _EpochData(n_samples, n_samples, l2, False, None, None, None, model)
        self._lbfgs_losses: list[float] = []
        optimizer = self._epoch.optimizer
        try:
            model.fit(
                x,
                targets,
                batch_size=n_samples,
                epochs=self.max_iter,
                verbose=0,
                shuffle=False,
                sample_weight=row_weights,
                callbacks=[EpochHook(self._end_lbfgs_iteration)],
            )
        finally:
            del self._epoch
        self.n_iter_ = len(self._lbfgs_losses)
        self.loss_ = self._lbfgs_losses[-1] if self._lbfgs_losses else float("nan")
        self.coefs_, self.intercepts_ = self._read_weights(model)
        if isinstance(optimizer, optimizers.FullBatchOptimizer):
            self._warn_unless_lbfgs_converged(optimizer)

    def _warn_unless_lbfgs_converged(self, optimizer: optimizers.FullBatchOptimizer) -> None:
        """scikit-learn's ConvergenceWarning (``_check_optimize_result``) with SciPy's status
        and message: 1 when a limit stopped it, 2 (ABNORMAL) when no step lowered the loss, or
        when PyTorch's slope test stopped it (SciPy would have tried a step there, and failed)."""
        if optimizer.stalled or optimizer.stop_reason == optimizers.LBFGS.SLOPE_STOP:
            status, message = 2, "ABNORMAL: "
        elif optimizer.converged:
            return
        elif optimizer.function_evaluations >= self.max_fun:
            status, message = 1, "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"
        else:
            status, message = 1, "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"
        text = f"lbfgs failed to converge after {self.n_iter_} iteration(s) (status={status}):\n{message}\n"
        if self.n_iter_ == self.max_iter:
            text += f"\nIncrease the number of iterations to improve the convergence (max_iter={self.max_iter})."
        text += (
            "\nYou might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html"
        )
        if status == 2 and self.dtype == "float32":
            text += (
                "\nfastmlp computed in float32 (dtype='float32'), where a loss of large values cannot "
                "show small improvements; dtype='float64' computes as scikit-learn does."
            )
        warnings.warn(text, ConvergenceWarning, stacklevel=6)

    def _end_lbfgs_iteration(self, core_loss: float) -> bool:
        """The loss at the new weights (the optimizer itself stops the fit)."""
        self._lbfgs_losses.append(self._sklearn_loss(core_loss))
        return False

    def _row_weights(self, weights: Optional[Array], n_samples: int, row_scale: float) -> tuple[Optional[Array], float]:
        """The core's per-row loss weights (None when all are 1) and the mean sample weight:
        the sample weights divided by their mean, times ``row_scale``."""
        mean_weight = 1.0
        if weights is not None:
            mean_weight = float(np.mean(weights))
            if not mean_weight > 0:
                raise ValueError(f"The sample weights must have a positive mean. Received a mean of {mean_weight}.")
        if weights is None and row_scale == 1.0:
            return None, mean_weight
        base = np.ones(n_samples) if weights is None else np.asarray(weights) / mean_weight
        return np.ascontiguousarray(base * row_scale, dtype=self.dtype), mean_weight


def _squared_norm(model: Sequential) -> float:
    """The sum of the squared kernel weights (the penalized ones)."""
    kernels = model.get_weights()[0::2]
    return float(sum(np.dot(w.ravel().astype(np.float64), w.ravel().astype(np.float64)) for w in kernels))


# scipy's L-BFGS-B default ftol: stop when the loss falls by less than this.
_LBFGS_FTOL = 2.220446049250313e-09


class _EpochData:
    """What ``_end_epoch`` needs across the epochs of one fit call."""

    def __init__(
        self,
        n_samples: int,
        batch_size: int,
        l2: float,
        incremental: bool,
        x_val: Optional[Array],
        y_val: Optional[Array],
        w_val: Optional[Array],
        model: Sequential,
    ) -> None:
        optimizer = model.optimizer
        if optimizer is None:
            raise ValueError("The core model must be compiled before training.")
        self.model = model
        self.optimizer = optimizer
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.n_batches = -(-n_samples // batch_size)
        self.l2 = l2
        self.incremental = incremental
        self.x_val = x_val
        self.y_val = y_val
        self.w_val = w_val
        self.penalty_before = _squared_norm(model)

    def penalty_ratio(self) -> float:
        """scikit-learn's penalty in ``loss_`` over the core's: scikit-learn adds the penalty
        once per batch, the core once per row divided by ``B``; equal when every batch has
        ``B`` rows."""
        return self.n_batches * self.batch_size / self.n_samples
