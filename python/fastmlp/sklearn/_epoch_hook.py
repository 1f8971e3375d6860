"""The callback through which an estimator's per-epoch logic (scikit-learn's convergence test,
learning-rate schedule and early stopping) runs inside one ``Sequential.fit`` call (internal)."""

from __future__ import annotations

from typing import Callable, Optional

from ..callbacks import Callback, Logs


class EpochHook(Callback):
    """Calls ``end_epoch(mean training loss of the epoch)`` after every epoch and stops the fit
    when it returns True. It defines no per-batch hook, so the core trains whole chunks of
    batches between two calls."""

    def __init__(self, end_epoch: Callable[[float], bool]) -> None:
        super().__init__()
        self.end_epoch = end_epoch

    def on_epoch_end(self, epoch: int, logs: Optional[Logs] = None) -> None:
        loss = float("nan") if logs is None else float(logs["loss"])
        if self.end_epoch(loss) and self.model is not None:
            self.model.stop_training = True
