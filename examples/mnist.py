"""Train a dense network (MLP) on MNIST or Fashion-MNIST with fastmlp.

The defaults are the classic setup: 784-100-10, a sigmoid hidden layer, a softmax output
with cross-entropy, plain SGD with learning rate 0.1, batches of 64, 10 epochs, pixels
scaled to [0, 1]. The script prints Keras-style progress, the test loss and accuracy,
seconds per epoch and training samples per second, and the predicted and actual labels
of the first 10 test images.

On a fresh machine, from a clone of the repository (the data is fetched and cached on
the first run; see ``fastmlp.datasets``)::

    python -m pip install ".[plot]" && python examples/mnist.py --plot mnist.png

More::

    python examples/mnist.py                                             # the classic setup
    python examples/mnist.py --activation relu --optimizer adam --lr 0.001
    python examples/mnist.py --dataset fashion --hidden 256 128 --optimizer adam
    python examples/mnist.py --threads 2 --epochs 5 --verbose 2
    python examples/mnist.py --data-dir ~/mnist-idx --save model.npz
    python examples/mnist.py --help
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

import fastmlp as fm
import numpy as np
import numpy.typing as npt
from fastmlp.datasets import fashion_mnist, mnist

Images = npt.NDArray[np.float32]
Labels = npt.NDArray[np.uint8]
Data = tuple[tuple[Images, Labels], tuple[Images, Labels]]

DATASETS = {"mnist": mnist, "fashion": fashion_mnist}
OPTIMIZERS: dict[str, Callable[..., fm.optimizers.Optimizer]] = {
    "sgd": fm.optimizers.SGD,
    "adam": fm.optimizers.Adam,
    "adamw": fm.optimizers.AdamW,
    "adagrad": fm.optimizers.Adagrad,
    "rmsprop": fm.optimizers.RMSprop,
}
ACTIVATIONS = ("sigmoid", "relu", "tanh")
#: The classic setup's SGD learning rate; other optimizers default to Keras's defaults.
SGD_LEARNING_RATE = 0.1
NUM_CLASSES = 10
SHOWN = 10  # test images whose predicted and actual labels are printed
MAX_MISTAKES_PLOTTED = 16


# ---------------------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; invalid values exit with an argparse error (status 2)."""
    parser = argparse.ArgumentParser(
        prog="mnist.py",
        description="Train an MLP on MNIST or Fashion-MNIST with fastmlp.",
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(DATASETS),
        default="mnist",
        help="the handwritten digits or Zalando's Fashion-MNIST (default: %(default)s)",
    )
    parser.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[100],
        metavar="UNITS",
        help="units of each hidden layer; several values for a deeper net, e.g. "
        "--hidden 256 128 (default: 100)",
    )
    parser.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="sigmoid",
        help="activation of the hidden layers; the output is softmax (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizer",
        choices=sorted(OPTIMIZERS),
        default="sgd",
        help="optimizer, with Keras's defaults for its other settings (default: %(default)s)",
    )
    parser.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help=f"learning rate (default: {SGD_LEARNING_RATE} for sgd, else the "
        "optimizer's Keras default: 0.001 for adam, adamw, adagrad and rmsprop)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=64,
        help="samples per gradient step (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=10,
        help="passes over the training set (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="threads of the C++ core (fastmlp.set_num_threads); default: fastmlp's own choice",
    )
    parser.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed of the weight initialization and the shuffling (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="a directory holding the four IDX files (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
        "each may end in .gz); default: $FASTMLP_DATA, the cache, a download",
    )
    parser.add_argument(
        "--save", default=None, metavar="PATH", help="save the trained model there (model.save)"
    )
    parser.add_argument(
        "--plot",
        default=None,
        metavar="PATH",
        help="write a PNG with the loss and accuracy curves, the confusion matrix "
        "and misclassified test images (needs matplotlib: pip install "
        "'fastmlp[plot]'). With it the test set also serves as validation_data, "
        "so fit evaluates it after every epoch (the val_ curves; this time is "
        "then part of the measured training time)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="fit's progress output: 0 silent, 1 progress bar, 2 one line per epoch "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.lr is None:
        args.lr = SGD_LEARNING_RATE if args.optimizer == "sgd" else None
    return args


# ---------------------------------------------------------------------------- steps


def load(dataset: str, data_dir: str | None = None) -> Data:
    """The data set's images as float32 in [0, 1] (converted once) and uint8 labels."""
    (x_train, y_train), (x_test, y_test) = DATASETS[dataset].load_data(path=data_dir)
    return (_scale(x_train), y_train), (_scale(x_test), y_test)


def _scale(images: npt.NDArray[np.uint8]) -> Images:
    scaled = images.astype(np.float32)
    scaled /= np.float32(255)
    return scaled


def build_model(
    hidden: Sequence[int],
    activation: str = "sigmoid",
    input_shape: tuple[int, ...] = (28, 28),
    num_classes: int = NUM_CLASSES,
) -> fm.Sequential:
    """``Input -> Flatten -> Dense(h, activation) for h in hidden -> Dense(classes, softmax)``."""
    layers: list[fm.layers.Layer] = [fm.layers.Input(shape=input_shape), fm.layers.Flatten()]
    layers += [fm.layers.Dense(units, activation=activation) for units in hidden]
    layers.append(fm.layers.Dense(num_classes, activation="softmax"))
    return fm.Sequential(layers, name="mlp")


def make_optimizer(name: str, learning_rate: float | None) -> fm.optimizers.Optimizer:
    """The optimizer ``name`` with this learning rate, or its own default if None."""
    cls = OPTIMIZERS[name]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


def describe(
    args: argparse.Namespace, sample_shape: tuple[int, ...], optimizer: fm.optimizers.Optimizer
) -> str:
    """One line: the layer sizes, activations and training settings."""
    sizes = (int(np.prod(sample_shape)), *args.hidden, NUM_CLASSES)
    learning_rate = optimizer.get_config()["learning_rate"]
    return (
        f"{'-'.join(map(str, sizes))}, {args.activation} hidden, softmax output; "
        f"{args.optimizer} (learning rate {learning_rate:g}), batch {args.batch_size}, "
        f"{args.epochs} epochs, seed {args.seed}"
    )


def train(
    model: fm.Sequential,
    optimizer: fm.optimizers.Optimizer,
    data: Data,
    args: argparse.Namespace,
) -> tuple[fm.callbacks.History, float]:
    """Compile and fit; returns the history and fit's wall time in seconds."""
    (x_train, y_train), (x_test, y_test) = data
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    validation = (x_test, y_test) if args.plot else None
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=args.verbose,
        validation_data=validation,
    )
    return history, time.perf_counter() - started


def predict_labels(model: fm.Sequential, images: Images) -> npt.NDArray[np.intp]:
    """The most probable class of each image."""
    labels: npt.NDArray[np.intp] = np.argmax(model.predict(images, verbose=0), axis=1)
    return labels


def report(
    model: fm.Sequential,
    data: Data,
    args: argparse.Namespace,
    fit_seconds: float,
    load_seconds: float,
) -> tuple[float, float]:
    """Print test loss and accuracy, speed, and the first test labels; returns (loss, acc)."""
    (x_train, _), (x_test, y_test) = data
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert isinstance(logs, dict)
    test_loss, test_accuracy = logs["loss"], logs["accuracy"]
    epochs = len(model.history.history["loss"]) if model.history is not None else args.epochs
    samples = x_train.shape[0] * epochs
    print(
        f"Test loss: {test_loss:.4f} - test accuracy: {test_accuracy:.4f} "
        f"({test_accuracy * 100:.2f}%)"
    )
    extra = " (includes the per-epoch evaluation of the test set)" if args.plot else ""
    print(
        f"Training: {fit_seconds:.2f} s for {epochs} epochs = {fit_seconds / epochs:.3f} s/epoch, "
        f"{samples / fit_seconds:,.0f} samples/s{extra}"
    )
    print(f"Data loading: {load_seconds:.2f} s")
    predicted = predict_labels(model, x_test[:SHOWN])
    print(f"First {SHOWN} test images, predicted: {_labels(predicted)}")
    print(f"First {SHOWN} test images, actual:    {_labels(y_test[:SHOWN])}")
    return float(test_loss), float(test_accuracy)


def _labels(labels: npt.NDArray[Any]) -> str:
    return " ".join(str(int(label)) for label in labels)


def confusion_matrix(
    actual: npt.NDArray[Any], predicted: npt.NDArray[Any], num_classes: int = NUM_CLASSES
) -> npt.NDArray[np.int64]:
    """``matrix[a, p]`` = how many images of class ``a`` were predicted as ``p``."""
    flat = actual.astype(np.int64) * num_classes + predicted.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def require_matplotlib() -> Any:
    """Import matplotlib (lazily: it is an optional extra) or explain how to get it."""
    try:
        return importlib.import_module("matplotlib")
    except ImportError:
        raise SystemExit(
            "mnist.py: error: --plot needs matplotlib, which is not installed; install it with "
            "pip install 'fastmlp[plot]' (or pip install matplotlib), or drop --plot"
        ) from None


def plot(
    path: str,
    history: fm.callbacks.History,
    images: Images,
    actual: Labels,
    predicted: npt.NDArray[Any],
    class_names: Sequence[str] | None = None,
    title: str = "",
) -> None:
    """Write one PNG: loss and accuracy per epoch, the confusion matrix, and a grid of up to
    16 misclassified test images with their predicted and actual labels."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import (  # type: ignore[import-not-found,unused-ignore]
        FigureCanvasAgg,
    )
    from matplotlib.figure import Figure  # type: ignore[import-not-found,unused-ignore]

    figure = Figure(figsize=(15, 10), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg backend, without touching pyplot's global state
    if title:
        figure.suptitle(title, fontsize=12)
    halves = figure.add_gridspec(2, 1, height_ratios=(1.2, 1))
    top, bottom = figure.add_subfigure(halves[0]), figure.add_subfigure(halves[1])
    names = list(class_names) if class_names is not None else [str(c) for c in range(NUM_CLASSES)]

    logs = history.history
    epochs = np.arange(1, len(logs["loss"]) + 1)
    curves = top.subplots(1, 3, width_ratios=(1, 1, 1.1))
    for axes, metric in zip(curves, ("loss", "accuracy")):
        axes.plot(epochs, logs[metric], "o-", label="train")
        if f"val_{metric}" in logs:
            axes.plot(epochs, logs[f"val_{metric}"], "s-", label="test (validation_data)")
        axes.set(title=f"{metric.capitalize()} per epoch", xlabel="epoch", ylabel=metric)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend()

    matrix = confusion_matrix(actual, predicted)
    axes = curves[2]
    axes.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > threshold else "black",
        )
    ticks = np.arange(NUM_CLASSES)
    axes.set_xticks(
        ticks,
        names,
        rotation=45 if class_names else 0,
        ha="right" if class_names else "center",
        fontsize=7 if class_names else None,
    )
    axes.set_yticks(ticks, names, fontsize=7 if class_names else None)
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axes.set(
        title=f"Confusion matrix (test accuracy {accuracy:.2%})",
        xlabel="predicted",
        ylabel="actual",
    )

    wrong = np.flatnonzero(predicted != actual)
    shown = wrong[:MAX_MISTAKES_PLOTTED]
    bottom.suptitle(
        f"Misclassified test images: the first {shown.size} of {wrong.size}", fontsize=11
    )
    cells = bottom.subplots(2, MAX_MISTAKES_PLOTTED // 2)
    for k, axes in enumerate(cells.flat):
        axes.set_axis_off()
        if k >= shown.size:
            continue
        i = int(shown[k])
        axes.imshow(images[i], cmap="gray_r", vmin=0.0, vmax=1.0)
        axes.set_title(
            f"#{i}: predicted {names[int(predicted[i])]}\nactual {names[int(actual[i])]}",
            fontsize=8,
            color="tab:red",
        )
    figure.savefig(path, dpi=100)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script with these arguments (``sys.argv[1:]`` if None); returns the exit status."""
    args = parse_args(argv)
    if args.plot:
        require_matplotlib()  # fail before training, not after
    if args.threads is not None:
        fm.set_num_threads(args.threads)  # type: ignore[attr-defined,unused-ignore]
    fm.utils.set_random_seed(args.seed)

    started = time.perf_counter()
    try:
        data = load(args.dataset, args.data_dir)
    except (OSError, ValueError) as error:  # DatasetNotFoundError, IDXFormatError, ...
        print(f"mnist.py: error: could not load {args.dataset}: {error}", file=sys.stderr)
        return 1
    load_seconds = time.perf_counter() - started
    (x_train, _), (x_test, y_test) = data

    model = build_model(args.hidden, args.activation, input_shape=x_train.shape[1:])
    optimizer = make_optimizer(args.optimizer, args.lr)
    print(
        f"fastmlp {fm.__version__} ({fm.active_isa()}), dataset {args.dataset}: "
        f"{x_train.shape[0]} training and {x_test.shape[0]} test images"
    )
    setup = describe(args, x_train.shape[1:], optimizer)
    print(f"Model: {setup}")
    if args.verbose:
        model.summary()

    history, fit_seconds = train(model, optimizer, data, args)
    report(model, data, args, fit_seconds, load_seconds)

    if args.save:
        model.save(args.save)  # type: ignore[attr-defined,unused-ignore]
        print(f"Model saved to {args.save}")
    if args.plot:
        class_names = fashion_mnist.CLASS_NAMES if args.dataset == "fashion" else None
        title = f"fastmlp on {args.dataset}: {setup}"
        plot(args.plot, history, x_test, y_test, predict_labels(model, x_test), class_names, title)
        print(f"Plot written to {os.fspath(args.plot)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
