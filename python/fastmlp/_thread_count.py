"""The thread count fastmlp starts with, from the limits the process was given.

In order, the first that is set wins:

1. ``FASTMLP_NUM_THREADS``: an integer from 1 to 1024; anything else is a ``ValueError`` (it is
   fastmlp's own setting, so a typo is an error, not a silent default).
2. ``OMP_NUM_THREADS``, parsed as OpenMP runtimes parse it: the first value of a comma-separated
   list. It is the variable joblib's process workers, Dask's nannies and Ray's workers set to
   keep each worker's libraries from taking every core; a value that is not a positive integer
   is warned about and ignored, as OpenMP runtimes do.
3. The CPUs this process may use: its CPU affinity (``taskset``, ``os.sched_getaffinity``),
   lowered to the CPU quota of its cgroup and every cgroup above it (``cpu.max`` in cgroup v2,
   ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in v1; ``ceil(quota / period)``, at least 1),
   which is how container runtimes (``docker --cpus``, Kubernetes limits) limit a process.

``fm.set_num_threads`` and threadpoolctl's ``threadpool_limits`` change the count later.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

MAX_THREADS = 1024
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


def default_num_threads(
    environ: Mapping[str, str] | None = None,
    cgroup_root: str = CGROUP_ROOT,
    proc_cgroup: str = PROC_CGROUP,
) -> int:
    """The thread count the rules above give (the arguments exist for tests)."""
    env = os.environ if environ is None else environ
    explicit = env.get("FASTMLP_NUM_THREADS", "")
    if explicit != "":
        return parse_fastmlp_num_threads(explicit)
    omp = parse_omp_num_threads(env.get("OMP_NUM_THREADS", ""))
    if omp is not None:
        return omp
    return usable_cpus(cgroup_root, proc_cgroup)


def parse_fastmlp_num_threads(value: str) -> int:
    text = value.strip()
    if not (text.isdigit() and text.isascii()) or not 1 <= int(text) <= MAX_THREADS:
        raise ValueError(
            f"FASTMLP_NUM_THREADS must be an integer from 1 to {MAX_THREADS}. "
            f"Received: FASTMLP_NUM_THREADS={value!r}"
        )
    return int(text)


def parse_omp_num_threads(value: str) -> int | None:
    """The first value of OMP_NUM_THREADS's list, capped at MAX_THREADS; None when unset, empty or
    invalid (with a warning for invalid)."""
    if value.strip() == "":
        return None
    first = value.split(",")[0].strip()
    if not (first.isdigit() and first.isascii()) or int(first) < 1:
        warnings.warn(
            f"Ignoring OMP_NUM_THREADS={value!r}: its first value is not a positive integer. "
            "fastmlp uses the CPUs this process may use instead.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return min(int(first), MAX_THREADS)


def usable_cpus(cgroup_root: str = CGROUP_ROOT, proc_cgroup: str = PROC_CGROUP) -> int:
    """The CPUs in this process's affinity mask, lowered to its cgroups' CPU quota."""
    if hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:  # pragma: no cover (not Linux)
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, quota)
    return max(1, min(cpus, MAX_THREADS))


def cgroup_cpu_limit(cgroup_root: str = CGROUP_ROOT, proc_cgroup: str = PROC_CGROUP) -> int | None:
    """The smallest CPU quota, rounded up to whole CPUs, of this process's cgroup and those above
    it, in both cgroup versions; None when none is set or the files are not there."""
    limits = [
        limit
        for directory in cgroup_directories(Path(cgroup_root), Path(proc_cgroup))
        for limit in (read_v2_limit(directory), read_v1_limit(directory))
        if limit is not None
    ]
    return min(limits) if limits else None


def cgroup_directories(root: Path, proc_cgroup: Path) -> Iterator[Path]:
    """Where this process's cgroup and its ancestors may be: under the v2 root, or the v1 cpu
    controller's mount, at the path /proc/self/cgroup names and each parent up to the root.
    (In a container with its own cgroup namespace that path is "/", the root itself.)"""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    paths: list[tuple[Path, str]] = [(root, "/"), (root / "cpu", "/"), (root / "cpu,cpuacct", "/")]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths.append((root, path))
        elif "cpu" in controllers.split(","):
            paths.extend((mount, path) for mount in (root / "cpu", root / "cpu,cpuacct", root / controllers))
    seen: set[Path] = set()
    for mount, path in paths:
        relative = Path(path.strip() or "/").relative_to("/") if path.startswith("/") else Path(path)
        for directory in (mount / relative, *(mount / parent for parent in relative.parents)):
            if directory not in seen:
                seen.add(directory)
                yield directory


def read_v2_limit(directory: Path) -> int | None:
    """``cpu.max`` holds "QUOTA PERIOD" in microseconds, QUOTA "max" for none."""
    fields = read_fields(directory / "cpu.max")
    if fields is None or len(fields) != 2 or fields[0] == "max":
        return None
    return quota_to_cpus(fields[0], fields[1])


def read_v1_limit(directory: Path) -> int | None:
    """``cpu.cfs_quota_us`` holds the quota (-1 for none), ``cpu.cfs_period_us`` the period."""
    quota = read_fields(directory / "cpu.cfs_quota_us")
    period = read_fields(directory / "cpu.cfs_period_us")
    if quota is None or period is None or len(quota) != 1 or len(period) != 1:
        return None
    return quota_to_cpus(quota[0], period[0])


def quota_to_cpus(quota: str, period: str) -> int | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def read_fields(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").split()
    except OSError:
        return None
