"""What the pytest-benchmark suite records beside the times: GFLOP/s and the fraction of the FMA
peak, samples per second, memory bandwidth. Kept in ``extra_info`` of each benchmark (so they
land in the ``--benchmark-json`` file) and listed by conftest.py at the end of the run.

``use_threads`` sets fastmlp's thread count for the benchmarks that ask for more than one.

The peak is ``fm.utils.peak_gflops``, measured once per session and thread count, in the same
run as the benchmarks, so the fractions are comparable across machines.
"""

from __future__ import annotations

from typing import Any, Optional

import fastmlp as fm

_peak: dict[int, float] = {}
# (benchmark name, median seconds, figure, unit, fraction of the peak or None)
summary: list[tuple[str, float, float, str, Optional[float]]] = []
data_sources: set[str] = set()


def peak_gflops(threads: int = 1) -> float:
    """The FMA peak for ``threads``, measured on first use and kept for the session."""
    if threads not in _peak:
        _peak[threads] = fm.utils.peak_gflops(threads, 0.5)
    return _peak[threads]


def measured_peaks() -> dict[int, float]:
    return dict(sorted(_peak.items()))


def _median(benchmark: Any) -> Optional[float]:
    stats = getattr(benchmark, "stats", None)
    if not stats:  # --benchmark-disable: the function ran once, untimed
        return None
    return float(stats.stats.median)


def record_flops(benchmark: Any, flops: float, threads: int = 1) -> None:
    """GFLOP/s (``flops`` per call / median time) and the fraction of the peak."""
    median = _median(benchmark)
    if median is None:
        return
    gflops = flops / median / 1e9
    fraction = gflops / peak_gflops(threads)
    benchmark.extra_info.update(flops=flops, gflops=round(gflops, 2), fraction_of_peak=round(fraction, 3),
                                threads=threads)
    summary.append((benchmark.name, median, gflops, "GFLOP/s", fraction))


def record_rate(benchmark: Any, samples: int, flops_per_sample: int, threads: int = 1) -> None:
    """Samples per second (``samples`` per call) besides GFLOP/s."""
    median = _median(benchmark)
    if median is None:
        return
    benchmark.extra_info["samples_per_s"] = round(samples / median, 1)
    record_flops(benchmark, samples * flops_per_sample, threads)


def record_bandwidth(benchmark: Any, nbytes: int) -> None:
    """GB/s of memory traffic (``nbytes`` per call), for the memory-bound kernels."""
    median = _median(benchmark)
    if median is None:
        return
    rate = nbytes / median / 1e9
    benchmark.extra_info["gb_per_s"] = round(rate, 2)
    summary.append((benchmark.name, median, rate, "GB/s", None))


def use_threads(n: int) -> None:
    """Set fastmlp's thread count, only when it changes (resizing the pool stops and starts its
    workers, which no benchmark means to measure)."""
    if fm.get_num_threads() != n:
        fm.set_num_threads(n)
