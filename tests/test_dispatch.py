"""The kernel table is chosen once at import: the best the CPU has, or FASTMLP_ISA; the thread
count starts at FASTMLP_NUM_THREADS or the CPUs available. Each case runs in a fresh process."""

from __future__ import annotations

import os
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
