"""Train a dense network (MLP) on MNIST or Fashion-MNIST with fastmlp.

The defaults are the classic setup: 784-100-10, a sigmoid hidden layer, a softmax output
with cross-entropy, plain SGD with learning rate 0.1, batches of 64, 10 epochs, pixels
scaled to [0, 1]. The script prints Keras-style progress, the test loss and accuracy,
seconds per epoch and training samples per second, and the predicted and actual labels
of the first 10 test images. From a clone of the repository (the data is fetched and
cached on the first run; see ``fastmlp.datasets``)::

    python -m pip install ".[plot]" && python examples/mnist.py --plot mnist.png
    python examples/mnist.py --activation relu --optimizer adam --lr 0.001
    python examples/mnist.py --dataset fashion --hidden 256 128 --optimizer adam
    python examples/mnist.py --threads 2 --epochs 5 --verbose 2
    python examples/mnist.py --data-dir ~/mnist-idx --save mnist.fastmlp
    python examples/mnist.py --help

``--save`` writes fastmlp's own format (a zip of JSON and .npy arrays, see ``fastmlp.saving``)
to exactly that path; ``.fastmlp`` is the conventional suffix, and
``fastmlp.models.load_model("mnist.fastmlp")`` reads the model back. The flags and printed
lines are in ``_mnist_cli.py``, the ``--plot`` picture in ``_mnist_plot.py``, beside this file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

import fastmlp as fm

# Run as a script, this file's directory is on sys.path; imported by path (the tests), it is not.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mnist_cli import (
    DATASETS,
    make_optimizer,
    parse_args,
    print_labels,
    print_scores,
    print_setup,
    print_speed,
)
from _mnist_plot import class_names, plot, require_matplotlib

Images = npt.NDArray[np.float32]
Labels = npt.NDArray[np.uint8]
Data = tuple[tuple[Images, Labels], tuple[Images, Labels]]
SHOWN = 10  # test images whose predicted and actual labels are printed


def load(dataset: str, data_dir: str | None = None) -> Data:
    """The data set's images as float32 in [0, 1] and its uint8 labels."""
    (x_train, y_train), (x_test, y_test) = DATASETS[dataset].load_data(path=data_dir)
    return (x_train.astype("float32") / 255, y_train), (x_test.astype("float32") / 255, y_test)


def build_model(
    hidden: Sequence[int],
    activation: str = "sigmoid",
    input_shape: tuple[int, ...] = (28, 28),
    num_classes: int = 10,
) -> fm.Sequential:
    """``Input -> Flatten -> Dense(h, activation) for h in hidden -> Dense(classes, softmax)``."""
    return fm.Sequential(
        [fm.layers.Input(shape=input_shape), fm.layers.Flatten()]
        + [fm.layers.Dense(units, activation=activation) for units in hidden]
        + [fm.layers.Dense(num_classes, activation="softmax")],
        name="mlp",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the script with these arguments (``sys.argv[1:]`` if None); returns the exit status."""
    args = parse_args(argv)
    if args.plot:
        require_matplotlib()  # fail before training, not after
    if args.threads is not None:
        fm.set_num_threads(args.threads)
    fm.utils.set_random_seed(args.seed)

    started = time.perf_counter()
    try:
        (x_train, y_train), (x_test, y_test) = load(args.dataset, args.data_dir)
    except (OSError, ValueError) as error:  # DatasetNotFoundError, IDXFormatError, ...
        print(f"mnist.py: error: could not load {args.dataset}: {error}", file=sys.stderr)
        return 1
    load_seconds = time.perf_counter() - started

    model = build_model(args.hidden, args.activation, input_shape=x_train.shape[1:])
    optimizer = make_optimizer(args.optimizer, args.lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    setup = print_setup(args, model, optimizer, x_train, x_test)

    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=args.verbose,
        validation_data=(x_test, y_test) if args.plot else None,  # the plot's val_ curves
    )
    fit_seconds = time.perf_counter() - started
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print_scores(test_loss, test_accuracy)
    print_speed(args, len(x_train), history, fit_seconds, load_seconds)
    predicted = model.predict(x_test[:SHOWN], verbose=0).argmax(axis=1)
    print_labels(predicted, y_test[:SHOWN])

    if args.save:
        model.save(args.save)
        print(f"Model saved to {args.save}")
    if args.plot:
        labels = model.predict(x_test, verbose=0).argmax(axis=1)
        title = f"fastmlp on {args.dataset}: {setup}"
        plot(args.plot, history, x_test, y_test, labels, class_names(args.dataset), title)
        print(f"Plot written to {os.fspath(args.plot)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
