"""Settings and fixtures of the pytest-benchmark suite (``python -m pytest bench/ --benchmark-only``).

The suite shares pyproject's pytest configuration with tests/, and three of its settings are
wrong for benchmarks, so they are adjusted here, per item:

* ``timeout = 300``: a benchmark that calibrates and repeats a whole epoch may take longer;
* ``filterwarnings = error``: pytest-benchmark's own notices (e.g. that timings are disabled
  under ``--benchmark-disable``) must stay warnings;
* tests/ runs with every ISA; benchmarks measure the one fastmlp picked for this CPU (the
  default, unchanged here), on one thread unless a benchmark asks for more.

Every benchmark also asserts that its result is right. Benchmarks that know their FLOP count
record GFLOP/s and the fraction of the FMA peak (``fm.utils.peak_gflops``, measured once per
session) in ``extra_info``; a summary table of those is printed at the end, and the JSON
(``--benchmark-json``) gets the machine, the peak and the command line.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fastmlp as fm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import records
import workloads as wl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.timeout(1800))
            item.add_marker(pytest.mark.filterwarnings("default::pytest_benchmark.logger.PytestBenchmarkWarning"))


@pytest.fixture(autouse=True, scope="session")
def one_thread_by_default() -> None:
    """Benchmarks run on one thread unless they ask for more (``records.use_threads``). Set once per
    session rather than restored around each test: switching the pool's size back and forth in
    quick succession is itself a cost (the workers are stopped and started), and not what any
    benchmark measures."""
    records.use_threads(1)


@pytest.fixture(scope="session")
def mnist() -> tuple[wl.Images, wl.Labels]:
    """60000 MNIST training images (float32 in [0, 1], flat) and labels; the synthetic stand-in
    with MNIST's sparsity if the data set cannot be loaded."""
    x, y, source = wl.mnist_like(60000)
    records.data_sources.add(source)
    return x, y


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    model = platform.processor()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    machine_info["fastmlp"] = {
        "version": fm.__version__, "isa": fm.active_isa(), "available_isas": fm.available_isas(),
        "cpu": model, "cores": os.cpu_count(), "numpy": np.__version__,
        "peak_gflops": {str(t): round(v, 2) for t, v in records.measured_peaks().items()},
        "data": sorted(records.data_sources),
    }


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """The command line goes in; every round's raw time goes out (74 MB for the whole suite,
    where the statistics take 140 kB)."""
    output_json["command"] = " ".join(["python -m pytest", *config.invocation_params.args])
    for bench in output_json.get("benchmarks", []):
        bench.get("stats", {}).pop("data", None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not records.summary:
        return
    write = terminalreporter.write_line
    peaks = ", ".join(f"{v:.1f} GFLOP/s on {t} thread(s)" for t, v in records.measured_peaks().items())
    write("")
    write(f"fastmlp {fm.__version__}, ISA {fm.active_isa()}; FMA peak {peaks or 'not measured'}; "
          f"data: {', '.join(sorted(records.data_sources)) or 'synthetic only'}")
    write("Medians; GFLOP/s are dense-equivalent (2 per multiply-add, skipped zeros included):")
    width = max(len(row[0]) for row in records.summary)
    for name, median, figure, unit, fraction in records.summary:
        share = f"  {100 * fraction:5.1f}% of peak" if fraction is not None else ""
        write(f"  {name:<{width}}  {median * 1e6:12.1f} us  {figure:8.2f} {unit}{share}")
