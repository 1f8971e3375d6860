"""The command line of ``mnist.py``: its flags and their checks, and the lines it prints.

Kept apart so that ``mnist.py`` shows the model code and little else.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

import fastmlp as fm
from fastmlp.datasets import fashion_mnist, mnist

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


# ---------------------------------------------------------------------------- arguments


def _number(convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, then refuse what ``accept`` rejects."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0 and np.isfinite(v), "a positive number")


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
        "--save",
        default=None,
        metavar="PATH",
        help="save the trained model to PATH with model.save, in fastmlp's own file format "
        "(conventionally named *.fastmlp, e.g. mnist.fastmlp); fastmlp.models.load_model "
        "reads it back",
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


def make_optimizer(name: str, learning_rate: float | None) -> fm.optimizers.Optimizer:
    """The optimizer ``name`` with this learning rate, or its own default if None."""
    cls = OPTIMIZERS[name]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


# ---------------------------------------------------------------------------- printing


def describe(
    args: argparse.Namespace,
    model: fm.Sequential,
    optimizer: fm.optimizers.Optimizer,
    sample_shape: tuple[int, ...],
) -> str:
    """One line: the layer sizes, activations and training settings."""
    units = [layer.units for layer in model.layers if isinstance(layer, fm.layers.Dense)]
    sizes = (int(np.prod(sample_shape)), *units)
    learning_rate = optimizer.get_config()["learning_rate"]
    return (
        f"{'-'.join(map(str, sizes))}, {args.activation} hidden, softmax output; "
        f"{args.optimizer} (learning rate {learning_rate:g}), batch {args.batch_size}, "
        f"{args.epochs} epochs, seed {args.seed}"
    )


def print_setup(
    args: argparse.Namespace,
    model: fm.Sequential,
    optimizer: fm.optimizers.Optimizer,
    x_train: npt.NDArray[Any],
    x_test: npt.NDArray[Any],
) -> str:
    """Print the version, the data set's size, the setup and (verbose) the model's summary;
    returns the setup line (for the plot's title)."""
    print(
        f"fastmlp {fm.__version__} ({fm.active_isa()}), dataset {args.dataset}: "
        f"{x_train.shape[0]} training and {x_test.shape[0]} test images"
    )
    setup = describe(args, model, optimizer, x_train.shape[1:])
    print(f"Model: {setup}")
    if args.verbose:
        model.summary()
    return setup


def print_scores(test_loss: float, test_accuracy: float) -> None:
    print(
        f"Test loss: {test_loss:.4f} - test accuracy: {test_accuracy:.4f} "
        f"({test_accuracy * 100:.2f}%)"
    )


def print_speed(
    args: argparse.Namespace,
    train_samples: int,
    history: fm.callbacks.History,
    fit_seconds: float,
    load_seconds: float,
) -> None:
    """Print fit's seconds per epoch and training samples per second, and the loading time."""
    epochs = len(history.history["loss"])
    extra = " (includes the per-epoch evaluation of the test set)" if args.plot else ""
    print(
        f"Training: {fit_seconds:.2f} s for {epochs} epochs = {fit_seconds / epochs:.3f} s/epoch, "
        f"{train_samples * epochs / fit_seconds:,.0f} samples/s{extra}"
    )
    print(f"Data loading: {load_seconds:.2f} s")


def print_labels(predicted: npt.NDArray[Any], actual: npt.NDArray[Any]) -> None:
    print(f"First {len(actual)} test images, predicted: {_labels(predicted)}")
    print(f"First {len(actual)} test images, actual:    {_labels(actual)}")


def _labels(labels: npt.NDArray[Any]) -> str:
    return " ".join(str(int(label)) for label in labels)
