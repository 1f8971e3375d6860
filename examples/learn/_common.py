"""What the scripts of examples/learn share: the ``--out`` option and the optional matplotlib.

matplotlib is the ``plot`` extra (``pip install 'fastmlp[plot]'``). Without it every script still
runs and prints its numbers, and says that it skipped the picture.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Sequence
from typing import Any, Optional


def parse_args(description: str, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The one option every script has: the folder its PNG goes to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--out", default=".", metavar="DIR",
        help="folder for the PNG (created if missing; default: the current folder)",
    )
    return parser.parse_args(argv)


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files only, or None (with a note) when it is not installed."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        print("matplotlib is not installed: skipped the plot (pip install 'fastmlp[plot]')")
        return None
    matplotlib.use("Agg")  # no window: the picture goes to a file
    return importlib.import_module("matplotlib.pyplot")


def save(figure: Any, out: str, name: str) -> str:
    """Write the figure (made with layout="constrained") to out/name and say where."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    figure.savefig(path, dpi=110)
    print(f"Plot written to {path}")
    return path
