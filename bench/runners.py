"""One adapter per framework: build the benchmark network from given weights, train one epoch,
predict, and hand the weights back for checking.

Every adapter does the same work in its framework's natural, fast way:

* the same float32 starting weights (``workloads.initial_params``), the same data;
* one epoch of plain mini-batch SGD (or Adam, with Keras's defaults but the learning rate) on
  softmax cross-entropy, shuffled once per epoch inside the timed region (fastmlp and
  scikit-learn shuffle internally; the others draw a permutation);
* data converted to the framework's own format *before* timing (tensors, float64 for the
  reference), so conversion is not counted against anyone.

PyTorch is set up at its best case: tensors preloaded, minibatches sliced by hand (no
DataLoader), ``zero_grad(set_to_none=True)``, prediction under ``torch.inference_mode()``.
JAX too (bench/jax_mlp.py): data on the device, the whole epoch one compiled function (a
``lax.scan`` over the batches), compiled before timing (the compile time is reported apart),
``block_until_ready`` before the clock stops; on one thread XLA's intra-op pool is off.
scikit-learn's ``MLPClassifier`` is configured to the same math (sgd, constant learning rate,
no momentum, no L2 penalty) and trained with one ``partial_fit`` call, which is one epoch.

Imports of torch, JAX and scikit-learn happen inside their adapters, so this module works
without them. The NumPy and reference runners train with SGD only (an Adam row shows n/a).
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

import numpy as np
import numpy_mlp
from numpy.typing import NDArray
from workloads import Net, Params32, Workload

from fastmlp import reference

Params64 = list[tuple[NDArray[np.float64], NDArray[np.float64]]]

# name -> (label in tables, module that must be importable)
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "fastmlp": ("fastmlp", "fastmlp"),
    "numpy": ("NumPy float32", "numpy"),
    "reference": ("NumPy reference f64", "numpy"),
    "torch": ("PyTorch", "torch"),
    "jax": ("JAX", "jax"),
    "sklearn": ("scikit-learn", "sklearn"),
}


def available(name: str) -> bool:
    """Whether the framework can run here (its package is importable)."""
    return importlib.util.find_spec(FRAMEWORKS[name][1]) is not None


def _as64(params: Any) -> Params64:
    return [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in params]


class Runner:
    """The interface compare.py drives. ``prepare`` converts data (untimed); the rest is timed."""

    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        self.net = net
        self.threads = threads

    optimizers: tuple[str, ...] = ("sgd", "adam")

    @classmethod
    def supports(cls, work: Workload) -> bool:
        return work.kind != "train" or work.optimizer in cls.optimizers

    def prepare(self, x: NDArray[np.float32], y: NDArray[np.int32]) -> tuple[Any, Any]:
        return x, y

    def reset(self, params: Params32) -> None:
        raise NotImplementedError

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        raise NotImplementedError

    def warm_up(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str, rows: int) -> None:
        """Before a timed epoch on all of ``x``: train on its first ``rows`` (the caller then
        restores the starting weights)."""
        self.train_epoch(x[:rows], y[:rows], batch_size, learning_rate, optimizer)

    def predict(self, x: Any) -> Any:
        raise NotImplementedError

    def predict_each(self, x: Any) -> Any:
        """Predict one sample per call, as a serving loop would."""
        raise NotImplementedError

    def params64(self) -> Params64:
        raise NotImplementedError

    def to_numpy(self, out: Any) -> NDArray[Any]:
        return np.asarray(out)

    def info(self) -> dict[str, Any]:
        """Versions and the thread count the framework reports it uses."""
        return {}


class FastmlpRunner(Runner):
    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        import fastmlp as fm

        self.fm = fm
        fm.set_num_threads(threads)
        # Seeded shuffles, as the NumPy runner's: a run's checks are reproducible.
        fm.utils.set_random_seed(1)
        layers: list[Any] = [fm.layers.Input(shape=(net.sizes[0],))]
        layers += [fm.layers.Dense(units, activation=act) for units, act in zip(net.sizes[1:], net.activations)]
        self.model = fm.Sequential(layers)
        self.compiled: tuple[float, str] = (-1.0, "")
        self.reset(params)

    def reset(self, params: Params32) -> None:
        self.model.set_weights([array for layer in params for array in layer])

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        if (learning_rate, optimizer) != self.compiled:  # compile once (it is not part of an epoch)
            optimizers = self.fm.optimizers
            chosen = optimizers.Adam if optimizer == "adam" else optimizers.SGD
            self.model.compile(optimizer=chosen(learning_rate=learning_rate), loss="sparse_categorical_crossentropy")
            self.compiled = (learning_rate, optimizer)
        self.model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)

    def predict(self, x: Any) -> Any:
        # The call a user writes. fastmlp then runs 1024 rows at a time (results do not depend
        # on it); batch_size=len(x) measured ~40% slower for 10000 MNIST rows (the activations
        # of the whole batch no longer stay in cache between layers).
        return self.model.predict(x, verbose=0)

    def predict_each(self, x: Any) -> Any:
        out = np.empty((len(x), self.net.sizes[-1]), np.float32)
        predict_on_batch = self.model.predict_on_batch
        for i in range(len(x)):
            out[i] = predict_on_batch(x[i : i + 1])[0]
        return out

    def params64(self) -> Params64:
        weights = self.model.get_weights()
        return _as64(zip(weights[0::2], weights[1::2]))

    def info(self) -> dict[str, Any]:
        return {"version": self.fm.__version__, "isa": self.fm.active_isa(),
                "threads": self.fm.get_num_threads()}


class NumpyRunner(Runner):
    """bench/numpy_mlp.py: float32 NumPy on its BLAS."""

    optimizers = ("sgd",)

    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        self.rng = np.random.default_rng(1)
        self.reset(params)

    def reset(self, params: Params32) -> None:
        self.params = [(w.copy(), b.copy()) for w, b in params]

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        order = self.rng.permutation(len(x))
        numpy_mlp.train_epoch(x, y, self.params, self.net.activations, learning_rate, batch_size, order)

    def predict(self, x: Any) -> Any:
        return numpy_mlp.predict(x, self.params, self.net.activations)

    def predict_each(self, x: Any) -> Any:
        out = np.empty((len(x), self.net.sizes[-1]), np.float32)
        params, activations = self.params, self.net.activations
        for i in range(len(x)):
            out[i] = numpy_mlp.predict(x[i : i + 1], params, activations)[0]
        return out

    def params64(self) -> Params64:
        return _as64(self.params)

    def info(self) -> dict[str, Any]:
        return {"version": np.__version__, **_blas_info()}


class ReferenceRunner(Runner):
    """fastmlp.reference as written: float64, one readable function per formula."""

    optimizers = ("sgd",)

    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        self.rng = np.random.default_rng(1)
        self.reset(params)

    def prepare(self, x: NDArray[np.float32], y: NDArray[np.int32]) -> tuple[Any, Any]:
        return x.astype(np.float64), y

    def reset(self, params: Params32) -> None:
        self.params: Any = _as64(params)

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        order = self.rng.permutation(len(x))
        self.params, _ = reference.train_sgd(
            x, y, self.params, self.net.activations, "sparse_categorical_crossentropy",
            learning_rate, batch_size, 1, [order],
        )

    def predict(self, x: Any) -> Any:
        return reference.predict(x, self.params, self.net.activations)

    def predict_each(self, x: Any) -> Any:
        out = np.empty((len(x), self.net.sizes[-1]), np.float64)
        params, activations = self.params, self.net.activations
        for i in range(len(x)):
            out[i] = reference.predict(x[i : i + 1], params, activations)[0]
        return out

    def params64(self) -> Params64:
        return _as64(self.params)

    def info(self) -> dict[str, Any]:
        return {"version": np.__version__, **_blas_info()}


class TorchRunner(Runner):
    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        torch.manual_seed(1)
        modules: list[Any] = []
        for i, (fan_in, fan_out) in enumerate(net.layer_shapes):
            modules.append(torch.nn.Linear(fan_in, fan_out))
            if i < len(net.layer_shapes) - 1:
                modules.append({"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[net.hidden_activation]())
        # The last Linear gives logits: CrossEntropyLoss applies log-softmax itself (training),
        # predict applies softmax.
        self.model = torch.nn.Sequential(*modules)
        self.linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.optimizer: Any = None
        self.reset(params)

    def prepare(self, x: NDArray[np.float32], y: NDArray[np.int32]) -> tuple[Any, Any]:
        return self.torch.from_numpy(x), self.torch.from_numpy(y.astype(np.int64))

    def reset(self, params: Params32) -> None:
        with self.torch.no_grad():
            for linear, (w, b) in zip(self.linears, params):
                linear.weight.copy_(self.torch.from_numpy(np.ascontiguousarray(w.T)))  # (out, in)
                linear.bias.copy_(self.torch.from_numpy(b))

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        torch = self.torch
        if self.optimizer is None:
            if optimizer == "adam":  # Keras's epsilon, as fastmlp's and JAX's runners
                self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate, eps=1e-7)
            else:
                self.optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()

    def predict(self, x: Any) -> Any:
        with self.torch.inference_mode():
            return self.torch.softmax(self.model(x), dim=1)

    def predict_each(self, x: Any) -> Any:
        torch = self.torch
        out = torch.empty((len(x), self.net.sizes[-1]))
        model = self.model
        with torch.inference_mode():
            for i in range(len(x)):
                out[i] = torch.softmax(model(x[i : i + 1]), dim=1)[0]
        return out

    def to_numpy(self, out: Any) -> NDArray[Any]:
        return np.asarray(out.numpy())

    def params64(self) -> Params64:
        return [
            (linear.weight.detach().numpy().T.astype(np.float64), linear.bias.detach().numpy().astype(np.float64))
            for linear in self.linears
        ]

    def info(self) -> dict[str, Any]:
        return {"version": self.torch.__version__, "threads": self.torch.get_num_threads()}


class JaxRunner(Runner):
    """JAX on XLA's CPU backend, each epoch one compiled call (bench/jax_mlp.py).

    The compiled functions are built ahead of the timed calls (``warm_up`` compiles the epoch
    for the full data and runs it once; the worker's untimed predict call compiles predict);
    ``info()`` reports the compile times apart. Predicting one row per call runs the jitted
    function on each NumPy row, as a serving loop would."""

    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        if threads == 1:  # XLA's intra-op thread pool off: one core, as the others
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()
        import jax
        import jax_mlp

        self.jax = jax
        self.jax_mlp = jax_mlp
        self.key = jax.random.PRNGKey(1)
        self.epochs_done = 0
        self.compiled: dict[tuple[Any, ...], Any] = {}
        self.compile_seconds: dict[str, float] = {}
        activations = net.activations
        self.predict_fn = jax.jit(lambda p, x: jax_mlp.predict(p, x, activations))
        self.optimizer = "sgd"
        self.reset(params)

    def prepare(self, x: NDArray[np.float32], y: NDArray[np.int32]) -> tuple[Any, Any]:
        return self.jax.device_put(x), self.jax.device_put(y.astype(np.int32))

    def reset(self, params: Params32) -> None:
        jnp = self.jax.numpy
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        self.state = self.jax_mlp.init_state(self.params, self.optimizer)

    def _epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str) -> Any:
        """The epoch compiled for these shapes and settings (compiled once, timed apart)."""
        key = (x.shape, batch_size, learning_rate, optimizer)
        if key not in self.compiled:
            if optimizer != self.optimizer:
                self.optimizer = optimizer
                self.state = self.jax_mlp.init_state(self.params, optimizer)
            fn = self.jax_mlp.shuffled_epoch(self.net.activations, batch_size, learning_rate, optimizer)
            started = time.perf_counter()
            self.compiled[key] = fn.lower(self.params, self.state, x, y, self.key, 0).compile()
            self.compile_seconds[f"train {x.shape[0]}"] = time.perf_counter() - started
        return self.compiled[key]

    def warm_up(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str, rows: int) -> None:
        self._epoch(x, y, batch_size, learning_rate, optimizer)
        self.train_epoch(x, y, batch_size, learning_rate, optimizer)

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        epoch = self._epoch(x, y, batch_size, learning_rate, optimizer)
        self.params, self.state = epoch(self.params, self.state, x, y, self.key, self.epochs_done)
        self.epochs_done += 1
        self.jax.block_until_ready(self.params)

    def _compile_once(self, what: str, call: Any) -> None:
        """Run ``call()`` once if ``what`` has not run yet, timing it (its compile)."""
        if what not in self.compile_seconds:
            started = time.perf_counter()
            self.jax.block_until_ready(call())
            self.compile_seconds[what] = time.perf_counter() - started

    def predict(self, x: Any) -> Any:
        predict, params = self.predict_fn, self.params
        self._compile_once(f"predict {x.shape[0]} (first call)", lambda: predict(params, x))
        return self.jax.block_until_ready(predict(params, x))

    def predict_each(self, x: Any) -> Any:
        rows = np.asarray(x)
        out = np.empty((len(rows), self.net.sizes[-1]), np.float32)
        predict, params = self.predict_fn, self.params
        self._compile_once("predict 1 (first call)", lambda: predict(params, rows[:1]))
        for i in range(len(rows)):
            out[i] = np.asarray(predict(params, rows[i : i + 1]))[0]
        return out

    def params64(self) -> Params64:
        return _as64([(np.asarray(w), np.asarray(b)) for w, b in self.params])

    def info(self) -> dict[str, Any]:
        jax = self.jax
        return {"version": jax.__version__, "backend": jax.default_backend(),
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "compile_seconds": {k: round(v, 3) for k, v in self.compile_seconds.items()}}


class SklearnRunner(Runner):
    """MLPClassifier set to the same math; one partial_fit call trains one epoch."""

    def __init__(self, net: Net, params: Params32, threads: int) -> None:
        super().__init__(net, params, threads)
        self.params = params
        self.model: Any = None

    def _build(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(
            hidden_layer_sizes=self.net.sizes[1:-1],
            activation={"sigmoid": "logistic", "relu": "relu"}[self.net.hidden_activation],
            solver=optimizer, batch_size=batch_size, learning_rate="constant",
            learning_rate_init=learning_rate, momentum=0.0, nesterovs_momentum=False,
            epsilon=1e-7, alpha=0.0, shuffle=True, random_state=1,
        )
        # partial_fit initialises the weights (and takes one step) on its first call; the
        # adapter's weights then overwrite them in place, where the optimizer holds them.
        self.model.partial_fit(x[:batch_size], y[:batch_size], classes=np.arange(self.net.classes))
        self.reset(self.params)

    def reset(self, params: Params32) -> None:
        self.params = params
        if self.model is not None:
            for target, (w, b) in zip(zip(self.model.coefs_, self.model.intercepts_), params):
                assert target[0].shape == w.shape and target[1].shape == b.shape
                target[0][...] = w
                target[1][...] = b

    def train_epoch(self, x: Any, y: Any, batch_size: int, learning_rate: float, optimizer: str = "sgd") -> None:
        if self.model is None or self.model.batch_size != batch_size or self.model.solver != optimizer:
            self._build(x, y, batch_size, learning_rate, optimizer)
        self.model.partial_fit(x, y)

    def _ensure_model(self, x: Any) -> None:
        if self.model is None:  # predict-only workloads: build without training
            y = np.arange(len(x[:64])) % self.net.classes
            self._build(x[:64], y, 64, 0.1)

    def predict(self, x: Any) -> Any:
        self._ensure_model(x)
        return self.model.predict_proba(x)

    def predict_each(self, x: Any) -> Any:
        self._ensure_model(x)
        out = np.empty((len(x), self.net.sizes[-1]), np.float32)
        predict_proba = self.model.predict_proba
        for i in range(len(x)):
            out[i] = predict_proba(x[i : i + 1])[0]
        return out

    def params64(self) -> Params64:
        return _as64(zip(self.model.coefs_, self.model.intercepts_))

    def info(self) -> dict[str, Any]:
        import sklearn

        dtype = None if self.model is None else str(self.model.coefs_[0].dtype)
        return {"version": sklearn.__version__, "dtype": dtype, **_blas_info()}


RUNNERS: dict[str, type[Runner]] = {
    "fastmlp": FastmlpRunner,
    "numpy": NumpyRunner,
    "reference": ReferenceRunner,
    "torch": TorchRunner,
    "jax": JaxRunner,
    "sklearn": SklearnRunner,
}


def _blas_info() -> dict[str, Any]:
    """NumPy's BLAS and the threads it uses (threadpoolctl, when installed, knows the count)."""
    info: dict[str, Any] = {}
    try:
        config: Any = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:
        pass
    if importlib.util.find_spec("threadpoolctl") is not None:
        import threadpoolctl

        pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["blas_threads"] = max(int(p["num_threads"]) for p in pools)
    return info
