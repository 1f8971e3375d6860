"""Which format a model file is in: the one place that decides (internal).

A path ending in ``.keras`` is a Keras 3 archive (``fastmlp._keras_file``), as Keras decides by
the suffix; every other path is fastmlp's own format (``fastmlp._model_file``), the default.
``Model.save``, ``fastmlp.models.load_model`` and ``fastmlp.saving.load_model`` go through here.
Weights alone: a path ending in ``.weights.h5`` gets Keras 3's HDF5 weights file when h5py is
installed (fastmlp's own format otherwise); ``load_weights`` reads either, by the file's first
bytes.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _custom_objects, _keras_file, _model_file
from ._model_file import FromConfig, Model, PathLike, SavedModel


def save_model(model: SavedModel, filepath: PathLike) -> None:
    if _keras_file.is_keras_path(filepath):
        _keras_file.save_model(model, filepath)
    else:
        _model_file.save_model(model, filepath)


def load_model(
    filepath: PathLike,
    from_config: FromConfig[Model],
    custom_objects: Optional[dict[str, Any]] = None,
    safe_mode: bool = True,
    compile: bool = True,
) -> Model:
    """``custom_objects`` maps class names to the user's classes a native file's config names (a
    learning-rate schedule); a ``.keras`` file names only Keras's own classes. ``safe_mode`` is
    Keras's argument, checked and accepted: neither format runs code from a file, whatever its
    value. ``compile=False`` (Keras's) loads the model uncompiled, its compile settings unread."""
    for name, value in (("safe_mode", safe_mode), ("compile", compile)):
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")
    if _keras_file.is_keras_path(filepath):
        return _keras_file.load_model(filepath, from_config, compile)
    return _model_file.load_model(filepath, from_config, _custom_objects.with_registered(custom_objects), compile)


def save_weights(model: SavedModel, filepath: PathLike) -> None:
    if _keras_file.is_weights_path(filepath) and _keras_file.has_h5py():
        _keras_file.save_weights(model, filepath)
    else:
        _model_file.save_weights(model, filepath)


def load_weights(model: SavedModel, filepath: PathLike) -> None:
    if _keras_file.is_hdf5_file(filepath):
        _keras_file.load_weights(model, filepath)
    else:
        _model_file.load_weights(model, filepath)
