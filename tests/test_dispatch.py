"""The kernel table is chosen once at import: the best the CPU has, or FASTMLP_ISA; the thread
count starts at FASTMLP_NUM_THREADS or the CPUs available. Each case runs in a fresh process."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

import fastmlp as fm
import pytest

PROBE = "import fastmlp as fm; print(fm.active_isa(), fm.get_num_threads(), ','.join(fm.available_isas()))"


def run(env_update: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMLP_ISA", "FASTMLP_NUM_THREADS")}
    env.update(env_update)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)


def test_default_is_the_best_available() -> None:
    result = run({})
    assert result.returncode == 0, result.stderr
    active, _, available = result.stdout.split()
    assert active == available.split(",")[0]
    assert "scalar" in available.split(",")


@pytest.mark.parametrize("isa", fm.available_isas())
def test_forcing_each_available_isa(isa: str) -> None:
    result = run({"FASTMLP_ISA": isa})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == isa


@pytest.mark.parametrize("name", ["bogus", "avx512", "neon"])
def test_unknown_or_missing_isa_is_a_clear_error(name: str) -> None:
    if name in fm.available_isas():
        pytest.skip(f"{name} is available here")
    result = run({"FASTMLP_ISA": name})
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "FASTMLP_ISA" in result.stderr and name in result.stderr
    assert "scalar" in result.stderr  # the message lists what is available


def test_thread_count_from_the_environment() -> None:
    result = run({"FASTMLP_NUM_THREADS": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "3"


@pytest.mark.parametrize("value", ["0", "abc", "-2", "2.5"])
def test_bad_thread_count_is_a_clear_error(value: str) -> None:
    result = run({"FASTMLP_NUM_THREADS": value})
    assert result.returncode != 0
    assert "FASTMLP_NUM_THREADS" in result.stderr and value in result.stderr


def test_available_isas_are_a_subset_of_the_build() -> None:
    assert set(fm.available_isas()) <= set(fm._core.compiled_isas())
    assert fm.active_isa() in fm.available_isas()


def cpu_flags() -> set[str] | None:
    """The CPU feature flags Linux reports (it leaves out those the OS does not enable), or None
    where /proc/cpuinfo is not there."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


AVX512_FLAGS = {"avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"}


def test_avx512_is_listed_first_exactly_when_the_cpu_has_it() -> None:
    if "avx512" not in fm._core.compiled_isas():
        pytest.skip("this build has no AVX-512 kernels")
    flags = cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo to tell what the CPU has")
    result = run({})
    assert result.returncode == 0, result.stderr
    active, _, available = result.stdout.split()
    if AVX512_FLAGS <= flags:
        assert available.split(",")[0] == "avx512"
        assert active == "avx512"
    else:
        assert "avx512" not in available.split(",")


def test_forcing_avx512_runs_its_kernels() -> None:
    if "avx512" not in fm.available_isas():
        pytest.skip("this CPU (or build) has no AVX-512")
    probe = (
        "import numpy as np, fastmlp as fm; from fastmlp import _core;"
        "a = np.arange(1, 13 * 37 + 1, dtype=np.float32).reshape(13, 37) / 64;"
        "b = np.arange(1, 37 * 33 + 1, dtype=np.float32).reshape(37, 33) / 64;"
        "c = _core.kernels.gemm(a, b);"
        "print(fm.active_isa(), float(np.abs(c - a.astype(np.float64) @ b).max()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_ISA"}
    env["FASTMLP_ISA"] = "avx512"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    active, error = result.stdout.split()
    assert active == "avx512"
    # Every product and partial sum is a multiple of 2**-12 below 2**12 (under 2**24 steps of
    # 2**-12): exact in float32, so any order of summation gives the float64 value.
    assert float(error) == 0.0


@pytest.mark.parametrize("isa", fm.available_isas())
def test_only_the_chosen_isa_builds_its_kernel_table(isa: str) -> None:
    # An ISA's table builder is compiled with its flags, and GCC fills even a struct of pointers
    # with its widest registers: building AVX-512's table on a CPU without it was an illegal
    # instruction at import. Forcing one ISA must leave every other table unbuilt.
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_ISA"}
    env["FASTMLP_ISA"] = isa
    result = subprocess.run(
        [sys.executable, "-c", "from fastmlp import _core; print(','.join(_core.built_isas()))"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [isa]


# The qemu CPU models and the best ISA each must run on: "max" is everything qemu 7.2's emulator
# has (AVX2, no AVX-512), Westmere has no AVX at all.
EMULATED_CPUS = [("max", "avx2"), ("Westmere", "scalar")]
EMULATED_PROBE = """
import numpy as np, fastmlp as fm
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 5)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
model = fm.Sequential([fm.layers.Dense(8, activation="relu"), fm.layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, epochs=2, batch_size=16, verbose=0)
p = model.predict(x, verbose=0)
assert p.shape == (64, 2) and np.all(np.isfinite(p)), p
print(fm.active_isa(), ",".join(fm.available_isas()))
"""


@pytest.mark.parametrize(("cpu", "best"), EMULATED_CPUS)
def test_import_and_fit_on_an_emulated_older_cpu(cpu: str, best: str) -> None:
    # The build carries kernels for CPUs newer than the one it may run on; on an older one the
    # import must choose what that CPU has and run nothing else. qemu's user-mode emulator runs
    # this interpreter on a CPU model without AVX-512 (or without AVX), whatever the host has,
    # and stops at the first instruction that model lacks.
    qemu = shutil.which("qemu-x86_64")
    if qemu is None or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    if "ASAN_OPTIONS" in os.environ or "libasan" in os.environ.get("LD_PRELOAD", ""):
        # Under qemu, AddressSanitizer's shadow memory of terabytes gets touched page by page:
        # the process grew past 14 GB in a minute (tools/sanitize.sh) before it was stopped.
        pytest.skip("the sanitizer build (tools/sanitize.sh) cannot run under qemu's emulator")
    env = {k: v for k, v in os.environ.items() if k not in ("FASTMLP_ISA", "FASTMLP_NUM_THREADS")}
    result = subprocess.run(
        [qemu, "-cpu", cpu, sys.executable, "-c", EMULATED_PROBE],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    active, available = result.stdout.split()
    assert active == best
    assert "avx512" not in available.split(",")
