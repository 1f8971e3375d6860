"""Writing a model to a fastmlp model file and reading it back (internal; the format and the
guarantees are documented in ``fastmlp.saving``, the public face of this module).

A model is written and read through its public methods only (``SavedModel`` lists them): its
config, compile config, weights and training state. This module imports neither
``fastmlp.models`` nor ``fastmlp.saving``: loading is given the function that makes a model
from its config, so ``models`` imports this module and ``saving`` imports both, without a cycle.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from typing import IO, Any, Callable, Optional, Protocol, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

from . import _saved_config, losses, optimizers
from ._atomic_write import atomic_write, remove_orphans
from ._model_file_format import (
    CONFIG,
    FORMAT,
    MANIFEST,
    SLOTS,
    TRAINING,
    VERSION,
    WEIGHTS,
    FileFormatError,
    OptimizerStateResetWarning,
)
from ._model_file_reader import ModelFileReader, open_regular_file
from ._version import __version__
from ._writable import check_finite_arrays, file_json

PathLike = Union[str, "os.PathLike[str]"]
Array = NDArray[Any]


class SavedModel(Protocol):
    """What a model file is written from and read into: these public methods of ``Sequential``."""

    name: str

    @property
    def built(self) -> bool: ...

    @property
    def dtype(self) -> str: ...

    @property
    def loss(self) -> Optional[losses.Loss]: ...

    def get_config(self) -> dict[str, Any]: ...

    def get_compile_config(self) -> Optional[dict[str, Any]]: ...

    def get_weights(self) -> list[Array]: ...

    def set_weights(self, weights: Sequence[Array]) -> None: ...

    def compile(
        self,
        optimizer: optimizers.OptimizerLike = ...,
        loss: Optional[losses.LossLike] = ...,
        metrics: Optional[Sequence[str]] = ...,
    ) -> None: ...

    def get_training_state(self) -> Optional[dict[str, Any]]: ...

    def set_training_state(self, state: dict[str, Any]) -> None: ...


Model = TypeVar("Model", bound=SavedModel)
FromConfig = Callable[[dict[str, Any]], Model]

# What reconstructing layers, optimizers and the model from a checked config may still raise on
# values the schema leaves to the constructors (an unknown activation, a negative rate).
_CONSTRUCTION_ERRORS = (ArithmeticError, AttributeError, LookupError, TypeError, ValueError)


# ---------------------------------------------------------------- writing


def _write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray[Any, Any]) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, order="C"), allow_pickle=False)  # ascontiguousarray makes 0-d 1-d
    archive.writestr(name, buffer.getvalue())


def _write_archive(archive: zipfile.ZipFile, model: SavedModel, kind: str) -> None:
    archive.writestr(
        MANIFEST,
        json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, "fastmlp_version": __version__}),
    )
    config: dict[str, Any] = {"model": model.get_config()}
    if kind == "model":
        config["compile"] = model.get_compile_config()
    archive.writestr(CONFIG, file_json(model.name, config, "config"))
    weights = model.get_weights()
    check_finite_arrays(model.name, weights, "weight")
    for i, weight in enumerate(weights):
        _write_array(archive, f"{WEIGHTS}/{i:05d}.npy", weight)
    state = model.get_training_state() if kind == "model" else None
    if state is not None:
        check_finite_arrays(model.name, state["slots"], "optimizer slot")
        archive.writestr(
            TRAINING,
            json.dumps({"iterations": int(state["iterations"]), "rng": [int(w) for w in state["rng"]]}),
        )
        for i, slot in enumerate(state["slots"]):
            _write_array(archive, f"{SLOTS}/{i:05d}.npy", slot)


def _save(model: SavedModel, filepath: PathLike, kind: str) -> None:
    def write(handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            _write_archive(archive, model, kind)

    atomic_write(os.fsdecode(filepath), write)


def save_model(model: SavedModel, filepath: PathLike) -> None:
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: there is nothing to save.")
    _save(model, filepath, "model")


def save_weights(model: SavedModel, filepath: PathLike) -> None:
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: it has no weights to save.")
    _save(model, filepath, "weights")


def model_to_bytes(model: SavedModel) -> bytes:
    buffer = io.BytesIO()
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: it cannot be pickled.")
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        _write_archive(archive, model, "model")
    return buffer.getvalue()


# ---------------------------------------------------------------- reading


def _open(filepath: PathLike) -> ModelFileReader:
    path = os.fsdecode(filepath)
    remove_orphans(os.path.dirname(os.path.abspath(path)))
    return ModelFileReader(open_regular_file(path), repr(path))


def _read_arrays(
    reader: ModelFileReader, folder: str, shapes: list[tuple[int, ...]], dtype: str, what: str, needed_by: str
) -> list[np.ndarray[Any, Any]]:
    """The arrays of ``folder``, after checking that there are as many as ``shapes`` and of
    those shapes from their headers alone (nothing is allocated for a file that does not fit)."""
    names = reader.array_names(folder)
    if len(names) != len(shapes):
        reader.fail(f"its {what} do not fit {needed_by}: it holds {len(names)} arrays in {folder}/, {needed_by} needs {len(shapes)}")
    headers = [reader.array_header(name) for name in names]
    for header, shape in zip(headers, shapes):
        if header.shape != shape:
            reader.fail(f"its {what} do not fit {needed_by}: {header.name!r} has shape {header.shape}, {needed_by} needs {shape}")
    return [reader.array(header, dtype) for header in headers]


def build_model(
    reader: ModelFileReader,
    config: dict[str, Any],
    weights: list[np.ndarray[Any, Any]],
    from_config: FromConfig[Model],
    custom_objects: Optional[dict[str, Any]] = None,
) -> Model:
    """The model of a checked ``config`` (``_saved_config.check_config``) with ``weights`` of
    the checked shapes, compiled when the config says so; a refusal names the reader's file."""
    try:
        model = from_config(config["model"])
    except _CONSTRUCTION_ERRORS as error:
        reader.fail(f"invalid model config ({error})", error)
    try:
        model.set_weights(weights)
    except _CONSTRUCTION_ERRORS as error:
        reader.fail(f"its weights do not fit the model ({error})", error)
    compile_config = config.get("compile")
    if compile_config:
        try:
            model.compile(
                optimizer=optimizers.from_config(compile_config["optimizer"], custom_objects),
                loss=losses.from_config(compile_config["loss"]),
                metrics=compile_config.get("metrics", []),
            )
        except _CONSTRUCTION_ERRORS as error:
            reader.fail(f"invalid compile config ({error})", error)
    return model


def _restore_training_state(reader: ModelFileReader, model: SavedModel) -> None:
    """The optimizer's step count and slots and the shuffle generator's state, all or nothing."""
    slot_names = reader.array_names(SLOTS)
    if TRAINING not in reader.members:
        if slot_names:
            reader.fail(f"incomplete (optimizer slots without {TRAINING!r})")
        warnings.warn(
            f"{reader.label} holds no training state ({TRAINING!r} and the optimizer slots): "
            f"the optimizer of model {model.name!r} starts again from step 0 with zeroed slots.",
            OptimizerStateResetWarning,
            stacklevel=6,  # the caller of load_model in fastmlp.models or fastmlp.saving (via _file_dispatch)
        )
        return
    training = _saved_config.check_training(reader.json(TRAINING), reader.label, TRAINING)
    fresh = model.get_training_state()  # compile made the optimizer's slots: their shapes
    if fresh is None:  # compile() of a built model makes its trainer
        raise RuntimeError(f"Model {model.name!r} was compiled but has no training state.")
    shapes = [tuple(slot.shape) for slot in fresh["slots"]]
    slots = _read_arrays(reader, SLOTS, shapes, model.dtype, "optimizer slots", "the optimizer")
    try:
        model.set_training_state({"iterations": training["iterations"], "rng": training["rng"], "slots": slots})
    except (TypeError, ValueError) as error:
        reader.fail(f"invalid optimizer state ({error})", error)


def _restore(
    reader: ModelFileReader,
    from_config: FromConfig[Model],
    custom_objects: Optional[dict[str, Any]] = None,
    compile: bool = True,
) -> Model:
    if reader.kind != "model":
        reader.fail("holds only weights; use model.load_weights() on a built model")
    config = _saved_config.check_config(reader.json(CONFIG), reader.label, CONFIG)
    if not compile:  # Keras's compile=False: the architecture and weights, not compiled
        config = {**config, "compile": None}
    shapes = _saved_config.weight_shapes(config["model"])
    weights = _read_arrays(reader, WEIGHTS, shapes, config["model"]["dtype"], "weights", "the architecture in config.json")
    model = build_model(reader, config, weights, from_config, custom_objects)
    if model.loss is not None:
        _restore_training_state(reader, model)
    return model


def load_model(
    filepath: PathLike,
    from_config: FromConfig[Model],
    custom_objects: Optional[dict[str, Any]] = None,
    compile: bool = True,
) -> Model:
    """Load a model saved with ``model.save``, made by ``from_config`` from its config:
    architecture, weights, compile settings and optimizer state (training continues exactly
    where it stopped); without ``compile``, the architecture and weights only. ``custom_objects``
    maps class names to the user's classes a config names (a learning-rate schedule); nothing
    else in the file is turned into code.

    Raises ``FileFormatError`` for a file that is not a readable fastmlp model file (see its
    docstring), ``FileNotFoundError``, ``IsADirectoryError`` or ``PermissionError`` as ``open()``.
    """
    reader = _open(filepath)
    try:
        return _restore(reader, from_config, custom_objects, compile)
    finally:
        reader.close()


def load_weights(model: SavedModel, filepath: PathLike) -> None:
    """Load the weights of a file written by ``save_weights`` or ``save`` into a built model of
    the same architecture; errors as ``load_model``."""
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: build it before load_weights().")
    reader = _open(filepath)
    try:
        shapes = [weight.shape for weight in model.get_weights()]
        weights = _read_arrays(reader, WEIGHTS, shapes, model.dtype, "weights", "the model")
        try:
            model.set_weights(weights)
        except _CONSTRUCTION_ERRORS as error:
            reader.fail(f"its weights do not fit the model ({error})", error)
    finally:
        reader.close()


def model_from_bytes(data: object, from_config: FromConfig[Model]) -> Model:
    """The model of ``model_to_bytes`` (how pickling a model stores it); errors as ``load_model``."""
    label = "pickled fastmlp model"
    if not isinstance(data, (bytes, bytearray)):
        raise FileFormatError(f"{label}: expected the bytes of a saved model. Received: {type(data).__name__}")
    reader = ModelFileReader(io.BytesIO(data), label)
    try:
        return _restore(reader, from_config)
    finally:
        reader.close()
