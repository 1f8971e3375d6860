"""fastmlp's file format, and save/load.

A saved model is a zip archive (stored, not compressed) holding:

- ``fastmlp.json``: ``{"format": "fastmlp", "version": 1, "kind": "model" | "weights",
  "fastmlp_version": ...}``;
- ``config.json``: the architecture (``Sequential.get_config()``) and, for a compiled model,
  the compile settings (loss, optimizer with its hyperparameters, metrics);
- ``weights/NNNNN.npy``: the arrays of ``get_weights()``, in order;
- ``training.json`` and ``optimizer/NNNNN.npy``: the optimizer's step count and slot arrays and
  the shuffle generator's state, so that training resumes exactly where it stopped.

Every array is read with ``allow_pickle=False``; nothing in a file is executed. Writes go to a
temporary file in the same directory (``.fastmlp-<host>-<pid>-<random>.tmp``), are flushed to
disk, then renamed over the target: an interrupted or failing save leaves any existing file as it
was. Saving or loading removes the temporary files that writers on this host left when they were
killed (see ``fastmlp._atomic_write``). A missing directory is a ``FileNotFoundError`` naming the
target path.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import IO, TYPE_CHECKING, Any, Union

import numpy as np

from ._atomic_write import atomic_write, remove_orphans

if TYPE_CHECKING:
    from .models import Sequential

FORMAT = "fastmlp"
VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


class FileFormatError(ValueError):
    """A file that is not a readable fastmlp file (truncated, corrupted, foreign or newer)."""


# ---------------------------------------------------------------- writing


def _write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray[Any, Any]) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    archive.writestr(name, buffer.getvalue())


def _write_archive(archive: zipfile.ZipFile, model: Sequential, kind: str) -> None:
    from . import __version__

    archive.writestr(
        "fastmlp.json",
        json.dumps({"format": FORMAT, "version": VERSION, "kind": kind, "fastmlp_version": __version__}),
    )
    config: dict[str, Any] = {"model": model.get_config()}
    if kind == "model":
        config["compile"] = model.get_compile_config()
    archive.writestr("config.json", json.dumps(config, indent=1))
    for i, weight in enumerate(model.get_weights()):
        _write_array(archive, f"weights/{i:05d}.npy", weight)
    if kind == "model" and model._trainer is not None:
        state = model._trainer.get_state()
        archive.writestr(
            "training.json",
            json.dumps({"iterations": int(state["iterations"]), "rng": [int(w) for w in state["rng"]]}),
        )
        for i, slot in enumerate(state["slots"]):
            _write_array(archive, f"optimizer/{i:05d}.npy", slot)


def _save(model: Sequential, filepath: PathLike, kind: str) -> None:
    def write(handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            _write_archive(archive, model, kind)

    atomic_write(os.fsdecode(filepath), write)


def save_model(model: Sequential, filepath: PathLike) -> None:
    if model._network is None:
        raise ValueError(f"Model {model.name!r} is not built yet: there is nothing to save.")
    _save(model, filepath, "model")


def save_weights(model: Sequential, filepath: PathLike) -> None:
    if model._network is None:
        raise ValueError(f"Model {model.name!r} is not built yet: it has no weights to save.")
    _save(model, filepath, "weights")


def model_to_bytes(model: Sequential) -> bytes:
    buffer = io.BytesIO()
    if model._network is None:
        raise ValueError(f"Model {model.name!r} is not built yet: it cannot be pickled.")
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        _write_archive(archive, model, "model")
    return buffer.getvalue()


# ---------------------------------------------------------------- reading


class _Reader:
    """A validated archive; every problem becomes a FileFormatError naming the file."""

    def __init__(self, source: Any, label: str) -> None:
        self.label = label
        try:
            self.archive = zipfile.ZipFile(source)
            bad = self.archive.testzip()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
            raise FileFormatError(f"{label}: not a fastmlp file (not a readable zip archive: {error})") from None
        if bad is not None:
            raise FileFormatError(f"{label}: corrupted (member {bad!r} fails its checksum)")
        if "fastmlp.json" not in self.archive.namelist():
            raise FileFormatError(f"{label}: not a fastmlp file (no fastmlp manifest)")
        manifest = self.json("fastmlp.json")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise FileFormatError(f"{label}: not a fastmlp file (no fastmlp manifest)")
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise FileFormatError(
                f"{label}: written in fastmlp file format version {version!r}; this fastmlp reads "
                f"up to version {VERSION}. Upgrade fastmlp to load it."
            )
        self.kind = manifest.get("kind")

    def close(self) -> None:
        self.archive.close()

    def read(self, name: str) -> bytes:
        try:
            return self.archive.read(name)
        except KeyError:
            raise FileFormatError(f"{self.label}: incomplete (member {name!r} is missing)") from None
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise FileFormatError(f"{self.label}: corrupted member {name!r} ({error})") from None

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise FileFormatError(f"{self.label}: corrupted member {name!r} ({error})") from None

    def array(self, name: str) -> np.ndarray[Any, Any]:
        try:
            array = np.load(io.BytesIO(self.read(name)), allow_pickle=False)
        except ValueError as error:
            raise FileFormatError(f"{self.label}: member {name!r} is not a plain array ({error})") from None
        if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
            raise FileFormatError(f"{self.label}: member {name!r} is not a float array")
        return array

    def arrays(self, folder: str) -> list[np.ndarray[Any, Any]]:
        names = sorted(n for n in self.archive.namelist() if n.startswith(folder + "/") and n.endswith(".npy"))
        return [self.array(n) for n in names]


def _open(filepath: PathLike) -> _Reader:
    path = os.fspath(filepath)
    remove_orphans(os.path.dirname(os.path.abspath(path)))
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    return _Reader(path, repr(path))


def _set_weights(model: Sequential, reader: _Reader) -> None:
    weights = reader.arrays("weights")
    try:
        model.set_weights(weights)
    except (ValueError, TypeError) as error:
        raise FileFormatError(f"{reader.label}: its weights do not fit the model ({error})") from None


def _restore(reader: _Reader) -> Sequential:
    from . import losses, optimizers
    from .models import Sequential

    if reader.kind != "model":
        raise FileFormatError(f"{reader.label}: holds only weights; use model.load_weights() on a built model")
    config = reader.json("config.json")
    try:
        model = Sequential.from_config(config["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise FileFormatError(f"{reader.label}: invalid model config ({error})") from None
    _set_weights(model, reader)
    compile_config = config.get("compile")
    if compile_config:
        try:
            model.compile(
                optimizer=optimizers.from_config(compile_config["optimizer"]),
                loss=losses.from_config(compile_config["loss"]),
                metrics=compile_config["metrics"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FileFormatError(f"{reader.label}: invalid compile config ({error})") from None
        if "training.json" in reader.archive.namelist() and model._network is not None:
            training = reader.json("training.json")
            model._make_trainer(seed=0)  # the saved generator state replaces this seed
            try:
                model._trainer.set_state(
                    {
                        "iterations": training["iterations"],
                        "rng": training["rng"],
                        "slots": [np.ascontiguousarray(a, dtype=model.dtype) for a in reader.arrays("optimizer")],
                    }
                )
            except (KeyError, TypeError, ValueError) as error:
                raise FileFormatError(f"{reader.label}: invalid optimizer state ({error})") from None
    return model


def load_model(filepath: PathLike) -> Sequential:
    """Load a model saved with ``model.save``: architecture, weights, compile settings and
    optimizer state (training continues exactly where it stopped)."""
    reader = _open(filepath)
    try:
        return _restore(reader)
    finally:
        reader.close()


def load_weights(model: Sequential, filepath: PathLike) -> None:
    reader = _open(filepath)
    try:
        if model._network is None:
            raise ValueError(f"Model {model.name!r} is not built yet: build it before load_weights().")
        _set_weights(model, reader)
    finally:
        reader.close()


def model_from_bytes(data: bytes) -> Sequential:
    reader = _Reader(io.BytesIO(data), "pickled fastmlp model")
    try:
        return _restore(reader)
    finally:
        reader.close()
