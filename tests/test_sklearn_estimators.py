"""fastmlp.sklearn's MLPClassifier and MLPRegressor against scikit-learn itself: its estimator
checks, its meta-estimators (clone, Pipeline, GridSearchCV, pickle), and its own MLP estimators
on the same data, step for step where the training order can be made the same (full batches
or no shuffling, float64) and by accuracy/R² where it cannot."""

from __future__ import annotations

import pickle
import re
import warnings
from typing import Any

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

import fastmlp as fm  # noqa: E402
from fastmlp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_FLOAT32_WEIGHT_EQUIVALENCE = (
    "compares fits with rtol=1e-7, below float32's precision; the same check passes with "
    "dtype='float64' (test_sample_weight_equivalence_in_float64)"
)


def _expected_failures(estimator: Any) -> dict[str, str]:
    if estimator.dtype == "float32":
        return {
            "check_sample_weight_equivalence_on_dense_data": _FLOAT32_WEIGHT_EQUIVALENCE,
            "check_sample_weight_equivalence_on_sparse_data": _FLOAT32_WEIGHT_EQUIVALENCE,
        }
    return {}


@parametrize_with_checks(
    [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


@pytest.mark.parametrize(
    "estimator",
    [MLPClassifier(max_iter=100, dtype="float64"), MLPRegressor(solver="sgd", tol=1e-2, random_state=42, dtype="float64")],
    ids=["classifier", "regressor"],
)
def test_sample_weight_equivalence_in_float64(estimator: Any) -> None:
    """Integer sample weights fit as repeated rows do (scikit-learn's own check)."""
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)


# ---------------------------------------------------------------------------- data


def _classes(n_classes: int = 3, n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n, 6, n_informative=4, n_redundant=0, n_classes=n_classes, random_state=seed)


def _multilabel(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    return make_multilabel_classification(n, 6, n_classes=3, random_state=0)


def _regression(n_targets: int = 2, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(n, 6, n_targets=n_targets, noise=1.0, random_state=0)
    return X, y / 100.0


def _all_weights(estimator: Any) -> list[np.ndarray]:
    return [*estimator.coefs_, *estimator.intercepts_]


def _assert_same_training(ours: Any, theirs: Any, rtol: float = 1e-9) -> None:
    """The same weights and loss curve as scikit-learn's (float64, same order of batches)."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    for a, b in zip(_all_weights(ours), _all_weights(theirs)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------------------- step for step

# With one batch per epoch (or no shuffling and alpha=0) the order of the updates is
# scikit-learn's; the initial weights are its draws from the same random_state. Then every
# weight must agree to float64 rounding: the loss, the gradient scaling, the penalty, Adam's and
# SGD's (Nesterov) update formulas, the learning-rate schedules and the stopping rule are the same.
STEP_CASES = [
    ("multiclass-sgd-nesterov", _classes, "classifier", dict(solver="sgd", learning_rate_init=0.1, alpha=0.01)),
    ("multiclass-sgd-momentum", _classes, "classifier", dict(solver="sgd", nesterovs_momentum=False, alpha=0.01)),
    ("binary-adam-tanh", lambda: _classes(2), "classifier", dict(alpha=0.1, activation="tanh")),
    ("multilabel-adam-logistic", _multilabel, "classifier", dict(activation="logistic")),
    ("regression-2-targets-adam", _regression, "regressor", dict(alpha=0.1)),
    ("regression-1-target-sgd-identity", lambda: _regression(1), "regressor", dict(solver="sgd", activation="identity", learning_rate_init=0.01)),
    ("minibatch-adam-no-penalty", _classes, "classifier", dict(batch_size=32, alpha=0.0)),
    ("minibatch-invscaling", _classes, "classifier", dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, batch_size=32, alpha=0.0)),
    ("minibatch-adaptive", _classes, "classifier", dict(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=2, batch_size=32, alpha=0.0)),
]


@pytest.mark.parametrize(("data", "kind", "settings"), [case[1:] for case in STEP_CASES], ids=[case[0] for case in STEP_CASES])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_training_matches_scikit_learn_step_for_step(data: Any, kind: str, settings: dict[str, Any], weighted: bool) -> None:
    X, y = data()
    if weighted and settings.get("batch_size", 0) == 32:
        pytest.skip("weighted mini-batches: scikit-learn divides by each batch's weight sum (docs/sklearn.md)")
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(X)) if weighted else None
    common = {"hidden_layer_sizes": (7, 5), "shuffle": False, "max_iter": 12, "random_state": 0, "batch_size": len(X), **settings}
    ours_cls, theirs_cls = (MLPClassifier, SkClassifier) if kind == "classifier" else (MLPRegressor, SkRegressor)
    ours = ours_cls(dtype="float64", **common).fit(X, y, sample_weight=weights)
    theirs = theirs_cls(**common).fit(X, y, sample_weight=weights)
    # Multi-output regression: loss_ takes the penalty out from the norms at the epoch's ends.
    _assert_same_training(ours, theirs, rtol=1e-5 if kind == "regressor" and y.ndim == 2 else 1e-9)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_outputs_ == theirs.n_outputs_ and ours.n_layers_ == theirs.n_layers_
    np.testing.assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=1e-5)


def test_partial_fit_and_warm_start_match_scikit_learn() -> None:
    X, y = _classes()
    common = dict(hidden_layer_sizes=(6,), shuffle=False, random_state=0, batch_size=40)
    ours = MLPClassifier(dtype="float64", **common)
    theirs = SkClassifier(**common)
    for start in (0, 40, 80):  # the first call names every class; later calls see only some
        part = slice(start, start + 40)
        ours.partial_fit(X[part], y[part], classes=np.unique(y))
        theirs.partial_fit(X[part], y[part], classes=np.unique(y))
    for a, b in zip(_all_weights(ours), _all_weights(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # fit after partial_fit with warm_start: continues from the weights with a new optimizer.
    ours.set_params(warm_start=True, max_iter=5)
    theirs.set_params(warm_start=True, max_iter=5)
    _assert_same_training(ours.fit(X, y), theirs.fit(X, y))


def test_partial_fit_takes_its_classes_from_the_first_calls_classes_not_its_y() -> None:
    # A stream whose first chunk lacks some classes: the network still has an output per class.
    X, y = _classes(n_classes=4, n=160)
    common = dict(hidden_layer_sizes=(6,), shuffle=False, random_state=0)
    ours = MLPClassifier(dtype="float64", **common)
    theirs = SkClassifier(**common)
    first = y < 2
    for estimator in (ours, theirs):
        estimator.partial_fit(X[first][:40], y[first][:40], classes=[3, 2, 1, 0])
        np.testing.assert_array_equal(estimator.classes_, [0, 1, 2, 3])
        assert estimator.out_activation_ == "softmax" and estimator.coefs_[-1].shape == (6, 4)
        assert estimator.predict_proba(X[:5]).shape == (5, 4)
        estimator.partial_fit(X[:80], y[:80])  # now with every class
    _assert_same_training(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9)


def test_convergence_stops_where_scikit_learn_stops() -> None:
    """tol and n_iter_no_change: after the first epoch (which improves on an infinite best
    loss), a loss that never improves by tol stops after n_iter_no_change + 1 more epochs; the
    ConvergenceWarning comes only at max_iter."""
    X, y = _classes()
    for estimator in (MLPClassifier(tol=10.0, n_iter_no_change=3, random_state=0), SkClassifier(tol=10.0, n_iter_no_change=3, random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            estimator.fit(X, y)
        assert estimator.n_iter_ == 5 and len(estimator.loss_curve_) == 5
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_best_validation_weights() -> None:
    X, y = _classes(n=300)
    common = dict(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, max_iter=60, random_state=0)
    ours = MLPClassifier(**common).fit(X, y)
    theirs = SkClassifier(**common).fit(X, y)
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    assert len(ours.validation_scores_) == ours.n_iter_ == len(ours.loss_curve_)
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 15
    assert abs(ours.best_validation_score_ - theirs.best_validation_score_) <= 0.1


# ---------------------------------------------------------------------------- drop-in results


@pytest.mark.parametrize("n_classes", [2, 4])
def test_classifier_accuracy_and_attributes_match_scikit_learn(n_classes: int) -> None:
    X, y = make_classification(1500, 12, n_informative=8, n_classes=n_classes, random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    ours = MLPClassifier(hidden_layer_sizes=(32,), max_iter=40, random_state=0).fit(X_train, y_train)
    theirs = SkClassifier(hidden_layer_sizes=(32,), max_iter=40, random_state=0).fit(X_train, y_train)
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.03
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [i.shape for i in ours.intercepts_] == [i.shape for i in theirs.intercepts_]
    assert ours.n_iter_ == theirs.n_iter_ and len(ours.loss_curve_) == len(theirs.loss_curve_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=0.1)
    proba = ours.predict_proba(X_test)
    assert proba.shape == (len(X_test), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ours.predict_log_proba(X_test), np.log(proba), rtol=1e-6)
    np.testing.assert_array_equal(ours.predict(X_test), ours.classes_[np.argmax(proba, axis=1)])
    assert ours.t_ == theirs.t_ and ours.n_features_in_ == 12


def test_string_labels_and_multilabel_targets() -> None:
    X, y = _classes()
    names = np.array(["cat", "dog", "eel"])[y]
    clf = MLPClassifier(max_iter=50, random_state=0).fit(X, names)
    assert set(clf.predict(X)) <= set(names) and list(clf.classes_) == ["cat", "dog", "eel"]
    Xm, ym = _multilabel()
    multi = MLPClassifier(max_iter=50, random_state=0).fit(Xm, ym)
    assert multi.out_activation_ == "logistic" and multi.predict(Xm).shape == ym.shape
    assert multi.predict_proba(Xm).shape == ym.shape


def test_regressor_r2_matches_scikit_learn() -> None:
    for n_targets in (1, 3):
        X, y = make_regression(1000, 10, n_targets=n_targets, noise=5.0, random_state=2)
        y = y / 100.0
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        ours = MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0).fit(X_train, y_train)
        theirs = SkRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0).fit(X_train, y_train)
        assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.02
        assert ours.predict(X_test).shape == theirs.predict(X_test).shape
        assert ours.out_activation_ == "identity" and ours.n_outputs_ == n_targets
        np.testing.assert_allclose(ours.loss_curve_[:5], theirs.loss_curve_[:5], rtol=0.05)


# ---------------------------------------------------------------------------- scikit-learn's tools


def test_clone_pickle_pipeline_and_grid_search() -> None:
    X, y = _classes(n=200)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0, n_threads=1)
    assert clone(clf).get_params() == clf.get_params()
    clf.fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # The optimizer state travels too: partial_fit continues identically.
    clf.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))

    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=50, random_state=0)).fit(X, y)
    reference = make_pipeline(StandardScaler(), SkClassifier(max_iter=50, random_state=0)).fit(X, y)
    assert abs(pipe.score(X, y) - reference.score(X, y)) <= 0.05
    search = GridSearchCV(
        MLPRegressor(max_iter=30, random_state=0), {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (8,)]}, cv=2, n_jobs=1
    )
    Xr, yr = _regression(1)
    search.fit(Xr, yr)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.n_iter_ == 30


def test_seeded_fits_repeat_and_thread_count_does_not_matter() -> None:
    X, y = _classes()
    before = fm.get_num_threads()
    one = MLPClassifier(max_iter=20, random_state=3, n_threads=1).fit(X, y)
    two = MLPClassifier(max_iter=20, random_state=3, n_threads=2).fit(X, y)
    assert fm.get_num_threads() == before
    for a, b in zip(_all_weights(one), _all_weights(two)):
        np.testing.assert_array_equal(a, b)
    other = MLPClassifier(max_iter=20, random_state=4).fit(X, y)
    assert not np.array_equal(other.coefs_[0], one.coefs_[0])


def test_initial_weights_are_scikit_learns_draws() -> None:
    """A step too small to move them leaves scikit-learn's Glorot draws (factor 2 for
    logistic units)."""
    X, y = _classes()
    for activation in ("relu", "logistic"):
        settings = dict(activation=activation, learning_rate_init=1e-300, max_iter=1, random_state=7)
        ours = MLPClassifier(dtype="float64", solver="sgd", momentum=0.0, **settings).fit(X, y)
        theirs = SkClassifier(solver="sgd", momentum=0.0, **settings).fit(X, y)
        for a, b in zip(_all_weights(ours), _all_weights(theirs)):
            np.testing.assert_array_equal(a, b)
        assert ours.coefs_[0].dtype == np.float64
    assert MLPClassifier(max_iter=1).fit(X, y).coefs_[0].dtype == np.float32


def _numpy_forward(estimator: Any, X: np.ndarray) -> np.ndarray:
    """scikit-learn's forward pass, written out in float64 NumPy from the fitted attributes."""
    hidden = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "identity": lambda z: z,
              "logistic": lambda z: 1 / (1 + np.exp(-z))}[estimator.activation]
    a = X
    for i, (w, b) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
        a = a @ w.astype(np.float64) + b
        if i < len(estimator.coefs_) - 1:
            a = hidden(a)
    if estimator.out_activation_ == "softmax":
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1 / (1 + np.exp(-a)) if estimator.out_activation_ == "logistic" else a


def test_predictions_follow_the_fitted_attributes_and_parameters() -> None:
    """predict reads coefs_, intercepts_ and activation as scikit-learn's forward pass does,
    also after the user changes them."""
    X, y = _classes()
    clf = MLPClassifier(hidden_layer_sizes=(9, 4), max_iter=20, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), _numpy_forward(clf, X), rtol=1e-4, atol=1e-6)
    clf.coefs_[0][:] *= 0.5
    clf.set_params(activation="tanh")
    np.testing.assert_allclose(clf.predict_proba(X), _numpy_forward(clf, X), rtol=1e-4, atol=1e-6)
    expected = clf.predict_proba(X)
    clf.coefs_ = [c.tolist() for c in clf.coefs_]  # nested lists, which scikit-learn's predict takes
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
    Xr, yr = _regression(2)
    reg = MLPRegressor(activation="logistic", max_iter=20, random_state=0).fit(Xr, yr)
    np.testing.assert_allclose(reg.predict(Xr), _numpy_forward(reg, Xr), rtol=1e-4, atol=1e-5)



def test_fitted_attributes_that_disagree_are_refused_not_predicted_from() -> None:
    # scikit-learn's forward pass reads n_layers_ - 1 layers (an IndexError for fewer); a
    # prediction from fewer layers, or a last layer of another width, would have the wrong shape.
    X, y = _classes()
    clf = MLPClassifier(hidden_layer_sizes=(9,), max_iter=5, random_state=0).fit(X, y)
    clf.coefs_ = clf.coefs_[:1]
    with pytest.raises(ValueError, match="1 coefs_ and 2 intercepts_, but n_layers_=3 needs 2 of each"):
        clf.predict_proba(X)
    Xr, yr = _regression(2)
    reg = MLPRegressor(hidden_layer_sizes=(9,), max_iter=5, random_state=0).fit(Xr, yr)
    reg.coefs_, reg.intercepts_ = reg.coefs_[:1], reg.intercepts_[:1]
    reg.n_layers_ = 2
    with pytest.raises(ValueError, match=r"coefs_\[-1\] has shape \(\d+, 9\), but the estimator has n_outputs_=2"):
        reg.predict(Xr)


# ---------------------------------------------------------------------------- bad input


def test_bad_input_raises_scikit_learns_errors() -> None:
    X, y = _classes()
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="NaN"):
        bad = X.copy()
        bad[3, 2] = np.nan
        MLPClassifier(max_iter=2).fit(bad, y)
    fitted = MLPClassifier(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6 features"):
        fitted.predict(X[:, :5])
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        MLPClassifier().partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same classes"):
        MLPClassifier(warm_start=True, max_iter=2).fit(X, y).fit(X, np.where(y == 2, 1, y))
    with pytest.raises(ValueError, match="The 'alpha' parameter of MLPClassifier must be"):
        MLPClassifier(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match="The 'dtype' parameter"):
        MLPClassifier(dtype="float16").fit(X, y)
    with pytest.raises(ValueError, match=r"sample_weight\.shape"):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="positive mean"):
        MLPClassifier(max_iter=2).fit(X, y, sample_weight=np.where(np.arange(len(y)) % 2 == 0, 1.0, -2.0))
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPClassifier(solver="lbfgs").partial_fit(X, y)
    with pytest.raises(ValueError, match="loss='squared_error' only"):
        MLPRegressor(loss="poisson").fit(X, y)
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPRegressor(early_stopping=True, validation_fraction=0.01).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="Input y contains NaN"):
        MLPRegressor(max_iter=2).fit(X, np.where(y == 1, np.nan, y))


def test_hyper_parameter_errors_are_scikit_learns() -> None:
    X, y = _classes()
    for sizes in [(5.0,), [True], (3, 2.5), (np.float64(4.0),)]:
        for estimator in (MLPClassifier(hidden_layer_sizes=sizes, max_iter=2), SkClassifier(hidden_layer_sizes=sizes, max_iter=2)):
            with pytest.raises(TypeError):
                estimator.fit(X, y)
    MLPClassifier(hidden_layer_sizes=(np.int64(4),), max_iter=2).fit(X, y)  # NumPy integers are integers
    # Parameters checked by the estimator, not by the functions fit calls (scikit-learn's
    # _fit_context): an empty validation split is train_test_split's plain ValueError.
    errors = []
    for estimator in (MLPClassifier(early_stopping=True, validation_fraction=0.0), SkClassifier(early_stopping=True, validation_fraction=0.0)):
        with pytest.raises(ValueError) as error:
            estimator.fit(X, y)
        errors.append((type(error.value), str(error.value)))
    assert errors[0] == errors[1] and "test_size=0.0 should be" in errors[0][1]


def test_values_beyond_float32_are_refused_not_trained_on() -> None:
    X, y = _classes()
    huge = X.copy()
    huge[0, 0] = 1e300  # finite in float64, infinite in the default float32
    with pytest.raises(ValueError, match="beyond the range of float32"):
        MLPClassifier(max_iter=2).fit(huge, y)
    with pytest.raises(ValueError, match="Input y holds a value beyond the range of float32"):
        MLPRegressor(max_iter=2).fit(X, y * 1e300)  # not "contains NaN or infinity": it does not
    # float64 takes it; the weights then overflow, which scikit-learn reports the same way.
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(max_iter=2, dtype="float64").fit(huge * 1e8, y)


def test_lbfgs_solver_against_scikit_learn() -> None:
    """Full-batch L-BFGS: from scikit-learn's initial weights to about its training loss and
    accuracy (the line searches differ, so the paths do), with its stopping and warning."""
    X, y = _classes()
    ours = MLPClassifier(solver="lbfgs", max_iter=200, random_state=0, dtype="float64").fit(X, y)
    theirs = SkClassifier(solver="lbfgs", max_iter=200, random_state=0).fit(X, y)
    assert abs(ours.score(X, y) - theirs.score(X, y)) <= 0.05
    assert ours.loss_ <= 1.5 * theirs.loss_ + 1e-3
    assert 1 <= ours.n_iter_ <= 200 and not hasattr(ours, "loss_curve_")
    Xr, yr = _regression(2)
    reg = MLPRegressor(solver="lbfgs", max_iter=300, random_state=0, alpha=1e-3).fit(Xr, yr)
    reference = SkRegressor(solver="lbfgs", max_iter=300, random_state=0, alpha=1e-3).fit(Xr, yr)
    assert reg.score(Xr, yr) >= reference.score(Xr, yr) - 0.02
    messages = []
    for estimator in (MLPClassifier(solver="lbfgs", max_iter=3, random_state=0), SkClassifier(solver="lbfgs", max_iter=3, random_state=0)):
        with pytest.warns(ConvergenceWarning, match=r"lbfgs failed to converge after 3 iteration") as caught:
            estimator.fit(X, y)
        messages.append(str(caught[0].message))
    assert messages[0] == messages[1]  # the same words, SciPy's status and message included


def test_lbfgs_on_badly_scaled_inputs_warns_as_scikit_learn_does() -> None:
    # Iris times 1000: scikit-learn's L-BFGS-B ends ABNORMAL (status 2). fastmlp's search stops
    # on PyTorch's slope test there; scikit-learn's warning says the same.
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    statuses = []
    for estimator in (MLPClassifier(solver="lbfgs", random_state=0, max_iter=500, dtype="float64"),
                      SkClassifier(solver="lbfgs", random_state=0, max_iter=500)):
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge") as caught:
            estimator.fit(X * 1000, y)
        statuses.append(re.search(r"status=(\d)", str(caught[0].message)).group(1))  # type: ignore[union-attr]
    assert statuses == ["2", "2"]


def test_lbfgs_that_cannot_lower_the_loss_in_float32_says_so() -> None:
    # Targets of 1e8: float32's loss cannot show the first steps' improvements, so its line
    # search finds no step; scikit-learn (float64) fits. Not silent: scipy's status 2, and the
    # way out. In float64 it fits as scikit-learn does.
    X, y = make_regression(n_samples=300, n_features=8, noise=10, random_state=0)
    y = y / y.std() * 1e6 + 1e8
    settings = dict(hidden_layer_sizes=(20,), solver="lbfgs", random_state=0, max_iter=300)
    with pytest.warns(ConvergenceWarning, match=r"\(status=2\):\nABNORMAL: (?s:.*)dtype='float64' computes as scikit-learn"):
        MLPRegressor(**settings).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = MLPRegressor(dtype="float64", **settings).fit(X, y)
        theirs = SkRegressor(**settings).fit(X, y)
    assert ours.score(X, y) >= theirs.score(X, y) - 0.01 and ours.score(X, y) > 0.9
