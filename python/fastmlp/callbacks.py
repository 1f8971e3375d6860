"""Callbacks, shaped like ``keras.callbacks`` (Keras 3 names, defaults and semantics).

How they meet the training loop: ``fit`` hands the C++ core a *chunk* of batches per call (about
0.1 s of work), so Python code runs ~10 times a second, not once per batch. Hooks run at:

- ``on_train_begin`` / ``on_train_end``, ``on_epoch_begin`` / ``on_epoch_end``: always, as in
  Keras (``on_epoch_end`` gets the epoch's logs, validation metrics prefixed ``val_``; a callback
  may add entries, e.g. ``learning_rate``, which then reach ``History`` and the progress line);
- ``on_train_chunk_end(batch, logs)`` (a fastmlp addition): after every call into the core, with
  the index of the last batch trained and the running epoch logs. Cheap: it does not change how
  training is split. ``TerminateOnNaN`` uses it;
- ``on_train_batch_begin`` / ``on_train_batch_end`` (and their aliases ``on_batch_begin`` /
  ``on_batch_end``): only if some callback defines them (``wants_batch_hooks()``); training then
  returns to Python after every batch, which costs speed. The batch logs are the running means of
  the epoch so far, as in Keras 3;
- ``on_test_begin`` / ``on_test_end``: around ``evaluate`` and fit's validation pass;
  ``on_predict_begin`` / ``on_predict_end``: around ``predict``. These run the whole data set in one
  native call, unless some callback defines ``on_test_batch_begin`` / ``on_test_batch_end``
  (``on_predict_batch_begin`` / ``on_predict_batch_end``): then they run batch by batch (of
  ``batch_size`` rows, Keras's 32 by default) and call them, the test batch logs being the running
  values so far and the predict batch logs ``{"outputs": the batch's predictions}``, as in Keras 3.

Every hook gets a dict as ``logs`` (empty where there is nothing to log), as Keras 3's
``CallbackList`` gives.

``model.stop_training = True`` (from any hook) ends training after the current chunk of batches
(after the current batch when per-batch hooks are on); the epoch is then closed as in Keras:
validation, ``on_epoch_end``, ``on_train_end``.

Messages from ``verbose`` callbacks go through :func:`fastmlp._progress.print_msg`, which keeps a
live progress bar intact; Keras instead starts them with ``"\\n"``.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import warnings
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from . import _validation
from ._progress import print_msg

if TYPE_CHECKING:
    from .models import Model

Logs = dict[str, Any]

_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
_TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
_PREDICT_BATCH_HOOKS = ("on_predict_batch_begin", "on_predict_batch_end")


def _unattached(callback: Callback) -> RuntimeError:
    """The error for a hook called on a callback that fit never attached to a compiled model
    (a check, not an assert: ``python -O`` removes asserts)."""
    return RuntimeError(
        f"{type(callback).__name__} is not attached to a compiled model: pass it to "
        "fit(callbacks=[...]) instead of calling its hooks directly."
    )


class Callback:
    """Base class: override the hooks you need. ``self.model`` is the model being trained and
    ``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``verbose`` and
    ``batch_size``."""

    def __init__(self) -> None:
        self.model: Optional[Model] = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        """Called once at the start of ``fit``."""

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        """Called once at the end of ``fit`` with the last epoch's logs (not after Ctrl-C:
        ``KeyboardInterrupt`` propagates, as in Keras)."""

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called at the start of every epoch (``epoch`` counts from 0)."""

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        """Called at the end of every epoch with its logs (``val_*`` after validation)."""

    def on_train_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook (defining it makes training return to Python after every batch)."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook with the epoch's running logs (costs speed, see the module doc)."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Backwards-compatible alias of ``on_train_batch_begin`` (as in Keras)."""

    def on_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Backwards-compatible alias of ``on_train_batch_end`` (as in Keras)."""

    def on_train_chunk_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """fastmlp addition: called after every call into the core (a chunk of about 0.1 s of
        batches, or one batch when per-batch hooks are on), with the index of the last batch
        trained and the running epoch logs. Does not slow training down."""

    def on_test_begin(self, logs: Optional[Logs] = None) -> None:
        """Called before ``evaluate`` and before fit's validation pass."""

    def on_test_end(self, logs: Optional[Logs] = None) -> None:
        """Called after ``evaluate`` / the validation pass, with its (unprefixed) logs."""

    def on_predict_begin(self, logs: Optional[Logs] = None) -> None:
        """Called before ``predict``."""

    def on_predict_end(self, logs: Optional[Logs] = None) -> None:
        """Called after ``predict``."""

    def on_test_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook of ``evaluate`` and fit's validation (defining it makes them run batch
        by batch)."""

    def on_test_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook of ``evaluate`` and fit's validation, with the running logs."""

    def on_predict_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook of ``predict`` (defining it makes predict run batch by batch)."""

    def on_predict_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        """Per-batch hook of ``predict``; ``logs["outputs"]`` is the batch's predictions."""

    def _defines(self, hooks: Sequence[str]) -> bool:
        cls = type(self)
        return any(name in self.__dict__ or getattr(cls, name) is not getattr(Callback, name) for name in hooks)

    def wants_batch_hooks(self) -> bool:
        """True when this callback defines a per-batch hook: a subclass override, or a function
        set on the instance (``LambdaCallback``). Training then runs batch by batch."""
        return self._defines(_BATCH_HOOKS)

    def wants_test_batch_hooks(self) -> bool:
        """True when this callback defines ``on_test_batch_begin`` or ``on_test_batch_end``."""
        return self._defines(_TEST_BATCH_HOOKS)

    def wants_predict_batch_hooks(self) -> bool:
        """True when this callback defines ``on_predict_batch_begin`` or ``on_predict_batch_end``."""
        return self._defines(_PREDICT_BATCH_HOOKS)


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is the per-epoch list."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def set_model(self, model: Model) -> None:
        super().set_model(model)
        model.history = self

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)


def as_list(callbacks: Any) -> list[Callback]:
    """``callbacks=`` as a list: None is empty, a lone callback is accepted (Keras flattens)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(
            f"`callbacks` must be a list of fastmlp.callbacks.Callback instances. Received: {callbacks!r}"
        )
    return list(callbacks)


class CallbackList:
    """Calls each callback's hook in order (internal; ``History`` comes last, as in Keras)."""

    def __init__(
        self,
        callbacks: Union[Callback, Sequence[Callback], None],
        model: Model,
        params: dict[str, Any],
    ) -> None:
        self.callbacks = as_list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be fastmlp.callbacks.Callback instances. Received: {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batch_hooks = any(cb.wants_batch_hooks() for cb in self.callbacks)
        self.wants_test_batch_hooks = any(cb.wants_test_batch_hooks() for cb in self.callbacks)
        self.wants_predict_batch_hooks = any(cb.wants_predict_batch_hooks() for cb in self.callbacks)

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)

    def on_train_chunk_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_train_chunk_end(batch, logs)

    def on_test_begin(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_test_end(logs)

    def on_predict_begin(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_predict_end(logs)

    def on_test_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_test_batch_end(batch, logs)

    def on_predict_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_predict_batch_begin(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        logs = {} if logs is None else logs
        for cb in self.callbacks:
            cb.on_predict_batch_end(batch, logs)


# ----------------------------------------------------------------------------- monitoring


def _resolve_mode(owner: str, monitor: str, mode: str) -> str:
    """'min' or 'max'. ``auto``: maximize names containing "acc" or "auc" (accuracy,
    top_k_categorical_accuracy, auc, with or without ``val_``), minimize the rest (losses, mse,
    mae). An unknown mode warns and falls back to auto, as in Keras."""
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{owner} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
        mode = "auto"
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if ("acc" in name or "auc" in name) else "min"


def _check_monitor(monitor: Any) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(
            f"`monitor` must be the name of a logged quantity. Received: monitor={monitor!r}"
        )
    return monitor


def _save_every(save_freq: Any) -> int:
    """0 for "epoch", else the positive number of batches between saves."""
    if save_freq == "epoch":
        return 0
    if isinstance(save_freq, bool) or not isinstance(save_freq, (int, np.integer)) or save_freq < 1:
        raise ValueError(
            f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' or "
            "positive integer values"
        )
    return int(save_freq)


def _valid_factor(factor: Any) -> float:
    if not _validation.is_real(factor) or not 0 <= factor < 1.0:
        raise ValueError(
            f"ReduceLROnPlateau does not support a factor >= 1.0 (or < 0). Received factor={factor!r}"
        )
    return float(factor)


def _current_learning_rate(model: Optional[Model], owner: str) -> float:
    optimizer = None if model is None else model.optimizer
    if optimizer is None:
        raise ValueError(f"{owner} needs a compiled model with an optimizer.")
    # With a schedule this is its current value; setting the rate is then the optimizer's
    # TypeError, as in Keras.
    return float(optimizer.learning_rate)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras 3 semantics).

    An epoch improves when it beats the best value so far by more than ``min_delta``; after
    ``patience`` epochs without improvement (counted from ``start_from_epoch``) training stops.
    With a ``baseline``, the wait restarts only on epochs that also beat the baseline. With
    ``restore_best_weights``, the weights of the best epoch are put back at the end of training
    (whether or not it stopped early). ``self.stopped_epoch``/``self.best_epoch`` count from 0.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: Optional[float] = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor = _check_monitor(monitor)
        self.min_delta = abs(float(min_delta))
        self.patience = _validation.non_negative_int(patience, "patience")
        self.verbose = verbose
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _validation.non_negative_int(start_from_epoch, "start_from_epoch")
        self.mode = _resolve_mode("EarlyStopping", self.monitor, mode)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights: Optional[list[Any]] = None

    def _is_improvement(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        # Instances can be reused: every fit starts afresh (Keras 3 keeps `best` from the
        # previous fit, so a reused instance could stop a new run for not beating an old one).
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.model is None:
            raise _unattached(self)
        current = self._monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Nothing better yet: the current weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.model is None:
            raise _unattached(self)
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def _monitor_value(self, logs: Optional[Logs]) -> Optional[float]:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}",
                stacklevel=3,
            )
            return None
        return float(value)


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) after every epoch,
    or every ``save_freq`` batches.

    ``filepath`` may hold ``str.format`` fields filled from ``epoch`` (counted from 1) and the
    logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.fastmlp"`` (and ``{batch}`` with an integer
    ``save_freq``). With ``save_best_only``, a file is written only when ``monitor`` improves on
    the best value so far (``initial_value_threshold`` sets the starting best). Any file name
    works: fastmlp has one format, so unlike Keras no ``.keras``/``.weights.h5`` suffix is
    required. Saves are atomic, so an interrupted save never leaves a damaged checkpoint.

    An integer ``save_freq`` counts batches exactly, so it turns on per-batch hooks (slower
    training); ``"epoch"`` costs nothing between epochs.
    """

    def __init__(
        self,
        filepath: Union[str, os.PathLike[str]],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: Union[str, int] = "epoch",
        initial_value_threshold: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = _check_monitor(monitor)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _resolve_mode("ModelCheckpoint", self.monitor, mode)
        self._save_every = _save_every(save_freq)
        self.save_freq: Union[str, int] = "epoch" if self._save_every == 0 else self._save_every
        if initial_value_threshold is not None:
            self.best = float(initial_value_threshold)
        else:
            self.best = math.inf if self.mode == "min" else -math.inf
        self._batches_since_save = 0
        self._current_epoch = 0

    def wants_batch_hooks(self) -> bool:
        return self._save_every > 0

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if not self._save_every:
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self._save_every:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if not self._save_every:
            self._save(epoch, None, logs)

    def _file_path(self, epoch: int, batch: Optional[int], logs: Logs) -> str:
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in logs:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as error:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {error!r}. '
                f"Available fields: {', '.join(sorted(fields))}"
            ) from None

    def _should_save(self, epoch: int, logs: Logs, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"Epoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=4)
            return True
        current = float(current)
        better = current < self.best if self.mode == "min" else current > self.best
        if better:
            if self.verbose > 0:
                print_msg(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
        return False

    def _save(self, epoch: int, batch: Optional[int], logs: Optional[Logs]) -> None:
        if self.model is None:
            raise _unattached(self)
        logs = logs or {}
        filepath = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                "Please specify a non-directory filepath for ModelCheckpoint. "
                f"Filepath used is an existing directory: {filepath}"
            )
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs; then wait ``cooldown`` epochs; never below ``min_lr``.
    Adds ``learning_rate`` (the rate in effect during the epoch) to the epoch's logs, as Keras.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        self.monitor = _check_monitor(monitor)
        self.factor = _valid_factor(factor)
        self.patience = _validation.non_negative_int(patience, "patience")
        self.verbose = verbose
        self.mode = _resolve_mode("Learning rate reduction", self.monitor, mode)
        self.min_delta = float(min_delta)
        self.cooldown = _validation.non_negative_int(cooldown, "cooldown")
        self.min_lr = _validation.non_negative_number(min_lr, "min_lr")
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def _improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.model is None or self.model.optimizer is None:
            raise _unattached(self)
        logs = logs if logs is not None else {}
        old_lr = _current_learning_rate(self.model, "ReduceLROnPlateau")
        logs["learning_rate"] = old_lr
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        current = float(current)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                # Compared in float32 as Keras does: a rate stored as float32 may sit a hair
                # above a min_lr given as a double.
                if _float32(old_lr) > _float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print_msg(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def _float32(value: float) -> float:
    return float(np.float32(value))


class LearningRateScheduler(Callback):
    """Before every epoch, set the learning rate to ``schedule(epoch, lr)`` (``epoch`` counts
    from 0, ``lr`` is the current rate; a one-argument ``schedule(epoch)`` also works, as in
    Keras). Adds ``learning_rate`` to the epoch's logs."""

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"`schedule` must be a function (epoch, lr) -> lr. Received: {schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose
        self._two_args = _accepts_two_arguments(schedule)

    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.model is None or self.model.optimizer is None:
            raise _unattached(self)
        lr = _current_learning_rate(self.model, "LearningRateScheduler")
        new_lr = self.schedule(epoch, lr) if self._two_args else self.schedule(epoch)
        # Keras accepts Python and NumPy floats; any real number is taken here.
        if not _validation.is_real(new_lr):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {new_lr!r}"
            )
        try:
            new_lr = float(new_lr)
        except OverflowError:  # an int beyond float's range
            raise ValueError(
                f"The output of the `schedule` function is beyond float's range: {str(new_lr)[:20]}... "
                f"({len(str(new_lr))} digits) at epoch {epoch}."
            ) from None
        self.model.optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(
                f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr}."
            )

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_learning_rate(self.model, "LearningRateScheduler")


def _accepts_two_arguments(function: Callable[..., Any]) -> bool:
    """Whether ``function(epoch, lr)`` is a valid call. Keras tries it and falls back to
    ``function(epoch)`` on TypeError, which also hides TypeErrors raised inside the schedule;
    the signature answers the question without calling."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature
        return True
    try:
        signature.bind(0, 0.0)
    except TypeError:
        return False
    return True


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Keras checks every batch; fastmlp checks the running epoch loss after every call into the
    core (``on_train_chunk_end``), so it costs no speed. A non-finite batch loss makes the running
    mean non-finite for the rest of the epoch, so nothing is missed: training stops at most one
    chunk (about 0.1 s of batches) after the first bad batch, with weights that are already
    non-finite anyway. When another callback turns on per-batch hooks, the check runs every
    batch, exactly as Keras. ``raise_error=True`` raises ``RuntimeError`` instead, skipping
    ``on_train_end``.
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_train_chunk_end(self, batch: int, logs: Optional[Logs] = None) -> None:
        if self.model is None:
            raise _unattached(self)
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                "Terminating training immediately."
            )
        print_msg(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 0) then the logged values in alphabetical
    order (``NA`` where an epoch lacks one). ``append=True`` continues an existing file (without
    a second header). The file is flushed after every row and closed at the end of training."""

    def __init__(
        self, filename: Union[str, os.PathLike[str]], separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: Optional[list[str]] = None
        self.append_header = True
        self.csv_file: Optional[IO[str]] = None
        self.writer: Any = None

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, encoding="utf-8") as existing:
                    self.append_header = not existing.readline()
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        if self.csv_file is None:
            raise RuntimeError("CSVLogger.on_epoch_end was called before on_train_begin opened the file.")
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            # Keras 3's rule: first logs without val_ entries (no validation, or validation_freq
            # skipped the first epoch) reserve a val_ column for each (written "NA" when absent).
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend("val_" + key for key in list(self.keys))
        if self.writer is None:
            self.writer = csv.writer(self.csv_file, delimiter=self.sep, lineterminator="\n")
            if self.append_header:
                self.writer.writerow(["epoch", *self.keys])
        self.writer.writerow([epoch, *(_csv_value(logs.get(key, "NA")) for key in self.keys)])
        self.csv_file.flush()

    def on_train_end(self, logs: Optional[Logs] = None) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _csv_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if hasattr(value, "__iter__") and getattr(value, "ndim", 1) != 0:
        return f"[{', '.join(map(str, value))}]"
    return value


class LambdaCallback(Callback):
    """A callback from plain functions: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``; other hooks by
    keyword (``on_train_chunk_end=...``). Only the batch functions turn on per-batch training."""

    def __init__(
        self,
        on_epoch_begin: Optional[Callable[[int, Logs], Any]] = None,
        on_epoch_end: Optional[Callable[[int, Logs], Any]] = None,
        on_train_begin: Optional[Callable[[Logs], Any]] = None,
        on_train_end: Optional[Callable[[Logs], Any]] = None,
        on_train_batch_begin: Optional[Callable[[int, Logs], Any]] = None,
        on_train_batch_end: Optional[Callable[[int, Logs], Any]] = None,
        **kwargs: Callable[..., Any],
    ) -> None:
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if function is None:
                continue
            if not (name.startswith("on_") and callable(getattr(Callback, name, None))):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}.")
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be callable. Received: {function!r}")
            setattr(self, name, function)


__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]
