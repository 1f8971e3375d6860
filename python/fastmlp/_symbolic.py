"""Symbolic tensors for the functional API: ``fm.Input`` returns one, and calling a layer on one
returns the next (internal; users see them as ``fm.KerasTensor``).

A tensor holds no data: its shape (batch axis first, ``None``), its dtype, and where it came
from (the layer that made it and the tensor that layer was called on). A model is the path of
layers from an input tensor to an output tensor (``fastmlp._functional``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, Optional

from ._names import unique_name

# True while a subclassed model's ``call`` is traced as ``fit`` runs it (``training=True``):
# layer calls on symbolic tensors then take ``training=True`` (see ``fastmlp._functional.trace``).
_TRAINING_TRACE: contextvars.ContextVar[bool] = contextvars.ContextVar("fastmlp_training_trace", default=False)


@contextlib.contextmanager
def training_trace() -> Iterator[None]:
    token = _TRAINING_TRACE.set(True)
    try:
        yield
    finally:
        _TRAINING_TRACE.reset(token)


def in_training_trace() -> bool:
    return _TRAINING_TRACE.get()


class KerasTensor:
    """A symbolic tensor: shape ``(None, *sample_shape)``, dtype, and its origin. Keras:
    ``keras.KerasTensor``."""

    def __init__(
        self,
        shape: tuple[Optional[int], ...],
        dtype: str = "float32",
        name: Optional[str] = None,
        operation: Any = None,
        parent: Optional[KerasTensor] = None,
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name if name is not None else unique_name("keras_tensor")
        # The layer that made this tensor (an InputLayer for an input) and the tensor it was
        # called on (None for an input): a tensor's history is a single path back to its input.
        self.operation = operation
        self.parent = parent

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self) -> bool:
        # As Keras: a symbolic tensor has no truth value (e.g. `if x:` in a traced `call`).
        raise TypeError("A symbolic KerasTensor cannot be used as a Python bool.")

    def _no_ops(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"fastmlp's symbolic tensors ({self.name}) go through layers only: a model is one chain of "
            "layers, which the core runs. Arithmetic, indexing and ops on them (`x * 2`, `x[:, :2]`, "
            "`keras.ops...`) are not supported; use a layer instead (an activation as "
            "`layers.Activation('relu')` or `Dense(..., activation=...)`)."
        )

    # Each operator Keras's KerasTensor has, refused with the reason (not Python's bare
    # "unsupported operand").
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_ops
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _no_ops
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __pos__ = __abs__ = _no_ops
    __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = _no_ops
    __array__ = _no_ops
