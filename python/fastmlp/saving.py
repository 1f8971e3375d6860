"""fastmlp's file format, and save/load.

A saved model is a zip archive (stored, not compressed) holding:

- ``fastmlp.json``: ``{"format": "fastmlp", "version": 1, "kind": "model" | "weights",
  "fastmlp_version": ...}``;
- ``config.json``: the architecture (``Sequential.get_config()``) and, for a compiled model,
  the compile settings (loss, optimizer with its hyperparameters, metrics);
- ``weights/NNNNN.npy``: the arrays of ``get_weights()``, in order;
- ``training.json`` and ``optimizer/NNNNN.npy``: the optimizer's step count and slot arrays and
  the shuffle generator's state, so that training resumes exactly where it stopped.

Writes go to a temporary file in the same directory (``.fastmlp-<host>-<pid>-<random>.tmp``),
are flushed to disk, then renamed over the target: an interrupted or failing save leaves any
existing file as it was. Saving or loading removes the temporary files that writers on this host
left when they were killed (see ``fastmlp._atomic_write``). A missing directory is a
``FileNotFoundError`` naming the target path. A symbolic link is written through (the link
stays); a FIFO, device or socket at the path is refused (``OSError``, never replaced by a
regular file), and a file ``open()`` could not write is a ``PermissionError``.

Reading trusts nothing in a file: nothing is executed (no pickle; arrays are read with their
header parsed, never evaluated), only regular files are opened (a FIFO or ``/dev/zero`` is
refused before it is read), and every size a file declares is checked against the file's own
size and the bounds in ``fastmlp._model_file_format`` (``MAX_JSON_BYTES``,
``MAX_DIRECTORY_BYTES``, ``MAX_INFLATION_RATIO``, ...) before it is read, and the architecture
against the arrays present before the model is built. A file that is not a readable fastmlp file
raises ``FileFormatError`` (a ``ValueError``) naming the file and the problem; a missing file,
a directory or an unreadable file raise ``FileNotFoundError``, ``IsADirectoryError`` and
``PermissionError`` as ``open()`` does. A compiled model whose file lacks its whole training
state loads with its optimizer reset, and an ``OptimizerStateResetWarning`` says so.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _custom_objects, _file_dispatch, _model_file, models
from ._model_file_format import FORMAT, VERSION, FileFormatError, OptimizerStateResetWarning

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "FORMAT",
    "VERSION",
    "FileFormatError",
    "OptimizerStateResetWarning",
    "custom_object_scope",
    "get_custom_objects",
    "load_model",
    "load_weights",
    "model_from_bytes",
    "model_to_bytes",
    "register_keras_serializable",
    "save_model",
    "save_weights",
]


def save_model(model: models.Model, filepath: PathLike) -> None:
    """``model.save(filepath)``: architecture, weights, compile settings and optimizer state."""
    model.save(filepath)


def save_weights(model: models.Model, filepath: PathLike) -> None:
    """``model.save_weights(filepath)``: only the weights."""
    model.save_weights(filepath)


def model_to_bytes(model: models.Model) -> bytes:
    """The bytes of the file ``save_model`` writes (how pickling a model stores it)."""
    return _model_file.model_to_bytes(model)


def load_model(
    filepath: PathLike, custom_objects: Optional[dict[str, Any]] = None, compile: bool = True, safe_mode: bool = True
) -> models.Model:
    """Load a model saved with ``model.save``: architecture, weights, compile settings and
    optimizer state (training continues exactly where it stopped); or a Keras 3 ``.keras``
    file (see the module's docstring). ``custom_objects`` maps a class name to the user's class
    that the file names: a ``LearningRateSchedule`` subclass (the file holds its class name and
    ``get_config()``, never its code). ``safe_mode`` is accepted as Keras's: fastmlp never runs
    code from a file, whatever its value. ``compile=False`` (Keras's) loads the architecture and
    weights only, uncompiled: the file's compile settings are not read (so a Keras file whose
    loss or metrics fastmlp refuses still loads for inference).

    Raises ``FileFormatError`` for a file that is not a readable fastmlp model file (see its
    docstring), ``FileNotFoundError``, ``IsADirectoryError`` or ``PermissionError`` as ``open()``.
    """
    return _file_dispatch.load_model(filepath, models.Model.from_config, custom_objects, safe_mode, compile)


def load_weights(model: models.Model, filepath: PathLike) -> None:
    """``model.load_weights(filepath)``: the weights of a file written by ``save_weights`` or
    ``save``, into a built model of the same architecture; errors as ``load_model``."""
    model.load_weights(filepath)


def register_keras_serializable(package: str = "Custom", name: Optional[str] = None) -> Any:
    """Keras's class decorator: registers the class under ``"package>name"`` (``name``
    defaulting to the class's), the name a saved file then gives it, so that ``load_model``
    finds it (a ``LearningRateSchedule`` subclass a saved optimizer names) without
    ``custom_objects``. A class without ``get_config``, or a key taken by another class, is a
    ValueError, as in Keras."""
    return _custom_objects.register(package, name)


def get_custom_objects() -> dict[str, Any]:
    """The registry itself (Keras's): ``"package>name"`` -> class; adding to it registers a
    class. The classes of a ``custom_object_scope`` are not in it."""
    return _custom_objects.REGISTERED


def custom_object_scope(*custom_objects: dict[str, Any]) -> Any:
    """``with custom_object_scope({"Name": Name}):`` the classes count as registered inside the
    block, in this thread, without changing the registry (Keras's ``custom_object_scope``)."""
    return _custom_objects.scope(*custom_objects)


def model_from_bytes(data: object) -> models.Model:
    """The model of ``model_to_bytes`` (how pickling a model stores it); errors as ``load_model``."""
    return _model_file.model_from_bytes(data, models.Model.from_config)
