"""``fastmlp.sklearn.MLPClassifier``: scikit-learn's ``MLPClassifier``, trained by fastmlp."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.base import (
    ClassifierMixin,
    _fit_context,  # validates the parameters, then skips nested validation
)
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._multilayer_perceptron import Array, BaseMultilayerPerceptron, has_stochastic_solver


class MLPClassifier(ClassifierMixin, BaseMultilayerPerceptron):  # type: ignore[misc]
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` (the same
    parameters, defaults, fitted attributes and convergence logic), trained by fastmlp's C++
    core. Extras: ``n_threads`` (fastmlp's threads during fit/predict; None keeps the
    process-wide setting) and ``dtype`` ("float32", or "float64" as scikit-learn computes).
    See scikit-learn's documentation for the parameters and docs/sklearn.md for the
    differences."""

    def __init__(
        self,
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
            loss="log_loss",
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
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _stratify(self) -> bool:
        return bool(self.n_outputs_ == 1)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple[Any, Array]:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # As scikit-learn: a new fit (not warm, not incremental) learns the classes anew; a warm
        # start needs the same classes; partial_fit only classes it knows.
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, self._binarize(y)

    def _binarize(self, y: Array) -> Array:
        """``LabelBinarizer.transform(y)`` as bool; for label vectors of two or more known
        classes by a lookup of the sorted classes (the labels were checked above), which costs
        a small fraction of the sparse matrix the binarizer builds."""
        binarizer = self._label_binarizer
        classes = binarizer.classes_
        if y.ndim == 1 and binarizer.y_type_ in ("binary", "multiclass") and len(classes) >= 2:
            codes = np.searchsorted(classes, y)
            if len(classes) == 2:
                positive: Array = (codes == 1).reshape(-1, 1)
                return positive
            one_hot: Array = np.eye(len(classes), dtype=bool)[codes]
            return one_hot
        binarized: Array = binarizer.transform(y).astype(bool)
        return binarized

    def _validation_targets(self, y: Array) -> Array:
        labels: Array = self._label_binarizer.inverse_transform(y)
        return labels

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Fit the model to data matrix X and target(s) y (class labels, or a label indicator
        matrix for multi-label); ``sample_weight`` weighs each sample's loss."""
        self._fit(X, y, sample_weight=sample_weight, incremental=False)
        return self

    @available_if(has_stochastic_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> MLPClassifier:
        """One epoch over the given data; ``classes`` (all the labels of every call) is
        required on the first call."""
        if _first_partial_fit_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        self._fit(X, y, sample_weight=sample_weight, incremental=True)
        return self

    def predict(self, X: Any) -> Array:
        """The predicted classes, shape (n_samples,) or (n_samples, n_classes) for multi-label."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X: Any, check_input: bool = True) -> Array:
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        labels: Array = self._label_binarizer.inverse_transform(y_pred)
        return labels

    def _score(self, X: Any, y: Any, sample_weight: Optional[Array] = None) -> float:
        y_pred = self._predict(X, check_input=False)
        return float(accuracy_score(y, y_pred, sample_weight=sample_weight))

    def predict_proba(self, X: Any) -> Array:
        """Probability of each class, in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            stacked: Array = np.vstack([1 - y_pred, y_pred]).T
            return stacked
        return y_pred

    def predict_log_proba(self, X: Any) -> Array:
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        logged: Array = np.log(y_prob, out=y_prob)
        return logged

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags


def _first_partial_fit_call(estimator: MLPClassifier, classes: Any) -> bool:
    """scikit-learn's ``_check_partial_fit_first_call``: True on the first call (which must
    give ``classes``, and sets ``classes_`` from them); later ``classes`` must equal
    ``classes_``."""
    known = getattr(estimator, "classes_", None)
    if known is None and classes is None:
        raise ValueError("classes must be passed on the first call to partial_fit.")
    if classes is not None:
        if known is not None:
            if not np.array_equal(known, unique_labels(classes)):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call "
                    f"to partial_fit, was: {known!r}"
                )
        else:
            estimator.classes_ = unique_labels(classes)  # all of them, whichever this y has
            return True
    return False
