"""``fastmlp.sklearn.MLPRegressor``: scikit-learn's ``MLPRegressor``, trained by fastmlp."""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import numpy as np
from sklearn.base import (
    RegressorMixin,
    _fit_context,  # validates the parameters, then skips nested validation
)
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._multilayer_perceptron import (
    PARAMETER_CONSTRAINTS,
    Array,
    BaseMultilayerPerceptron,
    has_stochastic_solver,
)


class MLPRegressor(RegressorMixin, BaseMultilayerPerceptron):  # type: ignore[misc]
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` (the same parameters,
    defaults, fitted attributes and convergence logic; ``loss="squared_error"`` only), trained
    by fastmlp's C++ core. Extras: ``n_threads`` and ``dtype`` as in ``MLPClassifier``."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **PARAMETER_CONSTRAINTS,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Any = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
        n_threads: Optional[int] = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            n_threads=n_threads,
            dtype=dtype,
        )

    def _output_activation(self) -> str:
        return "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Array]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _validation_targets(self, y: Array) -> Array:
        return y.ravel() if y.shape[1] == 1 else y

    def _check_loss(self) -> None:
        if self.loss != "squared_error":
            raise ValueError(
                f"fastmlp's MLPRegressor supports loss='squared_error' only (its core has no "
                f"exponential output for 'poisson'). Received: loss={self.loss!r}"
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Fit the model to data matrix X and target(s) y; ``sample_weight`` weighs each
        sample's loss."""
        self._check_loss()
        self._fit(X, y, sample_weight=sample_weight, incremental=False)
        return self

    @available_if(has_stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over the given data."""
        self._check_loss()
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self

    def predict(self, X: Any) -> Array:
        """The predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> Array:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X: Any, y: Any, sample_weight: Optional[Array] = None) -> float:
        y_pred = self._predict(X, check_input=False)
        if not np.isfinite(y_pred).all():
            return float("nan")
        return float(r2_score(y, y_pred, sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
