"""Layers, shaped like ``keras.layers``: ``Input``, ``Normalization``, ``Flatten``, ``Dense``, the
activation layers, ``Dropout`` and ``BatchNormalization``.

A layer keeps its configuration; its weights live in the model's C++ network once the model is
built (when the input size is known), in Keras's layout: kernel ``(in, out)``, bias ``(out,)``.
Calling a layer on a symbolic tensor (``fm.Input``) gives the next tensor: the functional API.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Optional, TypeVar

import numpy as np
from numpy.typing import NDArray

from . import _normalization, _validation, activations, initializers, regularizers
from ._engine import Engine
from ._names import snake_case, unique_name
from ._symbolic import KerasTensor, in_training_trace
from ._weight_variable import WeightVariable


def _check_shape(shape: Any, argument: str) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"`{argument}` must be a tuple of positive integers. Received: {argument}={shape!r}") from None
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in dims
    ):
        raise ValueError(
            f"`{argument}` must be a non-empty tuple of positive integers. Received: {argument}={shape!r}"
        )
    return tuple(int(d) for d in dims)


_LayerT = TypeVar("_LayerT", bound="Layer")


class NotATensorError(TypeError, ValueError):
    """A layer called on something other than a symbolic tensor. A TypeError, and a ValueError
    as Keras's (its backends refuse such inputs with either)."""


@contextlib.contextmanager
def _no_lock() -> Iterator[None]:
    yield


def _check_trainable(trainable: Any) -> bool:
    if not isinstance(trainable, (bool, np.bool_)):
        raise ValueError(
            f"Expected `trainable` to be a boolean. Received: trainable={trainable!r} (of type {type(trainable)})"
        )
    return bool(trainable)


class Layer:
    def __init__(self, name: Optional[str] = None, trainable: bool = True) -> None:
        self.name = name if name is not None else unique_name(self._default_name())
        self._trainable = _check_trainable(trainable)
        self._engine: Optional[Engine] = None  # the engine of the model this layer belongs to
        self._index = -1  # its position among the model's Dense layers
        # The input and output tensors of this layer's first symbolic call, or of its place in
        # a Sequential model's chain (Keras's first inbound node): ``input`` and ``output``.
        self._call_tensors: Optional[tuple[KerasTensor, KerasTensor]] = None

    @classmethod
    def _default_name(cls) -> str:
        return snake_case(cls.__name__)

    @classmethod
    def config_class_name(cls) -> str:
        """The class name a model's config records for this layer (its own, unless it is saved
        as another layer it equals)."""
        return cls.__name__

    @property
    def trainable(self) -> bool:
        """Whether ``fit`` updates this layer's weights (Keras's ``layer.trainable``). Settable at
        any time; it takes effect at the next training step."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        engine = self._engine
        if engine is not None and self._index >= 0:
            engine.set_trainable(self._index, self._trainable)

    @property
    def trainable_weights(self) -> list[NDArray[np.floating]]:
        return self.weights if self._trainable else []

    @property
    def non_trainable_weights(self) -> list[NDArray[np.floating]]:
        return [] if self._trainable else self.weights

    @property
    def weights(self) -> list[NDArray[np.floating]]:
        """The layer's weights as Keras's variables: copies (in ``get_weights()`` order) with
        ``name`` (``"kernel"``), ``path`` (``"dense/kernel"``) and ``assign``, which sets the
        weight in the model."""
        arrays = self.get_weights()
        names = self._weight_names()
        names += [f"variable_{index}" for index in range(len(names), len(arrays))]
        return [
            WeightVariable(array, functools.partial(self._assign_weight, index), name=name, path=f"{self.name}/{name}")
            for index, (array, name) in enumerate(zip(arrays, names))
        ]

    def _weight_names(self) -> list[str]:
        """Keras's names of ``get_weights()``'s arrays."""
        return []

    @property
    def losses(self) -> list[float]:
        """Keras's ``layer.losses``: the penalty of each trainable weight that has a
        regularizer, at its current value (a float each; Keras: scalar tensors)."""
        return []

    def _assign_weight(self, index: int, value: NDArray[np.floating]) -> None:
        weights = self.get_weights()
        weights[index] = value
        self.set_weights(weights)

    def bind_engine(self, engine: Optional[Engine], index: int = -1) -> None:
        """Called by the model this layer joins, with the model's engine and the layer's
        position among the model's Dense layers (its weights, once the model is built, are the
        engine's layer ``index``); called with ``None`` when a refused ``add`` lets it go. Not
        for users: a layer belongs to one model."""
        if engine is not None and self._engine is not None:
            raise ValueError(f"Layer {self.name!r} already belongs to a model.")
        self._engine = engine
        self._index = index if engine is not None else -1

    def compute_output_shape(self, input_shape: tuple[Optional[int], ...]) -> tuple[Optional[int], ...]:
        """The shape of this layer's output for inputs of ``input_shape`` (batch axis first)."""
        return tuple(input_shape)

    def __call__(self, inputs: Any, training: Optional[bool] = None) -> KerasTensor:
        """The functional API: this layer applied to a symbolic tensor (from ``fm.Input``),
        as a new symbolic tensor. fastmlp computes on data through a model (``predict``).
        ``training`` as a subclassed model's ``call`` passes it on (``self.dropout(x,
        training=training)``): None or False; the model itself runs Dropout and
        BatchNormalization in training mode during ``fit`` and in inference mode otherwise."""
        if not (training is True and in_training_trace()):
            _validation.inference_mode(f"Layer {self.name!r} ({type(self).__name__})", training)
        if isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor) for t in inputs):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) takes one input tensor; fastmlp runs a chain "
                f"of layers, without merges. Received: {len(inputs)} tensors"
            )
        if not isinstance(inputs, KerasTensor):
            raise NotATensorError(
                f"Layer {self.name!r} ({type(self).__name__}) must be called on a symbolic tensor from "
                "`fastmlp.Input` (the functional API); to compute on data, build a Model and call "
                f"`predict`. Received: inputs={inputs!r} (of type {type(inputs).__name__})"
            )
        shape = self.compute_output_shape(inputs.shape)
        output = KerasTensor(shape, inputs.dtype, operation=self, parent=inputs)
        if self._call_tensors is None:
            self._call_tensors = (inputs, output)
        return output

    def place_in_chain(self, inputs: KerasTensor) -> KerasTensor:
        """Called by the ``Sequential`` model this layer belongs to: the layer's output tensor
        at its place in the model's chain, after ``inputs``; it becomes ``input``/``output``."""
        output = KerasTensor(self.compute_output_shape(inputs.shape), inputs.dtype, operation=self, parent=inputs)
        self._call_tensors = (inputs, output)
        return output

    def _call_tensor(self, which: int, attribute: str) -> KerasTensor:
        if self._call_tensors is None:
            # Keras's Operation._get_node_attribute_at_index, for a layer without inbound nodes.
            raise AttributeError(f"The layer {self.name} has never been called and thus has no defined {attribute}.")
        return self._call_tensors[which]

    @property
    def input(self) -> KerasTensor:
        """The symbolic tensor this layer was first called on (in a ``Sequential`` model with a
        known input shape: the tensor before it in the chain). AttributeError for a layer never
        called, as Keras. Keras: ``layer.input``."""
        return self._call_tensor(0, "input")

    @property
    def output(self) -> KerasTensor:
        """The symbolic tensor of this layer's first call (in a ``Sequential`` model with a
        known input shape: of its place in the chain); ``Model(inputs, layer.output)`` is a
        feature extractor. AttributeError for a layer never called, as Keras. Keras: ``layer.output``."""
        return self._call_tensor(1, "output")

    def get_weights(self) -> list[NDArray[np.floating]]:
        return []

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        if len(weights):
            raise ValueError(f"Layer {self.name!r} has no weights; received {len(weights)} arrays.")

    def count_params(self) -> int:
        return sum(int(w.size) for w in self.get_weights())

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls: type[_LayerT], config: dict[str, Any]) -> _LayerT:
        """A layer from its ``get_config()`` dict (Keras's ``Layer.from_config``: the class
        called with the config's settings)."""
        return cls(**config)


class InputLayer(Layer):
    """The model's input: the shape of one sample (without the batch axis). ``input_shape`` is
    Keras's deprecated name for ``shape`` (with Keras's warning)."""

    def __init__(
        self,
        shape: Any = None,
        batch_size: Optional[int] = None,
        dtype: Optional[str] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        if "input_shape" in kwargs:
            warnings.warn("Argument `input_shape` is deprecated. Use `shape` instead.", stacklevel=2)
            shape = kwargs.pop("input_shape")
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to InputLayer: {kwargs}")
        if shape is None:
            raise ValueError("You must pass a `shape` argument.")
        super().__init__(name)
        self.shape = _check_shape(shape, "shape")
        if batch_size is not None:
            batch_size = _validation.positive_int(batch_size, "batch_size")
        self.batch_size: Optional[int] = batch_size
        if dtype is not None and dtype not in ("float32", "float64"):
            raise ValueError(f"Unknown dtype for an Input: {dtype!r}. Expected 'float32' or 'float64'.")
        self.dtype: str = dtype if dtype is not None else "float32"
        # The tensor this layer makes (Keras's ``InputLayer.output``).
        # Named as Keras names it: the given name, else keras_tensor, keras_tensor_1, ...
        tensor = KerasTensor((batch_size, *self.shape), self.dtype, name=name, operation=self)
        self._call_tensors = (tensor, tensor)

    @property
    def batch_shape(self) -> tuple[Optional[int], ...]:
        return (self.batch_size, *self.shape)

    def __call__(self, inputs: Any, training: Optional[bool] = None) -> KerasTensor:
        raise TypeError(f"InputLayer {self.name!r} makes the model's input; it is not called on a tensor.")

    def get_config(self) -> dict[str, Any]:
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InputLayer:
        settings = dict(config)
        batch_shape = settings.pop("batch_shape", None)
        if not isinstance(batch_shape, (list, tuple)) or not batch_shape:
            raise ValueError(f"An InputLayer config needs a `batch_shape`. Received: {config!r}")
        return cls(shape=tuple(batch_shape[1:]), batch_size=batch_shape[0], **settings)


def Input(
    shape: Any = None,
    batch_size: Optional[int] = None,
    dtype: Optional[str] = None,
    name: Optional[str] = None,
) -> KerasTensor:
    """``Input(shape=(784,))``: a symbolic tensor of samples of ``shape`` (without the batch
    axis), to start a functional model, or the first entry of a ``Sequential`` model."""
    return InputLayer(shape, batch_size=batch_size, dtype=dtype, name=name).output


class Normalization(Layer):
    """Keras's ``Normalization``: ``(x - mean) / maximum(sqrt(variance), 1e-7)`` per position of
    the kept ``axis`` (``invert=True``: ``mean + x * maximum(sqrt(variance), 1e-7)``), the
    statistics given as ``mean`` and ``variance`` or computed by ``adapt(data)``. The first layer
    of a model (after its ``Input``).

    The model applies it to the data of each ``fit``/``evaluate``/``predict`` call in one NumPy
    pass, in the model's dtype, before the core trains on it (it has nothing to train); adapted
    statistics are non-trainable weights ``[mean, variance, count]``, as Keras's, saved with the
    model (``count`` is 0, as Keras 3 never updates it). Called on data (not a symbolic tensor)
    it computes its output, as in Keras.
    """

    def __init__(
        self,
        axis: Any = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        name: Optional[str] = None,
        trainable: bool = True,
        input_shape: Any = None,
    ) -> None:
        super().__init__(name, trainable)
        self.axis = _normalization.axes(axis)
        # As a first layer without an Input (Keras's deprecated base-layer argument).
        self.input_shape = None if input_shape is None else _check_shape(input_shape, "input_shape")
        if (mean is not None) != (variance is not None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.input_mean: Optional[NDArray[np.float64]] = None
        self.input_variance: Optional[NDArray[np.float64]] = None
        if mean is not None:
            given_mean = self._given(mean, "mean")
            given_variance = self._given(variance, "variance")
            if given_mean.shape != given_variance.shape:
                raise ValueError(
                    "When setting values directly, `mean` and `variance` must have the same shape. "
                    f"Received: mean shape {given_mean.shape} and variance shape {given_variance.shape}"
                )
            if given_mean.ndim > len(self.axis):
                raise ValueError(
                    f"The rank of `mean` must be less than or equal to the number of axes ({len(self.axis)}). "
                    f"Received: mean shape {given_mean.shape} for axis {self.axis}"
                )
            if (given_variance < 0).any():
                raise ValueError(f"`variance` must be >= 0. Received: variance={variance!r}")
            self.input_mean, self.input_variance = given_mean, given_variance
        self.invert = bool(invert)
        self._sample_shape: Optional[tuple[int, ...]] = None  # known once built
        # The adapted statistics (float64, of _normalization.stats_shape); None before build.
        self._mean: Optional[NDArray[np.float64]] = None
        self._variance: Optional[NDArray[np.float64]] = None

    @staticmethod
    def _given(value: Any, name: str) -> NDArray[np.float64]:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be a number or an array of numbers. Received: {name}={value!r}") from None
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
        return array

    @property
    def built(self) -> bool:
        return self._sample_shape is not None

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Fix the input shape (batch axis first): the adapted statistics get their shape (mean
        0, variance 1 until adapted, as Keras). A ValueError for a shape whose kept axes differ
        from the shape it was built or adapted with."""
        sample = tuple(int(d) for d in tuple(input_shape)[1:] if d is not None)
        shape = _normalization.stats_shape(self.axis, sample)
        if self._sample_shape is not None:
            if self._mean is not None and self._mean.shape != shape:
                raise ValueError(
                    f"Normalization layer {self.name!r} was built for inputs of shape "
                    f"{(None, *self._sample_shape)} (statistics of shape {self._mean.shape}); it cannot "
                    f"take inputs of shape {(None, *sample)}."
                )
            self._sample_shape = sample
            return
        self._sample_shape = sample
        if self.input_mean is None:
            self._mean, self._variance = np.zeros(shape), np.ones(shape)

    def adapt(self, data: Any, batch_size: Optional[int] = None, steps: Optional[int] = None) -> None:
        """Compute the mean and (population) variance of ``data`` (batch axis first; or an
        iterable of such batches) over every axis but ``axis``. ``steps`` limits the batches
        read (of ``batch_size``, default 32, for an array). ValueError for no samples, NaN or
        infinity, or a shape that does not fit the layer."""
        if batch_size is not None:
            batch_size = _validation.positive_int(batch_size, "batch_size")
        if steps is not None:
            steps = _validation.positive_int(steps, "steps")
        array = _normalization.batches(data, batch_size, steps)
        if array.ndim < 2:
            if self.axis:
                raise ValueError(
                    f"adapt() of Normalization layer {self.name!r} (axis={self.axis}) needs data with a batch "
                    f"axis and a feature axis. Received: data of shape {array.shape}; for one feature use "
                    "data.reshape(-1, 1)."
                )
            array = array.reshape(-1, 1)
        mean, variance = _normalization.moments(array, self.axis)
        engine = self._engine
        with engine.lock if engine is not None else _no_lock():
            self.build((None, *array.shape[1:]))
            if self.input_mean is None:
                self._mean, self._variance = mean, variance

    def _statistics(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.input_mean is not None and self.input_variance is not None:
            return self.input_mean, self.input_variance
        if self._mean is None or self._variance is None:
            raise ValueError(f"Normalization layer {self.name!r} is not built: call adapt() or build() first.")
        return self._mean, self._variance

    def _broadcast(self, stats: NDArray[np.float64]) -> NDArray[np.float32]:
        """Statistics as Keras's ``mean``/``variance``: float32 of the broadcast shape (1 on the
        batch axis and every axis not kept, e.g. ``(1, features)`` for ``axis=-1``)."""
        if self._sample_shape is None:
            return stats.astype(np.float32)
        batch_shape: tuple[Optional[int], ...] = (None, *self._sample_shape)
        keep = _normalization.kept_axes(self.axis, len(batch_shape), batch_shape)
        shape = [1] * len(batch_shape)
        for d in keep:
            shape[d] = self._sample_shape[d - 1]
        if stats.size != math.prod(shape):
            return stats.astype(np.float32)
        return stats.reshape(shape).astype(np.float32)

    @property
    def mean(self) -> NDArray[np.float32]:
        """The mean, as Keras's attribute once built or adapted (float32, broadcast shape)."""
        return self._broadcast(self._statistics()[0])

    @property
    def variance(self) -> NDArray[np.float32]:
        """The variance, as Keras's attribute once built or adapted (float32, broadcast shape)."""
        return self._broadcast(self._statistics()[1])

    def feature_statistics(self, sample_shape: tuple[int, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The mean and variance of each feature of flat samples of ``sample_shape`` (built for
        that shape first). Called by the model; not for users."""
        self.build((None, *sample_shape))
        mean, variance = self._statistics()
        return (
            _normalization.per_feature(mean, self.axis, sample_shape, "mean"),
            _normalization.per_feature(variance, self.axis, sample_shape, "variance"),
        )

    def normalize(self, x: NDArray[np.floating], sample_shape: tuple[int, ...]) -> NDArray[np.floating]:
        """This layer's output for flat samples ``x`` (n, features) of ``sample_shape``, a new
        array in ``x``'s dtype."""
        mean, variance = self.feature_statistics(sample_shape)
        return _normalization.apply(x, mean, variance, self.invert)

    def __call__(self, inputs: Any, training: Optional[bool] = None) -> Any:
        """On a symbolic tensor, the functional API; on data, the normalized data (as Keras's
        eager call), as float32 of the data's shape (``training`` as ``Layer.__call__``)."""
        if not (training is True and in_training_trace()):
            _validation.inference_mode(f"Layer {self.name!r} (Normalization)", training)
        if isinstance(inputs, KerasTensor) or (
            isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor) for t in inputs)
        ):
            return super().__call__(inputs)
        array = _validation.as_numeric_array(inputs, "inputs").astype(np.float32)
        if array.ndim < 1:
            raise ValueError(f"Normalization layer {self.name!r} needs a batch axis. Received: shape {array.shape}")
        sample = tuple(int(d) for d in array.shape[1:])
        return self.normalize(array.reshape(array.shape[0], -1), sample).reshape(array.shape)

    def _dtype(self) -> str:
        return self._engine.dtype if self._engine is not None else "float32"

    def get_weights(self) -> list[NDArray[np.floating]]:
        """``[mean, variance, count]`` once built (non-trainable, as Keras), in the model's dtype;
        none with a given ``mean`` and ``variance``."""
        if self.input_mean is not None or self._mean is None or self._variance is None:
            return []
        dtype = self._dtype()
        return [self._mean.astype(dtype), self._variance.astype(dtype), np.zeros((), dtype=dtype)]

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        """Set ``[mean, variance, count]`` (shapes as ``get_weights()``); all are checked first."""
        expected = [w.shape for w in self.get_weights()]
        if len(weights) != len(expected):
            raise ValueError(
                f"Layer {self.name!r} expects {len(expected)} weights, but the weight list has {len(weights)} elements."
            )
        arrays = [np.asarray(w) for w in weights]
        for array, shape in zip(arrays, expected):
            if array.shape != shape:
                raise ValueError(
                    f"Layer {self.name!r} weight shape {shape} is not compatible with provided weight shape {array.shape}."
                )
            if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
                raise ValueError(f"Layer {self.name!r} weights must be finite real numbers.")
        if arrays:
            if (arrays[1] < 0).any():
                raise ValueError(f"Layer {self.name!r}: the variance must be >= 0.")
            self._mean, self._variance = arrays[0].astype(np.float64), arrays[1].astype(np.float64)

    @property
    def trainable_weights(self) -> list[NDArray[np.floating]]:
        return []

    @property
    def non_trainable_weights(self) -> list[NDArray[np.floating]]:
        return self.weights

    def _weight_names(self) -> list[str]:
        return ["mean", "variance", "count"]

    def count_params(self) -> int:
        return sum(int(w.size) for w in self.get_weights())

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "axis": list(self.axis),
            "invert": self.invert,
            "mean": None if self.input_mean is None else self.input_mean.tolist(),
            "variance": None if self.input_variance is None else self.input_variance.tolist(),
        }

    def __repr__(self) -> str:
        return f"<Normalization name={self.name!r} axis={self.axis} invert={self.invert}>"


class Flatten(Layer):
    """Reshapes each sample to one vector (e.g. 28 x 28 images to 784 features). Free: no copy."""

    def __init__(self, input_shape: Any = None, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__(name, trainable)
        self.input_shape = None if input_shape is None else _check_shape(input_shape, "input_shape")

    def compute_output_shape(self, input_shape: tuple[Optional[int], ...]) -> tuple[Optional[int], ...]:
        sample = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in sample) else math.prod(d for d in sample if d is not None))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": self.input_shape}


class Dense(Layer):
    """``activation(x @ kernel + bias)``: a fully connected layer.

    Args:
        units: number of outputs, a positive integer.
        activation: "linear" (or None), "sigmoid", "tanh", "relu" or "softmax".
        use_bias: whether to add a bias vector.
        kernel_initializer, bias_initializer: Keras names or ``fastmlp.initializers`` objects.
        kernel_regularizer, bias_regularizer: ``fastmlp.regularizers`` penalties (or names).
        input_shape: optional shape of one sample, for a first layer without ``Input``
            (``input_dim=n`` is ``input_shape=(n,)``, as in Keras).
        trainable: whether ``fit`` updates the weights (also settable later).
    """

    def __init__(
        self,
        units: int,
        activation: activations.ActivationLike = None,
        use_bias: bool = True,
        kernel_initializer: Optional[initializers.InitializerLike] = "glorot_uniform",
        bias_initializer: Optional[initializers.InitializerLike] = "zeros",
        kernel_regularizer: regularizers.RegularizerLike = None,
        bias_regularizer: regularizers.RegularizerLike = None,
        input_shape: Any = None,
        name: Optional[str] = None,
        input_dim: Optional[int] = None,
        trainable: bool = True,
    ) -> None:
        given: Any = units  # validated here: users pass anything
        if isinstance(given, bool) or not isinstance(given, numbers.Integral) or given < 1:
            if isinstance(given, float) and given.is_integer() and given >= 1:
                units = int(given)
            else:
                raise ValueError(
                    "Received an invalid value for `units`, expected a positive integer. "
                    f"Received: units={units!r}"
                )
        super().__init__(name, trainable)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        # None is Keras's add_weight default for a float weight: glorot_uniform (a bias too).
        self.kernel_initializer = initializers.get("glorot_uniform" if kernel_initializer is None else kernel_initializer)
        self.bias_initializer = initializers.get("glorot_uniform" if bias_initializer is None else bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if input_dim is not None:
            input_shape = (_validation.positive_int(input_dim, "input_dim"),)
        self.input_shape = None if input_shape is None else _check_shape(input_shape, "input_shape")

    def compute_output_shape(self, input_shape: tuple[Optional[int], ...]) -> tuple[Optional[int], ...]:
        if len(input_shape) != 2 or input_shape[1] is None:
            raise ValueError(
                f"Dense layer {self.name!r} takes flat samples of a known size, shape (batch, features); "
                f"add fastmlp.layers.Flatten() before it. Received: input shape {input_shape}"
            )
        return (input_shape[0], self.units)

    def _built_engine(self) -> Engine:
        engine = self._engine
        if engine is None or not engine.built:
            raise ValueError(f"Layer {self.name!r} has no weights yet: the model is not built.")
        return engine

    @property
    def kernel(self) -> NDArray[np.floating]:
        """A copy of the kernel with Keras's variable methods (``kernel.assign(value)`` sets it)."""
        return WeightVariable(self._built_engine().kernel(self._index), self._assign_kernel, "kernel", f"{self.name}/kernel")

    @property
    def bias(self) -> Optional[NDArray[np.floating]]:
        """A copy of the bias (None without one) with Keras's variable methods
        (``bias.assign(value)`` sets it)."""
        bias = self._built_engine().bias(self._index)
        return None if bias is None else WeightVariable(bias, self._assign_bias, "bias", f"{self.name}/bias")

    def _weight_names(self) -> list[str]:
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    @property
    def losses(self) -> list[float]:
        weights = self.trainable_weights
        penalties = (self.kernel_regularizer, self.bias_regularizer)
        return [penalty(weight) for weight, penalty in zip(weights, penalties) if penalty is not None]

    def _assign_kernel(self, value: NDArray[np.floating]) -> None:
        self.set_weights([value, *self.get_weights()[1:]])

    def _assign_bias(self, value: NDArray[np.floating]) -> None:
        self.set_weights([self.get_weights()[0], value])

    def get_weights(self) -> list[NDArray[np.floating]]:
        engine = self._engine
        if engine is None:
            return []
        with engine.lock:
            if not engine.built:
                return []
            weights = [engine.kernel(self._index)]
            bias = engine.bias(self._index)
            if bias is not None:
                weights.append(bias)
            return weights

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        """Replace this layer's kernel (and bias): every array is checked before any is set."""
        self._built_engine().set_weights([(self._index, self.name, weights)])

    def count_params(self) -> int:
        engine = self._engine
        if engine is None or not engine.built:
            return 0
        return engine.fan_in(self._index) * self.units + (self.units if self.use_bias else 0)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "input_shape": self.input_shape,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Dense:
        settings = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if isinstance(settings.get(key), dict):
                settings[key] = initializers.deserialize(settings[key])
        for key in ("kernel_regularizer", "bias_regularizer"):
            settings[key] = regularizers.deserialize(settings.get(key))
        return cls(**settings)

    def __repr__(self) -> str:
        return f"<Dense name={self.name!r} units={self.units} activation={self.activation!r}>"


class Activation(Layer):
    """Applies an activation to the output of the Dense layer before it.

    fastmlp folds it into that Dense layer (which must have no activation of its own), so it
    costs nothing: ``Dense(64), LeakyReLU()`` trains exactly like one Dense layer whose
    activation is leaky_relu.
    """

    def __init__(self, activation: activations.ActivationLike, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__(name, trainable)
        self.activation = activations.get(activation)
        self.alpha: Optional[float] = None  # the activation's parameter, None for its default

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "activation": self.activation}


class ReLU(Activation):
    """Keras's ``ReLU`` layer with its defaults (``max(x, 0)``): the relu of the Dense layer
    before it. Saved as ``Activation("relu")``, which it equals; ``max_value``,
    ``negative_slope`` and ``threshold`` other than the defaults are a ValueError (use
    ``LeakyReLU`` for a slope)."""

    def __init__(
        self,
        max_value: Optional[float] = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        name: Optional[str] = None,
        trainable: bool = True,
    ) -> None:
        if max_value is not None or negative_slope != 0 or threshold != 0:
            raise ValueError(
                "fastmlp's ReLU layer is max(x, 0) only (the core's relu); use LeakyReLU(negative_slope) for a "
                f"slope. Received: max_value={max_value!r}, negative_slope={negative_slope!r}, threshold={threshold!r}"
            )
        super().__init__("relu", name, trainable)

    @classmethod
    def config_class_name(cls) -> str:
        return "Activation"


class Softmax(Activation):
    """Keras's ``Softmax`` layer over the last axis: the softmax of the Dense layer before it.
    Saved as ``Activation("softmax")``, which it equals; another ``axis`` is a ValueError."""

    def __init__(self, axis: int = -1, name: Optional[str] = None, trainable: bool = True) -> None:
        if axis not in (-1, 1):
            raise ValueError(f"fastmlp's Softmax layer takes axis=-1 only. Received: axis={axis!r}")
        super().__init__("softmax", name, trainable)

    @classmethod
    def config_class_name(cls) -> str:
        return "Activation"


class LeakyReLU(Activation):
    """``x if x > 0 else negative_slope * x`` (Keras's layer default slope: 0.3)."""

    def __init__(self, negative_slope: float = 0.3, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__("leaky_relu", name, trainable)
        self.alpha = _validation.finite_number(negative_slope, "negative_slope")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.alpha}


class ELU(Activation):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__("elu", name, trainable)
        self.alpha = _validation.finite_number(alpha, "alpha")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


class GELU(Activation):
    """``x * Phi(x)``, or with ``approximate=True`` its tanh approximation."""

    def __init__(self, approximate: bool = False, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__("gelu_tanh" if approximate else "gelu", name, trainable)
        self.approximate = bool(approximate)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "approximate": self.approximate}


class Dropout(Layer):
    """Inverted dropout on the output of the Dense layer before it (and its activation): while
    training, each value is kept with probability ``1 - rate`` and scaled by ``1 / (1 - rate)``;
    in evaluate and predict it does nothing. The masks come from fastmlp's seeded stream
    (``fm.utils.set_random_seed``), drawn the same way for every thread count."""

    def __init__(self, rate: float, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__(name, trainable)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate}


def _unit_interval(value: Any, name: str) -> float:
    if not _validation.is_real(value) or not 0 <= float(value) <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={value!r}")
    return float(value)


class BatchNormalization(Layer):
    """Keras's ``BatchNormalization``. Right after a Dense layer without an activation
    (``Dense(64), BatchNormalization(), Activation("relu")``) fastmlp normalizes that layer's
    ``x @ kernel + bias`` in the core, before its activation; anywhere else (after an
    activation, a Dropout, or the Input: ``Dense(64, activation="relu"), BatchNormalization(),
    Dropout(0.3), Dense(10)``) it normalizes the input of the next Dense layer, which must come.

    In ``fit`` (and ``train_on_batch``) each feature is normalized with the batch's mean and
    biased variance, and the moving statistics move once per batch,
    ``moving = moving * momentum + batch * (1 - momentum)``; ``predict``, ``evaluate`` and the
    validation use the moving statistics, as does ``fit`` on a frozen layer
    (``trainable=False``, whose gamma and beta then stay as they are). Output:
    ``gamma * (x - mean) / sqrt(variance + epsilon) + beta``.

    Weights, in Keras's order: ``gamma`` (with ``scale``), ``beta`` (with ``center``), then the
    non-trainable ``moving_mean`` and ``moving_variance``, each of shape ``(features,)``.
    ``axis`` is the feature axis of the flat samples: -1 (or 1, the same axis).
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 0.001,
        center: bool = True,
        scale: bool = True,
        beta_initializer: initializers.InitializerLike = "zeros",
        gamma_initializer: initializers.InitializerLike = "ones",
        moving_mean_initializer: initializers.InitializerLike = "zeros",
        moving_variance_initializer: initializers.InitializerLike = "ones",
        beta_regularizer: regularizers.RegularizerLike = None,
        gamma_regularizer: regularizers.RegularizerLike = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        name: Optional[str] = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name, trainable)
        given: Any = axis  # validated here: users pass anything
        if isinstance(given, bool) or not isinstance(given, numbers.Integral) or int(given) not in (-1, 1):
            raise ValueError(
                "fastmlp's BatchNormalization normalizes the features of flat samples: `axis` must be -1 "
                f"(or 1, the same axis). Received: axis={axis!r}"
            )
        self.axis = int(axis)
        self.momentum = _unit_interval(momentum, "momentum")
        if not _validation.is_real(epsilon) or not math.isfinite(float(epsilon)) or float(epsilon) <= 0:
            raise ValueError(f"`epsilon` must be a positive number. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        for argument, value in (
            ("beta_regularizer", beta_regularizer),
            ("gamma_regularizer", gamma_regularizer),
            ("beta_constraint", beta_constraint),
            ("gamma_constraint", gamma_constraint),
        ):
            if value is not None:
                raise ValueError(
                    f"fastmlp's BatchNormalization takes no `{argument}` (its core has none). Received: {argument}={value!r}"
                )
        self.synchronized = bool(synchronized)  # one device: nothing to synchronize
        self._on_input = False  # whether its weights are the core layer's input normalization

    def bind_engine(self, engine: Optional[Engine], index: int = -1, on_input: bool = False) -> None:
        """As ``Layer.bind_engine``; ``on_input``: this layer normalizes the input of the core
        layer ``index`` (the next Dense layer) rather than the output of its product."""
        super().bind_engine(engine, index)
        self._on_input = on_input and engine is not None

    @property
    def trainable(self) -> bool:
        """Whether ``fit`` updates gamma and beta and normalizes with the batch's statistics
        (Keras: a frozen BatchNormalization runs in inference mode)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        engine = self._engine
        if engine is not None and self._index >= 0:
            engine.set_norm_trainable(self._index, self._trainable, self._on_input)

    def _weight_names(self) -> list[str]:
        return [
            name
            for name, present in (("gamma", self.scale), ("beta", self.center), ("moving_mean", True), ("moving_variance", True))
            if present
        ]

    def initializer(self, weight: str) -> initializers.Initializer:
        """The initializer of ``weight`` ("gamma", "beta", "moving_mean", "moving_variance")."""
        chosen: dict[str, initializers.Initializer] = {
            "gamma": self.gamma_initializer,
            "beta": self.beta_initializer,
            "moving_mean": self.moving_mean_initializer,
            "moving_variance": self.moving_variance_initializer,
        }
        return chosen[weight]

    @property
    def weight_count(self) -> int:
        """How many arrays ``get_weights`` returns once built."""
        return len(self._weight_names())

    def _built_engine(self) -> Engine:
        engine = self._engine
        if engine is None or not engine.built or not engine.has_norm(self._index, self._on_input):
            raise ValueError(
                f"Layer {self.name!r} has no weights yet: the model is not built (or no Dense layer follows it)."
            )
        return engine

    def _weight(self, name: str) -> Optional[NDArray[np.floating]]:
        weights = dict(zip(self._weight_names(), self._built_engine().norm_weights(self._index, self._on_input)))
        return weights.get(name)

    @property
    def gamma(self) -> Optional[NDArray[np.floating]]:
        return self._weight("gamma")

    @property
    def beta(self) -> Optional[NDArray[np.floating]]:
        return self._weight("beta")

    @property
    def moving_mean(self) -> NDArray[np.floating]:
        return self._built_engine().norm_weights(self._index, self._on_input)[-2]  # always the last two

    @property
    def moving_variance(self) -> NDArray[np.floating]:
        return self._built_engine().norm_weights(self._index, self._on_input)[-1]

    def get_weights(self) -> list[NDArray[np.floating]]:
        engine = self._engine
        if engine is None:
            return []
        with engine.lock:
            if not engine.built or not engine.has_norm(self._index, self._on_input):
                return []
            return engine.norm_weights(self._index, self._on_input)

    def set_weights(self, weights: Sequence[NDArray[np.floating]]) -> None:
        """Replace gamma, beta (those it has) and the moving statistics, all checked first."""
        assignment = [(self._index, self.name, weights)]
        if self._on_input:
            self._built_engine().set_weights([], [], assignment)
        else:
            self._built_engine().set_weights([], assignment)

    @property
    def trainable_weights(self) -> list[NDArray[np.floating]]:
        return self.weights[: int(self.scale) + int(self.center)] if self._trainable else []

    @property
    def non_trainable_weights(self) -> list[NDArray[np.floating]]:
        weights = self.weights
        return weights[int(self.scale) + int(self.center) :] if self._trainable else weights

    def count_params(self) -> int:
        return sum(int(w.size) for w in self.get_weights())

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BatchNormalization:
        settings = dict(config)
        for key in ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer"):
            if isinstance(settings.get(key), dict):
                settings[key] = initializers.deserialize(settings[key])
        return cls(**settings)


class Merge(Layer):
    """The base of Keras's merge layers (``Add``, ``Concatenate``, ...), which join several
    tensors. fastmlp's engine runs a chain of layers, so calling one is a ValueError naming it;
    they exist so that a Keras script stops at the merge with that message."""

    def __call__(self, inputs: Any, training: Optional[bool] = None) -> KerasTensor:
        raise ValueError(
            f"Merge layer {self.name!r} ({type(self).__name__}) joins several tensors, but fastmlp's engine "
            "runs a chain of layers (one input, one output, no branches that meet). Received: "
            f"inputs={inputs!r}"
        )


class Add(Merge):
    """Keras's ``Add``: refused when called (see ``Merge``)."""


class Subtract(Merge):
    """Keras's ``Subtract``: refused when called (see ``Merge``)."""


class Multiply(Merge):
    """Keras's ``Multiply``: refused when called (see ``Merge``)."""


class Average(Merge):
    """Keras's ``Average``: refused when called (see ``Merge``)."""


class Maximum(Merge):
    """Keras's ``Maximum``: refused when called (see ``Merge``)."""


class Minimum(Merge):
    """Keras's ``Minimum``: refused when called (see ``Merge``)."""


class Concatenate(Merge):
    """Keras's ``Concatenate(axis=-1)``: refused when called (see ``Merge``)."""

    def __init__(self, axis: int = -1, name: Optional[str] = None, trainable: bool = True) -> None:
        super().__init__(name, trainable)
        self.axis = axis


def deserialize(config: dict[str, Any]) -> Layer:
    """A layer from ``{"class_name": ..., "config": ...}`` as saved by fastmlp."""
    name = config.get("class_name")
    settings = dict(config.get("config", {}))
    if name == "Dense":
        return Dense.from_config(settings)
    if name == "Flatten":
        return Flatten(**settings)
    if name == "InputLayer":
        return InputLayer.from_config(settings)
    if name == "BatchNormalization":
        return BatchNormalization.from_config(settings)
    classes: dict[str, type[Layer]] = {
        "Normalization": Normalization,
        "Activation": Activation,
        "LeakyReLU": LeakyReLU,
        "ELU": ELU,
        "GELU": GELU,
        "Dropout": Dropout,
    }
    if name in classes:
        return classes[name](**settings)
    raise ValueError(f"Unknown layer in saved config: {name!r}")
