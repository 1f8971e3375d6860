"""Keras-style progress lines for fit, evaluate and predict (internal)."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def format_duration_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def format_logs(logs: dict[str, float]) -> str:
    """``- name: value`` with 4 decimals, alphabetical, validation metrics last."""
    names = sorted(logs, key=lambda n: (n.startswith("val_"), n))
    return "".join(f" - {name}: {logs[name]:.4f}" for name in names)


class Progbar:
    """verbose=1: a redrawn bar on a terminal (one final line elsewhere); verbose=2: one line."""

    width = 20

    def __init__(self, target: int, verbose: int, stream: Optional[TextIO] = None) -> None:
        self.target = target
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.start = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.dynamic = bool(isatty and isatty())

    def _line(self, current: int, logs: dict[str, float], final: bool) -> str:
        elapsed = time.perf_counter() - self.start
        digits = len(str(self.target))
        count = f"{current:>{digits}}/{self.target}"
        per_step = format_duration_per_step(elapsed / max(current, 1))
        if self.verbose == 2:
            return f"{count} - {elapsed:.0f}s - {per_step}{format_logs(logs)}"
        filled = self.width * current // max(self.target, 1)
        bar = "━" * filled + " " * (self.width - filled) if self.dynamic else "=" * filled + "." * (self.width - filled)
        if final:
            timing = f"{elapsed:.0f}s {per_step}"
        else:
            eta = elapsed / max(current, 1) * (self.target - current)
            timing = f"{eta:.0f}s {per_step}"
        return f"{count} {bar} {timing}{format_logs(logs)}"

    def update(self, current: int, logs: dict[str, float]) -> None:
        if self.verbose == 1 and self.dynamic:
            self.stream.write("\r" + self._line(current, logs, final=False) + "\x1b[K")
            self.stream.flush()

    def finish(self, logs: dict[str, float]) -> None:
        if self.verbose == 0:
            return
        prefix = "\r" if self.verbose == 1 and self.dynamic else ""
        suffix = "\x1b[K" if prefix else ""
        self.stream.write(prefix + self._line(self.target, logs, final=True) + suffix + "\n")
        self.stream.flush()
