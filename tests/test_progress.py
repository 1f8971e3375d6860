"""Progress output like Keras 3 (deliverable 8): exact lines from fixed timings, and the output of
fit/evaluate/predict to a pipe (plain lines) and to a terminal (redraws and colours)."""

from __future__ import annotations

import io
import re
import sys
from typing import Any

import numpy as np
import pytest

import fastmlp as fm
from fastmlp import _progress
from fastmlp import callbacks as cbs
from fastmlp._progress import (
    Progbar,
    format_duration_per_step,
    format_eta,
    format_logs,
    format_value,
)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every control character but \t and \n
NUM = r"-?\d+\.\d{4}"
PER_STEP = r"\d+(?:us|ms|s)/step"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class AsciiPipe(io.StringIO):
    encoding = "ascii"


@pytest.fixture(autouse=True)
def colours_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)


def make_model(metrics: tuple[str, ...] = ("accuracy",)) -> fm.Sequential:
    fm.utils.set_random_seed(0)
    model = fm.Sequential(
        [
            fm.layers.Input(shape=(4,)),
            fm.layers.Dense(8, activation="relu"),
            fm.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(fm.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=list(metrics))
    return model


rng = np.random.default_rng(0)
X = rng.standard_normal((80, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


# ----------------------------------------------------------------------------- formatting


def test_time_per_step_units_as_keras() -> None:
    assert format_duration_per_step(2.4) == "2s/step"
    assert format_duration_per_step(1.0) == "1s/step"
    assert format_duration_per_step(0.0) == "0s/step"
    assert format_duration_per_step(0.0015) == "2ms/step"
    assert format_duration_per_step(0.001) == "1ms/step"
    assert format_duration_per_step(0.0009) == "900us/step"
    assert format_duration_per_step(1.53e-5) == "15us/step"


def test_eta_format_as_keras() -> None:
    assert format_eta(0.4) == "0s"
    assert format_eta(59.9) == "59s"
    assert format_eta(61) == "1:01"
    assert format_eta(3599) == "59:59"
    assert format_eta(3661) == "1:01:01"


def test_values_and_order() -> None:
    assert format_value(0.5052) == "0.5052"
    assert format_value(-2.0) == "-2.0000"
    assert format_value(1e-4) == "1.0000e-04"  # small values in e-notation, as Keras
    assert format_value(float("nan")) == "nan"
    assert format_value(np.float32(0.25)) == "0.2500"
    logs = {
        "val_loss": 1.0,
        "loss": 2.0,
        "val_accuracy": 4.0,
        "accuracy": 3.0,
        "learning_rate": 0.01,
    }
    assert format_logs(logs) == (
        " - accuracy: 3.0000 - learning_rate: 0.0100 - loss: 2.0000 - val_accuracy: 4.0000 - val_loss: 1.0000"
    )
    assert format_logs({}) == ""


def fixed_bar(stream: io.StringIO, verbose: int = 1, target: int = 1875) -> Progbar:
    bar = Progbar(target, verbose, stream=stream)
    bar.start = 100.0
    return bar


def test_final_lines_match_keras_exactly() -> None:
    logs = {"loss": 0.5052, "accuracy": 0.8237}
    line, width = fixed_bar(io.StringIO()).line(1875, logs, final=True, now=102.0)
    assert line == "1875/1875 ━━━━━━━━━━━━━━━━━━━━ 2s 1ms/step - accuracy: 0.8237 - loss: 0.5052"
    assert width == len(line)
    line, _ = fixed_bar(io.StringIO(), verbose=2).line(1875, logs, final=True, now=102.0)
    assert line == "1875/1875 - 2s - 1ms/step - accuracy: 0.8237 - loss: 0.5052"


def test_running_line_has_eta_and_right_aligned_count() -> None:
    bar = fixed_bar(io.StringIO())
    line, _ = bar.line(375, {"loss": 0.5}, final=False, now=100.4)
    # 375 of 1875 steps in 0.4 s: 1.07 ms/step, 1.6 s to go; 4 of 20 bar cells done.
    assert line == " 375/1875 ━━━━──────────────── 1s 1ms/step - loss: 0.5000"
    line, _ = bar.line(10, {}, final=False, now=190.0)
    # 10 steps in 90 s: 9 s/step, 1865 steps (4 h 39 min 45 s) to go; no cell done yet.
    assert line == "  10/1875 ──────────────────── 4:39:45 9s/step"


def test_coloured_line_on_a_terminal() -> None:
    bar = fixed_bar(Terminal())
    line, width = bar.line(375, {"loss": 0.5}, final=False, now=100.4)
    assert line == (
        "\x1b[1m 375/1875\x1b[0m \x1b[32m━━━━\x1b[0m\x1b[37m━━━━━━━━━━━━━━━━\x1b[0m "
        "\x1b[1m1s\x1b[0m 1ms/step - loss: 0.5000"
    )
    assert width == len(ANSI.sub("", line))
    final, _ = bar.line(1875, {}, final=True, now=103.0)
    assert ANSI.sub("", final) == "1875/1875 ━━━━━━━━━━━━━━━━━━━━ 3s 2ms/step"
    assert "\x1b[37m" not in final  # nothing left to do


def test_no_color_and_ascii_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    line, _ = fixed_bar(Terminal(), target=10).line(5, {}, final=False, now=101.0)
    monkeypatch.delenv("NO_COLOR")
    assert line == " 5/10 ━━━━━━━━━━────────── 1s 200ms/step"
    line, _ = fixed_bar(AsciiPipe(), target=10).line(5, {}, final=False, now=101.0)
    assert line == " 5/10 ==========.......... 1s 200ms/step"


def test_time_per_step_leaves_out_the_first_update() -> None:
    stream = io.StringIO()
    bar = Progbar(100, 1, stream=stream)
    bar.start -= 5.0  # a slow first step (warm-up)...
    bar.update(1, {})
    bar._first_step = (1, bar._first_step[1] - 0.99)  # ...then 99 steps in 0.99 s
    line, _ = bar.line(100, {}, final=True)
    assert re.fullmatch(r"100/100 ━{20} 5s 10ms/step", line), (
        line
    )  # elapsed 5 s, 10 ms per later step


# ----------------------------------------------------------------------------- fit to a pipe


def test_fit_to_a_pipe_prints_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    make_model().fit(X, Y, batch_size=8, epochs=2, verbose=1, validation_split=0.2)
    out = capsys.readouterr().out
    assert not CONTROL.search(out), repr(out)
    line = rf"8/8 ━{{20}} \d+s {PER_STEP} - accuracy: {NUM} - loss: {NUM} - val_accuracy: {NUM} - val_loss: {NUM}"
    assert re.fullmatch(rf"Epoch 1/2\n{line}\nEpoch 2/2\n{line}\n", out), out


def test_fit_one_epoch_has_no_epoch_line(capsys: pytest.CaptureFixture[str]) -> None:
    make_model(metrics=()).fit(X, Y, batch_size=8, verbose="auto")
    out = capsys.readouterr().out
    assert re.fullmatch(rf"10/10 ━{{20}} \d+s {PER_STEP} - loss: {NUM}\n", out), out


def test_fit_verbose_2_and_0(capsys: pytest.CaptureFixture[str]) -> None:
    make_model().fit(X, Y, batch_size=8, epochs=2, verbose=2)
    out = capsys.readouterr().out
    line = rf"10/10 - \d+s - {PER_STEP} - accuracy: {NUM} - loss: {NUM}"
    assert re.fullmatch(rf"Epoch 1/2\n{line}\nEpoch 2/2\n{line}\n", out), out
    make_model().fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_to_a_pipe_reports_long_epochs_periodically(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Progbar, "plain_interval", 0.0)  # as if every chunk took a minute
    ends = []
    make_model(metrics=()).fit(
        X,
        Y,
        batch_size=8,
        verbose=1,
        callbacks=[cbs.LambdaCallback(on_train_batch_end=lambda b, logs: ends.append(b))],
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 11  # 10 progress lines (one per batch here) and the final one
    for step, line in enumerate(lines[:-1], start=1):
        assert re.fullmatch(
            rf"{step:>2}/10 ━{{{2 * step}}}─{{{20 - 2 * step}}} \d+s {PER_STEP} - loss: {NUM}", line
        ), line
    assert not CONTROL.search("".join(lines))


def test_messages_and_early_stop_to_a_pipe(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    model = make_model(metrics=())

    def stop(batch: int, logs: Any) -> None:
        model.stop_training = batch == 2

    path = tmp_path / "m.fastmlp"
    model.fit(
        X,
        Y,
        batch_size=8,
        epochs=3,
        verbose=1,
        callbacks=[
            cbs.ModelCheckpoint(path, verbose=1, monitor="loss"),
            cbs.LambdaCallback(on_train_batch_end=stop),
        ],
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["Epoch 1/3", f"Epoch 1: saving model to {path}"]
    # Stopped after 3 of 10 batches: the line says so (Keras would show 10/10).
    assert re.fullmatch(rf" 3/10 ━{{6}}─{{14}} \d+s {PER_STEP} - loss: {NUM}", lines[2]), lines[2]
    assert len(lines) == 3


# ----------------------------------------------------------------------------- fit to a terminal


def frames(out: str) -> list[str]:
    """The successive states of the redrawn line, colour codes removed."""
    return [ANSI.sub("", f).rstrip(" ") for f in re.split(r"\r|\n", out) if f.strip()]


def test_fit_on_a_terminal_redraws_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(Progbar, "interval", 0.0)  # draw every update
    seen: list[int] = []
    make_model().fit(
        X,
        Y,
        batch_size=8,
        epochs=2,
        verbose=1,
        callbacks=[cbs.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))],
    )
    out = terminal.getvalue()
    assert "\x1b[1m" in out and "\x1b[32m" in out and "\r" in out
    lines = out.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[-1] == ""
    for epoch_line in (lines[1], lines[3]):
        states = frames(epoch_line)
        assert len(states) == 11  # one redraw per batch, then the final state
        for step, state in enumerate(states[:-1], start=1):
            assert re.fullmatch(
                rf"{step:>2}/10 ━{{20}} \d+s {PER_STEP} - accuracy: {NUM} - loss: {NUM}", state
            ), state
        assert re.fullmatch(
            rf"10/10 ━{{20}} \d+s {PER_STEP} - accuracy: {NUM} - loss: {NUM}", states[-1]
        )
        # The done part of the bar (green) grows with the step.
        greens = re.findall(r"\x1b\[32m(━*)\x1b\[0m", epoch_line)
        assert [len(g) for g in greens] == [2 * step for step in range(1, 11)] + [20]


def test_terminal_redraw_pads_over_a_longer_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Progbar, "interval", 0.0)
    terminal = Terminal()
    bar = Progbar(10, 1, stream=terminal)
    bar.update(1, {"loss": 123456.0})
    bar.update(2, {"loss": 1.0})
    first, second = terminal.getvalue().split("\r")[1:]
    assert len(ANSI.sub("", second)) == len(ANSI.sub("", first))
    bar.finish({"loss": 1.0})
    assert terminal.getvalue().endswith("\n")


def test_messages_keep_a_live_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    bar = Progbar(10, 1, stream=terminal)
    bar.update(3, {"loss": 0.5})
    _progress.print_msg("Epoch 1: saving model to m.fastmlp")
    bar.finish({"loss": 0.4})
    out = terminal.getvalue()
    before, message_and_after = out.split("Epoch 1: saving model to m.fastmlp\n")
    assert before.endswith("\r") and set(before.split("\r")[-2]) == {
        " "
    }  # the bar line was cleared
    assert ANSI.sub("", message_and_after).startswith(" 3/10")  # and drawn again below the message
    assert frames(out)[-1].startswith("10/10")
    _progress.print_msg("after")  # no live bar any more: a plain line
    assert terminal.getvalue().endswith("\nafter\n")


def test_ctrl_c_ends_the_live_line(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)

    def interrupt(batch: int, logs: Any) -> None:
        if batch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_model().fit(
            X,
            Y,
            batch_size=8,
            epochs=2,
            verbose=1,
            callbacks=[cbs.LambdaCallback(on_train_batch_end=interrupt)],
        )
    out = terminal.getvalue()
    assert out.endswith("\n") and "\r" in out
    assert "10/10" not in out  # no final line for an interrupted epoch
    assert _progress._live is None


def test_verbose_2_on_a_terminal_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    make_model().fit(X, Y, batch_size=8, epochs=2, verbose=2)
    out = terminal.getvalue()
    assert not CONTROL.search(out)
    assert re.fullmatch(
        rf"(Epoch \d/2\n10/10 - \d+s - {PER_STEP} - accuracy: {NUM} - loss: {NUM}\n){{2}}", out
    ), out


# ----------------------------------------------------------------------------- evaluate, predict


def test_evaluate_and_predict_print_like_keras(capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model()
    loss, accuracy = model.evaluate(X, Y, batch_size=32)
    out = capsys.readouterr().out
    assert not CONTROL.search(out)
    match = re.fullmatch(rf"3/3 ━{{20}} \d+s {PER_STEP} - accuracy: ({NUM}) - loss: ({NUM})\n", out)
    assert match, out
    assert match.group(1) == f"{accuracy:.4f}" and match.group(2) == f"{loss:.4f}"
    model.predict(X, batch_size=16, verbose=2)
    assert re.fullmatch(rf"5/5 - \d+s - {PER_STEP}\n", capsys.readouterr().out)
    model.predict(X)  # default batch: one step of 1024 rows
    assert re.fullmatch(rf"1/1 ━{{20}} \d+s {PER_STEP}\n", capsys.readouterr().out)
    model.evaluate(X, Y, verbose=0)
    model.predict(X, verbose=0)
    model(X)
    model.predict_on_batch(X)
    assert capsys.readouterr().out == ""


def test_evaluate_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    make_model().evaluate(X, Y, batch_size=8)
    out = terminal.getvalue()
    assert out.startswith("\r\x1b[1m10/10\x1b[0m \x1b[32m" + "━" * 20) and out.endswith("\n")
    assert re.fullmatch(
        rf"10/10 ━{{20}} \d+s {PER_STEP} - accuracy: {NUM} - loss: {NUM}", frames(out)[0]
    )


def test_no_console_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)  # pythonw
    history = make_model().fit(X, Y, batch_size=8, epochs=2, verbose=1)
    assert len(history.epoch) == 2
