"""What the benchmarks run: network shapes, data, initial weights, FLOP counts and workloads.

Shared by ``compare.py`` (so that every framework trains from exactly the same weights on
exactly the same data) and by the pytest-benchmark suite. Only NumPy and fastmlp are imported.

FLOP counts are *dense-equivalent*: a multiply-add counts as 2 FLOPs even where fastmlp's
sparse first-layer path skips it because the input is zero. Per sample, with
``MACs = sum of fan_in * fan_out`` over the layers and ``MACs_1`` the first layer's share:

* forward (predict):  ``2 * MACs``
* training step:      ``2 * MACs`` forward, ``2 * MACs`` for the weight gradients and
  ``2 * (MACs - MACs_1)`` for the input gradients (the first layer needs none): in total
  ``6 * MACs - 2 * MACs_1``. For 784-100-10 that is 319,600 FLOPs, the ~320 kFLOP per sample
  of issue 5. Bias, activation, loss and update work is left out (under 1% here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from fastmlp import reference

Images = NDArray[np.float32]
Labels = NDArray[np.int32]
Params32 = list[tuple[NDArray[np.float32], NDArray[np.float32]]]

NUM_CLASSES = 10
# Share of nonzero pixels in MNIST's training images (19.1%); the synthetic stand-in copies it
# because fastmlp's first layer reads only nonzero inputs, so sparsity changes its speed.
MNIST_DENSITY = 0.191

FLOP_FORMULA = (
    "dense-equivalent FLOPs per sample, MACs = sum(fan_in*fan_out): predict 2*MACs; "
    "train 6*MACs - 2*MACs(first layer) (forward 2*MACs + weight gradients 2*MACs + "
    "input gradients of every layer but the first); zeros skipped by a sparse path still count"
)


@dataclass(frozen=True)
class Net:
    """A dense network: layer widths from input to output, one hidden activation, softmax out
    (the last width is the number of classes)."""

    sizes: tuple[int, ...]
    hidden_activation: str

    @property
    def name(self) -> str:
        return "-".join(map(str, self.sizes))

    @property
    def classes(self) -> int:
        return self.sizes[-1]

    @property
    def activations(self) -> list[str]:
        return [self.hidden_activation] * (len(self.sizes) - 2) + ["softmax"]

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        return list(zip(self.sizes[:-1], self.sizes[1:]))

    @property
    def macs(self) -> int:
        return sum(i * o for i, o in self.layer_shapes)

    def predict_flops(self) -> int:
        """FLOPs to predict one sample (see the module docstring)."""
        return 2 * self.macs

    def train_flops(self) -> int:
        """FLOPs of one sample's forward and backward pass (see the module docstring)."""
        first = self.sizes[0] * self.sizes[1]
        return 6 * self.macs - 2 * first


MNIST_NET = Net((784, 100, 10), "sigmoid")
WIDE_NET = Net((784, 512, 512, 10), "relu")
HUGE_NET = Net((4096, 4096, 10), "relu")
# Tabular: the shape of covertype (54 features, 7 classes), scikit-learn's MLP territory.
TABULAR_NET = Net((54, 100, 7), "relu")


def initial_params(net: Net, seed: int = 0) -> Params32:
    """Glorot-uniform kernels and zero biases in float32: the starting point for everyone."""
    rng = np.random.default_rng(seed)
    return [
        (
            reference.glorot_uniform(fan_in, fan_out, rng).astype(np.float32),
            np.zeros(fan_out, np.float32),
        )
        for fan_in, fan_out in net.layer_shapes
    ]


# ----------------------------------------------------------------------------- data


def _teacher_labels(x: Images, seed: int, classes: int = NUM_CLASSES) -> Labels:
    """Labels a network can learn: the argmax of a fixed random linear map of the centred x
    (centring on the mean input keeps one class from winning everywhere, as x >= 0 throughout)."""
    rng = np.random.default_rng(seed + 1)
    teacher = rng.standard_normal((x.shape[1], classes)).astype(np.float32)
    mean = np.float32(x.mean(dtype=np.float64))
    labels = np.empty(x.shape[0], np.int32)
    for start in range(0, x.shape[0], 8192):  # in chunks: no second copy of a large x
        chunk = x[start : start + 8192] - mean
        labels[start : start + 8192] = np.argmax(chunk @ teacher, axis=1)
    return labels


def dense_random(n: int, dim: int, seed: int = 0, classes: int = NUM_CLASSES) -> tuple[Images, Labels]:
    """Dense inputs uniform in (0, 1] (no zeros: the sparse path never pays) and teacher labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, dim), dtype=np.float32)
    np.subtract(np.float32(1.0), x, out=x)  # [0, 1) -> (0, 1]
    return x, _teacher_labels(x, seed, classes)


def synthetic_mnist(n: int, seed: int = 0) -> tuple[Images, Labels]:
    """A stand-in for MNIST when it cannot be loaded: 784 inputs, ~19% nonzero, values in (0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784), dtype=np.float32)
    np.subtract(np.float32(1.0), x, out=x)
    x[rng.random((n, 784), dtype=np.float32) >= MNIST_DENSITY] = 0.0
    return x, _teacher_labels(x, seed)


_mnist_cache: Optional[tuple[Images, Labels, str]] = None


def mnist_like(n: int) -> tuple[Images, Labels, str]:
    """The first ``n`` MNIST training images as float32 pixels / 255 and int32 labels, and the
    source's name: real MNIST when ``fastmlp.datasets.mnist.load_data()`` works, else the
    synthetic stand-in (``n`` may then exceed 60000)."""
    global _mnist_cache
    if _mnist_cache is None:
        try:
            from fastmlp.datasets import mnist

            (x_train, y_train), _ = mnist.load_data()
            x = x_train.reshape(len(x_train), -1).astype(np.float32)
            x /= np.float32(255.0)
            _mnist_cache = (x, y_train.astype(np.int32), "MNIST")
        except Exception as error:
            x, y = synthetic_mnist(60000)
            _mnist_cache = (x, y, f"synthetic MNIST-like ({type(error).__name__})")
    x, y, source = _mnist_cache
    if n > len(x):
        extra_x, extra_y = synthetic_mnist(n - len(x), seed=7)
        return np.concatenate([x, extra_x]), np.concatenate([y, extra_y]), source + " + synthetic"
    return x[:n], y[:n], source


def load(
    kind: str, n: int, dim: int, real_mnist: bool = True, classes: int = NUM_CLASSES
) -> tuple[Images, Labels, str]:
    """Data of a workload: ``kind`` "mnist" (real, or the stand-in when ``real_mnist`` is False
    or MNIST cannot be loaded) or "dense" (uniform random, ``classes`` teacher labels)."""
    if kind == "mnist":
        assert dim == 784, "MNIST has 784 inputs"
        if not real_mnist:
            x, y = synthetic_mnist(n)
            return x, y, "synthetic MNIST-like"
        return mnist_like(n)
    if kind == "dense":
        x, y = dense_random(n, dim, classes=classes)
        return x, y, "dense random"
    raise ValueError(f"unknown data kind {kind!r}")


# ----------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One row of the comparison table.

    ``kind``: "train" (one epoch of ``optimizer``, shuffled, softmax cross-entropy), "predict"
    (all samples in one call) or "predict1" (one sample per call, the per-call overhead counts).
    ``optimizer``: "sgd" (plain) or "adam" (Keras's defaults but the learning rate).
    ``threads``: 0 means "the --threads value" (the multi-thread rows).
    """

    key: str
    net: Net
    kind: str
    data: str
    samples: int
    quick_samples: int
    threads: int = 1
    batch: int = 64
    learning_rate: float = 0.1
    optimizer: str = "sgd"
    # Rows on which the result is checked against the float64 reference (few for huge nets:
    # the check runs in float64 NumPy and must not take longer than the benchmark).
    check_rows: int = 2000

    def thread_count(self, max_threads: int) -> int:
        return max_threads if self.threads == 0 else self.threads

    def flops_per_sample(self) -> int:
        return self.net.train_flops() if self.kind == "train" else self.net.predict_flops()

    def title(self, max_threads: int, samples: Optional[int] = None) -> str:
        threads = self.thread_count(max_threads)
        what = {
            "train": f"train {self.net.name} {self.net.hidden_activation}, "
            + ("Adam, " if self.optimizer == "adam" else "") + f"batch {self.batch}",
            "predict": f"predict {self.net.name}, {samples or self.samples} at once",
            "predict1": f"predict {self.net.name}, one at a time",
        }[self.kind]
        data = "MNIST" if self.data == "mnist" else "dense random"
        return f"{what}, {threads} thread{'s' if threads > 1 else ''} ({data})"


# Learning rates: 0.1 as in issue 5 for 784-100-10; smaller for the relu nets, whose wide layers
# sum many positive activations: at 0.01, one shuffled epoch of 4096-4096-10 raised the loss for
# some batch orders (measured 2.27 to 2.73 from 2.38), at 0.003 it falls for every order tried.
WORKLOADS: tuple[Workload, ...] = (
    # The classic setup of issue 5: 784-100-10, sigmoid, softmax cross-entropy, SGD lr 0.1.
    Workload("train-b64-t1", MNIST_NET, "train", "mnist", 60000, 512),
    Workload("train-b64-tN", MNIST_NET, "train", "mnist", 60000, 512, threads=0),
    # Quick: 1024 samples, not 256: one per-sample epoch over 256 rows raised the loss for 3 of
    # 40 shuffles (the last few steps at lr 0.1 swing the net); over 1024 rows for none.
    Workload("train-b1-t1", MNIST_NET, "train", "mnist", 10000, 1024, batch=1),
    Workload("predict-t1", MNIST_NET, "predict", "mnist", 10000, 256),
    Workload("predict1-t1", MNIST_NET, "predict1", "mnist", 10000, 64),
    # The same on dense inputs: what the sparse first-layer path is worth.
    Workload("dense-train-b64-t1", MNIST_NET, "train", "dense", 30000, 512),
    Workload("dense-train-b1-t1", MNIST_NET, "train", "dense", 5000, 1024, batch=1),
    Workload("dense-predict-t1", MNIST_NET, "predict", "dense", 10000, 256),
    Workload("dense-predict1-t1", MNIST_NET, "predict1", "dense", 10000, 64),
    # Larger layers: the work no longer fits in L2.
    Workload("wide-train-b64-t1", WIDE_NET, "train", "mnist", 10000, 256, learning_rate=0.01),
    Workload("wide-train-b64-tN", WIDE_NET, "train", "mnist", 10000, 256, threads=0,
             learning_rate=0.01),
    Workload("wide-predict-t1", WIDE_NET, "predict", "mnist", 10000, 256),
    Workload("wide-dense-train-b64-t1", WIDE_NET, "train", "dense", 10000, 256, learning_rate=0.01),
    # Tabular: 54-100-7 relu, Adam at Keras's default rate, batch 200 (scikit-learn's 'auto').
    Workload("tabular-adam-b200-t1", TABULAR_NET, "train", "dense", 60000, 1000, batch=200,
             learning_rate=0.001, optimizer="adam"),
    Workload("huge-train-b64-t1", HUGE_NET, "train", "dense", 1024, 128, learning_rate=0.003,
             check_rows=256),
    Workload("huge-train-b64-tN", HUGE_NET, "train", "dense", 1024, 128, threads=0,
             learning_rate=0.003, check_rows=256),
    Workload("huge-predict-t1", HUGE_NET, "predict", "dense", 2048, 64, check_rows=256),
)


def workload(key: str) -> Workload:
    for w in WORKLOADS:
        if w.key == key:
            return w
    raise KeyError(f"unknown workload {key!r}; known: {', '.join(w.key for w in WORKLOADS)}")


def mean_loss(x: NDArray[Any], y: Labels, params: Any, net: Net) -> float:
    """Mean softmax cross-entropy of float64 weights on (x, y), by the float64 reference."""
    probs = reference.predict(x, params, net.activations)
    per_sample = reference.loss("sparse_categorical_crossentropy", y, probs)
    value = float(np.mean(per_sample))
    assert math.isfinite(value)
    return value
