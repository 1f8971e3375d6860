"""Full-batch optimizers: each epoch of ``fit`` is one iteration on the whole training set.

``FullBatchOptimizer`` is the base of ``Newton``, ``ConjugateGradient``, ``LBFGS`` and
``LeastSquares``. ``Sequential.fit`` chooses, in one place (``_epoch_trainer``), between the
core's batches and a ``FullBatchTraining``, which runs one fit: per epoch one iteration of the
optimizer, then the loss and metrics at the new weights for the epoch's logs.

``Objective`` is the compiled loss (with its weight penalties) of one model on one training set,
as a function of its trainable weights flattened in ``get_weights()`` order (float64). The core
computes its value, gradient, Hessian and Hessian-vector products; the optimizers here only
combine vectors and solve small systems.

An optimizer's state (curvature pairs, previous direction) lives for one ``fit`` call: each fit
starts afresh, as scikit-learn's lbfgs does; so nothing of it is saved with the model.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from .. import _core, _validation
from .._engine import Engine
from ._base import ModelFacts, Optimizer, number
from .schedules import LearningRateSchedule

Array = NDArray[Any]


class Objective:
    """The compiled loss of one model on one training set, as a function of its trainable weights.

    The vector holds the trainable layers' kernels and biases, flattened in ``get_weights()``
    order (``model.trainable_weights``): a frozen layer's weights are constants of the loss and
    never move. ``x``, ``y`` and ``sample_weight`` are fit's arrays as the core takes them.
    Every call sets the model's weights to the point asked for; ``evaluations`` counts the
    loss-and-gradient evaluations (scikit-learn's and SciPy's function evaluations)."""

    def __init__(self, engine: Engine, x: Array, y: Array, sample_weight: Optional[Array]) -> None:
        self.engine = engine
        self.x = x
        self.y = y
        self.sample_weight = sample_weight
        self.evaluations = 0
        self._indices: Optional[Array] = None
        self.follow_trainable()

    def follow_trainable(self) -> bool:
        """Takes the layers' ``trainable`` flags as they are now (a callback may change them
        between iterations); returns whether the vector's weights changed."""
        indices = self.engine.trainable_indices()
        # None: every weight is trainable, and the vectors are the core's as they are.
        new = None if indices.size == self.engine.parameter_count else indices
        old = self._indices
        self._indices = new
        return not (new is None and old is None) and (new is None or old is None or not np.array_equal(new, old))

    @property
    def num_params(self) -> int:
        return self.engine.parameter_count if self._indices is None else int(self._indices.size)

    def _part(self, flat: Array) -> Array:
        return flat if self._indices is None else flat[self._indices]

    def weights(self) -> Array:
        """The model's trainable weights now (float64, rounded to the model's dtype)."""
        return self._part(self.engine.flat_weights())

    def set_weights(self, w: Array) -> None:
        if not np.isfinite(w).all():
            raise ValueError(
                "The optimizer computed NaN or infinite weights; the model keeps its weights from "
                "before this iteration."
            )
        if self._indices is not None:
            flat = self.engine.flat_weights()  # the frozen layers' weights as they are now
            flat[self._indices] = w
            w = flat
        self.engine.set_flat_weights(w)

    def value_and_gradient(self, w: Array) -> tuple[float, Array]:
        """The loss and its gradient at ``w``; a ValueError naming the cause when either is NaN
        or infinite (at the weights the model has, this is the data or a diverged model)."""
        loss, gradient = self.trial(w)
        if not math.isfinite(loss):
            raise ValueError(
                f"The loss at the current weights is {loss} or its gradient is not finite: "
                "the targets or the weights are too large for the model's dtype. Scale the data "
                "or use dtype='float64'."
            )
        return loss, gradient

    def trial(self, w: Array) -> tuple[float, Array]:
        """The loss and gradient at a point a line search tries: the loss is +inf (and the
        gradient zero) where either is not finite, so the search steps back from it."""
        self.set_weights(w)
        loss, gradient = self.engine.loss_and_gradient(self.x, self.y, self.sample_weight)
        gradient = self._part(gradient)
        self.evaluations += 1
        if not math.isfinite(loss) or not np.isfinite(gradient).all():
            return math.inf, np.zeros_like(gradient)
        return loss, gradient

    def hessian(self, w: Array) -> Array:
        """The Hessian of the loss at ``w`` (float64, one row and column per trainable weight);
        a ValueError when it holds NaN or infinity."""
        self.set_weights(w)
        hessian = self.engine.hessian(self.x, self.y, self.sample_weight)
        if self._indices is not None:
            hessian = hessian[np.ix_(self._indices, self._indices)]
        if not np.isfinite(hessian).all():
            raise ValueError(
                f"The Hessian of the loss at the current weights (P={hessian.shape[0]}) holds NaN or "
                "infinity: the weights or the data are too large for the model's dtype."
            )
        return hessian

    def hessian_vector_product(self, w: Array, v: Array) -> Array:
        """``H(w) @ v`` without forming H; a ValueError when it is not finite."""
        self.set_weights(w)
        if self._indices is not None:
            full = np.zeros(self.engine.parameter_count)
            full[self._indices] = v
            v = full
        product = self._part(self.engine.hessian_vector_product(self.x, self.y, v, self.sample_weight))
        if not np.isfinite(product).all():
            raise ValueError("The Hessian-vector product at the current weights holds NaN or infinity.")
        return product


class FullBatchOptimizer(Optimizer):
    """An optimizer that takes one step per epoch on the whole training set, from the exact loss
    and gradient (and, for Newton, the Hessian). Stops ``fit`` early (``model.stop_training``)
    once converged: the largest gradient entry at most ``tolerance_grad``, or a step that changes
    the loss or every weight by less than ``tolerance_change``, or ``max_fun`` evaluations of the
    loss used up in this fit (not converged). Only the trainable layers' weights move. After
    ``fit``: ``converged``, ``stop_reason``, ``stalled`` and ``function_evaluations`` tell how
    it ended."""

    # How the last fit ended (reset by ``begin`` at the start of each fit). ``stalled``: it
    # stopped because no step along the direction lowered the loss; as SciPy's L-BFGS-B (an
    # abnormal termination), that is not converged.
    converged: bool = False
    stop_reason: Optional[str] = None
    stalled: bool = False
    function_evaluations: int = 0

    def __init__(
        self,
        learning_rate: float = 1.0,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        max_fun: int = 15000,
    ) -> None:
        if isinstance(learning_rate, LearningRateSchedule):
            raise TypeError(
                f"{type(self).__name__} takes a number as its learning rate (the first trial step), not "
                f"a schedule. Received: learning_rate={learning_rate!r}"
            )
        if not _validation.is_real(learning_rate) or not float(learning_rate) > 0:
            raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}")
        super().__init__(learning_rate)
        self.tolerance_grad = number(tolerance_grad, "tolerance_grad")
        self.tolerance_change = number(tolerance_change, "tolerance_change")
        self.max_fun = _validation.positive_int(max_fun, "max_fun")
        self._last: Optional[tuple[Array, float, Array]] = None  # (w, loss, gradient) of the last step

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "learning_rate": float(self.learning_rate),
            "tolerance_grad": self.tolerance_grad,
            "tolerance_change": self.tolerance_change,
            "max_fun": self.max_fun,
            **self._settings(),
        }

    def core_config(self) -> dict[str, Any]:
        # The core's trainer computes losses and gradients for this optimizer and never updates:
        # any valid settings do; these keep the learning rate readable through it.
        return {"name": "sgd", "learning_rate": float(self.learning_rate)}

    def check_model(self, model: ModelFacts) -> None:
        for name, layer in model.layers:
            if layer.dropout:
                raise ValueError(
                    f"{type(self).__name__} needs a loss that is the same at every evaluation, but "
                    f"Dense layer {name!r} is followed by Dropout(rate={layer.dropout}). Remove the "
                    "Dropout layer or use a per-batch optimizer."
                )
            if layer.norm is not None:
                raise ValueError(
                    f"{type(self).__name__} works on the kernels and biases as one vector, but Dense layer "
                    f"{name!r} is followed by BatchNormalization, whose loss changes with the batch and whose "
                    "gamma and beta are not in that vector. Use a per-batch optimizer."
                )
            if layer.input_norm is not None or layer.input_dropout:
                raise ValueError(
                    f"{type(self).__name__} works on the kernels and biases as one vector, but Dense layer "
                    f"{name!r} has a BatchNormalization on its input, whose loss changes with the batch and "
                    "whose gamma and beta are not in that vector. Use a per-batch optimizer."
                )

    def begin(self) -> None:
        """Called at the start of each ``fit``: forget the previous fit's state and counts."""
        self.converged = False
        self.stop_reason = None
        self.stalled = False
        self.function_evaluations = 0
        self._last = None
        self._reset()

    def _reset(self) -> None:
        """Forget the optimizer's own state (history, previous direction)."""

    def _step(self, objective: Objective, w: Array, loss: float, gradient: Array) -> Union[tuple[Array, float, Array], str, None]:
        """One iteration from ``w``: the new weights, loss and gradient; or the reason it stops
        without a step when one of its own tolerance tests holds (converged); or None when no
        step lowers the loss (stalled)."""
        raise NotImplementedError

    def iterate(self, objective: Objective) -> bool:
        """One iteration on ``objective`` (the model's weights are its start and its result).
        Returns whether training should stop (converged or out of budget)."""
        if objective.follow_trainable():  # another set of weights: the history is of no use
            self._last = None
            self._reset()
        w = objective.weights()
        last = self._last
        if last is not None and np.array_equal(last[0], w):
            loss, gradient = last[1], last[2]
        else:  # the first iteration, or a callback changed the weights
            loss, gradient = objective.value_and_gradient(w)
        stop = self._stop_reason_before(objective, gradient)
        if stop is None:
            try:
                result = self._step(objective, w, loss, gradient)
            except BaseException:
                objective.set_weights(w)  # no half-made step stays applied
                raise
            if result is None or isinstance(result, str):
                objective.set_weights(w)
                stop = result if result is not None else "no step along the search direction lowers the loss"
                self.converged = result is not None
                self.stalled = result is None
            else:
                w_new, loss_new, gradient_new = result
                objective.set_weights(w_new)
                w_new = objective.weights()
                self._last = (w_new, loss_new, gradient_new)
                self.engine_step()
                stop = self._stop_reason_after(objective, w, loss, w_new, loss_new, gradient_new)
        self.function_evaluations = objective.evaluations
        if stop is not None:
            self.stop_reason = stop
        return stop is not None

    def engine_step(self) -> None:
        """Count one update in the model's ``optimizer.iterations``."""
        engine = self._engine
        if engine is not None:
            engine.set_iterations(engine.iterations + 1)

    def _stop_reason_before(self, objective: Objective, gradient: Array) -> Optional[str]:
        if gradient.size == 0:
            self.converged = True
            return "the model has no trainable weights"
        if float(np.max(np.abs(gradient), initial=0.0)) <= self.tolerance_grad:
            self.converged = True
            return "the largest gradient entry is at most tolerance_grad"
        if objective.evaluations >= self.max_fun:
            return "max_fun evaluations of the loss used up"
        return None

    def _stop_reason_after(
        self, objective: Objective, w: Array, loss: float, w_new: Array, loss_new: float, gradient: Array
    ) -> Optional[str]:
        if float(np.max(np.abs(gradient), initial=0.0)) <= self.tolerance_grad:
            self.converged = True
            return "the largest gradient entry is at most tolerance_grad"
        if abs(loss - loss_new) < self.tolerance_change:
            self.converged = True
            return "the last step changed the loss by less than tolerance_change"
        if float(np.max(np.abs(w_new - w))) <= self.tolerance_change:
            self.converged = True
            return "the last step changed every weight by at most tolerance_change"
        if objective.evaluations >= self.max_fun:
            return "max_fun evaluations of the loss used up"
        return None


class FullBatchTraining:
    """One ``fit`` with a full-batch optimizer: an iteration per epoch, then the training loss
    and metrics at the new weights (evaluated in chunks of ``batch_size`` rows)."""

    def __init__(
        self,
        optimizer: FullBatchOptimizer,
        engine: Engine,
        model: ModelFacts,
        x: Array,
        y: Array,
        sample_weight: Optional[Array],
        batch_size: int,
    ) -> None:
        optimizer.check_model(model)
        _validation.check_finite(x, "x")
        self.optimizer = optimizer
        self.objective = Objective(engine, x, y, sample_weight)
        self.batch_size = batch_size
        self.stopped = False
        optimizer.begin()

    def epoch(self) -> _core.Totals:
        """One iteration, then the summed loss and metrics of the training set at the new
        weights. Sets ``stopped`` once the optimizer has converged or run out of budget."""
        self.stopped = self.optimizer.iterate(self.objective)
        objective = self.objective
        return objective.engine.evaluate(objective.x, objective.y, self.batch_size, objective.sample_weight)
