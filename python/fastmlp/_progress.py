"""Keras 3 style progress output for fit, evaluate and predict (internal).

The line follows ``keras/src/utils/progbar.py``::

    Epoch 3/10
    1875/1875 ━━━━━━━━━━━━━━━━━━━━ 2s 1ms/step - accuracy: 0.9012 - loss: 0.3520 - val_loss: 0.3104

- the step count, right-aligned to the width of the total;
- a 20-character bar (``━``, green for the done part, white for the rest);
- while running, the ETA (``12s``, ``1:05``, ``1:02:03``); at the end, the elapsed seconds;
- the time per step: ``{:.0f}s``/``ms``/``us`` per step, as Keras (seconds for >= 1 s or exactly 0).
  Like Keras it leaves out the first update (warm-up) once there is a later one;
- ``- name: value`` with 4 decimals (``.4e`` when ``|value| <= 1e-3``, as Keras), alphabetical,
  ``val_*`` after the training values;
- ``verbose=2``: one line per epoch, ``1875/1875 - 2s - 1ms/step - accuracy: ... - loss: ...``.

Where this deliberately differs from Keras, and why:

- **Pipes and files get plain text.** Keras decides it may redraw when ``"posix" in sys.modules``
  (true on every Linux/macOS), so logs redirected to files fill with ``\\b``, ``\\r`` and colour
  codes, and get one line per 0.05 s. Here redrawing (``\\r``) and colours happen only when the
  stream is a terminal (``isatty()``) or a Jupyter kernel; otherwise the output has no control
  characters at all: the final line of each epoch, plus a progress line at most every
  ``plain_interval`` (60) seconds during long epochs so that logs show liveness. Without colour,
  the part of the bar still to go is drawn ``─`` so it stays visible; streams that cannot encode
  box-drawing characters get ``=``/``.``. ``NO_COLOR`` (https://no-color.org) turns colours off on
  terminals too.
- **Redraws by padding, not backspaces.** ``\\r`` then the line, then spaces over any leftover of
  a longer previous line (Keras also writes one ``\\b`` per previous character first).
- **Messages keep the bar intact.** Callback messages (``print_msg``) clear a live bar line,
  print, and redraw the bar below, as ``tqdm.write`` does; Keras prints them after a ``"\\n"``
  onto the bar's line.
- **Updates come per chunk of batches** (about 0.1 s of work, see ``models.py``), not per batch,
  unless a callback asks for per-batch hooks; redraws are throttled to one per 0.05 s as Keras.
- **An early stop shows where it stopped** (``37/1875`` with a partial bar); Keras fills the bar
  to the total.
- **evaluate and predict** run in one native call, so they print only their final line, with
  the step count of their own batch size (1024 rows when none is given; Keras's default is 32).
- **Negative values under verbose=2** print as ``-0.5000``: the ``.4e`` switch looks at the
  magnitude in both modes (Keras's verbose=2 tests the signed value, giving ``-5.0000e-01``).
- **Ctrl-C** ends a live bar line with a newline so the traceback starts on a fresh line.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Optional, TextIO

_BOLD = "\x1b[1m"
_GREEN = "\x1b[32m"
_WHITE = "\x1b[37m"
_RESET = "\x1b[0m"

# The bar whose line is on screen without its newline yet (a live terminal redraw), if any.
_live: Optional[Progbar] = None


def format_duration_per_step(seconds: float, unit: str = "step") -> str:
    """Keras's ``_format_time``: ``2s/step``, ``15ms/step``, ``350us/step`` (no leading space)."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def format_eta(seconds: float) -> str:
    """``%ds`` up to a minute, then ``m:ss``, then ``h:mm:ss`` (Keras's ETA format)."""
    whole = int(seconds)  # Keras's %d truncates
    if seconds > 3600:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    if seconds > 60:
        return f"{whole // 60}:{whole % 60:02d}"
    return f"{whole}s"


def format_value(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if abs(number) > 1e-3 else f"{number:.4e}"


def format_logs(logs: Optional[dict[str, Any]]) -> str:
    """`` - name: value`` for each entry: alphabetical, validation entries last."""
    if not logs:
        return ""
    names = sorted(logs, key=lambda n: (n.startswith("val_"), n))
    return "".join(f" - {name}: {format_value(logs[name])}" for name in names)


def _is_interactive(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except (ValueError, OSError):  # a closed stream
        return False
    # Jupyter's stream is no tty, yet renders \r and colours.
    return stream is sys.stdout and "ipykernel" in sys.modules


def _can_encode(stream: Any, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _write(stream: Any, text: str) -> None:
    if stream is None:  # pythonw and similar: no console
        return
    stream.write(text)
    stream.flush()


def print_msg(message: str) -> None:
    """Print a line (callback messages, ``Epoch i/N``) without breaking a live progress bar: on a
    terminal the bar's line is cleared, the message printed, and the bar redrawn below it."""
    bar = _live
    if bar is None:
        _write(sys.stdout, message + "\n")
        return
    bar.print_above(message)


class Progbar:
    """One progress line: ``update`` while running, ``finish`` at the end (see the module doc).

    ``verbose`` 0 prints nothing, 1 the bar, 2 only the final line. The stream defaults to
    ``sys.stdout`` at construction; redrawing and colours follow ``stream.isatty()``."""

    width = 20
    interval = 0.05  # seconds between redraws on a terminal (Keras's default)
    plain_interval = 60.0  # seconds between progress lines to a file or pipe

    def __init__(
        self,
        target: int,
        verbose: int = 1,
        stream: Optional[TextIO] = None,
        unit_name: str = "step",
    ) -> None:
        self.target = int(target)
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.unit_name = unit_name
        self.dynamic = _is_interactive(self.stream)
        self.colour = self.dynamic and not os.environ.get("NO_COLOR")
        if self.colour or _can_encode(self.stream, "━─"):
            self.done_char, self.todo_char = "━", ("━" if self.colour else "─")
        else:
            self.done_char, self.todo_char = "=", "."
        self.seen = 0  # steps done, kept by the caller
        self.start = time.perf_counter()
        self._last_draw = -math.inf  # a terminal shows the first update at once, as Keras
        self._last_plain = self.start  # a file gets its first progress line after plain_interval
        self._first_step: Optional[tuple[int, float]] = None  # (steps, time) at the first update
        self._width = 0  # visible width of the line on screen
        self._text = ""  # that line, with its colour codes

    # ------------------------------------------------------------------ timing

    def _time_per_step(self, current: int, now: float) -> float:
        """Keras's estimate: leave out the first update (warm-up, first-touch of buffers) once a
        later one exists."""
        if current <= 0:
            return 0.0
        if self._first_step is not None and current > self._first_step[0]:
            steps, at = self._first_step
            return (now - at) / (current - steps)
        return (now - self.start) / current

    # ------------------------------------------------------------------ composing

    def _bold(self, text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.colour else text

    def _count(self, current: int) -> str:
        digits = int(math.log10(self.target)) + 1 if self.target > 0 else 1
        return f"{current:>{digits}}/{self.target}"

    def _bar(self, current: int) -> tuple[str, int]:
        """The bar (with colour codes when coloured) and its visible width."""
        fraction = current / self.target if self.target > 0 else 1.0
        done = min(self.width, max(0, int(self.width * fraction)))
        todo = self.width - done
        if not self.colour:
            return self.done_char * done + self.todo_char * todo, self.width
        text = ""
        if done:
            text += f"{_GREEN}{self.done_char * done}{_RESET}"
        if todo:
            text += f"{_WHITE}{self.todo_char * todo}{_RESET}"
        return text, self.width

    def line(
        self, current: int, logs: Optional[dict[str, Any]], final: bool, now: Optional[float] = None
    ) -> tuple[str, int]:
        """The text of the line for ``current`` steps done, and its visible width."""
        now = time.perf_counter() if now is None else now
        per_step = format_duration_per_step(self._time_per_step(current, now), self.unit_name)
        count = self._count(current)
        metrics = format_logs(logs)
        if self.verbose == 2:
            text = f"{count} - {now - self.start:.0f}s - {per_step}{metrics}"
            return text, len(text)
        bar, bar_width = self._bar(current)
        if final:
            timing = f"{now - self.start:.0f}s"
        else:
            timing = format_eta(self._time_per_step(current, now) * max(self.target - current, 0))
        plain = f"{count} {' ' * bar_width} {timing} {per_step}{metrics}"
        return f"{self._bold(count)} {bar} {self._bold(timing)} {per_step}{metrics}", len(plain)

    # ------------------------------------------------------------------ output

    def _draw(self, text: str, width: int, final: bool) -> None:
        global _live
        pad = " " * max(self._width - width, 0)
        self._width, self._text = width, text
        if final:
            _live = None
            _write(self.stream, "\r" + text + pad + "\n")
        else:
            _live = self
            _write(self.stream, "\r" + text + pad)

    def print_above(self, message: str) -> None:
        """Print a line where this bar's live line is, and draw the bar again below it."""
        _write(self.stream, "\r" + " " * self._width + "\r" + message + "\n" + self._text)

    def update(self, current: int, logs: Optional[dict[str, Any]] = None) -> None:
        """``current`` steps done (not the last update): redraw on a terminal, at most every
        ``interval`` seconds; to a file, a plain line at most every ``plain_interval`` seconds."""
        now = time.perf_counter()
        if self._first_step is None:
            self._first_step = (current, now)
        if self.verbose != 1 or self.stream is None:
            return
        if self.dynamic:
            if now - self._last_draw < self.interval:
                return
            self._last_draw = now
            text, width = self.line(current, logs, final=False, now=now)
            self._draw(text, width, final=False)
        elif now - self._last_plain >= self.plain_interval:
            self._last_plain = now
            text, _ = self.line(current, logs, final=False, now=now)
            _write(self.stream, text + "\n")

    def finish(self, logs: Optional[dict[str, Any]] = None, current: Optional[int] = None) -> None:
        """The final line (``current`` defaults to the target: pass the steps done when
        training stopped early)."""
        if self.verbose not in (1, 2) or self.stream is None:
            return
        done = self.target if current is None else current
        text, width = self.line(done, logs, final=True)
        if self.dynamic and self.verbose == 1:
            self._draw(text, width, final=True)
        else:
            self.close()
            _write(self.stream, text + "\n")

    def close(self) -> None:
        """End a live line (Ctrl-C, errors) so that what follows starts on a fresh line."""
        global _live
        if _live is self:
            _live = None
            _write(self.stream, "\n")
