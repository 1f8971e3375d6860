"""The package's version, which a saved file records (the same as ``pyproject.toml``'s)."""

__version__ = "0.1.0"
