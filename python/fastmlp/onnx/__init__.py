"""ONNX export of fastmlp models: ``to_onnx(model)`` gives an ``onnx.ModelProto``,
``export(model, filepath)`` writes it to a file.

``model`` is a built ``fastmlp.Sequential`` or a fitted scikit-learn style MLP estimator
(``fastmlp.sklearn.MLPClassifier``/``MLPRegressor``; scikit-learn's own ``MLPClassifier`` and
``MLPRegressor`` have the same fitted attributes and export the same way). The graph uses
standard ONNX operators only (opset ``DEFAULT_OPSET`` unless ``target_opset`` asks for another
from 13 on), keeps the model's dtype (float32 or float64) and has a dynamic batch axis ``N``:

- input ``X``: ``(N, *sample shape)`` for a Sequential model, ``(N, n_features_in_)`` for an
  estimator;
- outputs: ``output`` (what ``predict`` returns) for a Sequential model; ``label`` and
  ``probabilities`` for a classifier (``predict`` and ``predict_proba``, as skl2onnx gives them
  with ``zipmap=False``); ``variable`` for a regressor (``predict``).

Dropout is the identity at inference, so it adds no node. Needs the ``onnx`` package
(``pip install "fastmlp[onnx]"``); ``import fastmlp`` does not import this module, which
``fm.onnx`` imports on first access.
"""

from __future__ import annotations

import os
from typing import IO, Any, Optional, Union

import onnx
from onnx import helper

from .._atomic_write import atomic_write
from .._version import __version__
from ..models import Sequential
from . import _estimators, _sequential
from ._graph import ELEMENT_TYPES, GraphBuilder

# The opset of an export that names none: every onnxruntime since 1.13 runs it.
DEFAULT_OPSET = 17
# The oldest opset the graphs can be written in (Softmax over the last axis means, from 13 on,
# the softmax of each row).
MIN_OPSET = 13

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export", "to_onnx"]


def _opset(target_opset: Optional[int]) -> int:
    if target_opset is None:
        return DEFAULT_OPSET
    newest = onnx.defs.onnx_opset_version()
    given: object = target_opset
    if isinstance(given, bool) or not isinstance(given, int) or not MIN_OPSET <= given <= newest:
        raise ValueError(
            f"`target_opset` must be an integer from {MIN_OPSET} to {newest} (the newest this "
            f"onnx package knows), or None for {DEFAULT_OPSET}. Received: target_opset={target_opset!r}"
        )
    return given


def _sequential_model(model: Sequential, opset: int) -> onnx.ModelProto:
    shape = _sequential.sample_shape(model)
    layers = _sequential.dense_layers(model)
    builder = GraphBuilder(model.dtype)
    x = builder.unique("X")
    h = builder.node("Flatten", [x], "flatten", axis=1) if len(shape) > 1 else x
    for layer in layers:
        h = builder.dense(h, layer)
    output = builder.node("Identity", [h], "output")
    return builder.model(
        [helper.make_tensor_value_info(x, builder.element_type, ["N", *shape])],
        [helper.make_tensor_value_info(output, builder.element_type, ["N", layers[-1].kernel.shape[1]])],
        model.name,
        opset,
        f"fastmlp {__version__} Sequential model {model.name!r}",
    )


def _estimator_model(estimator: Any, opset: int) -> onnx.ModelProto:
    # An estimator's class derives from scikit-learn's, so scikit-learn is installed and
    # imported already; exporting a Sequential model does not need it.
    from sklearn.base import is_classifier, is_regressor
    from sklearn.utils.validation import check_is_fitted

    classifier = is_classifier(estimator)
    if not (classifier or is_regressor(estimator)) or "hidden_layer_sizes" not in estimator.get_params():
        raise TypeError(
            "The ONNX exporter takes a fastmlp Sequential model or an MLPClassifier/MLPRegressor. "
            f"Received: model of type {type(estimator).__name__}"
        )
    check_is_fitted(estimator, ["coefs_", "intercepts_", "out_activation_"])
    layers = _estimators.dense_layers(estimator)
    builder = GraphBuilder(_estimators.dtype(layers))
    n_features = layers[0].kernel.shape[0]
    declared = getattr(estimator, "n_features_in_", n_features)
    if declared != n_features:
        raise ValueError(f"The estimator's n_features_in_={declared} does not match coefs_[0] of shape {layers[0].kernel.shape}.")
    x = builder.unique("X")
    h = x
    for layer in layers:
        h = builder.dense(h, layer)
    n_outputs = layers[-1].kernel.shape[1]
    if classifier:
        outputs = _estimators.classifier_outputs(builder, h, estimator, n_outputs)
    else:
        outputs = _estimators.regressor_outputs(builder, h, n_outputs)
    name = type(estimator).__name__
    return builder.model(
        [helper.make_tensor_value_info(x, builder.element_type, ["N", n_features])],
        outputs,
        name,
        opset,
        f"fastmlp {__version__} export of a fitted {name}",
    )


def to_onnx(model: Any, *, target_opset: Optional[int] = None) -> onnx.ModelProto:
    """The ONNX model computing ``model``'s predictions (see the module docstring).

    Raises ValueError for a Sequential model that is not built and for what the exporter cannot
    express (the message names it), scikit-learn's ``NotFittedError`` for an estimator that is
    not fitted, and TypeError for any other object."""
    opset = _opset(target_opset)
    if isinstance(model, Sequential):
        if model.dtype not in ELEMENT_TYPES:
            raise ValueError(f"The ONNX exporter writes float32 and float64 models. Received: dtype={model.dtype!r}")
        return _sequential_model(model, opset)
    if _estimators.is_estimator(model):
        return _estimator_model(model, opset)
    raise TypeError(
        "The ONNX exporter takes a fastmlp Sequential model or an MLPClassifier/MLPRegressor. "
        f"Received: model of type {type(model).__name__}"
    )


def export(model: Any, filepath: Union[str, os.PathLike[str]], *, target_opset: Optional[int] = None) -> None:
    """Write ``to_onnx(model, target_opset=target_opset)`` to ``filepath``; the file is replaced
    atomically, so that a failed export leaves any existing file as it was."""
    proto = to_onnx(model, target_opset=target_opset)
    data = proto.SerializeToString()

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    atomic_write(os.fsdecode(filepath), write)
