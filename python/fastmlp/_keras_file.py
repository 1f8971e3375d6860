"""Keras 3's ``.keras`` archive, read and written (internal; ``fastmlp.saving`` documents it and
``fastmlp._file_dispatch`` sends ``.keras`` paths here).

A ``.keras`` file is a zip archive of ``metadata.json``, ``config.json`` (the serialized model,
translated by ``fastmlp._keras_config``) and ``model.weights.h5`` (the variables, an HDF5 file:
``layers/dense/vars/0`` is the first Dense layer's kernel), as ``keras/src/saving/saving_lib.py``
writes it. h5py, an optional dependency (``pip install fastmlp[keras]``), is imported only here,
when such a file is read or written.

Reading holds a ``.keras`` file to the rules of a fastmlp file: the zip archive is opened and
bounded by ``ModelFileReader`` (a regular file only; directory, members, JSON and inflation
bounded), the config becomes fastmlp's config by an allow-list and is checked by
``_saved_config`` exactly as a fastmlp file's, and each weight is read only after its HDF5
dataset is found through hard links (an external or soft link would open another file), is
checked to be a plain float dataset (an integer one for a Normalization's count) with its data in the file (no external storage, virtual
mapping or filter, so its size is bounded by the file's) and of the shape the config needs.
NaN or infinity is refused. Keras's optimizer variables are not read: a compiled model's
optimizer starts again, with an ``OptimizerStateResetWarning``; fastmlp writes none either, and
Keras then says it skips them.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import json
import os
import warnings
import zipfile
from typing import IO, Any, NoReturn, Optional, Protocol, Union

import numpy as np

from . import _keras_config, _saved_config
from ._atomic_write import atomic_write, remove_orphans
from ._model_file import FromConfig, Model, SavedModel, build_model
from ._model_file_format import FileFormatError, OptimizerStateResetWarning
from ._model_file_reader import ModelFileReader, open_regular_file
from ._version import __version__
from ._writable import check_finite_arrays

PathLike = Union[str, "os.PathLike[str]"]

SUFFIX = ".keras"
METADATA = "metadata.json"
CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
# The version of Keras's archive layout written in metadata.json (Keras 3's saving_lib).
KERAS_VERSION = "3.0.0"

# What h5py raises on a damaged or hostile HDF5 file (OverflowError: a superblock whose sizes
# do not fit a C ssize_t).
_H5_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError, IndexError, OverflowError)


def has_h5py() -> bool:
    """Whether h5py can be imported (without importing it)."""
    return importlib.util.find_spec("h5py") is not None


def h5py_module() -> Any:
    """h5py, imported on first use: fastmlp itself needs only NumPy."""
    try:
        import h5py  # type: ignore[import-untyped,unused-ignore]
    except ImportError as error:
        raise ImportError(
            "Reading or writing a .keras file needs h5py: pip install 'fastmlp[keras]' (or h5py)."
        ) from error
    return h5py


def is_keras_path(filepath: PathLike) -> bool:
    """Whether ``filepath`` names a Keras archive (by its suffix, as Keras decides)."""
    return os.fsdecode(filepath).endswith(SUFFIX)


# ---------------------------------------------------------------- reading


class _Fails(Protocol):
    """What reading a weights dataset needs of its file: a way to fail naming the file."""

    def fail(self, problem: str, cause: Optional[BaseException] = None) -> NoReturn: ...


def _dataset(reader: _Fails, h5py: Any, root: Any, path: str) -> Any:
    """The dataset at ``path``, reached through hard links only."""
    group = root
    parts = path.split("/")
    for depth, part in enumerate(parts):
        link = group.get(part, getlink=True)
        if link is None:
            reader.fail(f"{WEIGHTS!r} lacks {path!r}, which the config's layers need")
        if not isinstance(link, h5py.HardLink):
            reader.fail(f"{WEIGHTS!r}: {'/'.join(parts[: depth + 1])!r} is a {type(link).__name__}; only hard links are read")
        group = group[part]
    if not isinstance(group, h5py.Dataset):
        reader.fail(f"{WEIGHTS!r}: {path!r} is not a dataset")
    return group


def _read_weight(reader: _Fails, h5py: Any, root: Any, path: str, shape: tuple[int, ...], dtype: str, limit: int,
                 integer: bool = False) -> Any:
    dataset = _dataset(reader, h5py, root, path)
    kinds = "fiu" if integer else "f"  # Keras holds a Normalization's count as int64
    if tuple(dataset.shape) != shape:
        reader.fail(f"its weights do not fit the architecture in config.json: {path!r} has shape {tuple(dataset.shape)}, the model needs {shape}")
    if dataset.dtype.kind not in kinds or dataset.dtype.itemsize not in (1, 2, 4, 8):
        reader.fail(f"{WEIGHTS!r}: {path!r} holds {dataset.dtype}, not floating-point numbers{' or integers' if integer else ''}")
    plist = dataset.id.get_create_plist()
    if plist.get_nfilters() or plist.get_external_count() or dataset.is_virtual:
        reader.fail(f"{WEIGHTS!r}: {path!r} is compressed, filtered, virtual or stored outside the file; Keras writes plain datasets")
    if dataset.dtype.itemsize * int(np.prod(shape, dtype=np.int64)) > limit:
        reader.fail(f"{WEIGHTS!r}: {path!r} declares more data than the file holds")
    if dataset.size and dataset.id.get_space_status() != h5py.h5d.SPACE_STATUS_ALLOCATED:
        # Read, its unwritten values would come back as the fill value: zeros in place of weights.
        reader.fail(f"{WEIGHTS!r}: {path!r} was created but not (completely) written: it holds no data")
    values = np.empty(shape, dtype=dataset.dtype.newbyteorder("="))
    if values.size:
        dataset.read_direct(values)
    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=dtype, order="C")  # ascontiguousarray would make a scalar 1-d
    if not np.isfinite(array).all():
        reader.fail(f"{WEIGHTS!r}: {path!r} holds NaN or infinity (or values beyond the range of {dtype})")
    return array


def _read_weights(reader: ModelFileReader, layout: _keras_config.WeightLayout, shapes: list[tuple[int, ...]], dtype: str) -> list[Any]:
    paths = layout.weights
    if len(paths) != len(shapes):  # both follow the Dense layers of the same checked config
        raise RuntimeError("the weights' layout does not follow the config")
    h5py = h5py_module()
    data = reader.read(WEIGHTS, reader.members[WEIGHTS].file_size)
    try:
        with h5py.File(io.BytesIO(data), "r") as root:
            return [_read_weight(reader, h5py, root, path, shape, dtype, len(data), path in layout.integers) for path, shape in zip(paths, shapes)]
    except _H5_ERRORS as error:
        reader.fail(f"{WEIGHTS!r} is not a readable HDF5 file of weights ({error})", error)


def load_model(filepath: PathLike, from_config: FromConfig[Model], compile: bool = True) -> Model:
    """The model of a Keras 3 ``.keras`` file (see the module's docstring); uncompiled, its
    compile config unread, without ``compile``."""
    path = os.fsdecode(filepath)
    remove_orphans(os.path.dirname(os.path.abspath(path)))
    reader = ModelFileReader(open_regular_file(path), repr(path), format_name="Keras")
    try:
        for member in (METADATA, CONFIG, WEIGHTS):
            if member not in reader.members:
                reader.fail(f"not a Keras file (no {member!r})")
        if not isinstance(reader.json(METADATA), dict):
            reader.fail(f"not a Keras file ({METADATA!r} is not a JSON object)")
        translated, layout = _keras_config.from_keras(reader.json(CONFIG), reader.fail, compile)
        config = _saved_config.check_config(translated, reader.label, CONFIG)
        shapes = _saved_config.weight_shapes(config["model"])
        weights = _read_weights(reader, layout, shapes, config["model"]["dtype"])
        model = build_model(reader, config, weights, from_config)
        if model.loss is not None:
            warnings.warn(
                f"{reader.label} is a Keras file: fastmlp does not read Keras's optimizer variables, so "
                f"the optimizer of model {model.name!r} starts again from step 0 with zeroed slots.",
                OptimizerStateResetWarning,
                stacklevel=4,  # the caller of load_model in fastmlp.models or fastmlp.saving (via _file_dispatch)
            )
        return model
    finally:
        reader.close()


# ---------------------------------------------------------------- writing


def _weights_file(model: SavedModel, layout: _keras_config.WeightLayout, weights: list[Any]) -> bytes:
    h5py = h5py_module()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as root:
        root.create_group("layers")
        for group, name in layout.groups:
            root.create_group(f"{group}/vars").attrs["name"] = name
        for path, weight in zip(layout.weights, weights):
            root.create_dataset(path, data=np.asarray(weight, dtype=np.int64 if path in layout.integers else None, order="C"))
        root.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def save_model(model: SavedModel, filepath: PathLike) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file, atomically. ValueError for a layer or
    activation Keras cannot name; a compile config whose optimizer Keras lacks (the full-batch
    optimizers) is left out with a warning."""
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: there is nothing to save.")
    compile_config: Optional[dict[str, Any]] = model.get_compile_config()
    config, layout, kept = _keras_config.to_keras(model.get_config(), compile_config)
    if not kept:
        warnings.warn(
            f"Model {model.name!r} is compiled with an optimizer Keras does not have; the .keras file "
            "holds the model and its weights without its compile settings.",
            UserWarning,
            stacklevel=5,  # the caller of Model.save (through its lock and _file_dispatch)
        )
    weights = model.get_weights()
    if len(weights) != len(layout.weights):  # both follow the model's Dense layers
        raise RuntimeError("the weights' layout does not follow the model's config")
    check_finite_arrays(model.name, weights, "weight")
    members = {
        METADATA: json.dumps({"keras_version": KERAS_VERSION, "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                              "saved_by": f"fastmlp {__version__}"}),
        CONFIG: json.dumps(config),
    }
    h5 = _weights_file(model, layout, weights)

    def write(handle: IO[bytes]) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, text in members.items():
                archive.writestr(name, text)
            archive.writestr(WEIGHTS, h5)

    atomic_write(os.fsdecode(filepath), write)


# ---------------------------------------------------------------- weights only

# The first bytes of every HDF5 file.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
WEIGHTS_SUFFIX = ".weights.h5"


def is_weights_path(filepath: PathLike) -> bool:
    """Whether ``filepath`` names Keras's weights file (``.weights.h5``, as Keras requires)."""
    return os.fsdecode(filepath).endswith(WEIGHTS_SUFFIX)


def is_hdf5_file(filepath: PathLike) -> bool:
    """Whether the file at ``filepath`` is HDF5 (by its signature); False when it is not a
    regular file or cannot be read (the native reader then reports why), without blocking on a
    FIFO or device (``open_regular_file``)."""
    try:
        with open_regular_file(os.fsdecode(filepath)) as handle:
            return handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except (OSError, FileFormatError):
        return False


def _layout(model: SavedModel) -> _keras_config.WeightLayout:
    _, layout, _ = _keras_config.to_keras(model.get_config(), None)
    return layout


def save_weights(model: SavedModel, filepath: PathLike) -> None:
    """Write the weights as Keras 3's ``save_weights`` does: an HDF5 file laid out as the
    ``model.weights.h5`` of a ``.keras`` archive (``layers/<name>/vars/<i>``), atomically."""
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: it has no weights to save.")
    layout = _layout(model)
    weights = model.get_weights()
    if len(weights) != len(layout.weights):  # both follow the model's Dense layers
        raise RuntimeError("the weights' layout does not follow the model's config")
    check_finite_arrays(model.name, weights, "weight")
    data = _weights_file(model, layout, weights)

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    atomic_write(os.fsdecode(filepath), write)


# A weights file's bytes besides the values: HDF5's superblock and root groups, and per dataset
# its object header, group entries and attributes (Keras's files take a few hundred bytes each).
_MAX_HEADER_BYTES = 1 << 20
_MAX_BYTES_PER_DATASET = 64 << 10


def load_weights(model: SavedModel, filepath: PathLike) -> None:
    """Set a built model's weights from an HDF5 weights file of Keras 3 (or of ``save_weights``):
    each layer's ``layers/<name>/vars/<i>`` by this model's layer names, as Keras finds them. A
    missing dataset, a shape that does not fit, or NaN/infinity is a ``FileFormatError`` naming
    it; nothing is set then."""
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built yet: build it before load_weights().")
    layout = _layout(model)
    shapes = [weight.shape for weight in model.get_weights()]
    path = os.fsdecode(filepath)
    reader = _WeightsFile(repr(path))
    h5py = h5py_module()
    # What a file of these weights can take: each value as float64, plus HDF5's headers. More is
    # not these weights (and a sparse file of terabytes must not be read into memory).
    limit = _MAX_HEADER_BYTES + _MAX_BYTES_PER_DATASET * len(shapes) + 8 * sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    with open_regular_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            reader.fail(f"{size} bytes, more than a weights file of this model's {len(shapes)} arrays takes (at most {limit})")
        data = handle.read(limit + 1)
    try:
        with h5py.File(io.BytesIO(data), "r") as root:
            weights = [
                _read_weight(reader, h5py, root, name, shape, model.dtype, len(data), name in layout.integers)
                for name, shape in zip(layout.weights, shapes)
            ]
    except _H5_ERRORS as error:
        reader.fail(f"not a readable HDF5 file of weights ({error})", error)
    model.set_weights(weights)


class _WeightsFile:
    """A weights file being read: fails naming it."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, problem: str, cause: Optional[BaseException] = None) -> NoReturn:
        raise FileFormatError(f"{self.label}: {problem}") from cause
