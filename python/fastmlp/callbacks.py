"""Callbacks, shaped like ``keras.callbacks``: hooks the training loop calls between epochs
(and, only for callbacks that define them, between batches: those cost speed, since training
then returns to Python after every batch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from .models import Sequential

Logs = dict[str, float]


class Callback:
    """Base class: override the hooks you need. ``self.model`` is the model being trained."""

    def __init__(self) -> None:
        self.model: Optional[Sequential] = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Sequential) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Optional[Logs] = None) -> None: ...
    def on_train_end(self, logs: Optional[Logs] = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Optional[Logs] = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: Optional[Logs] = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: Optional[Logs] = None) -> None: ...

    def wants_batch_hooks(self) -> bool:
        """True when a subclass overrides a per-batch hook."""
        cls = type(self)
        return (
            cls.on_train_batch_begin is not Callback.on_train_batch_begin
            or cls.on_train_batch_end is not Callback.on_train_batch_end
        )


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is the per-epoch list."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Optional[Logs] = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)


class CallbackList:
    """Calls each callback's hook in order (internal)."""

    def __init__(self, callbacks: Sequence[Callback], model: Sequential, params: dict[str, Any]):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be fastmlp.callbacks.Callback instances. Received: {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batch_hooks = any(cb.wants_batch_hooks() for cb in self.callbacks)

    def __getattr__(self, hook: str) -> Any:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)

        return call
