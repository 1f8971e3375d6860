"""A fitted scikit-learn style MLP estimator (``fastmlp.sklearn.MLPClassifier``/``MLPRegressor``,
or scikit-learn's own) as the dense layers its ONNX graph computes and the outputs its
``predict``/``predict_proba`` give, read from scikit-learn's public fitted attributes:
``coefs_``, ``intercepts_``, ``out_activation_``, ``classes_``, ``n_features_in_`` and the
``activation`` parameter.

The outputs are those of skl2onnx with ``zipmap=False``:

- a classifier: ``label``, what ``predict`` returns, and ``probabilities``, what
  ``predict_proba`` returns (two columns ``1 - p, p`` for a binary problem; a multi-label
  classifier's ``label`` is its 0/1 indicator matrix, as int64);
- a regressor: ``variable``, what ``predict`` returns (shape ``(n,)`` for one target).
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper

from .. import activations
from ._graph import DenseLayer, GraphBuilder

# scikit-learn's names of hidden and output activations, in fastmlp's (an estimator of fastmlp
# may also accept fastmlp's own names, which map to themselves).
_SKLEARN_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SKLEARN_OUTPUTS = {"identity": "linear", "logistic": "sigmoid", "softmax": "softmax", "exp": "exp"}


def is_estimator(model: object) -> bool:
    """Whether ``model``'s class derives from a scikit-learn class (without importing it: such a
    class was imported along with scikit-learn)."""
    return any(cls.__module__.split(".")[0] == "sklearn" for cls in type(model).__mro__)


def _activation(name: Any, table: dict[str, str], argument: str) -> str:
    if isinstance(name, str) and name in table:
        return table[name]
    if isinstance(name, str) and name in activations.ACTIVATIONS:
        return name
    raise ValueError(f"The ONNX exporter cannot express the activation {argument}={name!r}.")


def dense_layers(estimator: Any) -> list[DenseLayer]:
    """The estimator's layers; the caller has checked that it is fitted."""
    coefs = [np.asarray(c) for c in estimator.coefs_]
    intercepts = [np.asarray(b) for b in estimator.intercepts_]
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(
            f"The estimator has {len(coefs)} coefs_ and {len(intercepts)} intercepts_: "
            "expected as many of each, at least one."
        )
    for i, (coef, intercept) in enumerate(zip(coefs, intercepts)):
        # Each layer a 2-d kernel whose rows are the previous layer's units, with one intercept
        # per column: anything else makes a graph the checker passes and onnxruntime refuses.
        fan_in = coefs[i - 1].shape[-1] if i else coef.shape[0] if coef.ndim == 2 else -1
        if coef.ndim != 2 or coef.shape[0] != fan_in or intercept.shape != (coef.shape[1],):
            raise ValueError(
                f"The estimator's layer {i} does not fit its neighbours: coefs_[{i}] has shape "
                f"{coef.shape} and intercepts_[{i}] {intercept.shape}; expected ({fan_in}, n) and (n,)."
            )
    hidden = _activation(estimator.activation, _SKLEARN_ACTIVATIONS, "activation")
    output = _activation(estimator.out_activation_, _SKLEARN_OUTPUTS, "out_activation_")
    return [
        DenseLayer(
            name=f"layer_{i}",
            kernel=coef,
            bias=intercept,
            activation=output if i == len(coefs) - 1 else hidden,
            alpha=activations.DEFAULT_ALPHA.get(hidden, 0.0),
        )
        for i, (coef, intercept) in enumerate(zip(coefs, intercepts))
    ]


def dtype(layers: list[DenseLayer]) -> str:
    kind = np.result_type(*[layer.kernel for layer in layers])
    if kind not in (np.float32, np.float64):
        raise ValueError(f"The estimator's coefs_ must be float32 or float64 arrays. Received: dtype={kind}")
    return str(kind)


def _labels(classes: NDArray[Any]) -> NDArray[Any]:
    """``classes_`` as an array ONNX holds: int64 (uint64 for unsigned labels beyond int64's
    range, which int64 would wrap to negative numbers), bool, float or string."""
    if classes.dtype.kind == "u" and classes.size and int(classes.max()) > np.iinfo(np.int64).max:
        return classes.astype(np.uint64)
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64)
    if classes.dtype.kind in "bf":
        return classes
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        return classes.astype(object)
    raise ValueError(
        "The ONNX exporter writes integer, boolean, float or string class labels. "
        f"Received: classes_ of dtype {classes.dtype}"
    )


def classifier_outputs(builder: GraphBuilder, p: str, estimator: Any, n_outputs: int) -> list[onnx.ValueInfoProto]:
    """``label`` and ``probabilities`` from the last layer's output ``p``."""
    classes = np.asarray(estimator.classes_)
    label_shape: list[Union[str, int]] = ["N"]
    out_activation = estimator.out_activation_
    if out_activation == "softmax" and n_outputs == len(classes) >= 2:
        probabilities = builder.node("Identity", [p], "probabilities")
        index = builder.node("ArgMax", [p], "argmax", axis=1, keepdims=0)
        labels = _labels(classes)
        label = builder.node("Gather", [builder.constant("classes", labels, labels.dtype), index], "label")
        label_type = helper.np_dtype_to_tensor_dtype(labels.dtype)
    elif out_activation == "logistic" and n_outputs == 1 and len(classes) == 2:
        one = builder.constant("one", 1.0)
        negative = builder.node("Sub", [one, p], "negative")
        probabilities = builder.node("Concat", [negative, p], "probabilities", axis=1)
        flat = builder.node("Reshape", [p, builder.constant("flat_shape", [-1], "int64")], "flat")
        positive = builder.node("Greater", [flat, builder.constant("threshold", 0.5)], "positive")
        index = builder.node("Cast", [positive], "index", to=TensorProto.INT64)
        labels = _labels(classes)
        label = builder.node("Gather", [builder.constant("classes", labels, labels.dtype), index], "label")
        label_type = helper.np_dtype_to_tensor_dtype(labels.dtype)
    elif out_activation == "logistic" and n_outputs == len(classes) >= 2:  # multi-label
        probabilities = builder.node("Identity", [p], "probabilities")
        positive = builder.node("Greater", [p, builder.constant("threshold", 0.5)], "positive")
        label = builder.node("Cast", [positive], "label", to=TensorProto.INT64)
        label_type, label_shape = TensorProto.INT64, ["N", n_outputs]
    else:
        raise ValueError(
            "The ONNX exporter cannot express a classifier with "
            f"out_activation_={out_activation!r}, {n_outputs} outputs and {len(classes)} classes."
        )
    width = len(classes)
    return [
        helper.make_tensor_value_info(label, label_type, label_shape),
        helper.make_tensor_value_info(probabilities, builder.element_type, ["N", width]),
    ]


def regressor_outputs(builder: GraphBuilder, y: str, n_outputs: int) -> list[onnx.ValueInfoProto]:
    """``variable``: ``(n,)`` for one target, as ``predict`` gives, else ``(n, n_outputs)``."""
    if n_outputs == 1:
        variable = builder.node("Reshape", [y, builder.constant("flat_shape", [-1], "int64")], "variable")
        return [helper.make_tensor_value_info(variable, builder.element_type, ["N"])]
    variable = builder.node("Identity", [y], "variable")
    return [helper.make_tensor_value_info(variable, builder.element_type, ["N", n_outputs])]
