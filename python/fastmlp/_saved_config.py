"""The JSON members of a model file, checked field by field before anything is built from them.

Every field our writer writes has one JSON type here (an integer is never a float, a string or a
boolean; a flag is never a number), so a file is either read as it was written or refused; the
constructors then check values (an unknown activation, a negative rate). ``weight_shapes`` derives
the arrays an architecture needs, for comparison with the arrays a file holds before the model is
built: a config cannot make the reader allocate a layer the file has no weights for.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any, Callable, NoReturn, Union

from . import _normalization
from ._layer_order import Placement, misplaced, trailing_norm
from ._model_file_format import MAX_ITERATIONS, FileFormatError


class _Where:
    """Names the file and member in every error."""

    def __init__(self, label: str, member: str) -> None:
        self.prefix = f"{label}: {member}"

    def fail(self, path: str, problem: str) -> NoReturn:
        raise FileFormatError(f"{self.prefix}: `{path}` {problem}")

    def wrong(self, path: str, expected: str, value: Any) -> NoReturn:
        self.fail(path, f"must be {expected}. Received: {reprlib.repr(value)}")


class _Kind:
    def check(self, where: _Where, path: str, value: Any) -> None:
        raise NotImplementedError


class _Leaf(_Kind):
    def __init__(self, description: str, accepts: Callable[[Any], bool]) -> None:
        self.description = description
        self.accepts = accepts

    def check(self, where: _Where, path: str, value: Any) -> None:
        if not self.accepts(value):
            where.wrong(path, self.description, value)


class _Nullable(_Kind):
    def __init__(self, kind: _Kind) -> None:
        self.kind = kind

    def check(self, where: _Where, path: str, value: Any) -> None:
        if value is not None:
            self.kind.check(where, path, value)


class _List(_Kind):
    def __init__(self, item: _Kind) -> None:
        self.item = item

    def check(self, where: _Where, path: str, value: Any) -> None:
        if not isinstance(value, list):
            where.wrong(path, "a list", value)
        for index, item in enumerate(value):
            self.item.check(where, f"{path}[{index}]", item)


class _Object(_Kind):
    """A JSON object with these fields (those in ``required`` must be present)."""

    def __init__(self, fields: Mapping[str, _Kind], required: tuple[str, ...] = ()) -> None:
        self.fields = fields
        self.required = required

    def check(self, where: _Where, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            where.wrong(path, "an object", value)
        for key, item in value.items():
            kind = self.fields.get(key)
            if kind is None:
                where.fail(path, f"has an unknown field {reprlib.repr(key)}; expected fields: {sorted(self.fields)}")
            kind.check(where, f"{path}.{key}", item)
        for key in self.required:
            if key not in value:
                where.fail(path, f"lacks the field {key!r}")


class _Tagged(_Kind):
    """An object whose field ``tag`` names its variant; each variant has its own fields."""

    def __init__(self, tag: str, variants: Mapping[str, Mapping[str, _Kind]], common: Mapping[str, _Kind]) -> None:
        self.tag = tag
        self.variants = {
            name: _Object({tag: _STRING, **common, **fields}, required=(tag,)) for name, fields in variants.items()
        }

    def check(self, where: _Where, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            where.wrong(path, "an object", value)
        name = value.get(self.tag)
        if not isinstance(name, str) or name not in self.variants:
            where.wrong(f"{path}.{self.tag}", f"one of {sorted(self.variants)}", name)
        self.variants[name].check(where, path, value)


class _ClassConfig(_Kind):
    """``{"class_name": ..., "config": {...}}``, the config's fields depending on the class."""

    def __init__(self, classes: Mapping[str, Union[_Object, Mapping[str, _Kind]]]) -> None:
        self.classes = {
            name: fields if isinstance(fields, _Object) else _Object(fields) for name, fields in classes.items()
        }

    def check(self, where: _Where, path: str, value: Any) -> None:
        if not isinstance(value, dict):
            where.wrong(path, "an object", value)
        for key in value:
            if key not in ("class_name", "config"):
                where.fail(path, f"has an unknown field {reprlib.repr(key)}; expected 'class_name' and 'config'")
        name = value.get("class_name")
        if not isinstance(name, str) or name not in self.classes:
            where.wrong(f"{path}.class_name", f"one of {sorted(self.classes)}", name)
        self.classes[name].check(where, f"{path}.config", value.get("config", {}))


class _Either(_Kind):
    """A number, or else an object of the given kind."""

    def __init__(self, number: _Kind, other: _Kind) -> None:
        self.number = number
        self.other = other

    def check(self, where: _Where, path: str, value: Any) -> None:
        (self.other if isinstance(value, dict) else self.number).check(where, path, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


_STRING = _Leaf("a string", lambda v: isinstance(v, str))
_BOOL = _Leaf("true or false", lambda v: isinstance(v, bool))
_NUMBER = _Leaf("a finite number", _is_number)
_POSITIVE_INT = _Leaf("a positive integer", lambda v: _is_int(v) and v >= 1)
_SEED = _Nullable(_Leaf("null or an integer >= 0", lambda v: _is_int(v) and v >= 0))
_SHAPE = _Leaf(
    "a non-empty list of positive integers",
    lambda v: isinstance(v, list) and len(v) > 0 and all(_is_int(d) and d >= 1 for d in v),
)
_DTYPE = _Leaf("'float32' or 'float64'", lambda v: isinstance(v, str) and v in ("float32", "float64"))
_NUMBERS = _List(_NUMBER)


def _is_number_array(value: Any, depth: int = 0) -> bool:
    """A number, or a (nested, at most 8 deep) list of numbers."""
    if isinstance(value, list):
        return depth < 8 and all(_is_number_array(item, depth + 1) for item in value)
    return _is_number(value)


_NUMBER_ARRAY = _Leaf("a number or a (nested) list of numbers", _is_number_array)
_AXES = _Leaf("a list of integers", lambda v: isinstance(v, list) and all(_is_int(a) for a in v))

_SEEDED = {"seed": _SEED}
_INITIALIZER = _ClassConfig(
    {
        "Zeros": {},
        "Ones": {},
        "Constant": {"value": _NUMBER_ARRAY},
        "RandomNormal": {"mean": _NUMBER, "stddev": _NUMBER, "seed": _SEED},
        "RandomUniform": {"minval": _NUMBER, "maxval": _NUMBER, "seed": _SEED},
        "TruncatedNormal": {"mean": _NUMBER, "stddev": _NUMBER, "seed": _SEED},
        "VarianceScaling": {"scale": _NUMBER, "mode": _STRING, "distribution": _STRING, "seed": _SEED},
        "GlorotUniform": _SEEDED,
        "GlorotNormal": _SEEDED,
        "HeUniform": _SEEDED,
        "HeNormal": _SEEDED,
        "LecunUniform": _SEEDED,
        "LecunNormal": _SEEDED,
    }
)
_REGULARIZER = _Nullable(_Object({"l1": _NUMBER, "l2": _NUMBER}))
_LAYER = _ClassConfig(
    {
        "Dense": _Object(
            {
                "name": _STRING,
                "units": _POSITIVE_INT,
                "activation": _STRING,
                "use_bias": _BOOL,
                "kernel_initializer": _INITIALIZER,
                "bias_initializer": _INITIALIZER,
                "kernel_regularizer": _REGULARIZER,
                "bias_regularizer": _REGULARIZER,
                "input_shape": _Nullable(_SHAPE),
                "trainable": _BOOL,
            },
            required=("units",),
        ),
        "Flatten": {"name": _STRING, "input_shape": _Nullable(_SHAPE)},
        "Normalization": {
            "name": _STRING,
            "axis": _Nullable(_AXES),
            "invert": _BOOL,
            "mean": _Nullable(_NUMBER_ARRAY),
            "variance": _Nullable(_NUMBER_ARRAY),
        },
        "Activation": {"name": _STRING, "activation": _STRING},
        "LeakyReLU": {"name": _STRING, "negative_slope": _NUMBER},
        "ELU": {"name": _STRING, "alpha": _NUMBER},
        "GELU": {"name": _STRING, "approximate": _BOOL},
        "Dropout": {"name": _STRING, "rate": _NUMBER},
        "BatchNormalization": {
            "name": _STRING,
            "axis": _Leaf("-1 or 1", lambda v: _is_int(v) and v in (-1, 1)),
            "momentum": _Leaf("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
            "epsilon": _Leaf("a positive number", lambda v: _is_number(v) and v > 0),
            "center": _BOOL,
            "scale": _BOOL,
            "beta_initializer": _INITIALIZER,
            "gamma_initializer": _INITIALIZER,
            "moving_mean_initializer": _INITIALIZER,
            "moving_variance_initializer": _INITIALIZER,
            "trainable": _BOOL,
        },
    }
)
_MODEL = _Object(
    {
        "name": _STRING,
        "dtype": _DTYPE,
        "input_shape": _SHAPE,
        "layers": _List(_LAYER),
        "functional": _BOOL,
        "input_name": _STRING,
    },
    required=("dtype", "input_shape", "layers"),
)

_STEP_DECAY = {"initial_learning_rate": _NUMBER, "decay_steps": _NUMBER, "decay_rate": _NUMBER, "staircase": _BOOL}
_SCHEDULE = _Tagged(
    "kind",
    {
        "exponential_decay": _STEP_DECAY,
        "inverse_time_decay": _STEP_DECAY,
        "piecewise_constant_decay": {"boundaries": _NUMBERS, "values": _NUMBERS},
        "cosine_decay": {
            "initial_learning_rate": _NUMBER,
            "decay_steps": _NUMBER,
            "alpha": _NUMBER,
            "warmup_target": _Nullable(_NUMBER),
            "warmup_steps": _NUMBER,
        },
        "polynomial_decay": {
            "initial_learning_rate": _NUMBER,
            "decay_steps": _NUMBER,
            "end_learning_rate": _NUMBER,
            "power": _NUMBER,
            "cycle": _BOOL,
            "name": _STRING,
        },
        "cosine_decay_restarts": {
            "initial_learning_rate": _NUMBER,
            "first_decay_steps": _NUMBER,
            "t_mul": _NUMBER,
            "m_mul": _NUMBER,
            "alpha": _NUMBER,
            "name": _STRING,
        },
        # A user's schedule: its class name (looked up in load_model's custom_objects) and its
        # get_config(), plain JSON handed to that class's from_config.
        "custom": {"class_name": _STRING, "config": _Leaf("an object", lambda v: isinstance(v, dict))},
    },
    common={},
)
_ADAM = {"beta_1": _NUMBER, "beta_2": _NUMBER, "epsilon": _NUMBER, "amsgrad": _BOOL}
_FULL_BATCH = {"tolerance_grad": _NUMBER, "tolerance_change": _NUMBER, "max_fun": _POSITIVE_INT}
_OPTIMIZER = _Tagged(
    "name",
    {
        "sgd": {"momentum": _NUMBER, "nesterov": _BOOL},
        "adam": _ADAM,
        "adamw": _ADAM,
        "adagrad": {"initial_accumulator_value": _NUMBER, "epsilon": _NUMBER},
        "rmsprop": {"rho": _NUMBER, "momentum": _NUMBER, "epsilon": _NUMBER, "centered": _BOOL},
        "nadam": {"beta_1": _NUMBER, "beta_2": _NUMBER, "epsilon": _NUMBER},
        "adamax": {"beta_1": _NUMBER, "beta_2": _NUMBER, "epsilon": _NUMBER},
        "lion": {"beta_1": _NUMBER, "beta_2": _NUMBER},
        "adadelta": {"rho": _NUMBER, "epsilon": _NUMBER},
        "ftrl": {
            "learning_rate_power": _NUMBER,
            "initial_accumulator_value": _NUMBER,
            "l1_regularization_strength": _NUMBER,
            "l2_regularization_strength": _NUMBER,
            "l2_shrinkage_regularization_strength": _NUMBER,
            "beta": _NUMBER,
        },
        "newton": {**_FULL_BATCH, "damping": _NUMBER, "line_search": _BOOL},
        "conjugate_gradient": {**_FULL_BATCH, "restart_every": _Nullable(_POSITIVE_INT), "max_eval": _POSITIVE_INT},
        "lbfgs": {**_FULL_BATCH, "history": _POSITIVE_INT, "max_eval": _POSITIVE_INT},
        "least_squares": {"l2": _NUMBER},
    },
    common={
        "learning_rate": _Either(_NUMBER, _SCHEDULE),
        "weight_decay": _Nullable(_NUMBER),
        "clipnorm": _Nullable(_NUMBER),
        "clipvalue": _Nullable(_NUMBER),
        "global_clipnorm": _Nullable(_NUMBER),
    },
)
_NON_NEGATIVE_INT = _Leaf("a non-negative integer", lambda v: _is_int(v) and v >= 0)
_AXIS = _Leaf("-1 or 1", lambda v: _is_int(v) and v in (-1, 1))
_THRESHOLDS = _Nullable(
    _Leaf(
        "a number or a list of numbers",
        lambda v: _is_number(v) or (isinstance(v, list) and bool(v) and all(_is_number(t) for t in v)),
    )
)
_METRIC_BASE = {"name": _STRING, "dtype": _Nullable(_STRING)}
_CONFUSION = {**_METRIC_BASE, "thresholds": _THRESHOLDS}
_METRIC = _ClassConfig(
    {
        "AUC": {
            **_METRIC_BASE,
            "num_thresholds": _POSITIVE_INT,
            "curve": _STRING,
            "summation_method": _STRING,
            "multi_label": _BOOL,
            "num_labels": _Nullable(_POSITIVE_INT),
            "label_weights": _Nullable(_NUMBERS),
            "from_logits": _BOOL,
            "thresholds": _Nullable(_NUMBERS),
        },
        "Precision": {**_CONFUSION, "top_k": _Nullable(_POSITIVE_INT), "class_id": _Nullable(_NON_NEGATIVE_INT)},
        "Recall": {**_CONFUSION, "top_k": _Nullable(_POSITIVE_INT), "class_id": _Nullable(_NON_NEGATIVE_INT)},
        "TruePositives": _CONFUSION,
        "FalsePositives": _CONFUSION,
        "TrueNegatives": _CONFUSION,
        "FalseNegatives": _CONFUSION,
        "BinaryAccuracy": {**_METRIC_BASE, "threshold": _NUMBER},
        "CategoricalAccuracy": _METRIC_BASE,
        "SparseCategoricalAccuracy": _METRIC_BASE,
        "TopKCategoricalAccuracy": {**_METRIC_BASE, "k": _POSITIVE_INT},
        "SparseTopKCategoricalAccuracy": {**_METRIC_BASE, "k": _POSITIVE_INT},
        "MeanSquaredError": _METRIC_BASE,
        "MeanAbsoluteError": _METRIC_BASE,
        "RootMeanSquaredError": _METRIC_BASE,
        "BinaryCrossentropy": {**_METRIC_BASE, "from_logits": _BOOL, "label_smoothing": _NUMBER},
        "CategoricalCrossentropy": {**_METRIC_BASE, "from_logits": _BOOL, "label_smoothing": _NUMBER, "axis": _AXIS},
        "SparseCategoricalCrossentropy": {
            **_METRIC_BASE, "from_logits": _BOOL, "ignore_class": _Nullable(_NON_NEGATIVE_INT), "axis": _AXIS
        },
        "FBetaScore": {**_METRIC_BASE, "average": _Nullable(_STRING), "beta": _NUMBER, "threshold": _Nullable(_NUMBER)},
        "F1Score": {**_METRIC_BASE, "average": _Nullable(_STRING), "threshold": _Nullable(_NUMBER)},
    }
)
_COMPILE = _Object(
    {
        "loss": _Object({"name": _STRING, "from_logits": _BOOL, "delta": _NUMBER}, required=("name",)),
        "optimizer": _OPTIMIZER,
        "metrics": _List(_Either(_STRING, _METRIC)),
    },
    required=("loss", "optimizer"),
)
_CONFIG = _Object({"model": _MODEL, "compile": _Nullable(_COMPILE)}, required=("model",))

_RNG = _Leaf(
    "a list of 4 integers in [0, 2**64), not all 0",
    lambda v: isinstance(v, list)
    and len(v) == 4
    and all(_is_int(w) and 0 <= w < 1 << 64 for w in v)
    and any(w != 0 for w in v),  # xoshiro's all-zero state stays zero and never shuffles
)
_TRAINING = _Object(
    {
        "iterations": _Leaf(f"an integer in [0, {MAX_ITERATIONS}]", lambda v: _is_int(v) and 0 <= v <= MAX_ITERATIONS),
        "rng": _RNG,
    },
    required=("iterations", "rng"),
)


def check_config(config: Any, label: str, member: str) -> dict[str, Any]:
    """``config.json`` with every field of the type our writer writes, and the layers in an
    order ``Sequential.add`` accepts."""
    where = _Where(label, member)
    _CONFIG.check(where, "config", config)
    _check_layer_order(where, config["model"]["layers"])
    return config  # type: ignore[no-any-return]


def check_training(training: Any, label: str, member: str) -> dict[str, Any]:
    """``training.json``: the optimizer's step count and the shuffle generator's state."""
    _TRAINING.check(_Where(label, member), "training", training)
    return training  # type: ignore[no-any-return]


def _check_layer_order(where: _Where, layers: list[dict[str, Any]]) -> None:
    """The rules ``Sequential.add`` enforces (``fastmlp._layer_order``), and a Dense layer."""
    placements = [Placement.of_config(layer) for layer in layers]
    found = misplaced(placements)
    if found is not None:
        index, problem = found
        where.fail(f"model.layers[{index}]", f"is misplaced: {problem}")
    trailing = trailing_norm(placements)
    if trailing is not None:
        where.fail(f"model.layers[{trailing}]", "is a BatchNormalization after the last Dense layer")
    if not any(layer["class_name"] == "Dense" for layer in layers):
        where.fail("model.layers", "holds no Dense layer")


def weight_shapes(model: dict[str, Any]) -> list[tuple[int, ...]]:
    """The shapes of ``get_weights()`` for a checked model config: a Normalization's adapted
    mean, variance and count; kernel (in, out) and bias (out,) per Dense layer; gamma, beta
    (those it has), moving mean and variance (units,) per BatchNormalization (which follows a
    Dense layer: the order is checked). A ValueError (a FileFormatError) for a Normalization axis
    that does not fit the input shape."""
    fan_in = math.prod(model["input_shape"])
    shapes: list[tuple[int, ...]] = []
    for layer in model["layers"]:
        settings = layer.get("config", {})
        if layer["class_name"] == "BatchNormalization":
            arrays = 2 + int(settings.get("center", True)) + int(settings.get("scale", True))
            shapes.extend([(fan_in,)] * arrays)
            continue
        if layer["class_name"] == "Normalization":
            if settings.get("mean") is None:
                try:
                    stats = _normalization.stats_shape(
                        _normalization.axes(settings.get("axis", [-1])), tuple(model["input_shape"])
                    )
                except (TypeError, ValueError) as error:
                    raise FileFormatError(f"invalid Normalization config: {error}") from None
                shapes.extend([stats, stats, ()])
            continue
        if layer["class_name"] != "Dense":
            continue
        units = settings["units"]
        shapes.append((fan_in, units))
        if settings.get("use_bias", True):
            shapes.append((units,))
        fan_in = units
    return shapes
