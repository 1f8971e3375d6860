"""Hostile and careless calls: whatever a caller passes or a callback does, the result is a clear
Python exception that leaves the model usable, or a correct result; never a crash, a hang or
silent damage. (Bad x/y values and shapes have their own module, test_bad_input.py; model files
test_model_file_fuzz.py; threads test_one_model_many_threads.py.)"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from typing import Any, Callable

import fastmlp as fm
import numpy as np
import pytest

RNG = np.random.default_rng(3)
X = RNG.random((40, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


def model(optimizer: Any = "sgd", seed: int = 7) -> fm.Sequential:
    fm.utils.set_random_seed(seed)
    net = fm.Sequential([fm.layers.Input((5,)), fm.layers.Dense(4, activation="tanh"), fm.layers.Dense(3, activation="softmax")])
    net.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


def same_weights(a: fm.Sequential, b: fm.Sequential) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def still_trains_like_a_fresh_twin(net: fm.Sequential, seed: int = 7) -> None:
    """The model gives the results an untouched twin with the same weights gives."""
    twin = model(seed=seed)
    twin.set_weights(net.get_weights())
    np.testing.assert_array_equal(net.predict(X, verbose=0), twin.predict(X, verbose=0))
    net.fit(X, Y, epochs=1, verbose=0, shuffle=False)
    twin.fit(X, Y, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(net.predict(X, verbose=0)).all()


def run_python(body: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", textwrap.dedent(body)],
        capture_output=True, text=True, timeout=120,
    )


# ---------------------------------------------------------------- structure changes


def test_a_refused_add_leaves_the_model_as_it_was() -> None:
    """Dense(2**62) cannot be built; the model keeps no half-built layer (it used to, and
    compile + evaluate then crashed the interpreter: hence the subprocess)."""
    result = run_python(
        """
        import numpy as np, fastmlp as fm
        x = np.random.default_rng(0).random((6, 4)).astype(np.float32)
        m = fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(3)])
        before = m.get_weights()
        out_before = m.predict(x, verbose=0)
        try:
            m.add(fm.layers.Dense(2**62))
        except (ValueError, MemoryError) as error:
            print("refused", type(error).__name__)
        assert len(m.layers) == 1, m.layers
        assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
        m.compile("sgd", "mse")
        print("loss", np.isfinite(m.evaluate(x, np.zeros((6, 3)), verbose=0)))
        assert np.array_equal(m.predict(x, verbose=0), out_before)
        m.add(fm.layers.Dense(2))
        m.fit(x, np.zeros((6, 2)), verbose=0)
        print("ok", m.predict(x, verbose=0).shape)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "refused" in result.stdout and "loss True" in result.stdout and "ok (6, 2)" in result.stdout


def test_a_refused_layer_can_be_added_to_another_model() -> None:
    net = model()
    try:
        net.add(fm.layers.Dense(2**62))
    except (ValueError, MemoryError):
        pass
    bad = fm.layers.Dense(2)
    with pytest.raises((ValueError, MemoryError)):
        net.add(fm.layers.Dense(2**62))
    net.add(bad)  # not kept by the refused add: free to join
    assert net.predict(X, verbose=0).shape == (40, 2)


def test_a_refused_compile_keeps_the_previous_one() -> None:
    net = model(fm.optimizers.SGD(0.05))
    net.fit(X, Y, verbose=0)
    with pytest.raises(ValueError):
        net.compile("adam", "sparse_categorical_crossentropy", metrics=["no-such-metric"])
    assert net.optimizer is not None and net.optimizer.name == "sgd"
    assert [m.name for m in net.metrics[1].metrics] == ["accuracy"]
    assert len(net.evaluate(X, Y, verbose=0)) == 2  # type: ignore[arg-type]


def test_a_layer_refused_by_the_order_rules_can_join_another_model() -> None:
    leaky = fm.layers.LeakyReLU()
    activated = fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(3, activation="relu")])
    with pytest.raises(ValueError, match="must follow a Dense layer without an activation"):
        activated.add(leaky)
    assert len(activated.layers) == 1
    plain = fm.Sequential([fm.layers.Input((4,)), fm.layers.Dense(3)])
    plain.add(leaky)  # not kept by the refused add: free to join
    with pytest.raises(ValueError, match="already belongs to a model"):
        activated.add(plain.layers[0])


def test_the_optimizer_of_a_refused_compile_stays_unbound() -> None:
    """It does not report (or change) the learning rate of the model it was refused by."""
    net = model(fm.optimizers.SGD(0.05))
    net.fit(X, Y, verbose=0)
    refused = fm.optimizers.Adam(0.5)
    with pytest.raises(ValueError):
        net.compile(refused, "sparse_categorical_crossentropy", metrics=["no-such-metric"])
    refused.learning_rate = 0.25
    assert refused.learning_rate == 0.25 and refused.iterations == 0
    assert net.optimizer is not None and net.optimizer.learning_rate == pytest.approx(0.05)
    assert net.optimizer.iterations > 0


class ChangesStructure(fm.callbacks.Callback):
    def __init__(self, change: Callable[[fm.Sequential], Any]) -> None:
        super().__init__()
        self.change = change

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        assert self.model is not None
        self.change(self.model)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.add(fm.layers.Dense(2)),
        lambda m: m.compile("adam", "sparse_categorical_crossentropy"),
        lambda m: m.build((None, 5)),
        lambda m: m.fit(X, Y, verbose=0),
    ],
    ids=["add", "compile", "build", "fit"],
)
def test_structural_changes_from_a_callback_are_refused(change: Callable[[fm.Sequential], Any]) -> None:
    net = model()
    with pytest.raises(RuntimeError, match="while its `fit` is running"):
        net.fit(X, Y, epochs=3, verbose=0, callbacks=[ChangesStructure(change)])
    assert len(net.layers) == 2
    net.add(fm.layers.Dense(2))  # allowed again once fit has returned
    net.compile("sgd", "sparse_categorical_crossentropy")
    net.fit(X, Y % 2, verbose=0)


def test_weights_may_change_from_a_callback() -> None:
    """set_weights is not structural: EarlyStopping(restore_best_weights=True) relies on it."""
    net = model()
    start = net.get_weights()
    net.fit(X, Y, epochs=2, verbose=0, callbacks=[ChangesStructure(lambda m: m.set_weights(start))])
    assert all(np.array_equal(a, b) for a, b in zip(start, net.get_weights()))


# ---------------------------------------------------------------- set_weights


@pytest.mark.parametrize(
    "spoil",
    [
        lambda w: [*w[:-1], w[-1][:-1]],  # last array of the wrong shape
        lambda w: [*w[:-1], np.full_like(w[-1], np.nan)],
        lambda w: [*w[:-1], np.full_like(w[-1], np.inf)],
        lambda w: [*w[:-1], w[-1].astype(complex)],
        lambda w: [*w[:-1], np.array(["a"] * w[-1].size)],
        lambda w: w[:-1],
        lambda w: [*w, w[-1]],
    ],
    ids=["shape", "nan", "inf", "complex", "strings", "too-few", "too-many"],
)
def test_set_weights_changes_nothing_when_a_later_array_is_bad(spoil: Callable[[list[Any]], list[Any]]) -> None:
    net = model()
    before = net.get_weights()
    fresh = [np.full_like(w, 0.5) for w in before]
    with pytest.raises((ValueError, TypeError)):
        net.set_weights(spoil(fresh))
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


# ---------------------------------------------------------------- no assert in control flow


PYTHON_O_BODY = """
import numpy as np, fastmlp as fm
x = np.random.default_rng(0).random((64, 5)).astype(np.float32)
y = np.random.default_rng(1).integers(0, 3, 64)
class Spoil(fm.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        x[3, 2] = np.nan
m = fm.Sequential([fm.layers.Input((5,)), fm.layers.Dense(3, activation="softmax")])
m.compile("sgd", "sparse_categorical_crossentropy")
try:
    m.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[Spoil()])
except ValueError as error:
    print("ValueError", "sample 3" in str(error) or "row 3" in str(error) or "index 3" in str(error), error)
x[3, 2] = 0.0
m.fit(x, y, epochs=1, verbose=0)
print("usable", np.isfinite(m.predict(x, verbose=0)).all())
"""


@pytest.mark.parametrize("flags", [(), ("-O",)], ids=["plain", "optimized"])
def test_x_spoiled_by_a_callback_with_validation_split(flags: tuple[str, ...]) -> None:
    """x checked before training, then a callback writes NaN into it: the core's check finds it
    and fit raises ValueError naming the sample (it ended in a bare AssertionError, a TypeError
    under -O)."""
    result = run_python(PYTHON_O_BODY, *flags)
    assert result.returncode == 0, result.stderr
    assert "ValueError True" in result.stdout, result.stdout
    assert "usable True" in result.stdout


def test_library_code_uses_no_assert_for_control_flow() -> None:
    """``python -O`` strips asserts: the package must not rely on them (reference.py, the
    teaching twin, may assert shapes for its readers)."""
    import ast
    from pathlib import Path

    root = Path(fm.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "reference.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


# ---------------------------------------------------------------- optimizer guards


@pytest.mark.parametrize("cls", [fm.optimizers.Adam, fm.optimizers.AdamW, fm.optimizers.RMSprop, fm.optimizers.Adagrad])
@pytest.mark.parametrize("epsilon", [0, 0.0, -1e-7, 1e-45, float("nan"), float("inf")])
def test_a_denominator_guard_of_zero_is_refused(cls: type, epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        cls(epsilon=epsilon)


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad"])
def test_an_all_zero_feature_keeps_weights_finite(name: str) -> None:
    """The case epsilon=0 broke: a feature that is 0 in every sample has a zero gradient, so a
    zero guard computed 0/0 on the first step."""
    x = X.copy()
    x[:, 1] = 0.0
    net = model(name)
    net.fit(x, Y, epochs=2, verbose=0)
    assert all(np.isfinite(w).all() for w in net.get_weights())


def test_a_config_with_epsilon_zero_is_refused() -> None:
    config = fm.optimizers.Adam().get_config()
    config["epsilon"] = 0.0
    with pytest.raises(ValueError, match="epsilon"):
        fm.optimizers.from_config(config)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fm.optimizers.SGD(learning_rate=float("nan")),
        lambda: fm.optimizers.SGD(learning_rate=-0.1),
        lambda: fm.optimizers.SGD(learning_rate=float("inf")),
        lambda: fm.optimizers.SGD(momentum=-0.5),
        lambda: fm.optimizers.Adam(beta_1=1.0),
        lambda: fm.optimizers.Adam(beta_2=1.5),
        lambda: fm.optimizers.Adam(clipnorm=float("nan")),
        lambda: fm.optimizers.RMSprop(rho=-0.1),
        lambda: fm.optimizers.SGD(learning_rate=10**400),
        lambda: fm.optimizers.schedules.ExponentialDecay(0.1, 10**400, 0.5),
        lambda: fm.regularizers.L2(10**400),
        lambda: fm.layers.LeakyReLU(10**400),
        lambda: fm.layers.ELU(alpha=float("nan")),
    ],
)
def test_absurd_hyper_parameters_are_refused(make: Callable[[], Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        make()


def test_numpy_numbers_are_hyper_parameters_like_python_ones() -> None:
    assert fm.optimizers.SGD(np.float32(0.5), momentum=np.float64(0.25)).get_config()["momentum"] == 0.25
    assert fm.regularizers.L1(np.float32(0.5)).l1 == 0.5
    assert fm.layers.LeakyReLU(np.float64(0.125)).alpha == 0.125
    assert fm.optimizers.schedules.ExponentialDecay(np.float32(0.5), np.int64(10), 0.5).decay_steps == 10


def test_learning_rate_set_to_nan_during_training_is_refused() -> None:
    net = model()
    net.fit(X, Y, verbose=0)
    assert net.optimizer is not None
    with pytest.raises(ValueError):
        net.optimizer.learning_rate = float("nan")
    still_trains_like_a_fresh_twin(net)


# ---------------------------------------------------------------- memory layouts and arguments


def layouts() -> dict[str, np.ndarray]:
    wide = np.zeros((40, 10), dtype=np.float32)
    wide[:, ::2] = X
    reversed_rows = X[::-1].copy()[::-1]
    raw = np.zeros(X.nbytes + 1, dtype=np.uint8)
    raw[1:] = np.frombuffer(X.tobytes(), dtype=np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float32, count=X.size, offset=1).reshape(X.shape)
    assert not misaligned.flags.aligned
    readonly = X.copy()
    readonly.flags.writeable = False
    return {
        "fortran": np.asfortranarray(X),
        "strided-columns": wide[:, ::2],
        "negative-stride": reversed_rows,
        "misaligned": misaligned,
        "read-only": readonly,
        "float16": X.astype(np.float16),
        "float64": X.astype(np.float64),
        "big-endian": X.astype(">f4"),
        "list": X.tolist(),
    }


@pytest.mark.parametrize("name", list(layouts()))
def test_every_layout_gives_the_contiguous_result(name: str) -> None:
    x = layouts()[name]
    expected = X.astype(np.float16).astype(np.float32) if name == "float16" else X
    a, b = model(), model()
    a.fit(x, Y, epochs=2, verbose=0, shuffle=False)
    b.fit(expected, Y, epochs=2, verbose=0, shuffle=False)
    assert same_weights(a, b)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(expected, verbose=0))
    np.testing.assert_array_equal(a.predict_on_batch(x), b.predict_on_batch(expected))


def test_the_core_refuses_a_misaligned_array() -> None:
    """The border's own check, behind Python's conversion: a float32 view at an odd byte offset
    would be read with misaligned loads (undefined behaviour, which UBSan reports)."""
    from fastmlp import _core

    raw = np.zeros(4 * 6 + 1, dtype=np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.float32, count=6, offset=1).reshape(2, 3)
    network = _core.Network32(3, [2], ["linear"], [True], [[0.0] * 4], [0.0], [0.0])
    with pytest.raises(ValueError, match="aligned"):
        network.predict(misaligned, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_weight": np.r_[np.ones(39), np.nan]},
        {"sample_weight": np.r_[np.ones(39), np.inf]},
        {"sample_weight": np.ones(39)},
        {"sample_weight": "heavy"},
        {"class_weight": {0: np.nan}},
        {"class_weight": {0: 1.0, 7: 1.0}},
        {"class_weight": {"a": 1.0}},
        {"validation_data": (np.full((3, 5), np.nan), np.zeros(3, int))},
        {"validation_data": (X[:3], np.array([0, 1, 9]))},
        {"validation_data": (X[:3],)},
        {"validation_split": float("nan")},
        {"validation_split": 1.0},
        {"validation_freq": 0},
        {"batch_size": float("nan")},
        {"batch_size": True},
        {"epochs": float("inf")},
        {"initial_epoch": -1},
        {"callbacks": [object()]},
        {"verbose": 7},
    ],
    ids=lambda k: next(iter(k)) + "=" + repr(next(iter(k.values())))[:20],
)
def test_bad_fit_arguments_are_refused_before_any_update(kwargs: dict[str, Any]) -> None:
    net = model()
    before = net.get_weights()
    with pytest.raises((ValueError, TypeError)):
        net.fit(X, Y, epochs=2, verbose=0, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    assert net.optimizer is not None and net.optimizer.iterations == 0
    still_trains_like_a_fresh_twin(net)


# ---------------------------------------------------------------- misbehaving callbacks


class Raises(fm.callbacks.Callback):
    def __init__(self, hook: str) -> None:
        super().__init__()
        setattr(self, hook, self.fail)

    def fail(self, *args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("from a callback")


@pytest.mark.parametrize(
    "hook", ["on_train_begin", "on_epoch_begin", "on_train_batch_end", "on_epoch_end", "on_train_end", "on_test_end"]
)
def test_a_callback_that_raises_leaves_a_usable_model(hook: str) -> None:
    net = model()
    with pytest.raises(ZeroDivisionError):
        net.fit(X, Y, epochs=2, verbose=0, validation_split=0.2, callbacks=[Raises(hook)])
    assert all(np.isfinite(w).all() for w in net.get_weights())
    net.fit(X, Y, epochs=1, verbose=0)  # not stuck "fitting"
    net.add(fm.layers.Dense(2))


def test_a_callback_that_rewrites_its_own_model_reference() -> None:
    class Detach(fm.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.model = None

    net = model()
    net.fit(X, Y, epochs=2, verbose=0, callbacks=[Detach()])
    still_trains_like_a_fresh_twin(net)


def test_pickling_from_a_callback_and_after() -> None:
    snapshots: list[bytes] = []

    class Snapshot(fm.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            snapshots.append(pickle.dumps(self.model))

    net = model("adam")
    net.fit(X, Y, epochs=2, verbose=0, callbacks=[Snapshot()])
    restored = pickle.loads(snapshots[-1])
    assert same_weights(restored, net)
    restored.fit(X, Y, epochs=1, verbose=0, shuffle=False)
    net.fit(X, Y, epochs=1, verbose=0, shuffle=False)
    assert same_weights(restored, net)


def test_the_core_refuses_an_all_zero_generator_state() -> None:
    """xoshiro's all-zero state is a fixed point: fit would shuffle forever. The core refuses it
    (the file reader does too, before it gets here) and keeps its state."""
    from fastmlp import _core

    network = _core.Network32(5, [3], ["softmax"], [True], [[0.0] * 4], [0.0], [0.0])
    trainer = _core.Trainer32(network, "sparse_categorical_crossentropy", False, [], fm.optimizers.Adam().get_config(), 1)
    trainer.begin_epoch(40, True)
    state = trainer.get_state()
    with pytest.raises(ValueError, match="all zero"):
        trainer.set_state({**state, "rng": [0, 0, 0, 0]})
    assert trainer.get_state()["rng"] == state["rng"]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS as Linux applies it to thread stacks")
def test_threads_the_system_refuses_leave_the_pool_as_it_was() -> None:
    # 1023 workers need about 8 GB of stack; under a 3 GB address-space limit the system starts
    # a few hundred. The call must fail clearly and leave the count (and a working pool) as it was.
    if "ASAN_OPTIONS" in os.environ or "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("AddressSanitizer's shadow memory needs an unlimited address space")
    script = textwrap.dedent(
        """
        import resource, numpy as np, fastmlp as fm
        fm.set_num_threads(2)
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))
        try:
            fm.set_num_threads(1024)
            print("started")
        except RuntimeError as error:
            print("refused:", error)
        print("threads", fm.get_num_threads())
        m = fm.Sequential([fm.Input((4,)), fm.layers.Dense(3)])
        m.compile("sgd", "mse")
        m.fit(np.ones((256, 4)), np.ones((256, 3)), batch_size=64, verbose=0)
        import os
        print("tasks", len(os.listdir("/proc/self/task")))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if "started" in out.stdout:
        pytest.skip("this system started 1023 threads within 3 GB")
    assert "refused: could not start 1023 worker threads" in out.stdout and "fastmlp keeps 2 thread(s)" in out.stdout
    assert "threads 2" in out.stdout
    tasks = int(out.stdout.split("tasks")[1])
    assert tasks < 10  # the refused call's threads were joined
