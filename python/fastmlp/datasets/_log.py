"""Progress notes on stderr, used only when a loader reaches the network or pip.

Loading from local files or from the cache prints nothing.
"""

from __future__ import annotations

import sys

__all__ = ["note"]


def note(message: str) -> None:
    """Print one progress line to stderr, prefixed with the package name."""
    print(f"fastmlp.datasets: {message}", file=sys.stderr, flush=True)
