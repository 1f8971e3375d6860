"""Threads that wait for each other spin briefly, then block (cpp/src/waiter.h).

The blocking path is what runs when the host deschedules a thread's partner, which a quiet test
machine rarely does: ``FASTMLP_SPIN_US=0`` makes every wait block at once, so these tests run
the pool, the feature pipeline and the pipelined step's barrier through it (in subprocesses: the
budget is read once, when the pool starts) and check that every thread count still gives the
same bits. Two processes with two threads each, squeezed onto one CPU, must both finish (with
spinning waiters and no blocking, each thread could burn its time slice waiting for the other).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Trains with 1, 2 and 3 threads (the step split by rows with the first layer pipelined over the
# input features, by rows alone, and by columns), predicts with each, and prints "same" when all
# give the bits of one thread.
THREAD_COUNTS_CHILD = """
import numpy as np, fastmlp as fm
from fastmlp import _core
rng = np.random.default_rng(4)
x = rng.random((700, 784), dtype=np.float32)
x[x < 0.8] = 0  # sparse, as MNIST: the pipelined step
x[:100] = rng.random((100, 784), dtype=np.float32)  # and a dense start: the plain row split
y = rng.integers(0, 10, 700)
def train(threads, step, optimizer):
    fm.set_num_threads(threads)
    _core.set_step(step)
    fm.utils.set_random_seed(2)
    m = fm.Sequential([fm.layers.Input(shape=(784,)), fm.layers.Dense(100, activation="sigmoid"),
                       fm.layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = m.fit(x, y, batch_size=64, epochs=2, verbose=0, shuffle=True).history
    return m.get_weights() + [m.predict(x, verbose=0)], history
for optimizer in ("sgd", "adam"):
    first = train(1, "auto", optimizer)
    for setting in ((2, "pipeline"), (3, "pipeline"), (2, "rows"), (2, "columns"), (2, "auto")):
        arrays, history = train(*setting, optimizer)
        assert history == first[1], setting
        assert all(np.array_equal(a, b) for a, b in zip(first[0], arrays)), setting
print("same")
"""


def run_child(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, check=False)


@pytest.mark.parametrize("spin_us", ["0", "1000"])
def test_every_thread_count_gives_the_same_bits_when_waits_block_or_spin(spin_us: str) -> None:
    # 0: every wait blocks; 1000: a wait blocks only when a partner is a millisecond late.
    result = run_child(THREAD_COUNTS_CHILD, {"FASTMLP_SPIN_US": spin_us})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "same"


# One process's fit, pinned to the CPU it is given: prints its thread count and a digest of the
# weights after its fit.
FIT_CHILD = """
import hashlib, os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
import numpy as np, fastmlp as fm
x, y = np.load(sys.argv[2]), np.load(sys.argv[3])
fm.utils.set_random_seed(3)
m = fm.Sequential([fm.layers.Input(shape=(784,)), fm.layers.Dense(100, activation="sigmoid"),
                   fm.layers.Dense(10, activation="softmax")])
m.compile(optimizer=fm.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
m.fit(x, y, batch_size=64, epochs=2, verbose=0)
print(fm.get_num_threads(), hashlib.sha256(b"".join(w.tobytes() for w in m.get_weights())).hexdigest())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
@pytest.mark.parametrize("spin_us", ["0", "default"])
def test_two_processes_with_two_threads_on_one_cpu_both_finish(tmp_path: Path, spin_us: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.random((2000, 784), dtype=np.float32)
    x[x < 0.8] = 0  # sparse: the pipelined step, whose parts wait for each other most
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", rng.integers(0, 10, 2000).astype(np.int32))
    cpu = str(min(os.sched_getaffinity(0)))
    command = [sys.executable, "-c", FIT_CHILD, cpu, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMLP_NUM_THREADS", "FASTMLP_SPIN_US")}
    if spin_us != "default":
        env["FASTMLP_SPIN_US"] = spin_us

    alone = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                           env={**env, "FASTMLP_NUM_THREADS": "1"})
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert alone.stdout.split()[0] == "1"
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**env, "FASTMLP_NUM_THREADS": "2"}) for _ in range(2)]
    try:
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-2000:]
        assert out.split() == ["2", alone.stdout.split()[1]]


@pytest.mark.parametrize("value", ["-1", "1.5", "fast", "1000001"])
def test_an_invalid_spin_budget_is_an_error_at_import(value: str) -> None:
    result = run_child("import fastmlp", {"FASTMLP_SPIN_US": value}, timeout=60)
    assert result.returncode != 0
    assert "ValueError: FASTMLP_SPIN_US must be an integer from 0 to 1000000" in result.stderr
    assert f"got '{value}'" in result.stderr
