"""``Model`` and ``Sequential``: a chain of layers with Keras's training API, trained by the C++
core. A ``Model`` is made from symbolic tensors (``Model(inputs, outputs)``, the functional API),
by subclassing (its ``call`` traced once, see ``fastmlp._functional``), or as a ``Sequential``
stack; all three run on the same engine.

Python validates and converts the data once per call, then hands the core a chunk of batches at a
time (about 0.1 s of work), so there is no per-batch Python work unless a callback asks for
per-batch hooks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import math
import os
import sys
import time
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, TypeVar, Union, cast

import numpy as np
from numpy.typing import NDArray

from . import (
    _core,
    _file_dispatch,
    _functional,
    _model_file,
    _validation,
    activations,
    config,
    metrics,
    optimizers,
    utils,
)
from . import callbacks as callbacks_module
from . import losses as losses_module  # `losses` is also Model.losses, the penalties
from ._compiled_metrics import CompiledMetrics, CompileMetrics, MetricState, metric_objects
from ._compiled_metrics import log_names as metric_log_names
from ._compiled_metrics import prepare as prepare_metrics
from ._engine import Engine, LayerSpec
from ._layer_order import Placement, misplaced, norm_slot, trailing_norm
from ._names import snake_case, unique_name
from ._progress import Progbar, print_msg
from ._symbolic import KerasTensor
from .layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    InputLayer,
    Layer,
    Normalization,
    deserialize,
)
from .metrics import Mean, Metric
from .optimizers._base import ModelFacts
from .optimizers._full_batch import FullBatchTraining

# Seconds of work per call into the core: long enough that Python's share is negligible, short
# enough for a live progress bar and a prompt Ctrl-C.
_CHUNK_SECONDS = 0.1
# Rows per forward pass in predict/evaluate when the caller gives no batch size: results do not
# depend on it (each row is computed the same way whatever the batch), only memory does.
_INFERENCE_BATCH = 1024
# Keras's default batch size: evaluate/predict's steps in callbacks' params and per-batch hooks.
_KERAS_BATCH = 32

Array = NDArray[Any]


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _serialized(method: _Method) -> _Method:
    """Runs the method under the model's lock: calls on one model from several threads run one
    after the other (the core's scratch buffers and weights belong to the model, and a second
    call into them at the same time would corrupt memory). Re-entrant, so a callback may call
    ``evaluate`` or ``save`` on the model it is training."""

    @functools.wraps(method)
    def locked(self: Model, *args: Any, **kwargs: Any) -> Any:
        with contextlib.ExitStack() as held:
            for lock in self._locks():
                held.enter_context(lock)
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


# A metric as compile takes it: a name, or an fm.metrics object.
MetricLike = Union[str, metrics.Metric]


@dataclasses.dataclass(frozen=True)
class _FitSettings:
    """fit's arguments other than the data, checked."""

    batch_size: int
    epochs: int
    verbose: int
    shuffle: bool
    validation_split: float
    initial_epoch: int
    validate_after: Callable[[int], bool]  # whether to validate after a (1-based) epoch
    steps_per_epoch: Optional[int] = None  # batches per epoch, the pass over x going on across epochs
    validation_steps: Optional[int] = None  # validation batches per validation, likewise
    validation_batch_size: Optional[int] = None  # batch size of validation, else batch_size

    @classmethod
    def checked(
        cls,
        batch_size: Optional[int],
        epochs: int,
        verbose: Union[int, str],
        shuffle: bool,
        validation_split: float,
        initial_epoch: int,
        validation_freq: Union[int, Sequence[int]],
        steps_per_epoch: Optional[int] = None,
        validation_steps: Optional[int] = None,
        validation_batch_size: Optional[int] = None,
    ) -> _FitSettings:
        checked_batch_size = 32 if batch_size is None else _validation.positive_int(batch_size, "batch_size")
        checked_epochs = _validation.non_negative_int(epochs, "epochs")
        checked_initial_epoch = _validation.non_negative_int(initial_epoch, "initial_epoch")
        checked_verbose = _validation.verbosity(verbose)
        if isinstance(validation_split, bool) or not (0.0 <= float(validation_split) < 1.0):
            raise ValueError(
                f"`validation_split` must be in [0, 1). Received: validation_split={validation_split!r}"
            )
        return cls(
            batch_size=checked_batch_size,
            epochs=checked_epochs,
            verbose=checked_verbose,
            shuffle=bool(shuffle),
            validation_split=float(validation_split),
            initial_epoch=checked_initial_epoch,
            validate_after=_validation_schedule(validation_freq),
            steps_per_epoch=None if steps_per_epoch is None else _validation.positive_int(steps_per_epoch, "steps_per_epoch"),
            validation_steps=None if validation_steps is None else _validation.positive_int(validation_steps, "validation_steps"),
            validation_batch_size=None
            if validation_batch_size is None
            else _validation.positive_int(validation_batch_size, "validation_batch_size"),
        )

    def batches(self, n: int) -> int:
        """Batches in one pass over ``n`` samples."""
        return (n + self.batch_size - 1) // self.batch_size

    def steps(self, n: int) -> int:
        """Batches per epoch for ``n`` samples (``steps_per_epoch`` when given, as Keras)."""
        return self.steps_per_epoch if self.steps_per_epoch is not None else self.batches(n)


@dataclasses.dataclass
class _FitData:
    """fit's arrays as the core takes them: training data, per-sample weights, validation data."""

    x: Array
    y: Array
    weights: Optional[Array]
    x_val: Optional[Array] = None
    y_val: Optional[Array] = None
    w_val: Optional[Array] = None
    checked_in_training: bool = False  # x's NaN and infinity are left to the core

    def split(self, fraction: float) -> None:
        """Keep the last ``fraction`` of the samples for validation, as Keras (before any
        shuffling)."""
        n = self.x.shape[0]
        split_at = math.floor(n * (1.0 - fraction))
        if split_at == 0 or split_at == n:
            raise ValueError(
                f"validation_split={fraction} leaves no samples for "
                f"{'training' if split_at == 0 else 'validation'} out of {n}."
            )
        self.x, self.x_val = self.x[:split_at], self.x[split_at:]
        self.y, self.y_val = self.y[:split_at], self.y[split_at:]
        if self.weights is not None:
            self.weights, self.w_val = self.weights[:split_at], self.weights[split_at:]


# Trains one epoch of fit from batch `first` of the pass over x (with its progress bar and
# callbacks); returns its logs and the number of batches it trained.
_EpochTrainer = Callable[[Progbar, callbacks_module.CallbackList, int], tuple[dict[str, float], int]]


def _inference_callbacks(
    callbacks: Optional[Sequence[callbacks_module.Callback]],
    model: Model,
    verbose: Union[int, str],
    batch_size: Optional[int],
    n: int,
) -> callbacks_module.CallbackList:
    """evaluate's or predict's callbacks, with Keras 3's params (``steps`` of ``batch_size``
    rows, Keras's 32 by default)."""
    batch = batch_size or _KERAS_BATCH
    params = {"verbose": verbose, "epochs": 1, "steps": (n + batch - 1) // batch}
    return callbacks_module.CallbackList(callbacks, model, params)


# The model each layer joined (see Model._bind); an entry stays after the layer leaves that
# model, so _owner_of checks that the model still holds it.
_OWNERS: weakref.WeakKeyDictionary[Layer, Model] = weakref.WeakKeyDictionary()


def _owner_of(layer: Layer) -> Optional[Model]:
    owner = _OWNERS.get(layer)
    if owner is None or not any(held is layer for held in owner.layers):
        return None
    return owner


class NotCompiledError(RuntimeError, ValueError):
    """A training or evaluation call on a model that was never compiled. A RuntimeError as in
    Keras, and a ValueError like every other misuse fastmlp reports."""


# Keras's hooks for customizing what fit, evaluate and predict do per batch. fastmlp runs whole
# epochs in its core and never calls them: a subclass that defines one is refused, not ignored.
CUSTOM_STEP_METHODS = ("train_step", "test_step", "predict_step", "compute_loss", "compute_metrics")


def _refuse_custom_steps(cls: type) -> None:
    overridden = _validation.user_overrides(cls, CUSTOM_STEP_METHODS)
    if overridden:
        raise NotImplementedError(
            f"{cls.__name__} defines {', '.join(overridden)}: fastmlp runs fit, evaluate and predict "
            "in its native core, which cannot call Python per batch, so it would silently ignore "
            f"{'it' if len(overridden) == 1 else 'them'}. Use a built-in loss and metrics, and "
            "callbacks for per-batch work (see docs/keras.md)."
        )


class Model:
    """A chain of layers with Keras's training API.

    ``Model(inputs, outputs)`` takes the tensors of the functional API (``fm.Input`` and the
    layers called on it); a subclass creates its layers in ``__init__`` and chains them in
    ``call(self, inputs)``, which is traced once on a symbolic input when the input shape is
    known (at ``build``, or the first ``fit``/``predict``). Either way the layers must form a
    chain the engine runs (as ``Sequential``): one input, one output, each layer used once.
    """

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: Optional[str] = None,
        dtype: Optional[str] = None,
        trainable: bool = True,
    ) -> None:
        graph = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError(
                    "A functional Model needs both `inputs` and `outputs`. "
                    f"Received: inputs={inputs!r}, outputs={outputs!r}"
                )
            graph = _functional.chain(inputs, outputs)
            source = _shared_source(graph[0], graph[1])
            if source is not None:
                dtype = source[0].dtype
            elif dtype is None:
                dtype = graph[0].dtype
        default = "functional" if type(self) is Model or graph is not None else snake_case(type(self).__name__)
        self._init_state(name if name is not None else unique_name(default), dtype)
        self._functional = graph is not None
        if graph is not None:
            layers = graph[1]
            if source is not None:
                # A feature extractor: copies of the owner's first layers, whose weights follow
                # the owner's before each prediction (_follow_source).
                layers = [deserialize({"class_name": lay.config_class_name(), "config": lay.get_config()}) for lay in layers]
                tensor = graph[0].output
                for copy in layers:
                    tensor = copy.place_in_chain(tensor)
                self._source: Optional[tuple[Model, list[Layer]]] = source
                self._copies_frozen = not any(copy.trainable for copy in layers)
            with self._engine.lock:
                self._assemble(graph[0].shape, [graph[0], *layers], initialize=True)
                self._follow_source()
        if not trainable:
            self.trainable = False

    def _init_state(self, name: str, dtype: Optional[str]) -> None:
        _refuse_custom_steps(type(self))
        if dtype is not None and dtype not in ("float32", "float64"):
            raise ValueError(f"Unknown dtype: {dtype!r}. Expected 'float32' or 'float64'.")
        self.name = name
        self._dtype = dtype or config.floatx()
        self._layers: list[Layer] = []
        self._functional = False
        self._sample_shape: Optional[tuple[int, ...]] = None
        # The core's network and trainer, and the lock every call into them holds (see
        # _serialized): one engine for the model's whole life.
        self._engine = Engine(self._dtype)
        self._loss: Optional[losses_module.Loss] = None
        self._optimizer: Optional[optimizers.Optimizer] = None
        # compile's metrics (fm.metrics objects, or per-sample names), and what the trainer
        # computes for them.
        self._metric_names: list[MetricLike] = []
        self._compiled_metrics: Optional[CompiledMetrics] = None
        # model.metrics (Keras 3): the mean loss, then the compiled metrics' objects; each holds
        # the state of the last train or test loop.
        self._loss_tracker: Optional[Mean] = None
        self._metric_objects: list[Metric] = []
        self._compile_metrics: Optional[CompileMetrics] = None
        self.stop_training = False
        self._trainable = True
        self.history: Optional[callbacks_module.History] = None
        # Refuses structural changes (add, compile, build) from a callback while fit runs.
        self._fitting = False
        # A BatchNormalization after the last Dense layer, as of the last build: the model runs
        # only once a Dense layer follows it (it normalizes that layer's input).
        self._trailing_norm: Optional[BatchNormalization] = None
        # Whether a 2-D array of input_dim columns enters the network as it is (_direct_rows):
        # recomputed whenever the layers, the input shape or _trailing_norm may have changed
        # (the end of _assemble and of _all_or_nothing, which every _build_network call runs
        # inside), so it always equals
        # _direct_rows() without its cost on each per-sample predict.
        self._rows_go_in_directly = False
        # For a feature extractor (Model(model.inputs, layer.output)): the model whose layers it
        # shares and those layers, the first of that model's chain.
        self._source = None
        # Whether this model froze (or was made with frozen) copies of its source's layers: a
        # trainable copy after that was unfrozen through this model (see _refuse_shared).
        self._copies_frozen = False
        # A Sequential model's input tensor when it has no InputLayer (see _symbolic_input).
        self._implicit_input: Optional[InputLayer] = None

    # ----------------------------------------------------------------- structure

    @property
    def layers(self) -> list[Layer]:
        """The model's layers: a functional model's start with its ``InputLayer``, as in Keras;
        a subclassed model's (once traced) and a ``Sequential`` model's do not."""
        return list(self._layers) if self._functional else self._chain()

    def _chain(self) -> list[Layer]:
        """The layers after the input."""
        return [layer for layer in self._layers if not isinstance(layer, InputLayer)]

    def _traceable(self) -> bool:
        """A subclassed model whose ``call`` is not traced yet."""
        return not self._layers and type(self).call is not Model.call

    def call(self, inputs: Any) -> Any:
        """A subclass's computation: its layers applied to ``inputs``, a symbolic tensor. Traced
        once (never called on data)."""
        raise NotImplementedError(
            f"Model {self.name!r} has no layers: pass `inputs` and `outputs`, or define `call` in a subclass."
        )

    def _trace(self) -> None:
        """A subclassed model's layers, from one run of ``call`` on a symbolic input."""
        if self._sample_shape is None or not self._traceable():
            return
        input_layer, chain = _functional.trace(self.call, self._sample_shape, self._dtype)
        self._assemble(input_layer.shape, [input_layer, *chain], initialize=True)

    def get_layer(self, name: Optional[str] = None, index: Optional[int] = None) -> Layer:
        """A layer by name or by index in ``layers`` (Keras's ``get_layer``)."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        if index is not None:
            if len(self.layers) <= index:
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has {len(self.layers)} layers."
                )
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def built(self) -> bool:
        """Whether the weights exist (the input shape is known), as ``keras.Model.built``."""
        return self._engine.built

    def _dense_layers(self) -> list[Dense]:
        return [layer for layer in self._layers if isinstance(layer, Dense)]

    def _weighted_layers(self) -> list[Layer]:
        """The layers with weights, in ``get_weights()`` order: Normalization (first, its
        statistics), Dense and BatchNormalization."""
        return [layer for layer in self._layers if isinstance(layer, (Normalization, Dense, BatchNormalization))]

    def _engine_index(self, layer: Layer) -> int:
        """The core layer a joining layer's weights live in: a Dense layer's own; for a
        BatchNormalization (see ``_norm_slot``) the Dense layer before it or the next one; else -1."""
        if isinstance(layer, Dense):
            return len(self._dense_layers())
        if isinstance(layer, BatchNormalization):
            return _norm_slot(self._layers)[0]
        return -1

    def _bind(self, layer: Layer) -> None:
        """``layer`` joins this model's engine, at its place after the current layers."""
        if isinstance(layer, BatchNormalization):
            index, on_input = _norm_slot(self._layers)
            layer.bind_engine(self._engine, index, on_input)
        else:
            layer.bind_engine(self._engine, self._engine_index(layer))
        _OWNERS[layer] = self

    def _direct_rows(self) -> bool:
        """Whether the network takes a 2-D array with input_dim columns as it is: the samples
        are 1-D (so the core's column check is the shape check), no Normalization layer comes
        first and no BatchNormalization after the last Dense layer."""
        return (
            self._sample_shape is not None and len(self._sample_shape) == 1
            and self._normalization() is None and self._trailing_norm is None
        )

    def _normalization(self) -> Optional[Normalization]:
        """The model's Normalization layer (the order rules keep it first), if any."""
        for layer in self._layers:  # the first after the input (predict_on_batch asks per call)
            if not isinstance(layer, InputLayer):
                return layer if isinstance(layer, Normalization) else None
        return None

    def _flattens_input(self) -> bool:
        for layer in self._chain():
            if isinstance(layer, Flatten):
                return True
            if isinstance(layer, Dense):
                return False
        return False

    @contextlib.contextmanager
    def _all_or_nothing(self) -> Iterator[None]:
        """A structural change (add, build, compile) inside either completes or, on any error
        (a refused size, a failed allocation, Ctrl-C), leaves the model exactly as it was: the
        engine's old network and trainer are untouched by a rebuild, so putting them back is
        enough."""
        layers = list(self._layers)
        engine = self._engine.snapshot()
        kept = (self._sample_shape, self._loss, self._optimizer, list(self._metric_names), self._compiled_metrics)
        try:
            yield
        except BaseException:
            self._layers = layers
            self._engine.restore(engine)
            self._sample_shape, self._loss, self._optimizer, self._metric_names, self._compiled_metrics = kept
            raise
        finally:
            self._rows_go_in_directly = self._direct_rows()

    def _refuse_while_fitting(self, caller: str) -> None:
        if self._fitting:
            raise RuntimeError(
                f"Cannot call `{caller}` on model {self.name!r} while its `fit` is running (from a "
                "callback): it would change the network being trained. Call it after `fit` returns."
            )

    @_serialized
    def _add_layer(self, layer: Layer) -> None:
        """Append a layer; the model builds as soon as the input shape is known. A refused layer
        (or one whose weights cannot be allocated) leaves the model as it was."""
        self._refuse_while_fitting("add")
        if not isinstance(layer, Layer):
            raise TypeError(
                "Only fastmlp layers can be added to a Sequential model. "
                f"Received: {layer!r} (of type {type(layer).__name__})"
            )
        # First, so that a layer of another model is refused before anything here changes.
        self._bind(layer)
        try:
            self._check_placement(layer)
            with self._all_or_nothing():
                if isinstance(layer, InputLayer):
                    self._sample_shape = layer.shape
                elif self._sample_shape is None and not self._chain():
                    declared = getattr(layer, "input_shape", None)
                    if declared is not None:
                        self._sample_shape = declared
                weights = self.get_weights() if self.built else None
                self._layers.append(layer)
                if weights is not None:
                    # Keras rebuilds on add; keep the weights the existing layers already have.
                    self._build_network(keep=weights)
                elif self._sample_shape is not None and self._dense_layers():
                    self.build()
        except BaseException:
            layer.bind_engine(None)
            raise

    def _check_placement(self, layer: Layer) -> None:
        found = misplaced([Placement.of(lay) for lay in [*self._layers, layer]])
        if found is not None:
            raise ValueError(found[1])

    @_serialized
    def build(self, input_shape: Optional[Sequence[Optional[int]]] = None) -> None:
        """Create the weights for samples of ``input_shape`` (the batch axis may be included)."""
        self._refuse_while_fitting("build")
        with self._all_or_nothing():
            self._build(input_shape)

    def _build(self, input_shape: Optional[Sequence[Optional[int]]]) -> None:
        if input_shape is not None:
            shape = tuple(input_shape)
            if shape and shape[0] is None:
                shape = shape[1:]
            sample = tuple(int(d) for d in shape if d is not None)
            if self._sample_shape is not None and sample != self._sample_shape:
                raise ValueError(
                    f"Model {self.name!r} was declared for samples of shape {self._sample_shape}; "
                    f"cannot build it for {sample}."
                )
            self._sample_shape = sample
        self._trace()
        if not self.built:
            self._build_network()

    def _input_dim(self) -> int:
        if self._sample_shape is None:
            raise ValueError(f"Model {self.name!r} does not know its input shape yet.")
        if len(self._sample_shape) > 1 and not self._flattens_input():
            raise ValueError(
                f"Samples of shape {self._sample_shape} are not flat: add "
                "fastmlp.layers.Flatten() before the first Dense layer."
            )
        return int(math.prod(self._sample_shape))

    def _layer_specs(self) -> list[LayerSpec]:
        """Each Dense layer as the core builds it, with the activation and Dropout layers after
        it folded in, and a BatchNormalization (with a Dropout after it) on its input. A
        BatchNormalization that no Dense layer follows yet is left out (it has no weights)."""
        specs: list[LayerSpec] = []
        pending: Optional[BatchNormalization] = None  # normalizes the next Dense layer's input
        pending_dropout = 0.0
        chain = self._chain()
        for position, layer in enumerate(chain):
            if isinstance(layer, Dense):
                input_norm = None
                if pending is not None:
                    input_norm = (pending.momentum, pending.epsilon, pending.center, pending.scale)
                kernel, bias = layer.kernel_regularizer, layer.bias_regularizer
                specs.append(
                    LayerSpec(
                        units=layer.units,
                        activation=layer.activation,
                        alpha=activations.DEFAULT_ALPHA.get(layer.activation, 0.0),
                        use_bias=layer.use_bias,
                        penalties=(
                            kernel.l1 if kernel else 0.0,
                            kernel.l2 if kernel else 0.0,
                            bias.l1 if bias else 0.0,
                            bias.l2 if bias else 0.0,
                        ),
                        dropout=0.0,
                        trainable=layer.trainable,
                        input_norm=input_norm,
                        input_norm_trainable=pending is None or pending.trainable,
                        input_dropout=pending_dropout,
                    )
                )
                pending, pending_dropout = None, 0.0
            elif isinstance(layer, Activation):  # the order rules put a Dense layer before it
                alpha = activations.DEFAULT_ALPHA.get(layer.activation, 0.0) if layer.alpha is None else layer.alpha
                specs[-1] = dataclasses.replace(specs[-1], activation=layer.activation, alpha=alpha)
            elif isinstance(layer, Dropout) and pending is not None:
                pending_dropout = layer.rate
            elif isinstance(layer, Dropout):
                specs[-1] = dataclasses.replace(specs[-1], dropout=layer.rate)
            elif isinstance(layer, BatchNormalization) and not _norm_slot(chain[:position])[1]:
                norm = (layer.momentum, layer.epsilon, layer.center, layer.scale)
                specs[-1] = dataclasses.replace(specs[-1], norm=norm, norm_trainable=layer.trainable)
            elif isinstance(layer, BatchNormalization):
                pending = layer
        return specs

    def _build_network(self, keep: Optional[list[Array]] = None, initialize: bool = True) -> None:
        dense = self._dense_layers()
        if not dense:
            raise ValueError(f"Model {self.name!r} has no Dense layer to build.")
        if self._sample_shape is None:
            raise ValueError(
                f"Model {self.name!r} does not know its input shape yet: add "
                "fastmlp.layers.Input(shape=...) first, or call fit/predict/build."
            )
        input_dim = self._input_dim()
        self._trailing_norm = _trailing_norm(self._chain())
        normalization = self._normalization()
        if normalization is not None:
            normalization.build((None, *self._sample_shape))
        try:
            self._engine.build(input_dim, self._layer_specs())
        except (_core.AllocationError, _core.SizeError) as error:
            # The core counts its layers; name the Dense layer (the message gives the bytes).
            where = f"model {self.name!r}"
            if error.layer is not None:
                culprit = dense[error.layer]
                where = f"Dense layer {culprit.name!r} (units={culprit.units})"
            kind = MemoryError if isinstance(error, MemoryError) else ValueError
            raise kind(f"Cannot build {where}: {error}") from None
        if initialize:  # else zeros, about to be overwritten (loading draws no seed)
            fan_in = input_dim
            for index, layer in enumerate(dense):
                initial = [layer.kernel_initializer((fan_in, layer.units), self._dtype)]
                if layer.use_bias:
                    initial.append(layer.bias_initializer((layer.units,), self._dtype))
                self._engine.set_weights([(index, layer.name, initial)])
                fan_in = layer.units
            for norm in self._layers:
                if isinstance(norm, BatchNormalization):
                    index, on_input = self._engine_index_of(norm)
                    if not self._engine.has_norm(index, on_input):
                        continue  # no Dense layer after it yet
                    size = self._engine.norm_size(index, on_input)
                    names = self._engine.norm_names(index, on_input)
                    arrays = [norm.initializer(name.removeprefix("input_"))((size,), self._dtype) for name in names]
                    assignment = [(index, norm.name, arrays)]
                    self._engine.set_weights([], [] if on_input else assignment, assignment if on_input else [])
        if keep is not None:
            restored = self._own_weights()
            restored[: len(keep)] = keep
            self._assign_weights(restored)
        if self._loss is not None:
            self._make_trainer()
        self._place_chain()

    @_serialized
    def reinitialize(self) -> None:
        """Draw new initial weights for every layer, from each layer's initializers (fastmlp
        addition; ``model_from_json`` uses it). Fresh optimizer state if compiled."""
        self._refuse_while_fitting("reinitialize")
        if self.built:
            with self._all_or_nothing():
                self._build_network()

    def _ensure_built(self, x: Any) -> None:
        if self.built:
            self._check_complete()
            return
        with self._all_or_nothing():
            if self._sample_shape is None:
                array = _validation.as_numeric_array(x, "x")
                if array.ndim < 2:
                    raise ValueError(
                        f"`x` must have a batch axis: received shape {array.shape}. "
                        "For a single sample use x[None, :]."
                    )
                self._sample_shape = tuple(int(d) for d in array.shape[1:])
            self._trace()
            if not self.built:
                self._build_network()
        self._check_complete()

    def _check_complete(self) -> None:
        """A ValueError naming a BatchNormalization that no Dense layer follows."""
        norm = self._trailing_norm
        if norm is not None:
            raise ValueError(
                f"BatchNormalization layer {norm.name!r} comes after the last Dense layer of model "
                f"{self.name!r}: fastmlp normalizes the input of the Dense layer after a "
                "BatchNormalization that follows an activation, a Dropout or the Input, and the "
                "model's output cannot be normalized. Add a Dense layer after it, or put it between "
                "a Dense layer without an activation and its Activation layer."
            )

    # ----------------------------------------------------------------- weights

    def _engine_index_of(self, norm: BatchNormalization) -> tuple[int, bool]:
        """The core layer of a BatchNormalization of this model and whether it normalizes that
        layer's input (``_norm_slot``)."""
        for position, layer in enumerate(self._layers):
            if layer is norm:
                return _norm_slot(self._layers[:position])
        raise ValueError(f"Layer {norm.name!r} is not in model {self.name!r}.")

    @_serialized
    def get_weights(self) -> list[Array]:
        """Copies of all weights in Keras's order: a Normalization's mean, variance and count;
        kernel (in, out), bias (out,) per Dense layer; gamma, beta, moving_mean, moving_variance
        (units,) per BatchNormalization."""
        self._follow_source()
        return self._own_weights()

    @_serialized
    def set_weights(self, weights: Sequence[Array]) -> None:
        """Set all weights from a list shaped like ``get_weights()``. Every array is checked
        (shape, dtype, finiteness) before any is set: a refused list changes nothing."""
        self._refuse_shared("set_weights")
        self._assign_weights(weights)

    def _assign_weights(self, weights: Sequence[Array]) -> None:
        if not self.built:
            raise ValueError(f"Model {self.name!r} is not built yet: it has no weights to set.")
        weighted = [layer for layer in self._weighted_layers() if not isinstance(layer, Normalization)]
        normalization = self._normalization()
        leading = 0 if normalization is None else len(normalization.get_weights())
        expected = leading + sum(_weight_count(layer) for layer in weighted)
        if len(weights) != expected:
            raise ValueError(
                f"You called `set_weights(weights)` on model {self.name!r} with a weight list of "
                f"length {len(weights)}, but the model was expecting {expected} weights."
            )
        assignments = []
        norm_assignments: list[tuple[int, str, Sequence[Array]]] = []
        input_norm_assignments: list[tuple[int, str, Sequence[Array]]] = []
        position = leading
        index = -1
        for layer in weighted:
            count = _weight_count(layer)
            if isinstance(layer, Dense):
                index += 1
                assignments.append((index, layer.name, weights[position : position + count]))
            elif isinstance(layer, BatchNormalization) and count:  # none before a Dense layer follows it
                norm_index, on_input = self._engine_index_of(layer)
                chosen = input_norm_assignments if on_input else norm_assignments
                chosen.append((norm_index, layer.name, weights[position : position + count]))
            position += count
        if normalization is None or not leading:
            self._engine.set_weights(assignments, norm_assignments, input_norm_assignments)
            return
        before = normalization.get_weights()
        normalization.set_weights(weights[:leading])  # checks all, then sets
        try:
            self._engine.set_weights(assignments, norm_assignments, input_norm_assignments)
        except BaseException:
            normalization.set_weights(before)  # a refused list changes nothing
            raise

    def count_params(self) -> int:
        """The number of weights (ValueError before the model is built, as Keras)."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer isn't built. "
                "You can build it manually via: `model.build(input_shape)`."
            )
        return self._param_count()

    def _param_count(self) -> int:
        return sum(layer.count_params() for layer in self._weighted_layers())

    @property
    def weights(self) -> list[Array]:
        """All weights in ``get_weights()`` order, as Keras's variables (each layer's
        ``weights``: ``name``, ``path``, ``assign``)."""
        self._follow_source()
        return [w for layer in self._weighted_layers() for w in layer.weights]

    @property
    def losses(self) -> list[float]:
        """Keras's ``model.losses``: the weight penalties (each layer's ``losses``, in layer
        order), at the current weights; their sum is what ``evaluate`` adds to the loss."""
        self._follow_source()
        return [penalty for layer in self._chain() for penalty in layer.losses]

    @property
    def trainable_weights(self) -> list[Array]:
        """Copies of the weights of the trainable layers, in ``get_weights()`` order."""
        return [w for layer in self._weighted_layers() for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Array]:
        """Copies of the weights of the frozen layers (``layer.trainable = False``) and of a
        Normalization layer (its statistics), in ``get_weights()`` order."""
        return [w for layer in self._weighted_layers() for w in layer.non_trainable_weights]

    @property
    def trainable(self) -> bool:
        """Whether ``fit`` updates the model's weights; setting it sets every layer's (Keras's
        ``model.trainable``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._chain():
            layer.trainable = self._trainable

    def _known_sample_shape(self, what: str) -> tuple[int, ...]:
        self._trace()
        if self._sample_shape is None:
            raise AttributeError(f"Model '{self.name}' has no defined {what} yet: its input shape is not known.")
        return self._sample_shape

    def _symbolic_input(self) -> Optional[InputLayer]:
        """The model's input layer; for a model without one whose input shape is known, one
        made once (so that ``inputs`` and its layers' ``output`` tensors stay one graph)."""
        for layer in self._layers:
            if isinstance(layer, InputLayer):
                return layer
        if self._sample_shape is None:
            return None
        if self._implicit_input is None or self._implicit_input.shape != self._sample_shape:
            self._implicit_input = InputLayer(shape=self._sample_shape, dtype=self._dtype)
        return self._implicit_input

    def _place_chain(self) -> None:
        """A Sequential model's layers' ``input``/``output``: the tensors of their places in its
        chain (Keras's Sequential builds this graph too); none while the input shape is unknown."""
        input_layer = self._symbolic_input()
        if input_layer is None or not isinstance(self, Sequential):
            return
        tensor = input_layer.output
        for layer in self._chain():
            try:
                tensor = layer.place_in_chain(tensor)
            except ValueError:  # a misplaced layer: the model reports it when it builds
                return

    def _locks(self) -> list[Any]:
        """The locks a call on this model holds, in the one order every thread takes them: a
        feature extractor's (or nesting model's) owner's first (its weights are read under it),
        then its own. Taking its own first, a call here would wait for the owner's while a
        callback of the owner's fit, which holds the owner's lock, waited for this one."""
        owner = self._source[0] if self._source is not None else None
        return [*(owner._locks() if owner is not None else []), self._engine.lock]

    def _follow_source(self) -> None:
        """A feature extractor's weights set to its source model's current weights of the
        shared layers (a copy each call: the outputs are those of the source's chain, bit for bit)."""
        if self._source is None or not self.built:
            return
        weights = [w for layer in self._source[1] for w in layer.get_weights()]
        with self._engine.lock:
            own = self._own_weights()  # the shared layers' copies first, then any added after them
            if len(weights) <= len(own):
                own[: len(weights)] = weights
                self._assign_weights(own)

    def _own_weights(self) -> list[Array]:
        weights: list[Array] = []
        for layer in self._weighted_layers():
            weights.extend(layer.get_weights())
        return weights

    def _refuse_shared(self, caller: str) -> None:
        """For a model sharing another's layers (a feature extractor, or a Sequential model
        nesting a model): training and set_weights are refused, unless every shared layer is
        frozen in its owner (Keras's transfer learning: ``base.trainable = False``), when this
        model trains its own layers after the shared ones, whose copies it freezes and sets to
        the owner's current weights first."""
        if self._source is None:
            return
        owner, shared = self._source
        copies = self._chain()[: len(shared)]
        # Once this model has frozen its copies, a trainable one was unfrozen through this model
        # (model.trainable = True, as Keras's fine-tuning step does): Keras would then train the
        # shared layers themselves, which the copies cannot do.
        unfrozen_here = self._copies_frozen and any(copy.trainable for copy in copies)
        if caller != "set_weights" and not unfrozen_here and not any(layer.trainable for layer in shared):
            for copy in copies:
                if copy.trainable:
                    copy.trainable = False
            self._copies_frozen = True
            self._follow_source()
            return
        raise ValueError(
            f"Model {self.name!r} shares the layers of model {owner.name!r} up to {shared[-1].name!r} (a "
            f"feature extractor, or a Sequential model nesting it), whose copies follow the weights of "
            f"{owner.name!r}. It trains only its own layers after them, while those shared layers are "
            f"frozen (`{owner.name}.trainable = False`, as Keras's transfer-learning guide freezes its base, "
            "and not unfrozen through this model). To train the shared layers too, train "
            f"{owner.name!r}, or make one model of all the layers (fm.models.clone_model({owner.name}) with "
            f"set_weights, then add the new layers). Received: a call to `{caller}`."
        )

    @property
    def inputs(self) -> list[KerasTensor]:
        """The model's input as a list of one symbolic tensor (Keras's ``model.inputs``)."""
        input_layer = self._symbolic_input()
        if input_layer is None:
            self._known_sample_shape("inputs")  # AttributeError, as Keras
            raise AssertionError("unreachable")
        return [input_layer.output]

    @property
    def outputs(self) -> list[KerasTensor]:
        """The model's output as a list of one symbolic tensor (its shape ``output_shape``)."""
        return [KerasTensor(self.output_shape, self._dtype)]

    @property
    def input_shape(self) -> tuple[Optional[int], ...]:
        """``(None, *sample_shape)``; AttributeError while the input shape is unknown (as Keras)."""
        return (None, *self._known_sample_shape("input_shape"))

    @property
    def output_shape(self) -> tuple[Optional[int], ...]:
        """``(None, units of the last Dense layer)``; AttributeError while the input shape is
        unknown (as Keras)."""
        shape: tuple[Optional[int], ...] = (None, *self._known_sample_shape("output_shape"))
        for layer in self._chain():
            shape = layer.compute_output_shape(shape)
        return shape

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as JSON (``{"class_name", "config"}``, the config as ``get_config``);
        ``fm.models.model_from_json`` makes a new model from it. ``kwargs`` go to ``json.dumps``."""
        return json.dumps({"class_name": type(self).__name__, "config": self.get_config()}, **kwargs)

    # ----------------------------------------------------------------- compile

    @_serialized
    def compile(
        self,
        optimizer: optimizers.OptimizerLike = "rmsprop",
        loss: Optional[losses_module.LossLike] = None,
        metrics: Optional[Sequence[MetricLike]] = None,
        loss_weights: Any = None,
        weighted_metrics: Optional[Sequence[str]] = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Union[bool, str] = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Choose the optimizer, the loss and the metrics (names as in Keras, or ``fm.metrics``
        objects: see fm.metrics for how the core computes them; they are unweighted, as Keras's
        ``metrics``). A refused setting leaves the model as it was.

        Keras's execution settings are accepted and change nothing here: ``run_eagerly``,
        ``jit_compile`` and ``auto_scale_loss`` (the core is compiled C++; there is no graph
        and no mixed precision) and ``steps_per_execution`` (``fit`` already hands the core a
        chunk of batches per call). ``loss_weights`` (one output: a single weight) and
        ``weighted_metrics`` are accepted only as None (or empty)."""
        self._refuse_while_fitting("compile")
        self._refuse_shared("compile")
        _compile_extras(loss_weights, weighted_metrics, run_eagerly, steps_per_execution, jit_compile, auto_scale_loss)
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'.")
        trailing = [lay for lay in self._chain() if not isinstance(lay, Activation)]
        if trailing and isinstance(trailing[-1], Dropout):
            raise ValueError("Dropout after the last Dense layer would drop the model's outputs; remove it.")
        if metrics is None:
            metrics = []
        if isinstance(metrics, str):
            raise TypeError(f"`metrics` must be a list of names. Received: metrics={metrics!r}")
        chosen_metrics = prepare_metrics(metrics)
        chosen_optimizer = optimizers.get(optimizer)
        chosen_loss = losses_module.get(loss)
        if self.built:
            chosen_optimizer.check_model(self._model_facts(chosen_loss))
        with self._all_or_nothing():
            self._optimizer = chosen_optimizer
            self._loss = chosen_loss
            self._metric_names = chosen_metrics
            self._compiled_metrics = None  # made with the trainer, for these metrics
            if self.built:
                self._make_trainer()
            # Last: an optimizer bound here reads this model's training state.
            chosen_optimizer.bind_engine(self._engine)
        self._loss_tracker = Mean(name="loss")
        self._metric_objects = metric_objects(chosen_metrics)
        self._compile_metrics = (
            CompileMetrics(self._metric_objects, metric_log_names(chosen_metrics)) if chosen_metrics else None
        )

    def _make_trainer(self) -> None:
        if self._loss is None or self._optimizer is None:
            raise NotCompiledError(f"Model {self.name!r} is not compiled: it has no trainer.")
        compiled = CompiledMetrics(self._metric_names, self._loss, self._engine.output_dim)
        self._engine.make_trainer(
            self._loss.name,
            self._loss.from_logits,
            compiled.core_names,
            self._optimizer.core_config(),
            utils.draw_seed(),
            loss_delta=self._loss.core_delta(),
            confusions=compiled.confusion_specs,
        )
        self._compiled_metrics = compiled

    def _model_facts(self, loss: losses_module.Loss) -> ModelFacts:
        """What an optimizer checks before training this (built) model."""
        names = [layer.name for layer in self._dense_layers()]
        return ModelFacts(
            tuple(zip(names, self._engine.layer_specs)), loss.name, self._engine.parameter_count, self._dtype
        )

    def _check_compiled(self, caller: str) -> None:
        self._refuse_shared(caller)
        if self._loss is None:
            raise NotCompiledError(
                f"You must call `compile()` before using the model ({caller} was called)."
            )

    def _ensure_trainer(self) -> Engine:
        """The engine, with a trainer (the model is compiled and built)."""
        if not self._engine.has_trainer:
            self._make_trainer()
        return self._engine

    @property
    def optimizer(self) -> Optional[optimizers.Optimizer]:
        return self._optimizer

    @property
    def loss(self) -> Optional[losses_module.Loss]:
        return self._loss

    @property
    def metrics(self) -> list[Metric]:
        """As Keras 3 once compiled: the mean loss (a ``Mean`` named ``loss``), then, when
        ``compile`` was given metrics, their objects together (named ``compile_metrics``; its
        ``metrics`` lists them, its ``result()`` is a dict). They hold the state of the last
        train or test loop (``fit``'s last epoch, or its validation when that ran last;
        ``evaluate``; ``train_on_batch``/``test_on_batch``)."""
        if self._loss_tracker is None:
            return []
        if self._compile_metrics is None:
            return [self._loss_tracker]
        return [self._loss_tracker, self._compile_metrics]

    @property
    def metrics_names(self) -> list[str]:
        """``[m.name for m in model.metrics]``, as Keras 3: ``["loss", "compile_metrics"]``
        with compiled metrics, ``["loss"]`` without, ``[]`` before ``compile``."""
        return [metric.name for metric in self.metrics]

    def reset_metrics(self) -> None:
        """Reset the state of every metric in ``model.metrics``."""
        for metric in self.metrics:
            metric.reset_state()

    def _store_metrics(self, state: MetricState) -> None:
        """A finished loop's state into ``model.metrics`` (as Keras 3's trainer leaves it)."""
        if self._loss_tracker is not None:
            self._loss_tracker.total = state.loss
            self._loss_tracker.count = float(state.samples)
        self._metrics_of_trainer().store(state, self._metric_objects)

    # ----------------------------------------------------------------- data

    def _x(self, x: Any, name: str = "x", finite: bool = True) -> Array:
        self._ensure_built(x)
        array = _validation.features(x, self._sample_shape, self._flattens_input(), self._dtype, name, finite)
        normalization = self._normalization()
        if normalization is None or self._sample_shape is None:
            return array
        return normalization.normalize(array, self._sample_shape)

    def _y(self, y: Any, n: int, name: str = "y") -> Array:
        if self._loss is None:
            raise NotCompiledError(f"Model {self.name!r} is not compiled: targets need a loss.")
        outputs = self._engine.output_dim
        if isinstance(self._loss, losses_module.SparseCategoricalCrossentropy):
            return _validation.sparse_labels(y, n, outputs, name)
        return _validation.dense_targets(y, n, outputs, self._loss.name, self._dtype, name)

    def _logs(self, totals: Any, prefix: str = "") -> dict[str, float]:
        """The loss and metrics of one call's totals."""
        compiled = self._metrics_of_trainer()
        state = compiled.empty()
        state.add(totals)
        self._store_metrics(state)
        return compiled.logs(state, prefix)

    def _metrics_of_trainer(self) -> CompiledMetrics:
        if self._compiled_metrics is None:
            if self._loss is None:
                raise NotCompiledError(f"Model {self.name!r} is not compiled: it has no metrics.")
            self._compiled_metrics = CompiledMetrics(self._metric_names, self._loss, self._engine.output_dim)
        return self._compiled_metrics

    # ----------------------------------------------------------------- training

    @_serialized
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: Optional[int] = None,
        epochs: int = 1,
        verbose: Union[int, str] = "auto",
        callbacks: Optional[Sequence[callbacks_module.Callback]] = None,
        validation_split: float = 0.0,
        validation_data: Optional[tuple[Any, ...]] = None,
        shuffle: bool = True,
        class_weight: Optional[dict[int, float]] = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: Optional[int] = None,
        validation_steps: Optional[int] = None,
        validation_batch_size: Optional[int] = None,
        validation_freq: Union[int, Sequence[int]] = 1,
    ) -> callbacks_module.History:
        """Train for ``epochs`` epochs; returns a ``History`` of per-epoch logs.

        Progress goes to stdout as in Keras 3 (``verbose`` 0, 1 = a bar, 2 = a line per epoch;
        ``"auto"`` = 1); see ``fastmlp._progress``. Ctrl-C stops training after the current chunk
        of batches (about 0.1 s) and raises ``KeyboardInterrupt``, as Keras; every finished update
        is kept and none is applied halfway, so the model can be saved or trained further.

        ``sample_weight`` (one weight per sample) and ``class_weight`` (a weight per class index;
        classes it does not list weigh 1) scale each sample's loss, and multiply when both are
        given; the loss is then ``sum(w * l) / batch_size`` as Keras's. ``validation_data`` may
        be ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)``; ``validation_freq``
        validates every that many epochs (an int) or after the listed epochs (1-based).

        ``steps_per_epoch`` works as Keras 3's with arrays: an epoch trains that many batches,
        and the next epoch goes on where it stopped in the pass over the data; at the end of a
        pass the epoch stops short (with Keras's "ran out of data" warning if it did before
        ``steps_per_epoch``) and the next epoch starts a new, newly shuffled pass. Each
        validation evaluates the first ``validation_steps`` batches of the validation data (all
        of it by default), of ``validation_batch_size`` rows (default ``batch_size``).
        """
        self._check_compiled("fit")
        self._refuse_while_fitting("fit")
        settings = _FitSettings.checked(
            batch_size,
            epochs,
            verbose,
            shuffle,
            validation_split,
            initial_epoch,
            validation_freq,
            steps_per_epoch,
            validation_steps,
            validation_batch_size,
        )
        data = self._fit_data(x, y, sample_weight, class_weight, validation_data, settings)
        engine = self._ensure_trainer()
        steps, train_epoch = self._epoch_trainer(engine, settings, data)
        callback_list, history = self._fit_callbacks(callbacks, verbose, settings, steps)
        self.stop_training = False
        self.history = history
        # The copy that undoes this fit if the core meets NaN or infinity in x (see _fit_data).
        before = (self.get_weights(), engine.training_state()) if data.checked_in_training else None
        self._fitting = True
        try:
            callback_list.on_train_begin()
            try:
                logs = self._fit_epochs(engine, steps, train_epoch, settings, data, callback_list)
            except _core.NonFiniteInputError:
                self._undo_fit(x, before)
                raise
            callback_list.on_train_end(logs)
        finally:
            self._fitting = False
        return history

    def _fit_data(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        class_weight: Optional[dict[int, float]],
        validation_data: Optional[tuple[Any, ...]],
        settings: _FitSettings,
    ) -> _FitData:
        """fit's arrays, converted and checked (x builds the model), the validation part split
        off or converted."""
        x_all = self._x(x, finite=False)
        # x's NaN and infinity: the core finds them as it lists each batch's nonzeros, before that
        # batch's update, instead of a pass of its own over the whole data set (~5% of an MNIST
        # epoch per call); a copy of the model's state, taken before training, then undoes the
        # batches before it. That copy (weights and up to 3 optimizer slots each) must cost less
        # than the pass it saves, else x is checked here whole; so it is with validation_split
        # (the split part is not trained on) and when no epoch is to run.
        checked_in_training = (
            not settings.validation_split
            and settings.epochs > settings.initial_epoch
            and 4 * self.count_params() * x_all.itemsize <= x_all.nbytes
        )
        if not checked_in_training:
            _validation.check_finite(x_all, "x", _validation.flat_source(x, x_all))
        y_all = self._y(y, x_all.shape[0])
        w_all = self._fit_weights(y_all, sample_weight, class_weight)
        data = _FitData(x_all, y_all, w_all, checked_in_training=checked_in_training)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, val_sample_weight)."
                )
            data.x_val = self._x(validation_data[0], "x_val")
            data.y_val = self._y(validation_data[1], data.x_val.shape[0], "y_val")
            if len(validation_data) == 3:
                data.w_val = self._sample_weight(validation_data[2], data.x_val.shape[0])
        elif settings.validation_split:
            data.split(settings.validation_split)
            if class_weight is not None:
                # Keras splits off the validation part before it weighs the classes: the part
                # keeps its sample weights only (val_loss is evaluate's on those rows).
                sample_only = self._sample_weight(sample_weight, x_all.shape[0])
                data.w_val = None if sample_only is None else np.ascontiguousarray(sample_only[data.x.shape[0] :])
        return data

    def _fit_callbacks(
        self,
        callbacks: Optional[Sequence[callbacks_module.Callback]],
        verbose: Union[int, str],
        settings: _FitSettings,
        steps: int,
    ) -> tuple[callbacks_module.CallbackList, callbacks_module.History]:
        """The user's callbacks, then a new History (as Keras), attached to this model; their
        ``params`` as Keras 3's: ``verbose`` as given, ``epochs``, ``steps`` per epoch."""
        history = callbacks_module.History()
        params = {"verbose": verbose, "epochs": settings.epochs, "steps": steps}
        callback_list = callbacks_module.CallbackList(
            [*callbacks_module.as_list(callbacks), history], self, params
        )
        return callback_list, history

    def _fit_epochs(
        self,
        engine: Engine,
        steps: int,
        train_epoch: _EpochTrainer,
        settings: _FitSettings,
        data: _FitData,
        callback_list: callbacks_module.CallbackList,
    ) -> dict[str, float]:
        """The epochs from ``initial_epoch``, each with its progress line, validation when due and
        ``on_epoch_end``; none after an epoch that set ``stop_training``. The last epoch's logs."""
        logs: dict[str, float] = {}
        position = 0  # batches of the current pass over x trained so far (see steps_per_epoch)
        for epoch in range(settings.initial_epoch, settings.epochs):
            callback_list.on_epoch_begin(epoch)
            if settings.verbose and settings.epochs > 1:
                print_msg(f"Epoch {epoch + 1}/{settings.epochs}")
            progbar = Progbar(steps, settings.verbose)
            try:
                logs, trained = train_epoch(progbar, callback_list, position)
                position = _next_position(position, trained, settings.batches(data.x.shape[0]), settings.steps_per_epoch)
                if data.x_val is not None and data.y_val is not None and settings.validate_after(epoch + 1):
                    callback_list.on_test_begin()
                    val_logs = self._validate(engine, data, settings, callback_list)
                    callback_list.on_test_end(val_logs)
                    logs.update({"val_" + name: value for name, value in val_logs.items()})
                callback_list.on_epoch_end(epoch, logs)
            except BaseException:
                progbar.close()  # Ctrl-C or an error: end a live bar line before the traceback
                raise
            progbar.finish(logs, current=progbar.seen)
            if self.stop_training:
                break
        return logs

    def _epoch_trainer(
        self,
        engine: Engine,
        settings: _FitSettings,
        data: _FitData,
    ) -> tuple[int, _EpochTrainer]:
        """How fit trains an epoch, decided here and nowhere else: a full-batch optimizer
        (``fm.optimizers.FullBatchOptimizer``) takes one iteration on the whole training set and
        logs the loss after it; any other optimizer runs the core's shuffled batches. Returns the
        progress steps per epoch and the function that trains one epoch."""
        optimizer = self._optimizer
        if isinstance(optimizer, optimizers.FullBatchOptimizer) and self._loss is not None:
            training = FullBatchTraining(
                optimizer, engine, self._model_facts(self._loss), data.x, data.y, data.weights, settings.batch_size
            )

            def full_batch_epoch(
                progbar: Progbar, callback_list: callbacks_module.CallbackList, first: int
            ) -> tuple[dict[str, float], int]:
                logs = self._logs(training.epoch())
                progbar.seen = 1
                self.stop_training = self.stop_training or training.stopped
                return logs, 1

            return 1, full_batch_epoch

        def batches_epoch(
            progbar: Progbar, callback_list: callbacks_module.CallbackList, first: int
        ) -> tuple[dict[str, float], int]:
            return self._train_epoch(
                engine,
                data.x,
                data.y,
                settings.batch_size,
                settings.shuffle,
                settings.verbose,
                callback_list,
                progbar,
                data.weights,
                first=first,
                limit=settings.steps_per_epoch,
            )

        return settings.steps(data.x.shape[0]), batches_epoch

    def _validate(
        self, engine: Engine, data: _FitData, settings: _FitSettings, callback_list: callbacks_module.CallbackList
    ) -> dict[str, float]:
        """The validation logs after an epoch: all the validation data, or with
        ``validation_steps`` its first that many batches (Keras resets its evaluation iterator
        for each evaluation, and warns when the data has fewer batches)."""
        if data.x_val is None or data.y_val is None:
            raise RuntimeError("fit has no validation data to validate on.")
        batch = settings.validation_batch_size or settings.batch_size
        if settings.validation_steps is None:
            return self._test_logs(engine, data.x_val, data.y_val, batch, data.w_val, callback_list)
        n = data.x_val.shape[0]
        if settings.validation_steps > (n + batch - 1) // batch:
            _warn_out_of_data()
        rows = slice(0, min(n, settings.validation_steps * batch))
        weights = None if data.w_val is None else data.w_val[rows]
        return self._test_logs(engine, data.x_val[rows], data.y_val[rows], batch, weights, callback_list)

    def _test_logs(
        self,
        engine: Engine,
        x: Array,
        y: Array,
        batch: int,
        weights: Optional[Array],
        callback_list: callbacks_module.CallbackList,
    ) -> dict[str, float]:
        """The loss and metrics over (x, y): one native call, or, when a callback defines
        per-batch test hooks, one call per batch of ``batch`` rows with the hooks around it
        (the end hook gets the running logs, as Keras 3's)."""
        compiled = self._metrics_of_trainer()
        state = compiled.empty()
        if not callback_list.wants_test_batch_hooks:
            state.add(engine.evaluate(x, y, batch, weights))
        else:
            for step, start in enumerate(range(0, x.shape[0], batch)):
                rows = slice(start, start + batch)
                callback_list.on_test_batch_begin(step)
                state.add(engine.evaluate(x[rows], y[rows], batch, None if weights is None else weights[rows]))
                callback_list.on_test_batch_end(step, compiled.logs(state))
        self._store_metrics(state)
        return compiled.logs(state)

    def _undo_fit(self, x: Any, before: Optional[tuple[list[Array], dict[str, Any]]]) -> None:
        """After the core met NaN or infinity in x: the model as it was before this fit (when a
        copy was taken), then the error the check before training gives (naming the first
        sample with NaN or infinity). Without a copy (x was checked whole before training, so a
        callback or another thread changed it since) the batches before the bad one stay
        applied."""
        if before is not None:
            self.set_weights(before[0])
            self._engine.set_training_state(before[1])
        self._x(x)

    def _train_epoch(
        self,
        engine: Engine,
        x: Array,
        y: Array,
        batch_size: int,
        shuffle: bool,
        verbose: int,
        callback_list: callbacks_module.CallbackList,
        progbar: Optional[Progbar] = None,
        sample_weight: Optional[Array] = None,
        first: int = 0,
        limit: Optional[int] = None,
    ) -> tuple[dict[str, float], int]:
        """One epoch, a chunk of batches per call into the core (one batch per call when a
        callback wants per-batch hooks): batches ``first`` on of the pass over ``x`` (a new pass,
        shuffled, begins at ``first == 0``), at most ``limit`` of them (else to the pass's end).
        Returns the epoch's mean loss and metrics and the number of batches trained; stops early
        (after the current chunk) when ``self.stop_training`` is set."""
        if first == 0:
            engine.begin_epoch(x.shape[0], bool(shuffle))
        steps = engine.num_batches(batch_size) - first
        if limit is not None:
            if limit > steps:
                _warn_out_of_data()
            steps = min(steps, limit)
        if progbar is None:
            progbar = Progbar(steps, verbose)
        per_batch = callback_list.wants_batch_hooks
        compiled = self._metrics_of_trainer()
        state = compiled.empty()
        done, chunk = 0, 1
        while done < steps:
            count = 1 if per_batch else min(chunk, steps - done)
            if per_batch:
                callback_list.on_train_batch_begin(done)
            started = time.perf_counter()
            # The core releases the GIL; a Ctrl-C arriving meanwhile raises KeyboardInterrupt
            # as soon as this call returns, i.e. after whole updates only.
            if self._optimizer is not None:
                self._optimizer.before_steps(count)  # a user's schedule: the chunk's rates
            totals = engine.train_batches(x, y, batch_size, first + done, count, sample_weight)
            elapsed = time.perf_counter() - started
            done += count
            progbar.seen = done
            state.add(totals)
            # Keras 3 passes the running values over the epoch so far to per-batch hooks.
            running = compiled.logs(state)
            if per_batch:
                callback_list.on_train_batch_end(done - 1, running)
            callback_list.on_train_chunk_end(done - 1, running)
            if verbose:
                progbar.update(done, running)
            if self.stop_training:
                break
            # Next chunk: about _CHUNK_SECONDS of batches, growing at most 4x at a time.
            rate = count / max(elapsed, 1e-6)
            chunk = max(1, min(4 * count, int(rate * _CHUNK_SECONDS)))
        self._store_metrics(state)
        return compiled.logs(state), done

    @_serialized
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: Optional[int] = None,
        verbose: Union[int, str] = "auto",
        sample_weight: Any = None,
        steps: Optional[int] = None,
        callbacks: Optional[Sequence[callbacks_module.Callback]] = None,
        return_dict: bool = False,
    ) -> Union[float, list[float], dict[str, float]]:
        """Loss (and metrics) over the data: a scalar with no metrics, else ``[loss, *metrics]``.
        ``sample_weight`` weighs each sample's loss (not the metrics, as Keras's ``metrics``).
        ``steps``, as Keras: only the first ``steps`` batches of ``batch_size`` rows (without a
        ``batch_size``, Keras splits the rows into ``steps`` batches: all of them). Prints Keras's final progress line unless ``verbose=0``; ``callbacks``
        get ``on_test_begin``/``on_test_end``."""
        self._check_compiled("evaluate")
        given_verbose = verbose
        batch = _INFERENCE_BATCH if batch_size is None else _validation.positive_int(batch_size, "batch_size")
        verbose = _validation.verbosity(verbose)
        # Without callbacks x's NaN and infinity are left to the core, as in predict.
        x_arr = self._x(x, finite=callbacks is not None)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._sample_weight(sample_weight, x_arr.shape[0])
        if steps is not None:
            rows = _rows_of_steps(steps, batch_size, x_arr.shape[0])
            x_arr, y_arr = x_arr[:rows], y_arr[:rows]
            weights = None if weights is None else weights[:rows]
        engine = self._ensure_trainer()
        callback_list = _inference_callbacks(callbacks, self, given_verbose, batch_size, x_arr.shape[0])
        if callback_list.wants_test_batch_hooks:
            batch = batch_size or _KERAS_BATCH  # the hooks see Keras's batches
        callback_list.on_test_begin()
        started = time.perf_counter()
        try:
            logs = self._test_logs(engine, x_arr, y_arr, batch, weights, callback_list)
        except _core.NonFiniteInputError:
            _validation.check_finite(x_arr, "x", _validation.flat_source(x, x_arr))
            raise
        self._report(verbose, x_arr.shape[0], batch, started, logs)
        callback_list.on_test_end(logs)
        return self._result(logs, return_dict)

    def _result(self, logs: dict[str, float], return_dict: bool) -> Union[float, list[float], dict[str, float]]:
        if return_dict:
            return logs
        if not self._metric_names:
            return logs["loss"]
        return [logs["loss"], *(logs[name] for name in metric_log_names(self._metric_names))]

    def _report(self, verbose: int, n: int, batch: int, started: float, logs: dict[str, float]) -> None:
        """The final progress line of evaluate/predict (one native call: no live bar)."""
        if verbose:
            bar = Progbar((n + batch - 1) // batch, verbose)
            bar.start = started
            bar.finish(logs)

    @_serialized
    def predict(
        self,
        x: Any,
        batch_size: Optional[int] = None,
        verbose: Union[int, str] = "auto",
        steps: Optional[int] = None,
        callbacks: Optional[Sequence[callbacks_module.Callback]] = None,
    ) -> Array:
        """The model's outputs for ``x``, shape ``(n, units of the last layer)``, in the model dtype.
        ``steps``, as Keras: the outputs of the first ``steps`` batches of ``batch_size`` rows
        only (without a ``batch_size``, Keras splits the rows into ``steps`` batches: all). Prints Keras's final progress line unless ``verbose=0``;
        ``callbacks`` get ``on_predict_begin``/``on_predict_end``."""
        if steps is not None:
            x_arr = self._x(x, finite=False)
            x = x_arr[: _rows_of_steps(steps, batch_size, x_arr.shape[0])]
        self._follow_source()
        if batch_size is None and verbose == 0 and type(verbose) is int and callbacks is None:
            # Silent, without callbacks: one row is the per-sample loop's call (model(x) too).
            if type(x) is np.ndarray and x.ndim == 2 and x.shape[0] == 1:
                try:
                    out = self._predict_ready(x)
                except ValueError:
                    out = None  # the full checks below raise predict's own error
                if out is not None:
                    return out
        batch = _INFERENCE_BATCH if batch_size is None else _validation.positive_int(batch_size, "batch_size")
        shown = _validation.verbosity(verbose)
        # Without callbacks, x's NaN and infinity are found by the core in the pass that lists
        # its nonzeros (NonFiniteInputError), not by a pass of its own over the whole array
        # first; check_finite then words the error.
        x_arr = self._x(x, finite=callbacks is not None)
        callback_list = _inference_callbacks(callbacks, self, verbose, batch_size, x_arr.shape[0])
        callback_list.on_predict_begin()
        started = time.perf_counter()
        if not callback_list.wants_predict_batch_hooks:
            try:
                out = self._engine.predict(x_arr, batch)
            except _core.NonFiniteInputError:
                _validation.check_finite(x_arr, "x", _validation.flat_source(x, x_arr))
                raise
        else:
            batch = batch_size or _KERAS_BATCH  # the hooks see Keras's batches
            parts = []
            for step, start in enumerate(range(0, x_arr.shape[0], batch)):
                callback_list.on_predict_batch_begin(step)
                part = self._engine.predict(x_arr[start : start + batch], batch)
                callback_list.on_predict_batch_end(step, {"outputs": part})
                parts.append(part)
            out = np.concatenate(parts) if parts else self._engine.predict(x_arr, batch)
        self._report(shown, x_arr.shape[0], batch, started, {})
        callback_list.on_predict_end()
        return out

    def __call__(self, x: Any, training: Optional[bool] = None) -> Array:
        """The model's outputs for ``x`` (``predict`` without progress output). ``training``
        as Keras takes it: None or False (inference: Dropout off, BatchNormalization's moving
        statistics); True, a stochastic pass in training mode, is not supported."""
        _validation.inference_mode(f"Model {self.name!r}", training)
        if isinstance(x, KerasTensor):
            raise TypeError(
                f"Model {self.name!r} cannot be called on a symbolic tensor: fastmlp does not nest models. "
                "Chain its layers instead (or call the model on data, which predicts)."
            )
        return self.predict(x, verbose=0)

    def _fit_weights(self, y: Array, sample_weight: Any, class_weight: Optional[dict[int, float]]) -> Optional[Array]:
        """Per-sample loss weights from sample_weight and class_weight (multiplied), or None."""
        weights = self._sample_weight(sample_weight, y.shape[0])
        if class_weight is None:
            return weights
        if not isinstance(class_weight, dict) or not class_weight:
            raise ValueError(f"`class_weight` must be a non-empty dict {{class index: weight}}. Received: {class_weight!r}")
        outputs = self._engine.output_dim
        lookup = np.ones(max(outputs, 2), dtype=np.float64)
        for key, value in class_weight.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < len(lookup):
                raise ValueError(f"`class_weight` keys must be class indices in [0, {len(lookup)}). Received: {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value):
                raise ValueError(f"`class_weight` values must be finite numbers. Received: {value!r} for class {key}")
            lookup[int(key)] = float(value)
        # As Keras: the class of a sample is its label, its one-hot argmax, or its rounded
        # binary target.
        if y.ndim == 1:
            classes = y
        elif y.shape[1] > 1:
            classes = np.argmax(y, axis=1)
        else:
            classes = np.clip(np.round(y[:, 0]), 0, len(lookup) - 1).astype(np.int64)
        with np.errstate(over="ignore"):
            in_dtype = lookup.astype(self._dtype)
            per_class = in_dtype[classes]
            combined = per_class if weights is None else np.ascontiguousarray(weights * per_class)
        if not np.isfinite(in_dtype).all():
            raise ValueError(
                f"`class_weight` holds a value beyond the range of {self._dtype} (largest "
                f"{float(np.max(np.abs(lookup))):.3g}): scale the class weights down."
            )
        if not np.isfinite(combined).all():
            raise ValueError(
                f"`class_weight` times `sample_weight` goes beyond the range of {self._dtype}: scale them down."
            )
        return combined

    def _sample_weight(self, sample_weight: Any, n: int) -> Optional[Array]:
        """Per-sample loss weights as a C-contiguous (n,) array of the model dtype, or None."""
        if sample_weight is None:
            return None
        weights = _validation.as_numeric_array(sample_weight, "sample_weight")
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.ndim != 1:
            raise ValueError(f"`sample_weight` must have shape ({n},); received shape {weights.shape}.")
        _validation.check_length(weights, n, "sample_weight")
        converted = _validation.cast(weights, self._dtype)
        _validation.check_finite(converted, "sample_weight", weights)
        return converted

    @_serialized
    def train_on_batch(
        self,
        x: Any,
        y: Any,
        sample_weight: Any = None,
        class_weight: Optional[dict[int, float]] = None,
        return_dict: bool = False,
    ) -> Union[float, list[float], dict[str, float]]:
        """One gradient step on exactly this batch; returns its loss (and metrics) before the step.
        ``class_weight`` weighs each sample by its class, as in ``fit``. Not for a full-batch
        optimizer (as scikit-learn's lbfgs has no partial_fit): a ValueError."""
        self._check_compiled("train_on_batch")
        if isinstance(self._optimizer, optimizers.FullBatchOptimizer):
            raise ValueError(
                f"train_on_batch takes one step of a per-batch optimizer; {type(self._optimizer).__name__} "
                "is a full-batch optimizer: use fit(x, y, epochs=...), one iteration per epoch."
            )
        x_arr = self._x(x)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._fit_weights(y_arr, sample_weight, class_weight)
        engine = self._ensure_trainer()
        if self._optimizer is not None:
            self._optimizer.before_steps(1)
        totals = engine.train_on_batch(x_arr, y_arr, weights)
        return self._result(self._logs(totals), return_dict)

    @_serialized
    def test_on_batch(
        self, x: Any, y: Any, sample_weight: Any = None, return_dict: bool = False
    ) -> Union[float, list[float], dict[str, float]]:
        """Loss (and metrics) on exactly this batch, without training."""
        self._check_compiled("test_on_batch")
        x_arr = self._x(x)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._sample_weight(sample_weight, x_arr.shape[0])
        engine = self._ensure_trainer()
        return self._result(self._logs(engine.evaluate(x_arr, y_arr, x_arr.shape[0], weights)), return_dict)

    def predict_on_batch(self, x: Any) -> Array:
        """Outputs for exactly this batch (no progress output)."""
        if self._source is not None:
            self._follow_source()
        out = self._predict_ready(x)
        return out if out is not None else self._predict_converted(x)

    def _predict_ready(self, x: Any) -> Optional[Array]:
        """The outputs for ``x`` when it needs no conversion (a 2-D NumPy array of the model's
        dtype, C-contiguous and aligned, of the declared sample shape, for a model without a
        Normalization layer; the core checks the dtype, layout and finiteness), else None: the
        per-sample loop's path. Under the model's lock, as ``_serialized`` methods are."""
        if type(x) is not np.ndarray:
            return None
        engine = self._engine
        with engine.lock:
            if not self._rows_go_in_directly:
                return None
            try:
                return engine.try_predict_small(x)
            except ValueError as error:
                raise ValueError(str(error)) from None

    @_serialized
    def _predict_converted(self, x: Any) -> Array:
        """``predict_on_batch`` for an ``x`` that needs converting and checking first."""
        x_arr = self._x(x)  # builds the model if needed
        return self._engine.predict(x_arr, x_arr.shape[0])

    @_serialized
    def compute_gradients(self, x: Any, y: Any, sample_weight: Any = None) -> list[tuple[Array, Optional[Array]]]:
        """Gradients of the batch-mean loss on (x, y) (each sample's loss times its
        ``sample_weight``, as ``fit`` weighs them): ``[(dkernel, dbias or None), ...]`` per Dense
        layer, frozen ones included. The weights are not changed. For learners, and for checking
        the math."""
        self._check_compiled("compute_gradients")
        x_arr = self._x(x)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._sample_weight(sample_weight, x_arr.shape[0])
        engine = self._ensure_trainer()
        engine.compute_gradients(x_arr, y_arr, weights)
        return engine.gradients()

    @_serialized
    def compute_hessian(self, x: Any, y: Any, sample_weight: Any = None) -> Array:
        """The exact Hessian of the compiled loss on (x, y) with respect to the trainable
        weights: a float64 ``(P, P)`` array whose rows and columns follow
        ``model.trainable_weights``, each array flattened in C order (a frozen layer's weights,
        constants of the loss, have no rows). The loss is the one ``compute_gradients``
        differentiates: the batch mean of the per-sample losses (times ``sample_weight``, as
        ``fit`` weighs them), plus the layers' kernel and bias penalties, with dropout off.
        Computed in the core in float64 whatever the model's dtype. Raises a ValueError naming
        P and the bytes needed when the model's kernels and biases are over 20000 values. The
        weights are not changed."""
        self._check_compiled("compute_hessian")
        x_arr = self._x(x)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._sample_weight(sample_weight, x_arr.shape[0])
        engine = self._ensure_trainer()
        hessian = engine.hessian(x_arr, y_arr, weights)
        kept = engine.trainable_indices()
        return hessian if kept.size == hessian.shape[0] else hessian[np.ix_(kept, kept)]

    @_serialized
    def hessian_vector_product(self, x: Any, y: Any, v: Any, sample_weight: Any = None) -> Array:
        """``H @ v`` for the Hessian of ``compute_hessian`` and a vector ``v`` of P values (one per
        trainable weight), as a float64 ``(P,)`` array, without forming H (one forward and one backward pass of
        directional derivatives): for models too large for ``compute_hessian``."""
        self._check_compiled("hessian_vector_product")
        x_arr = self._x(x)
        y_arr = self._y(y, x_arr.shape[0])
        weights = self._sample_weight(sample_weight, x_arr.shape[0])
        engine = self._ensure_trainer()
        kept = engine.trainable_indices()
        direction = self._direction(v, int(kept.size))
        if kept.size == engine.parameter_count:
            return engine.hessian_vector_product(x_arr, y_arr, direction, weights)
        full = np.zeros(engine.parameter_count)  # a frozen weight's entry of v is 0
        full[kept] = direction
        return engine.hessian_vector_product(x_arr, y_arr, full, weights)[kept]

    @staticmethod
    def _direction(v: Any, parameters: int) -> Array:
        """``v`` as a C-contiguous float64 ``(P,)`` array of finite values."""
        array = _validation.as_numeric_array(v, "v")
        if array.shape != (parameters,):
            raise ValueError(
                f"`v` must have shape ({parameters},), one value per trainable weight; received shape {array.shape}."
            )
        with np.errstate(over="ignore"):
            converted = np.ascontiguousarray(array, dtype=np.float64)
        if not np.isfinite(converted).all():
            raise ValueError(f"`v` contains NaN or infinity (first at index {int(np.argmin(np.isfinite(converted)))}).")
        return converted

    # ----------------------------------------------------------------- saving

    def get_config(self) -> dict[str, Any]:
        """The architecture: enough to rebuild the model (without weights). A functional or
        subclassed model's config says ``"functional": true`` and names its input layer;
        ``Model.from_config`` rebuilds it as a functional model (a subclass's Python code is
        not saved, as in Keras)."""
        config: dict[str, Any] = {
            "name": self.name,
            "dtype": self._dtype,
            "input_shape": None if self._sample_shape is None else list(self._sample_shape),
            "layers": [{"class_name": layer.config_class_name(), "config": layer.get_config()} for layer in self._chain()],
        }
        if not isinstance(self, Sequential):
            config["functional"] = True
            inputs = [layer for layer in self._layers if isinstance(layer, InputLayer)]
            if inputs:
                config["input_name"] = inputs[0].name
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """A model from ``get_config()``'s dict; built when the config gives the input shape,
        with zero weights (they are not saved in the config: the caller sets them).
        ``Model.from_config`` of a Sequential model's config makes a ``Sequential`` model."""
        if cls is Model and not config.get("functional"):
            return Sequential.from_config(config)
        model = cls(name=config.get("name"), dtype=config.get("dtype"))
        layers = [deserialize(layer) for layer in config.get("layers", [])]
        input_shape = config.get("input_shape")
        if config.get("functional") and not isinstance(model, Sequential):
            if input_shape is None:
                raise ValueError("A functional model's config needs its `input_shape`.")
            input_layer = InputLayer(shape=tuple(input_shape), dtype=model.dtype, name=config.get("input_name"))
            layers.insert(0, input_layer)
            model._functional = True
        with model._engine.lock:
            model._assemble(input_shape, layers)
        return model

    def _assemble(
        self, input_shape: Optional[Sequence[int]], layers: Sequence[Layer], initialize: bool = False, build: bool = True
    ) -> None:
        """A new model's layers, set at once rather than added one by one: the model is built
        once (when ``build`` and the shape is known), by default without drawing initial
        weights (loading draws no seed). The order rules of ``add`` apply. On a refusal the
        model has no layers and the layers belong to no model."""
        found = misplaced([Placement.of(layer) for layer in layers])
        if found is not None:
            layer = layers[found[0]]
            where = f"Layer {layer.name!r} ({type(layer).__name__})" if initialize else f"Layer {found[0]} of the config"
            raise ValueError(f"{where} is misplaced: {found[1]}")
        if input_shape is not None:
            self._sample_shape = tuple(int(d) for d in input_shape)
        bound: list[Layer] = []
        try:
            for layer in layers:
                # An input layer has no weights: models may share it (as Keras models share an Input).
                if not isinstance(layer, InputLayer):
                    self._bind(layer)
                    bound.append(layer)
                self._layers.append(layer)
            if build and self._sample_shape is not None and self._dense_layers():
                self._build_network(initialize=initialize)
        except BaseException:
            for layer in bound:
                layer.bind_engine(None)
            self._layers = []
            raise
        finally:
            self._rows_go_in_directly = self._direct_rows()

    def get_compile_config(self) -> Optional[dict[str, Any]]:
        if self._loss is None or self._optimizer is None:
            return None
        return {
            "loss": self._loss.get_config(),
            "optimizer": self._optimizer.get_config(),
            "metrics": [metrics.serialize(m) for m in self._metric_names],
        }

    @_serialized
    def get_training_state(self) -> Optional[dict[str, Any]]:
        """What makes training resume exactly where it stopped: ``{"iterations": the
        optimizer's step count, "rng": the shuffle generator's state (4 integers), "slots":
        copies of the optimizer's slot arrays}``; None until the model is compiled and built.
        ``save`` writes it and ``load_model`` restores it (as Keras saves and restores
        ``optimizer.variables``)."""
        return self._engine.training_state() if self._engine.has_trainer else None

    @_serialized
    def set_training_state(self, state: dict[str, Any]) -> None:
        """Restore a state returned by ``get_training_state`` of a model with the same
        architecture and optimizer; a state that does not fit (slot count or shapes, step count,
        generator state) is a ValueError or TypeError."""
        self._check_compiled("set_training_state")
        if not self.built:
            raise ValueError(f"Model {self.name!r} is not built yet: it has no training state to set.")
        self._ensure_trainer().set_training_state(state)

    @_serialized
    def save(self, filepath: Any, overwrite: bool = True, zipped: Optional[bool] = None) -> None:
        """Save architecture, weights, compile settings and optimizer state to one file (a zip of
        JSON and .npy arrays; no pickle), or, for a path ending in ``.keras``, a Keras 3 archive
        that Keras loads (see ``fastmlp.saving``). Written atomically: an existing file is
        replaced only by a complete new one. ``overwrite=False`` refuses an existing file
        (``FileExistsError``; Keras asks on the console); ``zipped`` as Keras's: None or True."""
        _refuse_existing(filepath, overwrite)
        if zipped not in (None, True):
            raise ValueError(f"fastmlp writes zipped files only: zipped=None or True. Received: zipped={zipped!r}")
        self._check_complete()
        _file_dispatch.save_model(self, filepath)

    @_serialized
    def save_weights(self, filepath: Any, overwrite: bool = True, max_shard_size: Any = None) -> None:
        """Save only the weights, atomically: for a path ending in ``.weights.h5``, Keras 3's HDF5
        weights file (when h5py is installed), which Keras's ``load_weights`` reads; otherwise
        fastmlp's format. ``overwrite`` as ``save``; ``max_shard_size`` None only (one file)."""
        _refuse_existing(filepath, overwrite)
        if max_shard_size is not None:
            raise ValueError(f"fastmlp writes one weights file: max_shard_size=None. Received: {max_shard_size!r}")
        _file_dispatch.save_weights(self, filepath)

    @_serialized
    def load_weights(self, filepath: Any, skip_mismatch: bool = False) -> None:
        """Load weights into this (built) model: from ``save_weights`` or ``save``, or from Keras
        3's ``.weights.h5`` (by this model's layer names, as Keras). ``skip_mismatch=True``
        (Keras: skip the layers whose shapes differ) is refused: a file that does not fit is a
        ``FileFormatError`` naming the weight, and the model keeps all its weights."""
        if skip_mismatch is not False:
            raise ValueError(
                "fastmlp loads every weight or none: skip_mismatch=False only (a file that does not fit "
                f"is refused, naming the weight). Received: skip_mismatch={skip_mismatch!r}"
            )
        _file_dispatch.load_weights(self, filepath)

    @_serialized
    def __getstate__(self) -> dict[str, Any]:
        # Pickling (joblib, multiprocessing) goes through the saved-file format.
        return {"fastmlp_model": _model_file.model_to_bytes(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        data = state.get("fastmlp_model") if isinstance(state, dict) else state
        loaded = _model_file.model_from_bytes(data, Model.from_config)
        # The layers and the optimizer are bound to the loaded model's engine, which this
        # model takes over with the rest of its state.
        self.__dict__.update(loaded.__dict__)

    # ----------------------------------------------------------------- display

    def summary(
        self,
        line_length: Optional[int] = None,
        positions: Optional[Sequence[float]] = None,
        print_fn: Optional[Callable[[str], Any]] = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range: Optional[Sequence[str]] = None,
    ) -> None:
        """Print the layers, their output shapes and parameter counts (Keras's table), in
        ``line_length`` characters (65 by default), with a "Trainable" column when
        ``show_trainable``. ``expand_nested`` changes nothing (a nested model's layers are listed
        already); ``positions`` and ``layer_range`` are accepted as None only."""
        if positions is not None or layer_range is not None:
            raise ValueError(
                "fastmlp's summary() takes positions=None and layer_range=None only. "
                f"Received: positions={positions!r}, layer_range={layer_range!r}"
            )
        if line_length is not None and (isinstance(line_length, bool) or not isinstance(line_length, int) or line_length < 40):
            raise ValueError(f"`line_length` must be an integer of at least 40. Received: line_length={line_length!r}")
        emit = print_fn if print_fn is not None else (lambda line: print(line, file=sys.stdout))
        width = line_length or 65
        name_width, shape_width, count_width, trainable_width = _summary_columns(width, show_trainable)
        if name_width < 12:
            narrowest = next(w for w in itertools.count(width) if _summary_columns(w, show_trainable)[0] >= 12)
            raise ValueError(
                f"`line_length` {width} leaves no room for the layer names; the table needs at least "
                f"{narrowest} characters{' with show_trainable' if show_trainable else ''}."
            )
        rows: list[tuple[str, str, str, str]] = []
        shape: Optional[tuple[int, ...]] = self._sample_shape
        for layer in self.layers:
            if isinstance(layer, InputLayer):
                pass  # the input's shape
            elif isinstance(layer, Flatten):
                shape = None if shape is None else (int(math.prod(shape)),)
            elif isinstance(layer, (Activation, Dropout, BatchNormalization)):
                pass  # same shape as its input
            elif isinstance(layer, Dense):
                shape = (layer.units,)
            out = "?" if shape is None else "(None, " + ", ".join(map(str, shape)) + ")"
            params = layer.count_params() if self.built else 0
            count = f"{params:,}" if self.built or not isinstance(layer, (Dense, BatchNormalization)) else "0 (unbuilt)"
            flag = "Y" if layer.trainable else "N"
            rows.append((f"{layer.name} ({type(layer).__name__})", out, count, flag))
        total = self._param_count()
        trainable = sum(int(w.size) for layer in self._weighted_layers() for w in layer.trainable_weights)
        itemsize = np.dtype(self._dtype).itemsize
        size = total * itemsize
        emit(f'Model: "{self.name}"')
        emit("_" * width)
        def line(name: str, out: str, count: str, flag: str) -> str:
            text = f" {_cell(name, name_width)}{_cell(out, shape_width)}{count:>{count_width}}"
            return text + (f"{flag:>{trainable_width}}" if show_trainable else "")

        emit(line("Layer (type)", "Output Shape", "Param #", "Trainable"))
        emit("=" * width)
        for i, (name, out, count, flag) in enumerate(rows):
            emit(line(name, out, count, flag))
            emit(("_" if i < len(rows) - 1 else "=") * width if rows else "")
        emit(f" Total params: {total:,} ({_bytes(size)})")
        emit(f" Trainable params: {trainable:,} ({_bytes(trainable * itemsize)})")
        emit(f" Non-trainable params: {total - trainable:,} ({_bytes((total - trainable) * itemsize)})")
        emit("_" * width)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self.layers)} dtype={self._dtype!r}>"


def _refuse_existing(filepath: Any, overwrite: Any) -> None:
    """Keras's ``overwrite=False`` for a file that exists: a ``FileExistsError`` (Keras asks on
    the console instead)."""
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"`overwrite` must be True or False. Received: overwrite={overwrite!r}")
    if not overwrite and os.path.exists(os.fspath(filepath)):
        raise FileExistsError(f"{os.fspath(filepath)!r} exists and overwrite=False.")


def _rows_of_steps(steps: Any, batch_size: Optional[int], n: int) -> int:
    """The rows ``steps`` batches of ``batch_size`` cover, at most ``n``. Without a batch size
    Keras's array adapter makes ``ceil(n / steps)``-row batches: all ``n`` rows."""
    count = _validation.positive_int(steps, "steps")
    return n if batch_size is None else min(n, count * _validation.positive_int(batch_size, "batch_size"))


def _summary_columns(width: int, show_trainable: bool) -> tuple[int, int, int, int]:
    """summary's column widths for a table ``width`` wide: the default's proportions (shape 26
    and count 10 of 65), the count at least "0 (unbuilt)" and a space, the name taking the rest;
    every cell is cut to its column, so none runs into the next."""
    trainable = 11 if show_trainable else 0
    count = max(12, width * 10 // 65)
    shape = max(14, width * 26 // 65)
    return width - 1 - shape - count - trainable, shape, count, trainable


def _cell(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` characters, cut with "..." to leave a space (ASCII:
    a console of any encoding prints it)."""
    return f"{text:<{width}}" if len(text) < width else text[: width - 4] + "... "


def _shared_source(input_layer: InputLayer, layers: list[Layer]) -> Optional[tuple[Model, list[Layer]]]:
    """For a functional model's chain whose layers belong to another model: that model and the
    layers, when they are the first of its chain from its input (a feature extractor), else a
    ValueError naming the layer; None when no layer belongs to a model."""
    owners = [_owner_of(layer) for layer in layers]
    if all(owner is None for owner in owners):
        return None
    owner = next(owner for owner in owners if owner is not None)
    prefix = [lay for lay in owner.layers if not isinstance(lay, InputLayer)][: len(layers)]
    try:
        owner_input = owner.inputs[0].operation
    except AttributeError:  # its input shape is not known
        owner_input = None
    if (
        any(found is not owner for found in owners)
        or len(prefix) != len(layers)
        or any(mine is not theirs for mine, theirs in zip(prefix, layers))
        or owner_input is not input_layer
    ):
        layer = next(lay for lay, found in zip(layers, owners) if found is not None)
        raise ValueError(
            f"Layer {layer.name!r} already belongs to a model ({owner.name!r}). fastmlp shares a model's "
            "layers only with a feature extractor, `Model(inputs=model.inputs, outputs=layer.output)` "
            "for a layer of that model (its first layers, from its input); use new layers otherwise."
        )
    return owner, list(layers)


def _weight_count(layer: Layer) -> int:
    """How many arrays a Dense or BatchNormalization layer has in ``get_weights()``."""
    if isinstance(layer, Dense):
        return 2 if layer.use_bias else 1
    if isinstance(layer, BatchNormalization):
        return len(layer.get_weights())  # none before a Dense layer follows it
    return 0


def _trailing_norm(chain: Sequence[Layer]) -> Optional[BatchNormalization]:
    """The BatchNormalization of ``chain`` that would normalize the input of a Dense layer
    after the last, if any."""
    position = trailing_norm([Placement.of(layer) for layer in chain])
    return None if position is None else cast(BatchNormalization, chain[position])


def _norm_slot(before: Sequence[Layer]) -> tuple[int, bool]:
    """``norm_slot`` of these layers."""
    return norm_slot([Placement.of(layer) for layer in before])


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _next_position(position: int, trained: int, batches: int, steps_per_epoch: Optional[int]) -> int:
    """Where the next epoch starts in the pass over the data: at 0 (a new pass) without
    ``steps_per_epoch`` or at the pass's end, else where this epoch stopped."""
    position += trained
    return 0 if steps_per_epoch is None or position >= batches else position


def _warn_out_of_data() -> None:
    # Keras's warning, word for word: an epoch met the end of the data before its steps.
    warnings.warn(
        "Your input ran out of data; interrupting training. Make sure that your dataset or generator "
        "can generate at least `steps_per_epoch * epochs` batches. You may need to use the `.repeat()` "
        "function when building your dataset.",
        stacklevel=4,
    )


def _compile_extras(
    loss_weights: Any,
    weighted_metrics: Any,
    run_eagerly: Any,
    steps_per_execution: Any,
    jit_compile: Any,
    auto_scale_loss: Any,
) -> None:
    """Checks compile's Keras-only settings (which change nothing here)."""
    if loss_weights is not None:
        raise ValueError(
            "fastmlp models have one output and one loss, so `loss_weights` must be None. "
            f"Received: loss_weights={loss_weights!r}"
        )
    if weighted_metrics:
        raise ValueError(
            "fastmlp does not compute `weighted_metrics` (metrics ignore sample weights); pass None. "
            f"Received: weighted_metrics={weighted_metrics!r}"
        )
    for name, value in (("run_eagerly", run_eagerly), ("auto_scale_loss", auto_scale_loss)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be a boolean. Received: {name}={value!r}")
    if not (isinstance(jit_compile, (bool, np.bool_)) or jit_compile == "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
    _validation.positive_int(steps_per_execution, "steps_per_execution")


def _validation_schedule(freq: Union[int, Sequence[int]]) -> Callable[[int], bool]:
    """Whether to validate after a (1-based) epoch: every `freq` epochs, or the listed ones."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        if freq < 1:
            raise ValueError(f"`validation_freq` must be a positive integer. Received: validation_freq={freq!r}")
        return lambda epoch: epoch % int(freq) == 0
    listed: Any = freq  # an int (bool included) was handled above
    try:
        epochs = {int(e) for e in listed}
    except TypeError:
        raise ValueError(f"`validation_freq` must be an integer or a list of epochs. Received: {freq!r}") from None
    return lambda epoch: epoch in epochs


class Sequential(Model):
    """A linear stack of layers: ``Input``/``Flatten`` first if needed, then ``Dense`` layers
    (Keras's ``Sequential``, a ``Model``)."""

    def __init__(
        self,
        layers: Optional[Sequence[Union[Layer, KerasTensor]]] = None,
        name: Optional[str] = None,
        dtype: Optional[str] = None,
        trainable: bool = True,
    ) -> None:
        self._init_state(name if name is not None else unique_name("sequential"), dtype)
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    def add(self, layer: Union[Layer, KerasTensor, Model]) -> None:
        """Append a layer (or the tensor of ``fm.Input``, as Keras accepts); the model builds as
        soon as the input shape is known. A refused layer (or one whose weights cannot be
        allocated) leaves the model as it was. A built model as the first entry is nested as
        Keras nests it, for prediction (``_nest``)."""
        if isinstance(layer, Model):
            self._nest(layer)
            self._place_chain()
            return
        if isinstance(layer, KerasTensor):
            if not isinstance(layer.operation, InputLayer):
                raise TypeError(
                    "Only fastmlp layers (or the tensor of an Input) can be added to a Sequential model. "
                    f"Received: {layer!r} (made by layer {getattr(layer.operation, 'name', None)!r})"
                )
            layer = layer.operation
        self._add_layer(layer)
        self._place_chain()

    @_serialized
    def _nest(self, model: Model) -> None:
        """Keras's ``Sequential([model, keras.layers.Softmax()])``: copies of ``model``'s layers
        first, whose weights follow ``model``'s before each prediction (as a feature extractor's,
        ``_follow_source``); layers added after them are this model's own. ``model`` keeps and
        trains its layers; this model only predicts (``_refuse_shared``)."""
        self._refuse_while_fitting("add")
        if self._layers:
            raise TypeError(
                f"Model {model.name!r} can be nested in Sequential model {self.name!r} only as its first "
                "entry: fastmlp runs one chain of layers, and a nested model's layers are copies that "
                f"follow its weights. Chain the layers of {model.name!r} instead."
            )
        if not model.built:
            raise ValueError(
                f"Model {model.name!r} is not built, so it cannot be nested in Sequential model "
                f"{self.name!r}: give it an Input (or an input shape) or fit it first."
            )
        if model.dtype != self.dtype:
            raise ValueError(
                f"Model {model.name!r} computes in {model.dtype} and Sequential model {self.name!r} in "
                f"{self.dtype}: pass dtype={model.dtype!r} to the Sequential model that nests it."
            )
        chain = [layer for layer in model.layers if not isinstance(layer, InputLayer)]
        copies = [deserialize({"class_name": layer.config_class_name(), "config": layer.get_config()}) for layer in chain]
        input_layer = InputLayer(shape=tuple(model.inputs[0].shape[1:]), dtype=self.dtype)
        self._source = (model, chain)
        self._copies_frozen = not any(copy.trainable for copy in copies)  # made from a frozen model
        try:
            self._assemble(input_layer.shape, [input_layer, *copies], initialize=True)
        except BaseException:
            self._source = None
            raise
        self._follow_source()

    @_serialized
    def pop(self, rebuild: bool = True) -> Layer:
        """Remove and return the last layer (Keras's ``pop``); the model is rebuilt with the
        weights the remaining layers have. IndexError with no layer to remove, as Keras 3 raises."""
        self._refuse_while_fitting("pop")
        chain = self._chain()
        if not chain:
            raise IndexError(f"Cannot pop from model {self.name!r}: there are no layers in the model.")
        layer = chain[-1]
        remaining = [lay for lay in self._layers if lay is not layer]
        with self._all_or_nothing():
            weights = self.get_weights() if self.built else None
            self._layers = remaining
            layer.bind_engine(None)
            if self._dense_layers() and weights is not None and rebuild:
                # A BatchNormalization of the popped Dense layer's input has no weights without it.
                trailing = _trailing_norm(self._chain())
                kept = sum(_weight_count(lay) for lay in self._weighted_layers() if lay is not trailing)
                self._build_network(keep=weights[:kept])
            elif not self._dense_layers():
                self._engine.clear()
        self._place_chain()
        return layer


def model_from_json(json_string: str, custom_objects: Optional[dict[str, Any]] = None) -> Model:
    """A new model from ``model.to_json()``, with freshly initialized weights (as Keras's
    ``model_from_json``). ``custom_objects`` must be None or empty: fastmlp runs only its own
    layers."""
    if custom_objects:
        raise ValueError(f"fastmlp has no custom objects to deserialize. Received: custom_objects={custom_objects!r}")
    try:
        document = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`json_string` is not a model's JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ValueError(f"`json_string` must hold {{'class_name': ..., 'config': {{...}}}}. Received: {json_string!r:.200}")
    model = Model.from_config(document["config"])
    model.reinitialize()
    return model


def clone_model(
    model: Model,
    input_tensors: Any = None,
    clone_function: Any = None,
    call_function: Any = None,
    recursive: bool = False,
    **kwargs: Any,
) -> Model:
    """A new model of ``model``'s architecture with new layers (same names) and freshly
    initialized weights, not compiled (as Keras's ``clone_model``): a ``Sequential`` for a
    ``Sequential``, else a functional ``Model``. ``input_tensors``, ``clone_function`` and
    ``call_function`` must be None (a ValueError otherwise): fastmlp clones its own layers only."""
    if not isinstance(model, Model):
        raise ValueError(f"Expected `model` argument to be a `Model` instance. Received: model={model!r}")
    given = {"input_tensors": input_tensors, "clone_function": clone_function, "call_function": call_function}
    for name, value in {**given, **kwargs}.items():
        if value is not None:
            raise ValueError(f"fastmlp's clone_model takes no `{name}`. Received: {name}={value!r}")
    cls = Sequential if isinstance(model, Sequential) else Model
    clone = cls.from_config(model.get_config())
    clone.reinitialize()
    return clone


def save_model(model: Model, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """``model.save(filepath)``, as Keras's ``keras.models.save_model``; ``overwrite=False``
    refuses an existing file (a ``FileExistsError``); other keyword arguments must be None."""
    if not isinstance(model, Model):
        raise ValueError(f"Expected `model` argument to be a `Model` instance. Received: model={model!r}")
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"fastmlp's save_model takes no `{name}`. Received: {name}={value!r}")
    model.save(filepath, overwrite=overwrite)


def load_model(
    filepath: Any, custom_objects: Optional[dict[str, Any]] = None, compile: bool = True, safe_mode: bool = True
) -> Model:
    """Load a model saved with ``model.save``, or a Keras 3 ``.keras`` file (see
    ``fastmlp.saving`` for the formats); ``custom_objects`` as ``fastmlp.saving.load_model``.
    ``safe_mode`` is Keras's; fastmlp never runs code from a file, whatever its value (a lambda
    layer is refused either way). ``compile=False``: uncompiled, the file's compile settings
    unread, as Keras."""
    return _file_dispatch.load_model(filepath, Model.from_config, custom_objects, safe_mode, compile)
