"""The ``((x_train, y_train), (x_test, y_test))`` result and its one validator.

Every source (IDX files, cache, download, package index) ends in :func:`check_splits`,
so whatever a loader returns has the same guarantees: uint8 images ``(n, 28, 28)``,
uint8 labels ``(n,)`` in ``0..9``, matching counts, C-contiguous arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "IMAGE_BYTES",
    "IMAGE_SHAPE",
    "KEYS",
    "MAX_EXAMPLES",
    "NUM_CLASSES",
    "Splits",
    "check_splits",
]

U8 = npt.NDArray[np.uint8]
Splits = tuple[tuple[U8, U8], tuple[U8, U8]]

#: Array names, in the order of the flattened result; also the cache's keys.
KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SHAPE = (28, 28)
IMAGE_BYTES = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
NUM_CLASSES = 10
#: The most examples a file may declare for one split: over four times the largest
#: 10-class 28x28 IDX set (EMNIST digits, 240000 training images), so a real file always
#: fits, and a header that lies is refused before anything is allocated.
MAX_EXAMPLES = 1 << 20


def check_splits(
    arrays: Sequence[object],
    names: Sequence[str],
    *,
    error: type[ValueError] = ValueError,
) -> Splits:
    """Validate ``x_train, y_train, x_test, y_test`` and return them as :data:`Splits`.

    ``names`` names each array in error messages (a file path, or ``cache[x_train]``).
    """
    if len(arrays) != 4 or len(names) != 4:
        raise TypeError("check_splits needs exactly four arrays and four names")
    checked = []
    for i, (arr, name) in enumerate(zip(arrays, names)):
        if not isinstance(arr, np.ndarray):
            raise error(f"{name}: expected a NumPy array, got {type(arr).__name__}")
        if arr.dtype != np.uint8:
            raise error(f"{name}: expected dtype uint8, found {arr.dtype}")
        want_ndim = 3 if i % 2 == 0 else 1
        if arr.ndim != want_ndim or (want_ndim == 3 and arr.shape[1:] != IMAGE_SHAPE):
            want = "(n, 28, 28)" if want_ndim == 3 else "(n,)"
            raise error(f"{name}: expected shape {want}, found {arr.shape}")
        checked.append(np.ascontiguousarray(arr))
    for images, labels, x_name, y_name in ((0, 1, names[0], names[1]), (2, 3, names[2], names[3])):
        n_images, n_labels = len(checked[images]), len(checked[labels])
        if n_images != n_labels:
            raise error(
                f"{y_name}: {n_labels} labels do not match the {n_images} images in {x_name}"
            )
        if n_labels and int(checked[labels].max()) >= NUM_CLASSES:
            raise error(
                f"{y_name}: labels must be 0..{NUM_CLASSES - 1}, found {int(checked[labels].max())}"
            )
    x_train, y_train, x_test, y_test = checked
    return (x_train, y_train), (x_test, y_test)
