"""A tiny learnable stand-in for MNIST, as the four standard IDX files: tests of the example
script and of the README's quickstart run on it, without the network or the real data."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST = 200, 50


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 (magic 0x0000 08 NN, big-endian dimensions)."""
    if array.dtype != np.uint8:
        raise TypeError(f"IDX test files hold uint8, not {array.dtype}")
    header = struct.pack(">4B", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def fake_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise, plus a bright horizontal band whose position is the label."""
    images = rng.integers(0, 60, size=(labels.size, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row = 2 + 2 * int(label)
        images[i, row : row + 3, 4:24] = 255
    return images


def write_fake_mnist(directory: Path) -> Path:
    """Writes N_TRAIN training and N_TEST test images with their labels into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    y_train = (np.arange(N_TRAIN) % 10).astype(np.uint8)
    rng.shuffle(y_train)
    y_test = rng.integers(0, 10, size=N_TEST, dtype=np.uint8)
    write_idx(directory / "train-images-idx3-ubyte", fake_images(y_train, rng))
    write_idx(directory / "train-labels-idx1-ubyte", y_train)
    write_idx(directory / "t10k-images-idx3-ubyte", fake_images(y_test, rng))
    write_idx(directory / "t10k-labels-idx1-ubyte", y_test)
    return directory
