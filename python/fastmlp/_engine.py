"""A model's engine: its C++ network and trainer behind one small interface (internal).

A ``Sequential`` model owns one ``Engine`` for its whole life. Its layers get the engine when
they join the model (``Layer.bind_engine``), its optimizer when it is compiled
(``Optimizer.bind_engine``); saving reaches it through the model's public methods. Nothing else
holds the core's objects, so every call into the core goes through here.

Every method that calls into the core holds ``lock``, the model's re-entrant lock: the core's
weights and scratch buffers belong to one model, and two calls into them at once would corrupt
memory. A caller that needs several calls to act as one (a whole ``fit``, checking then setting
weights) holds ``lock`` around them.

The engine knows shapes, dtypes and the core; it does not know Keras's layers, losses or
optimizers: the model translates those into ``LayerSpec`` values and plain settings.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import NDArray

from . import _core, _validation

Array = NDArray[Any]
Network = Union[_core.Network32, _core.Network64]
Trainer = Union[_core.Trainer32, _core.Trainer64]


@dataclass(frozen=True)
class LayerSpec:
    """One Dense layer as the core builds it, its activation and dropout layers folded in."""

    units: int
    activation: str
    alpha: float  # the activation's parameter (leaky_relu's slope, elu's alpha), else 0
    use_bias: bool
    penalties: tuple[float, float, float, float]  # kernel l1, kernel l2, bias l1, bias l2
    dropout: float  # the rate of the Dropout layer after it, else 0
    trainable: bool = True  # whether training updates its weights (Keras's layer.trainable)
    # The BatchNormalization after its product (momentum, epsilon, center, scale), else None,
    # and whether it trains (frozen, it normalizes with its moving statistics in fit too).
    norm: Optional[tuple[float, float, bool, bool]] = None
    norm_trainable: bool = True
    # The BatchNormalization on its input (after the previous layer's activation and Dropout, or
    # on the model's input), as ``norm``, whether it trains, and the rate of a Dropout between
    # that BatchNormalization and this layer.
    input_norm: Optional[tuple[float, float, bool, bool]] = None
    input_norm_trainable: bool = True
    input_dropout: float = 0.0


# A batch normalization's arrays in Keras's get_weights order (gamma without scale and beta
# without center are left out).
NORM_ARRAYS = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass(frozen=True)
class Snapshot:
    """What ``restore`` puts back: the network and trainer objects themselves. A rebuild or a
    new trainer creates new objects and leaves these untouched, so keeping them is enough."""

    network: Optional[Network]
    trainer: Optional[Trainer]
    input_dim: int
    layers: tuple[LayerSpec, ...]


class Engine:
    """The network (weights, forward and backward) and, once the model is compiled, its trainer
    (optimizer state, shuffle generator, the training loop over batches)."""

    def __init__(self, dtype: str) -> None:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"Unknown dtype: {dtype!r}. Expected 'float32' or 'float64'.")
        self.dtype = dtype
        self.lock = threading.RLock()
        self._network: Optional[Network] = None
        self._trainer: Optional[Trainer] = None
        self._input_dim = 0
        self._layers: tuple[LayerSpec, ...] = ()

    # ------------------------------------------------------------------ structure

    @property
    def built(self) -> bool:
        return self._network is not None

    def build(self, input_dim: int, layers: Sequence[LayerSpec]) -> None:
        """A new network for ``layers`` (weights zero) and no trainer. On a refusal (the core's
        ``AllocationError`` or ``SizeError``, naming the index of the layer at fault) the engine
        is unchanged."""
        network_type = _core.Network64 if self.dtype == "float64" else _core.Network32
        with self.lock:
            network = network_type(
                input_dim,
                [layer.units for layer in layers],
                [layer.activation for layer in layers],
                [layer.use_bias for layer in layers],
                [list(layer.penalties) for layer in layers],
                [layer.alpha for layer in layers],
                [layer.dropout for layer in layers],
                [layer.norm for layer in layers],
                [layer.input_norm for layer in layers],
                [layer.input_dropout for layer in layers],
            )
            for index, layer in enumerate(layers):
                if not layer.trainable:
                    network.set_trainable(index, False)
                if not layer.norm_trainable:
                    network.set_norm_trainable(index, False)
                if not layer.input_norm_trainable:
                    network.set_input_norm_trainable(index, False)
            self._network, self._trainer = network, None
            self._input_dim, self._layers = input_dim, tuple(layers)

    def clear(self) -> None:
        """No network and no trainer (a model whose last Dense layer was removed)."""
        with self.lock:
            self._network, self._trainer = None, None
            self._input_dim, self._layers = 0, ()

    def set_trainable(self, index: int, trainable: bool) -> None:
        """Freeze or unfreeze layer ``index`` (from the next training step on); nothing to do
        before the network is built (``build`` takes the flag from the layer's spec)."""
        with self.lock:
            if self._network is not None and index < len(self._layers):
                self._network.set_trainable(index, trainable)
                self._layers = tuple(
                    replace(spec, trainable=trainable) if i == index else spec for i, spec in enumerate(self._layers)
                )

    def set_norm_trainable(self, index: int, trainable: bool, on_input: bool = False) -> None:
        """Freeze or unfreeze layer ``index``'s batch normalization (``on_input``: the one on its
        input) (as ``set_trainable``)."""
        with self.lock:
            if self._network is not None and index < len(self._layers):
                if on_input:
                    self._network.set_input_norm_trainable(index, trainable)
                else:
                    self._network.set_norm_trainable(index, trainable)
                self._layers = tuple(
                    (replace(spec, input_norm_trainable=trainable) if on_input else replace(spec, norm_trainable=trainable))
                    if i == index
                    else spec
                    for i, spec in enumerate(self._layers)
                )

    def snapshot(self) -> Snapshot:
        with self.lock:
            return Snapshot(self._network, self._trainer, self._input_dim, self._layers)

    def restore(self, snapshot: Snapshot) -> None:
        """The engine as it was at ``snapshot`` (for a model change that failed halfway)."""
        with self.lock:
            self._network, self._trainer = snapshot.network, snapshot.trainer
            self._input_dim, self._layers = snapshot.input_dim, snapshot.layers

    def _built_network(self) -> Network:
        if self._network is None:
            raise RuntimeError("The model's network is not built yet.")
        return self._network

    @property
    def input_dim(self) -> int:
        self._built_network()
        return self._input_dim

    @property
    def output_dim(self) -> int:
        self._built_network()
        return self._layers[-1].units

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def fan_in(self, index: int) -> int:
        """The number of inputs of layer ``index`` (the rows of its kernel)."""
        self._built_network()
        return self._input_dim if index == 0 else self._layers[index - 1].units

    def weight_shapes(self, index: int) -> list[tuple[int, ...]]:
        """The shapes of layer ``index``'s weights: kernel ``(in, out)``, then bias ``(out,)``."""
        units = self._layers[index].units
        shapes: list[tuple[int, ...]] = [(self.fan_in(index), units)]
        if self._layers[index].use_bias:
            shapes.append((units,))
        return shapes

    def has_norm(self, index: int, on_input: bool = False) -> bool:
        """Whether layer ``index`` (built) has that batch normalization."""
        if index >= len(self._layers):
            return False
        spec = self._layers[index]
        return (spec.input_norm if on_input else spec.norm) is not None

    def norm_names(self, index: int, on_input: bool = False) -> list[str]:
        """The names of layer ``index``'s batch normalization arrays (``on_input``: of the one on
        its input, each name prefixed ``input_``), in Keras's order (empty without one)."""
        norm = self._layers[index].input_norm if on_input else self._layers[index].norm
        if norm is None:
            return []
        _, _, center, scale = norm
        prefix = "input_" if on_input else ""
        return [prefix + name for name in NORM_ARRAYS if (name != "gamma" or scale) and (name != "beta" or center)]

    def norm_size(self, index: int, on_input: bool = False) -> int:
        """How many values each array of that batch normalization holds."""
        return self.fan_in(index) if on_input else self._layers[index].units

    # ------------------------------------------------------------------ weights

    def norm_weights(self, index: int, on_input: bool = False) -> list[Array]:
        """Copies of layer ``index``'s batch normalization arrays (``norm_names`` order)."""
        with self.lock:
            network = self._built_network()
            arrays = [network.get_norm(index, name) for name in self.norm_names(index, on_input)]
            return [array for array in arrays if array is not None]

    def norm_gradients(self, index: int, on_input: bool = False) -> list[Array]:
        """Layer ``index``'s gamma and beta gradients (those it has) from the last backward pass."""
        with self.lock:
            network = self._built_network()
            prefix = "input_" if on_input else ""
            names = [prefix + name for name in ("gamma", "beta") if prefix + name in self.norm_names(index, on_input)]
            arrays = [network.get_norm(index, name, True) for name in names]
            return [array for array in arrays if array is not None]

    def kernel(self, index: int) -> Array:
        """A copy of layer ``index``'s kernel."""
        with self.lock:
            return self._built_network().get_kernel(index)

    def bias(self, index: int) -> Optional[Array]:
        """A copy of layer ``index``'s bias, or None for a layer without one."""
        with self.lock:
            return self._built_network().get_bias(index)

    def set_weights(
        self,
        assignments: Sequence[tuple[int, str, Sequence[Any]]],
        norm_assignments: Sequence[tuple[int, str, Sequence[Any]]] = (),
        input_norm_assignments: Sequence[tuple[int, str, Sequence[Any]]] = (),
    ) -> None:
        """Set the weights of several layers as one change: each assignment is (layer index,
        layer name for messages, ``[kernel, bias]`` or ``[kernel]``), each norm assignment
        (layer index, name, the ``norm_names`` arrays of its batch normalization), each input
        norm assignment the same for the batch normalization on its input. Every array
        is checked (count, shape, real dtype, finite once in the engine's dtype) before any is
        set, so a refused call changes nothing."""
        with self.lock:
            network = self._built_network()
            checked = [(index, self._checked(self.weight_shapes(index), name, arrays)) for index, name, arrays in assignments]
            norms = []
            stages = [(False, norm_assignments), (True, input_norm_assignments)]
            for on_input, given in stages:
                for index, name, arrays in given:
                    names = self.norm_names(index, on_input)
                    values = self._checked([(self.norm_size(index, on_input),)] * len(names), name, arrays)
                    if (values[-1] < 0).any():  # moving_variance, always the last
                        raise ValueError(f"Layer {name!r} moving_variance must not be negative.")
                    norms.append((index, on_input, values))
            for index, arrays in checked:
                network.set_kernel(index, arrays[0])
                if len(arrays) > 1:
                    network.set_bias(index, arrays[1])
            for index, on_input, arrays in norms:
                for array_name, array in zip(self.norm_names(index, on_input), arrays):
                    network.set_norm(index, array_name, array)

    def _checked(self, expected: Sequence[tuple[int, ...]], name: str, weights: Sequence[Any]) -> list[Array]:
        """``weights`` as the core takes them (engine dtype, C order); changes nothing."""
        if len(weights) != len(expected):
            raise ValueError(
                f"Layer {name!r} expects {len(expected)} weights, but the weight list "
                f"has {len(weights)} elements."
            )
        arrays = []
        for value, shape in zip(weights, expected):
            array = np.asarray(value)
            if array.shape != shape:
                raise ValueError(
                    f"Layer {name!r} weight shape {shape} is not compatible with provided "
                    f"weight shape {array.shape}."
                )
            if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
                raise TypeError(f"Layer {name!r} weights must be real numbers, got dtype {array.dtype}.")
            with np.errstate(over="ignore"):
                array = _validation.for_core(array, self.dtype)
            if not np.isfinite(array).all():
                raise ValueError(f"Layer {name!r} weights contain NaN or infinity.")
            arrays.append(array)
        return arrays

    def gradients(self) -> list[tuple[Array, Optional[Array]]]:
        """Each layer's (kernel gradient, bias gradient or None) from the last
        ``compute_gradients``."""
        with self.lock:
            network = self._built_network()
            return [(network.get_kernel_grad(i), network.get_bias_grad(i)) for i in range(len(self._layers))]

    # ------------------------------------------------------------------ inference

    def predict(self, x: Array, batch_size: int) -> Array:
        with self.lock:
            return self._built_network().predict(x, batch_size)

    def try_predict_small(self, x: Array) -> Optional[Array]:
        """``predict`` for a few rows in one pass (the per-sample loop's path) when ``x`` is
        already in the network's dtype and layout with ``input_dim`` columns; else None (and for
        a model not built yet)."""
        with self.lock:
            network = self._network
            return None if network is None else network.try_predict_small(x)

    # ------------------------------------------------------------------ training

    @property
    def has_trainer(self) -> bool:
        return self._trainer is not None

    def make_trainer(
        self,
        loss: str,
        from_logits: bool,
        metrics: Sequence[Union[str, dict[str, Any]]],
        optimizer: dict[str, Any],
        seed: int,
        loss_delta: float = 1.0,
        confusions: Sequence[dict[str, Any]] = (),
    ) -> None:
        """A new trainer (fresh optimizer state, shuffle generator seeded with ``seed``; ``loss_delta``
        is Huber's threshold; ``metrics``: names, or ``{"name", "k", "from_logits"}``; ``confusions``: the specs of the metrics whose state is counts
        (metrics.py))."""
        trainer_type = _core.Trainer64 if self.dtype == "float64" else _core.Trainer32
        with self.lock:
            self._trainer = trainer_type(
                self._built_network(), loss, from_logits, list(metrics), optimizer, seed, loss_delta, list(confusions)
            )

    def _built_trainer(self) -> Trainer:
        if self._trainer is None:
            raise RuntimeError("The model has no trainer: it is not compiled and built.")
        return self._trainer

    def begin_epoch(self, n: int, shuffle: bool) -> None:
        with self.lock:
            self._built_trainer().begin_epoch(n, shuffle)

    def num_batches(self, batch_size: int) -> int:
        with self.lock:
            return self._built_trainer().num_batches(batch_size)

    def train_batches(
        self, x: Array, y: Array, batch_size: int, first: int, count: int, sample_weight: Optional[Array] = None
    ) -> _core.Totals:
        """Batches ``first`` to ``first + count`` of the epoch begun by ``begin_epoch``."""
        with self.lock:
            return self._built_trainer().train_batches(x, y, batch_size, first, count, sample_weight)

    def train_on_batch(self, x: Array, y: Array, sample_weight: Optional[Array] = None) -> _core.Totals:
        with self.lock:
            return self._built_trainer().train_on_batch(x, y, sample_weight)

    def evaluate(self, x: Array, y: Array, batch_size: int, sample_weight: Optional[Array] = None) -> _core.Totals:
        with self.lock:
            return self._built_trainer().evaluate(x, y, batch_size, sample_weight)

    def compute_gradients(self, x: Array, y: Array, sample_weight: Optional[Array] = None) -> float:
        """The batch-mean loss (rows weighted by ``sample_weight``, as fit weighs them); the
        gradients are then read with ``gradients``."""
        with self.lock:
            return self._built_trainer().compute_gradients(x, y, sample_weight)

    def loss_and_gradient(self, x: Array, y: Array, sample_weight: Optional[Array] = None) -> tuple[float, Array]:
        """The compiled loss (batch mean over all of ``x``, with the weight penalties) and its
        gradient with respect to every weight, flattened in ``get_weights()`` order, as float64."""
        with self.lock:
            loss = self._built_trainer().compute_gradients(x, y, sample_weight)
            parts = [part for kernel, bias in self.gradients() for part in (kernel, bias) if part is not None]
            return float(loss), np.concatenate([part.ravel() for part in parts]).astype(np.float64)

    @property
    def layer_specs(self) -> tuple[LayerSpec, ...]:
        """The layers as the core built them (empty before the first build)."""
        return self._layers

    def flat_weights(self) -> Array:
        """All weights as one float64 vector, in ``get_weights()`` order."""
        with self.lock:
            network = self._built_network()
            parts = []
            for index in range(len(self._layers)):
                parts.append(network.get_kernel(index).ravel())
                bias = network.get_bias(index)
                if bias is not None:
                    parts.append(bias)
            return np.concatenate(parts).astype(np.float64)

    def set_flat_weights(self, flat: Array) -> None:
        """Set all weights from one vector in ``get_weights()`` order (converted to the engine's
        dtype; checked whole before any is set, like ``set_weights``)."""
        with self.lock:
            if flat.shape != (self.parameter_count,):
                raise ValueError(f"Expected {self.parameter_count} weights in one vector; received shape {flat.shape}.")
            assignments = []
            position = 0
            for index in range(len(self._layers)):
                arrays = []
                for shape in self.weight_shapes(index):
                    size = math.prod(shape)
                    arrays.append(flat[position : position + size].reshape(shape))
                    position += size
                assignments.append((index, f"layer {index}", arrays))
            self.set_weights(assignments)

    def set_iterations(self, value: int) -> None:
        """The optimizer's step count (for optimizers whose updates run outside the core)."""
        with self.lock:
            self._built_trainer().iterations = value

    @property
    def parameter_count(self) -> int:
        """The number of kernel and bias values P: the length of the flattened ``get_weights()``."""
        self._built_network()
        return sum(math.prod(shape) for index in range(len(self._layers)) for shape in self.weight_shapes(index))

    def trainable_indices(self) -> Array:
        """The positions in the flat vector (``flat_weights``) of the trainable layers' kernels
        and biases, increasing: what training may change (a frozen layer's are left out)."""
        with self.lock:
            self._built_network()
            parts = []
            position = 0
            for index, spec in enumerate(self._layers):
                size = sum(math.prod(shape) for shape in self.weight_shapes(index))
                if spec.trainable:
                    parts.append(np.arange(position, position + size, dtype=np.intp))
                position += size
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)

    def hessian(self, x: Array, y: Array, sample_weight: Optional[Array] = None) -> Array:
        """The ``(P, P)`` float64 Hessian, at the current weights, of the loss ``compute_gradients``
        differentiates (the batch mean of the sample-weighted losses plus the weight penalties,
        dropout off), rows and columns in the flattened ``get_weights()`` order. Exactly
        symmetric. The core's ``SizeError`` (a ValueError) names P and the bytes when P is over
        20000 or H would not fit in memory; a ValueError when H is not finite. ``x``, ``y`` and
        ``sample_weight`` as ``train_on_batch`` takes them (already validated)."""
        with self.lock:
            return self._built_trainer().hessian(x, y, sample_weight)

    def hessian_vector_product(
        self, x: Array, y: Array, v: Array, sample_weight: Optional[Array] = None
    ) -> Array:
        """``H @ v`` as float64 ``(P,)`` without forming H; ``v`` is a C-contiguous float64
        ``(P,)`` array of finite values (the core refuses any other with a ValueError)."""
        with self.lock:
            return self._built_trainer().hessian_vector_product(x, y, v, sample_weight)

    def training_state(self) -> dict[str, Any]:
        """``{"iterations", "rng", "slots"}``: the optimizer's step count, the shuffle
        generator's state and copies of the optimizer's slot arrays."""
        with self.lock:
            return self._built_trainer().get_state()

    def set_training_state(self, state: dict[str, Any]) -> None:
        with self.lock:
            self._built_trainer().set_state(state)

    @property
    def learning_rate(self) -> Optional[float]:
        """The rate of the next step, or None without a trainer."""
        with self.lock:
            return None if self._trainer is None else float(self._trainer.learning_rate)

    def set_learning_rate(self, value: float) -> None:
        """The rate of the next steps; nothing to do without a trainer (the next one is made
        from the optimizer's settings)."""
        with self.lock:
            if self._trainer is not None:
                self._trainer.learning_rate = value

    def set_learning_rates(self, first_step: int, rates: Sequence[float]) -> None:
        """The rates of steps ``first_step``, ``first_step + 1``, ... (replacing any schedule);
        nothing to do without a trainer."""
        with self.lock:
            if self._trainer is not None:
                self._trainer.set_learning_rates(first_step, list(rates))

    @property
    def iterations(self) -> int:
        """The number of updates applied so far (0 without a trainer)."""
        with self.lock:
            return 0 if self._trainer is None else int(self._trainer.iterations)
