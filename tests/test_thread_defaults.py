"""The thread count fastmlp starts with follows the limits the process was given:
FASTMLP_NUM_THREADS, else OMP_NUM_THREADS (parsed as OpenMP parses it), else the CPUs the process
may use (affinity, cgroup CPU quota); threadpoolctl's limits apply to it. The environment and
affinity cases run in a fresh process each; the cgroup cases read fake cgroup trees."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastmlp import _thread_count

THREAD_VARIABLES = ("FASTMLP_NUM_THREADS", "OMP_NUM_THREADS")


def run_python(code: str, env_update: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def threads_at_import(env_update: dict[str, str], before: str = "") -> tuple[int, str]:
    result = run_python(f"{before}\nimport fastmlp as fm\nprint(fm.get_num_threads())", env_update)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1]), result.stderr


def allowed_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def test_fastmlp_num_threads_wins_over_omp_num_threads() -> None:
    assert threads_at_import({"FASTMLP_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"})[0] == 3


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3", 3), ("3,2", 3), (" 2 ", 2), ("4, 1", 4), ("5000", 1024)])
def test_omp_num_threads_is_parsed_as_openmp_parses_it(value: str, expected: int) -> None:
    assert _thread_count.parse_omp_num_threads(value) == expected


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5", ",2", "\u0663"])
def test_invalid_omp_num_threads_is_warned_about(value: str) -> None:
    with pytest.warns(RuntimeWarning, match="OMP_NUM_THREADS"):
        assert _thread_count.parse_omp_num_threads(value) is None


def test_omp_num_threads_when_fastmlp_num_threads_is_unset() -> None:
    threads, stderr = threads_at_import({"OMP_NUM_THREADS": "3,2"})
    assert threads == 3
    assert "Warning" not in stderr


def test_invalid_omp_num_threads_is_ignored_at_import() -> None:
    threads, stderr = threads_at_import({"OMP_NUM_THREADS": "abc"})
    assert threads == _thread_count.usable_cpus()
    assert "RuntimeWarning" in stderr and "OMP_NUM_THREADS" in stderr and "'abc'" in stderr


def test_empty_variables_count_as_unset() -> None:
    threads, stderr = threads_at_import({"FASTMLP_NUM_THREADS": "", "OMP_NUM_THREADS": ""})
    assert threads == _thread_count.usable_cpus()
    assert stderr == ""


def test_set_num_threads_wins_over_the_environment() -> None:
    result = run_python("import fastmlp as fm; fm.set_num_threads(2); print(fm.get_num_threads())",
                        {"FASTMLP_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_default_follows_the_cpu_affinity() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    for count in sorted({1, min(2, len(cpus))}):
        pin = f"import os; os.sched_setaffinity(0, {set(cpus[:count])!r})"
        threads, _ = threads_at_import({}, before=pin)
        assert threads == min(count, _thread_count.cgroup_cpu_limit() or count)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def test_cgroup_v2_quota_rounds_up(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "150000 100000\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) == math.ceil(1.5)


def test_cgroup_v2_without_quota(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) is None


def test_cgroup_v2_smallest_quota_of_the_process_cgroup_and_its_parents(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "0::/outer/inner\n")
    write(tmp_path / "cg" / "cpu.max", "max 100000\n")
    write(tmp_path / "cg" / "outer" / "cpu.max", "30000 100000\n")  # 0.3 CPU: at least 1
    write(tmp_path / "cg" / "outer" / "inner" / "cpu.max", "400000 100000\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) == 1


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "4:memory:/x\n3:cpu,cpuacct:/job\n0::/\n")
    write(tmp_path / "cg" / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "250000\n")
    write(tmp_path / "cg" / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "100000\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) == 3


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "3:cpu,cpuacct:/\n")
    write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cg" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) is None


def test_missing_or_garbled_cgroup_files_mean_no_limit(tmp_path: Path) -> None:
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "none"), str(tmp_path / "none")) is None
    write(tmp_path / "self_cgroup", "garbage\n0::/\n")
    write(tmp_path / "cg" / "cpu.max", "lots of words here\n")
    assert _thread_count.cgroup_cpu_limit(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) is None


def test_quota_lowers_the_affinity_count(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "100000 100000\n")
    assert _thread_count.usable_cpus(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) == 1
    write(tmp_path / "cg" / "cpu.max", "100000000 100000\n")  # 1000 CPUs: affinity is lower
    assert _thread_count.usable_cpus(str(tmp_path / "cg"), str(tmp_path / "self_cgroup")) == min(allowed_cpus(), 1000)


def test_default_reads_the_rules_in_order(tmp_path: Path) -> None:
    write(tmp_path / "self_cgroup", "0::/\n")
    write(tmp_path / "cg" / "cpu.max", "100000 100000\n")
    cg = {"cgroup_root": str(tmp_path / "cg"), "proc_cgroup": str(tmp_path / "self_cgroup")}
    assert _thread_count.default_num_threads({"FASTMLP_NUM_THREADS": "4", "OMP_NUM_THREADS": "2"}, **cg) == 4
    assert _thread_count.default_num_threads({"OMP_NUM_THREADS": "2"}, **cg) == 2
    assert _thread_count.default_num_threads({}, **cg) == 1
    with pytest.warns(RuntimeWarning, match="OMP_NUM_THREADS"):
        assert _thread_count.default_num_threads({"OMP_NUM_THREADS": "x"}, **cg) == 1


THREADPOOLCTL_PROBE = """
import sys
{first}
import fastmlp as fm
{second}
fm.set_num_threads(3)
from threadpoolctl import threadpool_info, threadpool_limits
listed = [i for i in threadpool_info() if i["internal_api"] == "fastmlp"]
assert len(listed) == 1 and listed[0]["num_threads"] == 3, listed
with threadpool_limits(1):
    inside = fm.get_num_threads()
with threadpool_limits(limits=2, user_api="fastmlp"):
    named = fm.get_num_threads()
with threadpool_limits(limits=1, user_api="blas"):
    other = fm.get_num_threads()
print(inside, named, other, fm.get_num_threads())
"""


@pytest.mark.parametrize("order", ["threadpoolctl first", "fastmlp first"])
def test_threadpoolctl_lists_and_limits_fastmlp(order: str) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not hasattr(threadpoolctl, "register"):
        pytest.skip("this threadpoolctl cannot register controllers")
    statement = "import threadpoolctl"
    first, second = (statement, "") if order == "threadpoolctl first" else ("", statement)
    result = run_python(THREADPOOLCTL_PROBE.format(first=first, second=second))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "2", "3", "3"]


def test_import_fastmlp_does_not_import_threadpoolctl() -> None:
    result = run_python("import sys, fastmlp; print('threadpoolctl' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
