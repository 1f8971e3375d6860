"""An unpickler that admits NumPy arrays and nothing else.

A pickle can name any importable callable and call it, so loading one from outside is
running code from outside. This unpickler resolves exactly three names, the ones a
pickled ``ndarray`` needs: ``numpy.core.multiarray._reconstruct`` (spelled
``numpy._core.multiarray._reconstruct`` by NumPy 2), ``numpy.ndarray`` and
``numpy.dtype``. Any other global (``os.system``, ``builtins.eval``, ``_codecs.encode``,
...) and any persistent id is refused with :class:`UnsafePickleError` before it is
called. Containers, numbers and strings need no global and load as usual.
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any, Callable

import numpy as np

from ._errors import UnsafePickleError

__all__ = ["ALLOWED_GLOBALS", "loads_numpy_only"]

_RECONSTRUCT_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED_GLOBALS = frozenset(
    {(m, "_reconstruct") for m in _RECONSTRUCT_MODULES} | {("numpy", "ndarray"), ("numpy", "dtype")}
)


def _reconstruct() -> Callable[..., Any]:
    # Import it from where this NumPy keeps it: importing numpy.core warns on NumPy 2,
    # and numpy._core does not exist before NumPy 2.
    major = int(np.__version__.split(".", 1)[0])
    module = importlib.import_module(_RECONSTRUCT_MODULES[1 if major >= 2 else 0])
    function: Callable[..., Any] = module._reconstruct
    return function


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: str) -> None:
        # latin1: Python 2 pickles store array bytes as str; NumPy expects latin1 there.
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            if name == "_reconstruct":
                return _reconstruct()
            return np.ndarray if name == "ndarray" else np.dtype
        allowed = ", ".join(sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS))
        raise UnsafePickleError(
            f"{self._source}: refused to unpickle: it references {module}.{name}; "
            f"only NumPy arrays are admitted ({allowed})"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused to unpickle: persistent id {pid!r}")


def loads_numpy_only(data: bytes, source: str) -> Any:
    """Unpickle ``data`` admitting only NumPy arrays; ``source`` names it in errors.

    Raises:
        UnsafePickleError: the pickle references anything else.
        pickle.UnpicklingError, EOFError, ValueError: the pickle is malformed.
    """
    return _NumpyOnlyUnpickler(data, source).load()
