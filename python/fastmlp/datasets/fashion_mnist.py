"""Zalando's Fashion-MNIST, loaded like ``keras.datasets.fashion_mnist.load_data``.

Sources, tried in order (the first that works wins):

1. ``path=`` if given (a directory with the four standard IDX files; nothing else is
   tried then), else ``$FASTMLP_DATA/fashion-mnist/``;
2. the cache ``fashion_mnist.npz`` in ``$FASTMLP_DATA`` or ``~/.cache/fastmlp``;
3. download of the four published ``.gz`` files from the mirrors below, each checked
   against its published checksums;
4. the files of Debian's package ``dataset-fashion-mnist`` in
   ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).

A result from 3 or 4 is cached. Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover,
3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._download import RemoteFile
from ._idx_set import FILE_NAMES, load_idx_dir
from ._sources import cache_source, directory_source, download_source, env_source, load_first
from ._splits import Splits

__all__ = ["CLASS_NAMES", "load_data"]

DATASET = "fashion_mnist"

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# Mirrors, in the order tried:
# - keras/src/datasets/fashion_mnist.py (keras-team/keras), load_data():
#   "https://storage.googleapis.com/tensorflow/tf-keras-datasets/";
# - torchvision/datasets/mnist.py (pytorch/vision), FashionMNIST.mirrors, Zalando's own:
#   "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".
MIRRORS = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

# SHA-256: keras/src/datasets/fashion_mnist.py (keras-team/keras), FILE_HASHES (older
# Keras releases pass no hash); the same values appear in many independent projects.
# MD5: torchvision/datasets/mnist.py (pytorch/vision), FashionMNIST.resources.
# Sizes: as published by Zalando; they are consistent with Debian's copies, which are
# the same gzip streams less the 23-24 byte file-name field of the gzip header.
FILES = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        size=26421880,
        sha256="3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        size=29515,
        sha256="a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        md5="25c81989df183df01b3e8a0aad5dffbe",
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        size=4422102,
        sha256="346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        md5="bef4ecab320f06d8554ea6380940ec79",
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        size=5148,
        sha256="67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        md5="bb300cfdad3c16e7a12a480ee83cd310",
    ),
)
if [f.name for f in FILES] != [f"{n}.gz" for n in FILE_NAMES]:  # two lists kept in step by hand
    raise ImportError(f"{__name__}: FILES and FILE_NAMES disagree")

#: Where Debian's package dataset-fashion-mnist installs the four .gz files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_data(path: str | os.PathLike[str] | None = None) -> Splits:
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    Args:
        path: a directory holding ``train-images-idx3-ubyte``,
            ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
            ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``). If given, only that
            directory is read, and any problem with it is raised.

    Returns:
        ``x_train`` uint8 ``(60000, 28, 28)``, ``y_train`` uint8 ``(60000,)``,
        ``x_test`` uint8 ``(10000, 28, 28)``, ``y_test`` uint8 ``(10000,)``; labels
        index :data:`CLASS_NAMES`.

    Raises:
        DatasetNotFoundError: no source worked (the message lists each and why), or
            ``path`` lacks a file.
        IDXFormatError: a file under ``path`` is malformed (the message names it).
    """
    if path is not None:
        return load_idx_dir(path)
    return load_first(
        "Fashion-MNIST",
        DATASET,
        [
            env_source(DATASET),
            cache_source(DATASET),
            download_source(FILES, MIRRORS),
            directory_source(f"Debian package dataset-fashion-mnist ({DEBIAN_DIR})", DEBIAN_DIR),
        ],
    )
