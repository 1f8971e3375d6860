"""Keras 3's ``config.json`` translated to fastmlp's model config and back (internal; the
``.keras`` archive around it is ``fastmlp._keras_file``).

Reading is a translation by a fixed allow-list, never a deserialization: a class name is looked
up in the tables below, and anything else (another layer, a custom or subclassed class, a lambda,
a ``module`` outside ``keras``, a ``registered_name`` of a custom object, a setting fastmlp has no
equivalent for) is refused by name through ``fail``. Nothing in the file is imported or called,
whatever ``safe_mode`` says. The result is fastmlp's own config, which the caller then checks
field by field as it checks a fastmlp file (``fastmlp._saved_config``).

Keras addresses a layer's weights in ``model.weights.h5`` by the order of the model's layers, not
by their names: ``layers/<snake_case class name>[_<n>]/vars/<i>``, numbered per class name in the
order of ``model.layers`` (a ``Sequential`` model's list leaves its input layer out, a functional
model's holds it), as ``keras/src/saving/saving_lib.py`` names them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Optional

Fail = Callable[[str], NoReturn]

# Keras's activation names and fastmlp's (core) name for each.
_ACTIVATIONS = {
    "linear": "linear",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "gelu": "gelu",
    "softplus": "softplus",
    "silu": "swish",
    "swish": "swish",
}
_KERAS_ACTIVATION = {"linear": "linear", "relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
                     "leaky_relu": "leaky_relu", "elu": "elu", "gelu": "gelu", "softplus": "softplus", "swish": "silu"}
_INITIALIZERS = {
    "Zeros": (),
    "Ones": (),
    "Constant": ("value",),
    "RandomNormal": ("mean", "stddev", "seed"),
    "RandomUniform": ("minval", "maxval", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "GlorotUniform": ("seed",),
    "GlorotNormal": ("seed",),
    "HeUniform": ("seed",),
    "HeNormal": ("seed",),
    "LecunUniform": ("seed",),
    "LecunNormal": ("seed",),
}
_OPTIMIZERS = {
    "SGD": ("sgd", ("momentum", "nesterov")),
    "Adam": ("adam", ("beta_1", "beta_2", "epsilon", "amsgrad")),
    "AdamW": ("adamw", ("beta_1", "beta_2", "epsilon", "amsgrad")),
    "Adagrad": ("adagrad", ("initial_accumulator_value", "epsilon")),
    "RMSprop": ("rmsprop", ("rho", "momentum", "epsilon", "centered")),
    "Nadam": ("nadam", ("beta_1", "beta_2", "epsilon")),
    "Adamax": ("adamax", ("beta_1", "beta_2", "epsilon")),
    "Lion": ("lion", ("beta_1", "beta_2")),
    "Adadelta": ("adadelta", ("rho", "epsilon")),
    "Ftrl": ("ftrl", ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                      "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta")),
}
_OPTIMIZER_COMMON = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm")
_SCHEDULES = {
    "ExponentialDecay": "exponential_decay",
    "InverseTimeDecay": "inverse_time_decay",
    "PiecewiseConstantDecay": "piecewise_constant_decay",
    "CosineDecay": "cosine_decay",
    "PolynomialDecay": "polynomial_decay",
    "CosineDecayRestarts": "cosine_decay_restarts",
}
# Keras's loss classes, their function names, and fastmlp's name for each.
_LOSSES = {
    "MeanSquaredError": ("mean_squared_error", "mse"),
    "MeanAbsoluteError": ("mean_absolute_error", "mae"),
    "BinaryCrossentropy": ("binary_crossentropy", "binary_crossentropy"),
    "CategoricalCrossentropy": ("categorical_crossentropy", "categorical_crossentropy"),
    "SparseCategoricalCrossentropy": ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
    "Huber": ("huber", "huber"),
    "LogCosh": ("log_cosh", "log_cosh"),
    "KLDivergence": ("kl_divergence", "kl_divergence"),
    "Poisson": ("poisson", "poisson"),
    "CategoricalHinge": ("categorical_hinge", "categorical_hinge"),
    "Hinge": ("hinge", "hinge"),
    "SquaredHinge": ("squared_hinge", "squared_hinge"),
    "MeanAbsolutePercentageError": ("mean_absolute_percentage_error", "mean_absolute_percentage_error"),
    "MeanSquaredLogarithmicError": ("mean_squared_logarithmic_error", "mean_squared_logarithmic_error"),
}
# Losses with a from_logits setting (the others compare values, not probabilities).
_LOGIT_LOSSES = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy")
# Keras's loss function names and aliases (keras.losses.get) and fastmlp's name for each.
_LOSS_NAMES = {"mse": "mse", "mae": "mae", "mape": "mean_absolute_percentage_error",
               "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence",
               **{function: ours for function, ours in _LOSSES.values()}}
# Keras's metric classes that fastmlp.metrics has, with the same config keys.
_METRICS = ("AUC", "Precision", "Recall", "TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives",
            "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
            "SparseTopKCategoricalAccuracy", "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError",
            "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "FBetaScore", "F1Score")
_LAYERS = ("InputLayer", "Dense", "Dropout", "Activation", "Flatten", "LeakyReLU", "ELU", "BatchNormalization", "Normalization",
           "ReLU", "Softmax")
# Keras's activation layers that fastmlp builds as an Activation (their settings at the defaults
# only: the reader checks them), and the activation each applies.
_AS_ACTIVATION = {"ReLU": "relu", "Softmax": "softmax"}
_BN_INITIALIZERS = ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")
_BN_DEFAULT_INITIALIZERS = ("zeros", "ones", "zeros", "ones")
# Settings a layer may carry only at their default (fastmlp has no equivalent for another value).
_DEFAULTS_ONLY = {
    "kernel_constraint": None,
    "bias_constraint": None,
    "lora_rank": None,
    "lora_alpha": None,
    "quantization_config": None,
    "noise_shape": None,
    "activity_regularizer": None,
    "sparse": False,
    "ragged": False,
    "optional": False,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
    "label_smoothing": 0,
    "reduction": "sum_over_batch_size",
    "axis": -1,
    "ignore_class": None,
    "loss_weights": None,
    "weighted_metrics": None,
    "beta_regularizer": None,
    "gamma_regularizer": None,
    "beta_constraint": None,
    "gamma_constraint": None,
    "renorm": False,
    "renorm_clipping": None,
}


@dataclass
class WeightLayout:
    """Where a model's groups and weights are in ``model.weights.h5``: each layer's group with
    its layer's name, and the datasets of ``get_weights()`` in order."""

    groups: list[tuple[str, str]] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    # The datasets Keras holds as integers (a Normalization's ``count``, int64 in Keras).
    integers: set[str] = field(default_factory=set)


def _layer_weights(layout: WeightLayout, path: str, class_name: str, config: Mapping[str, Any]) -> None:
    """Append one layer's datasets in ``get_weights()`` order, which is Keras's ``vars/<i>``
    order (its trainable variables, then its non-trainable ones, each in creation order)."""
    if class_name == "Dense":
        count = 1 + int(config.get("use_bias", True) is not False)
    elif class_name == "BatchNormalization":
        count = 2 + int(bool(config.get("center", True))) + int(bool(config.get("scale", True)))
    elif class_name == "Normalization" and config.get("mean") is None:
        count = 3  # mean, variance, count: only an adapted layer has variables
        layout.integers.add(f"{path}/vars/2")
    else:
        count = 0
    layout.weights.extend(f"{path}/vars/{i}" for i in range(count))


def snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _group_paths(class_names: list[str]) -> list[str]:
    """``layers/<snake_case>[_n]`` for each layer of ``model.layers``, as saving_lib numbers them."""
    used: dict[str, int] = {}
    paths = []
    for class_name in class_names:
        name = snake_case(class_name)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        paths.append(f"layers/{name}")
    return paths


# ---------------------------------------------------------------- reading


class _Reader:
    def __init__(self, fail: Fail) -> None:
        self._fail = fail

    def fail(self, where: str, problem: str) -> NoReturn:
        self._fail(f"config.json {where}: {problem}")

    def object(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected an object. Received: {_short(value)}")
        return value

    def serialized(self, where: str, value: Any, allowed: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
        """(class name, config) of a serialized Keras object whose class is in ``allowed``:
        ``module`` inside Keras, no custom ``registered_name``."""
        value = self.object(where, value)
        class_name = value.get("class_name")
        if not isinstance(class_name, str):
            self.fail(where, f"expected a serialized Keras object with a `class_name`. Received: {_short(value)}")
        module = value.get("module")
        if module is not None and not (module == "keras" or (isinstance(module, str) and module.startswith("keras."))):
            self.fail(
                where,
                f"{what} {class_name!r} comes from module {module!r}; fastmlp reads Keras's own classes only "
                "and never imports a module named in a file",
            )
        registered = value.get("registered_name")
        if registered is not None and registered != class_name:
            self.fail(where, f"{what} {registered!r} is a custom object; fastmlp supports only {sorted(allowed)}")
        if class_name not in allowed:
            self.fail(where, f"unsupported {what} class {class_name!r}; fastmlp supports {sorted(allowed)}")
        return class_name, self.object(f"{where}.config", value.get("config", {}))

    def defaults_only(self, where: str, config: Mapping[str, Any]) -> None:
        for key, default in _DEFAULTS_ONLY.items():
            if key in config and config[key] != default and not (default == 0 and config[key] == 0.0):
                self.fail(where, f"{key}={_short(config[key])} has no fastmlp equivalent (only {default!r} is supported)")

    def dtype(self, where: str, value: Any) -> Optional[str]:
        if value is None:
            return None
        if isinstance(value, dict):
            _, config = self.serialized(where, value, {"DTypePolicy": None, "FloatDTypePolicy": None}, "dtype policy")
            value = config.get("name")
        if value not in ("float32", "float64"):
            self.fail(where, f"dtype {_short(value)} is not supported; fastmlp computes in 'float32' or 'float64'")
        return str(value)

    def activation(self, where: str, value: Any) -> str:
        if value is None:
            return "linear"
        if not isinstance(value, str) or value not in _ACTIVATIONS:
            self.fail(where, f"unsupported activation {_short(value)}; fastmlp supports {sorted(_ACTIVATIONS)}")
        return _ACTIVATIONS[value]

    def initializer(self, where: str, value: Any) -> dict[str, Any]:
        if isinstance(value, str):  # a name, as Keras accepts in a config
            value = {"class_name": "".join(part.capitalize() for part in value.split("_"))}
        class_name, config = self.serialized(where, value, _INITIALIZERS, "initializer")
        return {"class_name": class_name, "config": {key: config[key] for key in _INITIALIZERS[class_name] if key in config}}

    def regularizer(self, where: str, value: Any) -> Optional[dict[str, Any]]:
        if value is None:
            return None
        _, config = self.serialized(where, value, {"L1": None, "L2": None, "L1L2": None}, "regularizer")
        return {"l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}

    def batch_shape(self, where: str, value: Any) -> list[int]:
        if not isinstance(value, list) or len(value) < 2 or not all(_is_size(d) for d in value[1:]):
            self.fail(where, f"expected a batch shape [null, d1, ...] of positive sizes. Received: {_short(value)}")
        return [int(d) for d in value[1:]]

    def layer(self, where: str, value: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(class name, Keras config, fastmlp layer config) of one supported layer."""
        class_name, config = self.serialized(where, value, dict.fromkeys(_LAYERS), "layer")
        where = f"{where} ({class_name} {config.get('name')!r})"
        # An axis is checked by the layer's own branch (Normalization takes any; Softmax -1 or 1).
        self.defaults_only(where, {k: v for k, v in config.items() if not (class_name in ("Normalization", "Softmax") and k == "axis")})
        name = config.get("name")
        ours: dict[str, Any] = {} if name is None else {"name": name}
        if class_name == "Dense":
            ours.update(
                units=config.get("units"),
                activation=self.activation(where, config.get("activation")),
                use_bias=config.get("use_bias", True),
                kernel_initializer=self.initializer(where, config.get("kernel_initializer", "glorot_uniform")),
                bias_initializer=self.initializer(where, config.get("bias_initializer", "zeros")),
                kernel_regularizer=self.regularizer(where, config.get("kernel_regularizer")),
                bias_regularizer=self.regularizer(where, config.get("bias_regularizer")),
                trainable=config.get("trainable", True),
            )
        elif class_name == "Dropout":
            ours["rate"] = config.get("rate")
        elif class_name == "Activation":
            ours["activation"] = self.activation(where, config.get("activation"))
        elif class_name == "LeakyReLU":
            ours["negative_slope"] = config.get("negative_slope", config.get("alpha", 0.3))
        elif class_name == "ELU":
            ours["alpha"] = config.get("alpha", 1.0)
        elif class_name == "ReLU":
            settings = {key: config.get(key, default) for key, default in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0))}
            if settings != {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}:
                self.fail(where, f"ReLU with {_short(settings)}: fastmlp's ReLU is max(x, 0) (LeakyReLU takes a slope)")
            ours["activation"] = _AS_ACTIVATION[class_name]
        elif class_name == "Softmax":
            if config.get("axis", -1) not in (-1, 1):
                self.fail(where, f"Softmax over axis {_short(config.get('axis'))}: fastmlp's is over the last axis")
            ours["activation"] = _AS_ACTIVATION[class_name]
        elif class_name == "BatchNormalization":
            ours.update(
                axis=config.get("axis", -1),
                momentum=config.get("momentum", 0.99),
                epsilon=config.get("epsilon", 0.001),
                center=config.get("center", True),
                scale=config.get("scale", True),
                trainable=config.get("trainable", True),
                **{key: self.initializer(where, config.get(key, default))
                   for key, default in zip(_BN_INITIALIZERS, _BN_DEFAULT_INITIALIZERS)},
            )
        elif class_name == "Normalization":
            ours.update(axis=config.get("axis", -1), invert=config.get("invert", False),
                        mean=config.get("mean"), variance=config.get("variance"))
        elif class_name == "Flatten" and config.get("data_format", "channels_last") != "channels_last":
            self.fail(where, "data_format='channels_first' reorders the values; fastmlp's Flatten keeps their order")
        if class_name != "InputLayer":
            self.dtype(f"{where}.dtype", config.get("dtype"))
        return class_name, config, ours

    def chain(self, where: str, config: dict[str, Any], layers: list[Any]) -> list[int]:
        """The indices of a functional model's layers from its input to its output, refusing a
        graph that is not a chain (branches, several inputs or outputs, shared layers)."""
        names = [self.object(f"{where}[{i}]", layer).get("name") for i, layer in enumerate(layers)]
        index = {name: i for i, name in enumerate(names) if isinstance(name, str)}
        if len(index) != len(layers):
            self.fail(where, "every layer of a functional model needs a unique name")
        source = self.endpoint("config.input_layers", config.get("input_layers"))
        current = self.endpoint("config.output_layers", config.get("output_layers"))
        order: list[int] = []
        while True:
            if current not in index or len(order) > len(layers):
                self.fail(where, f"the graph refers to a layer {_short(current)} that it does not hold, or loops")
            i = index[current]
            order.append(i)
            nodes = layers[i].get("inbound_nodes")
            if current == source:
                if nodes:
                    self.fail(f"{where}[{i}]", "the input layer has inbound nodes")
                break
            parent = self.inbound(f"{where}[{i}] ({current!r})", nodes)
            current = parent
        order.reverse()
        if len(order) != len(layers):
            unused = sorted(str(names[i]) for i in set(range(len(layers))) - set(order))
            self.fail(where, f"layers {unused} are not on the chain from the input to the output; fastmlp runs a chain")
        return order

    def endpoint(self, where: str, value: Any) -> str:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
            value = value[0]
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[1:] == [0, 0]):
            self.fail(where, f"fastmlp runs models with one input and one output. Received: {_short(value)}")
        return str(value[0])

    def inbound(self, where: str, nodes: Any) -> str:
        """The one layer whose output a layer takes."""
        if not isinstance(nodes, list) or len(nodes) != 1:
            self.fail(where, "a layer called more than once (or never) is not a chain; fastmlp runs a chain")
        node = self.object(where, nodes[0])
        args, kwargs = node.get("args"), node.get("kwargs", {})
        # Keras records the call's `training` (and `mask`) flag; the model's own call sets them.
        extra = {key: value for key, value in (kwargs or {}).items() if not (key in ("training", "mask") and value in (None, True, False))} if isinstance(kwargs, dict) else kwargs
        if not isinstance(args, list) or len(args) != 1 or extra not in ({}, None):
            self.fail(where, f"a layer takes one tensor and no keyword arguments here. Received: {_short(node)}")
        tensor = self.object(where, args[0])
        history = self.object(where, tensor.get("config")).get("keras_history")
        if tensor.get("class_name") != "__keras_tensor__" or not isinstance(history, list) or len(history) != 3:
            self.fail(where, f"expected a layer's output tensor. Received: {_short(tensor)}")
        if history[1:] != [0, 0] or not isinstance(history[0], str):
            self.fail(where, f"a layer called more than once is not a chain. Received: {_short(history)}")
        return history[0]

    def schedule(self, where: str, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        class_name, config = self.serialized(where, value, _SCHEDULES, "learning-rate schedule")
        return {"kind": _SCHEDULES[class_name], **{k: v for k, v in config.items() if k != "name"}}

    def compile(self, where: str, value: Any) -> Optional[dict[str, Any]]:
        if not value:
            return None
        value = self.object(where, value)
        self.defaults_only(where, value)
        class_name, config = self.serialized(f"{where}.optimizer", value.get("optimizer"), _OPTIMIZERS, "optimizer")
        self.defaults_only(f"{where}.optimizer", config)
        name, settings = _OPTIMIZERS[class_name]
        optimizer = {key: config[key] for key in (*_OPTIMIZER_COMMON, *settings) if key in config}
        optimizer["name"] = name
        if "learning_rate" in optimizer:
            optimizer["learning_rate"] = self.schedule(f"{where}.optimizer.learning_rate", optimizer["learning_rate"])
        loss = value.get("loss")
        if isinstance(loss, str):
            if loss not in _LOSS_NAMES:
                self.fail(f"{where}.loss", f"unsupported loss {loss!r}; fastmlp supports {sorted(_LOSS_NAMES)}")
            ours = {"name": _LOSS_NAMES[loss], "from_logits": False}
        else:
            class_name, config = self.serialized(f"{where}.loss", loss, _LOSSES, "loss")
            self.defaults_only(f"{where}.loss", config)
            ours = {"name": _LOSSES[class_name][1], "from_logits": config.get("from_logits", False)}
            if class_name == "Huber":
                ours["delta"] = config.get("delta", 1.0)
        metrics = value.get("metrics") or []
        if not isinstance(metrics, list):
            self.fail(f"{where}.metrics", f"expected a list of metric names. Received: {_short(metrics)}")
        read: list[Any] = []
        for i, metric in enumerate(metrics):
            if isinstance(metric, str):
                read.append(metric)
            else:
                class_name, config = self.serialized(f"{where}.metrics[{i}]", metric, dict.fromkeys(_METRICS), "metric")
                read.append({"class_name": class_name, "config": config})
        return {"loss": ours, "optimizer": optimizer, "metrics": read}


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


def from_keras(keras_config: Any, fail: Fail, compile: bool = True) -> tuple[dict[str, Any], WeightLayout]:
    """fastmlp's config (``{"model": ..., "compile": ...}``, still to be checked by
    ``_saved_config.check_config``) and the weights' layout of a Keras ``config.json``; without
    ``compile``, the file's compile config is not read at all (``"compile"`` is None)."""
    reader = _Reader(fail)
    top = reader.object("(the model)", keras_config)
    class_name = top.get("class_name")
    if class_name not in ("Sequential", "Functional", "Model"):
        fail(
            f"config.json: unsupported model class {_short(class_name)}; fastmlp reads Sequential and functional "
            "models (a subclassed model's code is not in the file)"
        )
    reader.serialized("(the model)", top, {"Sequential": None, "Functional": None, "Model": None}, "model")
    config = reader.object("config", top.get("config"))
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        reader.fail("config.layers", "expected a non-empty list of layers")
    parsed = [reader.layer(f"config.layers[{i}]", layer) for i, layer in enumerate(layers)]
    functional = class_name != "Sequential"
    order = reader.chain("config.layers", config, layers) if functional else list(range(len(layers)))
    dtype = reader.dtype("config.dtype", config.get("dtype"))
    input_shape: Optional[list[int]] = None
    input_name: Optional[str] = None
    chain = [parsed[i] for i in order]
    if chain[0][0] == "InputLayer":
        input_config = chain[0][1]
        input_shape = reader.batch_shape(
            "config.layers[0].batch_shape", input_config.get("batch_shape", input_config.get("batch_input_shape"))
        )
        dtype = reader.dtype("config.layers[0].dtype", input_config.get("dtype")) or dtype
        input_name = input_config.get("name")
        chain = chain[1:]
    elif functional:
        reader.fail("config.layers", "a functional model starts with an InputLayer")
    else:
        build = top.get("build_config") or {}
        built = config.get("build_input_shape") or (build.get("input_shape") if isinstance(build, dict) else None)
        if built is None:
            reader.fail("config", "the model was never built (no input shape); fastmlp loads built models")
        input_shape = reader.batch_shape("config.build_input_shape", built)
    if any(class_name == "InputLayer" for class_name, _, _ in chain):
        reader.fail("config.layers", "an InputLayer in the middle of a model")
    model: dict[str, Any] = {
        "dtype": dtype or "float32",
        "input_shape": input_shape,
        "layers": [{"class_name": "Activation" if class_name in _AS_ACTIVATION else class_name, "config": ours}
                   for class_name, _, ours in chain],
    }
    if isinstance(config.get("name"), str):
        model["name"] = config["name"]
    if functional:
        model["functional"] = True
        if isinstance(input_name, str):
            model["input_name"] = input_name
    # The h5 groups follow model.layers: a Sequential model's without its input layer.
    listed = [i for i in range(len(layers)) if functional or parsed[i][0] != "InputLayer"]
    paths = dict(zip(listed, _group_paths([parsed[i][0] for i in listed])))
    layout = WeightLayout()
    for i in order:
        class_name, _, ours = parsed[i]
        if i in paths:
            _layer_weights(layout, paths[i], class_name, ours)
    compiled = reader.compile("compile_config", top.get("compile_config")) if compile else None
    return {"model": model, "compile": compiled}, layout


# ---------------------------------------------------------------- writing


def _policy(dtype: str) -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _object(module: str, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _keras_activation(name: str, activation: str) -> str:
    if activation not in _KERAS_ACTIVATION:
        raise ValueError(
            f"Layer {name!r} has activation {activation!r}, which Keras cannot name in a .keras file "
            f"(Keras's activation names: {sorted(_ACTIVATIONS)}). Save it in fastmlp's format instead."
        )
    return _KERAS_ACTIVATION[activation]


def _keras_layer(class_name: str, config: dict[str, Any], dtype: str) -> tuple[str, dict[str, Any]]:
    name = config["name"]
    common = {"name": name, "trainable": config.get("trainable", True), "dtype": _policy(dtype)}
    if class_name == "Dense":
        regularizers = {}
        for key in ("kernel_regularizer", "bias_regularizer"):
            value = config.get(key)
            regularizers[key] = None if value is None else _object("keras.regularizers", "L1L2", dict(value))
        initializers = {
            key: _object("keras.initializers", config[key]["class_name"], dict(config[key].get("config", {})))
            for key in ("kernel_initializer", "bias_initializer")
        }
        return "Dense", {
            **common,
            "units": config["units"],
            "activation": _keras_activation(name, config["activation"]),
            "use_bias": config["use_bias"],
            **initializers,
            **regularizers,
            "kernel_constraint": None,
            "bias_constraint": None,
        }
    if class_name == "Dropout":
        return "Dropout", {**common, "rate": config["rate"], "seed": None, "noise_shape": None}
    if class_name == "Activation":
        return "Activation", {**common, "activation": _keras_activation(name, config["activation"])}
    if class_name == "LeakyReLU":
        return "LeakyReLU", {**common, "negative_slope": config["negative_slope"]}
    if class_name == "ELU":
        return "ELU", {**common, "alpha": config["alpha"]}
    if class_name == "Flatten":
        return "Flatten", {**common, "data_format": "channels_last"}
    if class_name == "BatchNormalization":
        return "BatchNormalization", {
            **common,
            **{key: config[key] for key in ("axis", "momentum", "epsilon", "center", "scale")},
            **{key: _object("keras.initializers", config[key]["class_name"], dict(config[key].get("config", {})))
               for key in _BN_INITIALIZERS},
            "beta_regularizer": None,
            "gamma_regularizer": None,
            "beta_constraint": None,
            "gamma_constraint": None,
            "synchronized": False,
            "renorm": False,
            "renorm_clipping": None,
            "renorm_momentum": 0.99,
        }
    if class_name == "Normalization":
        return "Normalization", {**common, **{key: config[key] for key in ("axis", "invert", "mean", "variance")}}
    raise ValueError(f"Layer {name!r} ({class_name}) has no Keras equivalent that a .keras file can hold.")


def _keras_compile(compile_config: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """Keras's compile config, or None where fastmlp's optimizer has no Keras equivalent."""
    if not compile_config:
        return None
    optimizer = dict(compile_config["optimizer"])
    classes = {ours: keras for keras, (ours, _) in _OPTIMIZERS.items()}
    class_name = classes.get(optimizer.pop("name"))
    if class_name is None:
        return None
    learning_rate = optimizer.get("learning_rate")
    if isinstance(learning_rate, dict):
        schedule = dict(learning_rate)
        kinds = {ours: keras for keras, ours in _SCHEDULES.items()}
        if schedule.get("kind") not in kinds:
            raise ValueError(
                f"The optimizer's learning rate is the user's schedule class {schedule.get('class_name')!r}, whose code "
                "a .keras file cannot hold for fastmlp to read back. Save it in fastmlp's format instead "
                "(load_model(..., custom_objects=...) rebuilds it), or use one of Keras's built-in schedules."
            )
        kind = kinds[schedule.pop("kind")]
        optimizer["learning_rate"] = _object("keras.optimizers.schedules", kind, {**schedule, "name": kind})
    optimizer = {"name": class_name.lower(), **optimizer, "use_ema": False, "ema_momentum": 0.99}
    loss = compile_config["loss"]
    keras_loss: Any
    class_of = {ours: (keras, function) for keras, (function, ours) in _LOSSES.items()}
    loss_class, function = class_of[loss["name"]]
    if loss_class in ("MeanSquaredError", "MeanAbsoluteError"):
        keras_loss = function
    else:
        settings: dict[str, Any] = {"name": "huber_loss" if loss_class == "Huber" else function, "reduction": "sum_over_batch_size"}
        if function in _LOGIT_LOSSES:
            settings["from_logits"] = bool(loss.get("from_logits", False))
        if loss_class == "Huber":
            settings["delta"] = loss.get("delta", 1.0)
        keras_loss = _object("keras.losses", loss_class, settings)
    return {
        "optimizer": _object("keras.optimizers", class_name, optimizer),
        "loss": keras_loss,
        "loss_weights": None,
        "metrics": [metric if isinstance(metric, str) else _object("keras.metrics", metric["class_name"], dict(metric["config"]))
                    for metric in compile_config.get("metrics", [])] or None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _tensor(shape: list[int], dtype: str, source: str) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, *shape], "dtype": dtype, "keras_history": [source, 0, 0]}}


def to_keras(model: dict[str, Any], compile_config: Optional[dict[str, Any]]) -> tuple[dict[str, Any], WeightLayout, bool]:
    """Keras's ``config.json`` of a fastmlp model config (``Model.get_config()``) and compile
    config, the weights' layout, and whether the compile config had a Keras equivalent.
    ValueError for a layer or activation Keras cannot name."""
    dtype = model["dtype"]
    shape = list(model["input_shape"])
    functional = bool(model.get("functional"))
    input_name = model.get("input_name") or "input_layer"
    input_layer = _object("keras.layers", "InputLayer", {"batch_shape": [None, *shape], "dtype": dtype, "sparse": False, "name": input_name})
    layers = [input_layer]
    class_names = ["InputLayer"]
    previous = input_name
    if functional:
        input_layer.update(name=input_name, inbound_nodes=[])
    for layer in model["layers"]:
        class_name, settings = _keras_layer(layer["class_name"], layer["config"], dtype)
        entry = _object("keras.layers", class_name, settings)
        if functional:
            entry.update(name=settings["name"], inbound_nodes=[{"args": [_tensor(shape, dtype, previous)], "kwargs": {}}])
        if class_name == "Flatten":
            shape = [math.prod(shape)]
        elif class_name == "Dense":
            shape = [settings["units"]]
        previous = settings["name"]
        layers.append(entry)
        class_names.append(class_name)
    listed = list(range(len(layers))) if functional else list(range(1, len(layers)))
    paths = dict(zip(listed, _group_paths([class_names[i] for i in listed])))
    layout = WeightLayout()
    for i in listed:
        layout.groups.append((paths[i], layers[i]["config"]["name"]))
        _layer_weights(layout, paths[i], class_names[i], layers[i]["config"])
    keras_compile = _keras_compile(compile_config)
    config: dict[str, Any] = {"name": model.get("name") or ("functional" if functional else "sequential"), "trainable": True}
    if functional:
        config.update(layers=layers, input_layers=[input_name, 0, 0], output_layers=[previous, 0, 0])
        top = {"module": "keras.src.models.functional", "class_name": "Functional", "config": config,
               "registered_name": "Functional", "build_config": {"input_shape": None}}
    else:
        config.update(dtype=_policy(dtype), layers=layers, build_input_shape=[None, *model["input_shape"]])
        top = _object("keras", "Sequential", config)
        top["build_config"] = {"input_shape": [None, *model["input_shape"]]}
    if keras_compile is not None:
        top["compile_config"] = keras_compile
    return top, layout, keras_compile is not None or not compile_config
