"""The ``--plot`` picture of ``mnist.py``: learning curves, confusion matrix, mistakes.

matplotlib is an optional extra (``pip install 'fastmlp[plot]'``): it is imported only when a
plot is asked for, so this module imports without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

import fastmlp as fm
from fastmlp.datasets import fashion_mnist

NUM_CLASSES = 10
MAX_MISTAKES_PLOTTED = 16


def class_names(dataset: str) -> Sequence[str] | None:
    """The names of the data set's classes; None where the class is its digit."""
    return fashion_mnist.CLASS_NAMES if dataset == "fashion" else None


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
    images: npt.NDArray[np.float32],
    actual: npt.NDArray[Any],
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
