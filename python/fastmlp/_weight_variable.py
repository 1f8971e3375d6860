"""A layer weight as Keras's variable (internal): ``layer.kernel`` and ``layer.bias`` are NumPy
arrays (copies of the core's weights) that also have Keras's ``Variable`` methods, so that
``model.layers[-1].bias.assign([0.0])`` (as the TensorFlow tutorials write) sets the weight.

Only the array a layer returns writes back: a slice of it, or a result computed from it, is a
plain copy (``assign`` on it is a ValueError), so arithmetic never changes a model.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from numpy.typing import NDArray


class WeightVariable(np.ndarray):
    """A copy of a weight with ``assign``, ``assign_add``, ``assign_sub``, ``numpy()`` and
    ``value``; ``assign`` writes the new value into the layer (checked as ``set_weights``).
    ``name`` and ``path`` as Keras 3 names a layer's variables (``"kernel"``,
    ``"dense/kernel"``), None where not given."""

    write_back: Optional[Callable[[NDArray[Any]], None]]
    name: Optional[str]
    path: Optional[str]

    def __new__(
        cls,
        value: NDArray[Any],
        write_back: Callable[[NDArray[Any]], None],
        name: Optional[str] = None,
        path: Optional[str] = None,
    ) -> WeightVariable:
        variable = np.asarray(value).view(cls)
        variable.write_back = write_back
        variable.name = name
        variable.path = path
        return variable

    def __array_finalize__(self, obj: Any) -> None:
        # A view or a result made from this array is not the weight: it does not write back
        # (see the module doc) and has no name.
        self.write_back = None
        self.name = None
        self.path = None

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        # Results of NumPy functions on a variable are plain arrays (or scalars).
        result = np.asarray(array)
        return result[()] if return_scalar else result

    def assign(self, value: Any) -> WeightVariable:
        """Set the weight to ``value`` (broadcast to its shape), in the layer too."""
        if self.write_back is None:
            raise ValueError("This array is not a layer's weight (a slice or a computed copy); it cannot be assigned.")
        new = np.array(np.broadcast_to(np.asarray(value, dtype=self.dtype), self.shape))
        self.write_back(new)
        np.copyto(self.view(np.ndarray), new)
        return self

    def assign_add(self, value: Any) -> WeightVariable:
        return self.assign(self.numpy() + np.asarray(value))

    def assign_sub(self, value: Any) -> WeightVariable:
        return self.assign(self.numpy() - np.asarray(value))

    def numpy(self) -> NDArray[Any]:
        """The value as a plain array (a copy), as Keras's ``Variable.numpy()``."""
        return np.array(self.view(np.ndarray))

    @property
    def value(self) -> NDArray[Any]:
        return self.numpy()
