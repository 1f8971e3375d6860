"""Callbacks (deliverable 7): the hooks fit calls, and each Keras callback against a hand
computation of Keras 3's rules."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import callbacks as cbs

N, BATCH = 64, 8  # 8 batches per epoch
STEPS = N // BATCH


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5).astype(np.int64)
    return x, y


X, Y = data()


def make_model(
    optimizer: Any = None, metrics: tuple[str, ...] = ("accuracy",), seed: int = 0
) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(4,)),
            fm.layers.Dense(8, activation="relu"),
            fm.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer if optimizer is not None else fm.optimizers.SGD(0.1),
        "sparse_categorical_crossentropy",
        metrics=list(metrics),
    )
    return model


def same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


class Recorder(cbs.Callback):
    """Records every hook call (per-batch hooks included, so training runs batch by batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []

    def on_train_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("train_begin",))

    def on_train_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("train_end", dict(logs or {})))

    def on_epoch_begin(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("epoch_end", epoch, dict(logs or {})))

    def on_train_batch_begin(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("batch_end", batch, dict(logs or {})))

    def on_test_begin(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("test_begin",))

    def on_test_end(self, logs: Optional[dict[str, Any]] = None) -> None:
        self.calls.append(("test_end", dict(logs or {})))

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


class ChunkCounter(cbs.Callback):
    """Counts calls into the core (on_train_chunk_end never forces per-batch training)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def on_train_chunk_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        self.batches.append(batch)


# ----------------------------------------------------------------------------- the base class


def test_hooks_run_in_keras_order_with_running_batch_logs() -> None:
    model = make_model()
    recorder = Recorder()
    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=2,
        verbose=0,
        validation_data=(X[:16], Y[:16]),
        callbacks=[recorder],
    )
    per_epoch = (
        ["epoch_begin"]
        + ["batch_begin", "batch_end"] * STEPS
        + ["test_begin", "test_end", "epoch_end"]
    )
    assert recorder.names() == ["train_begin", *per_epoch, *per_epoch, "train_end"]
    batch_ends = [c for c in recorder.calls if c[0] == "batch_end"]
    assert [c[1] for c in batch_ends] == list(range(STEPS)) * 2
    # Per-batch logs are the running means of the epoch; the last one is the epoch's value.
    epoch_ends = [c for c in recorder.calls if c[0] == "epoch_end"]
    assert batch_ends[STEPS - 1][2]["loss"] == pytest.approx(epoch_ends[0][2]["loss"], rel=1e-12)
    assert set(epoch_ends[0][2]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # Validation logs reach on_test_end unprefixed; on_train_end gets the last epoch's logs.
    test_end = [c for c in recorder.calls if c[0] == "test_end"][1]
    assert test_end[1]["loss"] == epoch_ends[1][2]["val_loss"]
    assert recorder.calls[-1][1] == epoch_ends[1][2]
    assert history.history["loss"] == [c[2]["loss"] for c in epoch_ends]
    assert recorder.params["epochs"] == 2 and recorder.params["steps"] == STEPS
    assert recorder.model is model and model.history is history


def test_only_batch_hooks_make_training_go_batch_by_batch() -> None:
    class EpochOnly(cbs.Callback):
        def on_epoch_end(self, epoch: int, logs: Optional[dict[str, Any]] = None) -> None:
            pass

    class OldStyle(cbs.Callback):  # the Keras 2 alias also counts
        def on_batch_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
            pass

    assert not EpochOnly().wants_batch_hooks()
    assert OldStyle().wants_batch_hooks()
    assert not cbs.LambdaCallback(
        on_epoch_end=lambda e, logs: None, on_train_end=lambda logs: None
    ).wants_batch_hooks()
    assert cbs.LambdaCallback(on_train_batch_end=lambda b, logs: None).wants_batch_hooks()
    assert cbs.LambdaCallback(on_train_batch_begin=lambda b, logs: None).wants_batch_hooks()
    assert not cbs.EarlyStopping().wants_batch_hooks()
    assert not cbs.TerminateOnNaN().wants_batch_hooks()
    assert not cbs.ModelCheckpoint("m.fastmlp").wants_batch_hooks()
    assert cbs.ModelCheckpoint("m.fastmlp", save_freq=5).wants_batch_hooks()

    x = np.tile(X, (8, 1))
    y = np.tile(Y, 8)  # 64 batches of 8
    chunked = ChunkCounter()
    make_model().fit(x, y, batch_size=BATCH, verbose=0, callbacks=[EpochOnly(), chunked])
    assert chunked.batches[-1] == 63 and len(chunked.batches) < 64  # chunks grow 1, 4, 16, ...
    stepped = ChunkCounter()
    ends: list[int] = []
    lam = cbs.LambdaCallback(on_train_batch_end=lambda b, logs: ends.append(b))
    make_model().fit(x, y, batch_size=BATCH, verbose=0, callbacks=[lam, stepped])
    assert stepped.batches == list(range(64)) and ends == list(range(64))


def test_chunked_and_per_batch_training_give_identical_weights() -> None:
    plain, stepped = make_model(seed=3), make_model(seed=3)
    plain.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0)
    stepped.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[Recorder()])
    assert same_weights(plain.get_weights(), stepped.get_weights())


def test_stop_training_from_a_batch_hook_closes_the_epoch() -> None:
    model = make_model()

    def stop(batch: int, logs: Any) -> None:
        if batch == 2:
            model.stop_training = True

    recorder = Recorder()
    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=5,
        verbose=0,
        callbacks=[cbs.LambdaCallback(on_train_batch_end=stop), recorder],
    )
    assert model.optimizer.iterations == 3
    assert (
        len(history.history["loss"]) == 1
    )  # the epoch still ends (logs, on_epoch_end), as in Keras
    assert recorder.names()[-2:] == ["epoch_end", "train_end"]


def test_stop_training_from_epoch_end_and_a_chunk_hook() -> None:
    model = make_model()
    stopper = cbs.LambdaCallback(
        on_epoch_end=lambda e, logs: setattr(model, "stop_training", e == 1)
    )
    history = model.fit(X, Y, batch_size=BATCH, epochs=5, verbose=0, callbacks=[stopper])
    assert history.epoch == [0, 1] and model.optimizer.iterations == 2 * STEPS
    # A chunk hook stops within the epoch without per-batch training.
    model = make_model()
    chunk_stop = cbs.LambdaCallback(
        on_train_chunk_end=lambda b, logs: setattr(model, "stop_training", True)
    )
    assert not chunk_stop.wants_batch_hooks()
    history = model.fit(X, Y, batch_size=BATCH, epochs=5, verbose=0, callbacks=[chunk_stop])
    assert (
        model.optimizer.iterations == 1 and len(history.epoch) == 1
    )  # the first chunk is one batch
    # The next fit starts afresh.
    model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0)
    assert model.optimizer.iterations == 1 + STEPS


def test_history_initial_epoch_and_single_callback() -> None:
    model = make_model()
    seen: list[int] = []
    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=4,
        initial_epoch=2,
        verbose=0,
        callbacks=cbs.LambdaCallback(
            on_epoch_begin=lambda e, logs: seen.append(e)
        ),  # a lone callback, as Keras accepts
    )
    assert seen == [2, 3] and history.epoch == [2, 3] and len(history.history["loss"]) == 2


def test_bad_callbacks_are_refused() -> None:
    model = make_model()
    with pytest.raises(TypeError, match="Callback instances"):
        model.fit(X, Y, verbose=0, callbacks=[lambda: None])
    with pytest.raises(TypeError, match="list"):
        model.fit(X, Y, verbose=0, callbacks="EarlyStopping")
    with pytest.raises(ValueError, match="unknown hook"):
        cbs.LambdaCallback(on_epoch_ending=lambda e, logs: None)


def test_evaluate_and_predict_call_their_hooks() -> None:
    model = make_model()
    calls: list[tuple[str, Any]] = []
    cb = cbs.LambdaCallback(
        on_test_begin=lambda logs: calls.append(("test_begin", logs)),
        on_test_end=lambda logs: calls.append(("test_end", dict(logs))),
        on_predict_begin=lambda logs: calls.append(("predict_begin", logs)),
        on_predict_end=lambda logs: calls.append(("predict_end", logs)),
    )
    loss, accuracy = model.evaluate(X, Y, verbose=0, callbacks=[cb])
    model.predict(X, verbose=0, callbacks=[cb])
    assert [c[0] for c in calls] == ["test_begin", "test_end", "predict_begin", "predict_end"]
    assert calls[1][1] == {"loss": loss, "accuracy": accuracy}


def test_keyboard_interrupt_from_a_hook_propagates_without_train_end() -> None:
    model = make_model()
    recorder = Recorder()

    def interrupt(batch: int, logs: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(
            X,
            Y,
            batch_size=BATCH,
            epochs=3,
            verbose=0,
            callbacks=[recorder, cbs.LambdaCallback(on_train_chunk_end=interrupt)],
        )
    assert "train_end" not in recorder.names()  # Keras does not run on_train_end either
    assert model.optimizer.iterations == 1
    assert all(np.isfinite(w).all() for w in model.get_weights())
    model.fit(X, Y, batch_size=BATCH, verbose=0)  # and the model trains on
    assert model.optimizer.iterations == 1 + STEPS


# ----------------------------------------------------------------------------- monitoring


def drive(
    callback: cbs.Callback, model: fm.Sequential, values: list[float], key: str = "val_loss"
) -> Optional[int]:
    """Run the epoch-end hook over ``values`` as fit would; the epoch training stopped at."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {key: value})
        if model.stop_training:
            callback.on_train_end()
            return epoch
    callback.on_train_end()
    return None


@pytest.mark.parametrize(
    ("kwargs", "values", "stopped"),
    [
        ({"patience": 2}, [0.5, 0.4, 0.45, 0.41, 0.39], 3),
        ({"patience": 1}, [1.0, 0.96, 0.9, 0.89, 0.88, 0.88], 5),
        ({"patience": 1, "min_delta": 0.05}, [1.0, 0.96, 0.9, 0.89, 0.88], 1),
        ({"patience": 1, "min_delta": -0.05}, [1.0, 0.96, 0.9, 0.89, 0.88], 1),  # |min_delta|
        ({"patience": 2}, [0.9, 0.8, 0.7, 0.72, 0.71], 4),
        ({"patience": 2, "baseline": 0.5}, [0.9, 0.8, 0.7, 0.72, 0.71], 3),
        ({"patience": 0}, [5, 6, 7, 8, 9], 1),
        ({"patience": 0, "start_from_epoch": 2}, [5, 6, 7, 8, 9], 3),
        ({"patience": 0}, [0.1], None),  # epoch 0 never stops
        ({"patience": 3}, [3, 2, 1, 0.5], None),
    ],
)
def test_early_stopping_against_hand_computation(
    kwargs: dict[str, Any], values: list[float], stopped: Optional[int]
) -> None:
    callback = cbs.EarlyStopping(**kwargs)
    assert drive(callback, make_model(), values) == stopped
    assert callback.stopped_epoch == (stopped or 0)


def test_early_stopping_directions() -> None:
    model = make_model()
    assert (
        drive(cbs.EarlyStopping(monitor="val_accuracy"), model, [0.5, 0.6, 0.55], "val_accuracy")
        == 2
    )
    assert drive(cbs.EarlyStopping(monitor="val_accuracy"), model, [0.5, 0.4], "val_accuracy") == 1
    assert (
        drive(cbs.EarlyStopping(monitor="auc", patience=0), model, [0.5, 0.6, 0.7], "auc") is None
    )
    assert (
        drive(cbs.EarlyStopping(monitor="mae", patience=0), model, [0.5, 0.4, 0.3], "mae") is None
    )
    assert (
        drive(
            cbs.EarlyStopping(monitor="val_accuracy", mode="min"), model, [0.5, 0.6], "val_accuracy"
        )
        == 1
    )
    assert drive(cbs.EarlyStopping(monitor="loss", mode="max"), model, [0.5, 0.4], "loss") == 1
    with pytest.warns(UserWarning, match="mode 'fastest' is unknown"):
        callback = cbs.EarlyStopping(mode="fastest")
    assert callback.mode == "min"


def test_early_stopping_warns_on_a_missing_metric() -> None:
    model = make_model()
    with pytest.warns(
        UserWarning,
        match=r"metric `val_loss` which is not available. Available metrics are: accuracy,loss",
    ):
        history = model.fit(
            X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[cbs.EarlyStopping(patience=0)]
        )
    assert len(history.epoch) == 2  # no stop without the metric


def test_early_stopping_restores_the_best_weights(capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model()
    snapshots: list[list[np.ndarray]] = []
    snap = cbs.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    # Training loss falls, so in "max" mode epoch 0 is the best; patience 2 stops at epoch 2.
    stopper = cbs.EarlyStopping(
        monitor="loss", mode="max", patience=2, restore_best_weights=True, verbose=1
    )
    history = model.fit(X, Y, batch_size=BATCH, epochs=10, verbose=0, callbacks=[snap, stopper])
    assert history.history["loss"][0] > history.history["loss"][1] > history.history["loss"][2]
    assert history.epoch == [0, 1, 2]
    assert stopper.stopped_epoch == 2 and stopper.best_epoch == 0
    assert same_weights(model.get_weights(), snapshots[0])
    assert not same_weights(model.get_weights(), snapshots[2])
    assert capsys.readouterr().out == (
        "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 1.\n"
    )
    # Reused: a new fit starts from scratch (best, wait and weights).
    model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[stopper])
    assert stopper.best_epoch == 0 and stopper.stopped_epoch == 0


def test_early_stopping_restores_even_without_stopping() -> None:
    model = make_model()
    snapshots: list[list[np.ndarray]] = []
    snap = cbs.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    stopper = cbs.EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True)
    model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[snap, stopper])
    assert same_weights(model.get_weights(), snapshots[0])


def test_reduce_lr_on_plateau_against_hand_computation(capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model(fm.optimizers.SGD(0.1))
    callback = cbs.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.01, verbose=1)
    callback.set_model(model)
    callback.on_train_begin()
    values = [1.0] * 5 + [0.5] * 7
    rates, logged = [], []
    for epoch, value in enumerate(values):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        rates.append(model.optimizer.learning_rate)
    # e2: reduce; e3 cooldown; e4: reduce; e5 improves; e7, e9: reduce (floored); e11: at min_lr.
    expected = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125, 0.01, 0.01, 0.01]
    assert rates == pytest.approx(expected, rel=1e-6)
    assert logged == pytest.approx([0.1, *expected[:-1]], rel=1e-6)  # the rate the epoch used
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.05."
    assert len(out) == 4 and out[-1].startswith(
        "Epoch 10: ReduceLROnPlateau reducing learning rate to 0.01"
    )


def test_reduce_lr_on_plateau_in_fit_changes_the_core_rate() -> None:
    model = make_model(fm.optimizers.SGD(0.2))
    # In "max" mode a falling loss never improves after epoch 0: the rate halves every epoch.
    callback = cbs.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1)
    history = model.fit(X, Y, batch_size=BATCH, epochs=4, verbose=0, callbacks=[callback])
    assert history.history["learning_rate"] == pytest.approx([0.2, 0.2, 0.1, 0.05], rel=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.025, rel=1e-6)
    # Mode inference: accuracy is maximized.
    assert cbs.ReduceLROnPlateau(monitor="val_accuracy").mode == "max"
    assert cbs.ReduceLROnPlateau().mode == "min"
    with pytest.raises(ValueError, match="factor"):
        cbs.ReduceLROnPlateau(factor=1.0)
    with pytest.warns(UserWarning, match="conditioned on metric `val_loss`"):
        model.fit(X, Y, batch_size=BATCH, verbose=0, callbacks=[cbs.ReduceLROnPlateau()])


# ----------------------------------------------------------------------------- learning rate


def test_learning_rate_scheduler_sets_the_rate_before_each_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = make_model(fm.optimizers.SGD(0.1))
    seen: list[tuple[int, float]] = []

    def schedule(epoch: int, lr: float) -> float:
        seen.append((epoch, lr))
        return lr if epoch == 0 else lr * 0.5

    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=3,
        verbose=0,
        callbacks=[cbs.LearningRateScheduler(schedule, verbose=1)],
    )
    assert [e for e, _ in seen] == [0, 1, 2]
    assert [lr for _, lr in seen] == pytest.approx([0.1, 0.1, 0.05], rel=1e-6)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025], rel=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.025, rel=1e-6)
    assert (
        capsys.readouterr().out.splitlines()[1]
        == "Epoch 2: LearningRateScheduler setting learning rate to 0.05."
    )


def test_learning_rate_scheduler_rate_reaches_the_core() -> None:
    # A zero rate for epoch 1 leaves the weights untouched through that epoch.
    model = make_model(fm.optimizers.SGD(0.1))
    snapshots: list[list[np.ndarray]] = []
    snap = cbs.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    scheduler = cbs.LearningRateScheduler(
        lambda epoch: 0.0 if epoch == 1 else 0.1
    )  # the one-argument form
    model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[scheduler, snap])
    assert same_weights(snapshots[0], snapshots[1])
    assert not same_weights(snapshots[1], snapshots[2])


def test_learning_rate_scheduler_errors() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(X, Y, verbose=0, callbacks=[cbs.LearningRateScheduler(lambda e, lr: "fast")])
    with pytest.raises(ValueError, match=r"beyond float's range: 1358298529.*\(332 digits\) at epoch 0"):
        model.fit(X, Y, verbose=0, callbacks=[cbs.LearningRateScheduler(lambda e, lr: 2**1100)])

    def broken(epoch: int, lr: float) -> float:
        raise TypeError("a bug inside the schedule")

    with pytest.raises(TypeError, match="a bug inside the schedule"):  # not masked by a retry
        model.fit(X, Y, verbose=0, callbacks=[cbs.LearningRateScheduler(broken)])
    scheduled = make_model(
        fm.optimizers.SGD(fm.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    )
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        scheduled.fit(X, Y, verbose=0, callbacks=[cbs.LearningRateScheduler(lambda e, lr: lr)])


# ----------------------------------------------------------------------------- TerminateOnNaN


def diverging_model() -> fm.Sequential:
    fm.utils.set_random_seed(0)
    model = fm.Sequential(
        [fm.layers.Input(shape=(4,)), fm.layers.Dense(8, activation="relu"), fm.layers.Dense(1)]
    )
    model.compile(fm.optimizers.SGD(1e4), "mse")
    return model


def test_terminate_on_nan_stops_after_the_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    x = np.tile(X, (8, 1))
    y = np.tile(X[:, :1], (8, 1)) * 3.0  # 64 batches per epoch
    model = diverging_model()
    chunks = ChunkCounter()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[cbs.TerminateOnNaN(), chunks]
    )
    assert len(history.history["loss"]) == 1 and not math.isfinite(history.history["loss"][0])
    assert (
        model.optimizer.iterations == chunks.batches[-1] + 1 < 64
    )  # stopped within the first epoch
    assert len(chunks.batches) < model.optimizer.iterations or model.optimizer.iterations == 1
    assert (
        capsys.readouterr().out
        == f"Batch {chunks.batches[-1]}: Invalid loss, terminating training\n"
    )
    # Healthy training is not stopped.
    healthy = make_model()
    history = healthy.fit(
        X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[cbs.TerminateOnNaN()]
    )
    assert len(history.epoch) == 2


def test_terminate_on_nan_with_batch_hooks_stops_after_the_first_bad_batch() -> None:
    x = np.tile(X, (8, 1))
    y = np.tile(X[:, :1], (8, 1)) * 3.0
    model = diverging_model()
    losses: list[float] = []
    record = cbs.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"]))
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[record, cbs.TerminateOnNaN()])
    assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])
    assert model.optimizer.iterations == len(losses)  # Keras's behaviour: the bad batch is the last


def test_terminate_on_nan_raise_error() -> None:
    x = np.tile(X, (8, 1))
    y = np.tile(X[:, :1], (8, 1)) * 3.0
    recorder = Recorder()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch"):
        diverging_model().fit(
            x,
            y,
            batch_size=BATCH,
            verbose=0,
            callbacks=[cbs.TerminateOnNaN(raise_error=True), recorder],
        )
    assert "train_end" not in recorder.names()


# ----------------------------------------------------------------------------- ModelCheckpoint


def test_model_checkpoint_formats_names_and_saves_every_epoch(tmp_path: Path) -> None:
    model = make_model()
    pattern = str(tmp_path / "sub" / "ck-{epoch:02d}-{loss:.3f}.fastmlp")  # the folder is created
    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=3,
        verbose=0,
        callbacks=[cbs.ModelCheckpoint(pattern, monitor="loss")],
    )
    expected = {
        f"ck-{e + 1:02d}-{loss:.3f}.fastmlp" for e, loss in enumerate(history.history["loss"])
    }
    assert {p.name for p in (tmp_path / "sub").iterdir()} == expected
    last = fm.models.load_model(
        tmp_path / "sub" / f"ck-03-{history.history['loss'][2]:.3f}.fastmlp"
    )
    assert same_weights(last.get_weights(), model.get_weights())
    assert last.optimizer is not None and last.optimizer.iterations == 3 * STEPS


def test_model_checkpoint_save_best_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_model()
    path = tmp_path / "best.fastmlp"
    snapshots: list[list[np.ndarray]] = []
    snap = cbs.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(model.get_weights()))
    # "max" on a falling loss: only epoch 0 is ever the best.
    checkpoint = cbs.ModelCheckpoint(
        path, monitor="loss", mode="max", save_best_only=True, verbose=1
    )
    history = model.fit(X, Y, batch_size=BATCH, epochs=3, verbose=0, callbacks=[snap, checkpoint])
    saved = fm.models.load_model(path)
    assert same_weights(saved.get_weights(), snapshots[0])
    losses = history.history["loss"]
    assert capsys.readouterr().out.splitlines() == [
        f"Epoch 1: loss improved from -inf to {losses[0]:.5f}, saving model to {path}",
        f"Epoch 2: loss did not improve from {losses[0]:.5f}",
        f"Epoch 3: loss did not improve from {losses[0]:.5f}",
    ]
    # "min" follows the falling loss and keeps the newest.
    model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=2,
        verbose=0,
        callbacks=[cbs.ModelCheckpoint(path, monitor="loss", save_best_only=True)],
    )
    assert same_weights(fm.models.load_model(path).get_weights(), model.get_weights())


def test_model_checkpoint_initial_value_threshold(tmp_path: Path) -> None:
    path = tmp_path / "never.fastmlp"
    checkpoint = cbs.ModelCheckpoint(
        path, monitor="loss", save_best_only=True, initial_value_threshold=0.0
    )
    make_model().fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[checkpoint])
    assert not path.exists()


def test_model_checkpoint_weights_only(tmp_path: Path) -> None:
    model = make_model()
    path = tmp_path / "w.fastmlp"
    model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=1,
        verbose=0,
        callbacks=[cbs.ModelCheckpoint(path, save_weights_only=True, monitor="loss")],
    )
    fresh = make_model(seed=9)
    assert not same_weights(fresh.get_weights(), model.get_weights())
    fresh.load_weights(path)
    assert same_weights(fresh.get_weights(), model.get_weights())
    with pytest.raises(fm.saving.FileFormatError, match="holds only weights"):
        fm.models.load_model(path)


def test_model_checkpoint_save_freq_in_batches(tmp_path: Path) -> None:
    model = make_model()
    checkpoint = cbs.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.fastmlp"), save_freq=3)
    model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[checkpoint])
    # 16 batches over 2 epochs of 8: saves after batches 3, 6, 9, 12, 15 of the run.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["b-1-3.fastmlp", "b-1-6.fastmlp", "b-2-1.fastmlp", "b-2-4.fastmlp", "b-2-7.fastmlp"]
    )
    assert fm.models.load_model(tmp_path / "b-1-3.fastmlp").optimizer.iterations == 3
    with pytest.raises(ValueError, match="save_freq"):
        cbs.ModelCheckpoint("x.fastmlp", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        cbs.ModelCheckpoint("x.fastmlp", save_freq=0)


def test_model_checkpoint_errors_and_warnings(tmp_path: Path) -> None:
    model = make_model()
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        model.fit(
            X,
            Y,
            verbose=0,
            callbacks=[cbs.ModelCheckpoint(str(tmp_path / "{val_loss:.2f}.fastmlp"))],
        )
    path = tmp_path / "m.fastmlp"
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        model.fit(X, Y, verbose=0, callbacks=[cbs.ModelCheckpoint(path, save_best_only=True)])
    assert path.exists()  # saved anyway, as Keras 3
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="non-directory filepath"):
        model.fit(X, Y, verbose=0, callbacks=[cbs.ModelCheckpoint(tmp_path / "folder")])


# ----------------------------------------------------------------------------- CSVLogger


def read_csv(path: Path, separator: str = ",") -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter=separator))


def test_csv_logger_writes_a_row_per_epoch(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    model = make_model()
    history = model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=3,
        verbose=0,
        validation_split=0.25,
        callbacks=[cbs.CSVLogger(path)],
    )
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]
    for i, row in enumerate(rows[1:]):
        assert [float(v) for v in row[1:]] == [
            history.history[k][i] for k in rows[0][1:]
        ]  # exact (repr)
    assert b"\r" not in path.read_bytes()
    # append=True continues the file without a second header; a new separator applies.
    model.fit(
        X,
        Y,
        batch_size=BATCH,
        epochs=2,
        verbose=0,
        validation_split=0.25,
        callbacks=[cbs.CSVLogger(path, append=True)],
    )
    rows = read_csv(path)
    assert len(rows) == 6 and rows.count(rows[0]) == 1 and [r[0] for r in rows[4:]] == ["0", "1"]
    # append=False starts over.
    model.fit(
        X, Y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[cbs.CSVLogger(path, separator=";")]
    )
    # Keras 3: first logs without val_ entries reserve val_ columns, written "NA".
    assert read_csv(path, ";") == [
        ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"],
        [
            "0",
            *(
                repr(v)
                for v in (model.history.history["accuracy"][0], model.history.history["loss"][0])
            ),
            "NA",
            "NA",
        ],
    ]


def test_csv_logger_fills_missing_values_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    logger = cbs.CSVLogger(path)
    model = make_model()
    extra = cbs.LambdaCallback(
        on_epoch_end=lambda e, logs: logs.pop("accuracy") if e == 1 else None
    )
    model.fit(X, Y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[extra, logger])
    rows = read_csv(path)
    assert rows[2][1] == "NA"
    assert logger.csv_file is not None and logger.csv_file.closed


# ----------------------------------------------------------------------------- arguments

BAD_ARGUMENTS = [
    (cbs.EarlyStopping, {"patience": -1}, "`patience` must be an integer >= 0"),
    (cbs.EarlyStopping, {"patience": 1.5}, "`patience` must be an integer >= 0"),
    (cbs.EarlyStopping, {"start_from_epoch": True}, "`start_from_epoch` must be an integer >= 0"),
    (cbs.ReduceLROnPlateau, {"cooldown": -2}, "`cooldown` must be an integer >= 0"),
    (cbs.ReduceLROnPlateau, {"min_lr": -0.1}, "`min_lr` must be a finite number >= 0"),
    (cbs.ReduceLROnPlateau, {"min_lr": math.nan}, "`min_lr` must be a finite number >= 0"),
    (cbs.ReduceLROnPlateau, {"min_lr": 10**400}, "`min_lr` must be a finite number >= 0"),
    (cbs.ReduceLROnPlateau, {"factor": np.float32(1.5)}, "factor >= 1.0"),
    (cbs.ReduceLROnPlateau, {"factor": 10**400}, "factor >= 1.0"),
]


@pytest.mark.parametrize(("cls", "kwargs", "message"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_with_the_shared_messages(cls: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_numpy_numbers_are_arguments_like_python_ones() -> None:
    stopping = cbs.EarlyStopping(patience=np.int64(3), start_from_epoch=np.int32(1))
    assert (stopping.patience, stopping.start_from_epoch) == (3, 1)
    reducer = cbs.ReduceLROnPlateau(factor=np.float64(0.5), cooldown=np.uint8(2), min_lr=np.float32(0.25))
    assert (reducer.factor, reducer.cooldown, reducer.min_lr) == (0.5, 2, 0.25)
