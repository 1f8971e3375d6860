"""Compare fastmlp with NumPy, PyTorch, JAX and scikit-learn on the workloads of issues 5 and 16.

Usage (from the repository root)::

    python bench/compare.py                       # every installed framework, 5 repetitions
    python bench/compare.py --only fastmlp,torch  # a selection
    python bench/compare.py --workloads train-b64-t1,predict-t1 --reps 3
    python bench/compare.py --quick               # tiny sizes, one repetition: a smoke run
    python bench/compare.py --from-json ~/.cache/fastmlp/bench/compare-....json --plot table.png

Frameworks: ``fastmlp``; ``numpy`` (bench/numpy_mlp.py, the same training step in float32
NumPy: the fair BLAS baseline); ``reference`` (``fastmlp.reference``, float64, as written);
``torch`` (PyTorch CPU at its best case), ``jax`` (XLA's CPU backend, the whole epoch one
compiled ``lax.scan``, compiled before timing) and ``sklearn`` (``MLPClassifier``) when installed
(``pip install ".[compare]"``).
See runners.py for how each is driven and workloads.py for the workloads and the FLOP formula.

How it measures, and why:

* Every (repetition, workload, framework) runs in a fresh process (this script in worker
  mode): no framework's thread pool, allocator state or imports affect another's.
* Round robin: for each repetition, every workload runs every framework in turn (starting
  with a different framework each repetition), so slow drifts of the machine (other load,
  clocks, thermals) hit all frameworks alike.
* The same thread count for everyone: ``fm.set_num_threads``, ``torch.set_num_threads``, XLA's
  flags and the OMP/OpenBLAS/MKL environment variables of the worker process.
* The same cores for everyone: each worker process is pinned (``sched_setaffinity``, before it
  starts) to the first ``threads`` CPUs this script may use, or to ``--cpus``; ``--cpus none``
  leaves the workers unpinned.
* Each worker first warms up (training: a few batches, then the starting weights are restored;
  JAX compiles its epoch for the full data and runs it once; predicting all at once: one whole
  untimed call), then times one full run with ``time.perf_counter``. JAX's compile times are
  reported apart.
* Each worker also checks its result: a trained model's loss (by the float64 reference, on
  the first rows) must have decreased; predictions must match the reference's. A failed check
  fails the run.
* Medians over repetitions; ratios and fractions of the FMA peak come from medians measured
  in the same run (the peak, ``fm.utils.peak_gflops``, is measured in each repetition too).

The table goes to stdout, progress to stderr, everything (with the exact command line) to a
JSON file; ``--plot PNG`` draws the table as a bar chart when matplotlib is importable.
"""

from __future__ import annotations

import os
import sys

if "--worker" not in sys.argv:
    # The coordinating process only launches workers and does arithmetic: it must not hold
    # thread pools that could compete with them (fastmlp is imported through workloads.py).
    for _name in ("FASTMLP_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"

import argparse
import datetime
import json
import platform
import shlex
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
# Where a run writes its JSON unless --json says otherwise: outside the tree, so that runs do not
# pile up in git (docs/performance.md cites the ones kept in bench/results/).
RESULTS_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastmlp" / "bench"
sys.path.insert(0, str(HERE))

import workloads as wl  # noqa: E402  (after the environment is set)
from runners import FRAMEWORKS, RUNNERS, available  # noqa: E402

RESULT_PREFIX = "RESULT "
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "FASTMLP_NUM_THREADS")
# Largest |p - p_reference| accepted for a prediction (probabilities; float32 rounding in a
# 4096-long dot product stays far below this).
PREDICT_TOLERANCE = 1e-3
PEAK_SECONDS = 0.5
QUICK_PEAK_SECONDS = 0.05
# A multi-thread worker also times the machine's FMA peak on its threads and on one, right after
# its timed run: whether the host gave each vCPU a core of its own just then (on this project's
# cloud machine it sometimes runs the two vCPUs on one core for seconds: the ratio is then ~1).
SCALING_SECONDS = 0.1


class CheckFailed(AssertionError):
    """A worker's result is wrong: the timing must not be reported."""


# ----------------------------------------------------------------------------- worker


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task in this (fresh) process and return its measurements."""
    threads = int(spec["threads"])
    if spec["framework"] == "peak":
        import fastmlp as fm

        fm.set_num_threads(threads)
        seconds = QUICK_PEAK_SECONDS if spec["quick"] else PEAK_SECONDS
        return {"peak_gflops": fm.utils.peak_gflops(threads, seconds), "machine": machine_info()}

    import numpy as np

    from fastmlp import reference

    work = wl.workload(spec["workload"])
    net = work.net
    n = work.quick_samples if spec["quick"] else work.samples
    x, y, source = wl.load(work.data, n, net.sizes[0], real_mnist=spec["mnist"] == "auto", classes=net.classes)
    params = wl.initial_params(net, seed=0)
    params64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
    runner = RUNNERS[spec["framework"]](net, params, threads)
    xs, ys = runner.prepare(x, y)
    check = min(work.check_rows, n)
    result: dict[str, Any] = {"samples": n, "data_source": source}

    if work.kind == "train":
        warm = min(n, 8 * work.batch)
        runner.warm_up(xs, ys, work.batch, work.learning_rate, work.optimizer, warm)
        runner.reset(params)
        started = time.perf_counter()
        runner.train_epoch(xs, ys, work.batch, work.learning_rate, work.optimizer)
        seconds = time.perf_counter() - started
        result.update(machine_scaling(spec, threads))
        before = wl.mean_loss(x[:check], y[:check], params64, net)
        after = wl.mean_loss(x[:check], y[:check], runner.params64(), net)
        result.update(loss_before=before, loss_after=after)
        if not after < before:
            raise CheckFailed(f"training did not lower the loss: {before:.5f} -> {after:.5f}")
    else:
        predict = runner.predict if work.kind == "predict" else runner.predict_each
        # Steady state, as a serving process sees it: one untimed call of the same size first
        # (buffers sized for the batch, pages touched), a short one for the one-by-one loop.
        predict(xs if work.kind == "predict" else xs[: min(n, 64)])
        started = time.perf_counter()
        out = predict(xs)
        seconds = time.perf_counter() - started
        result.update(machine_scaling(spec, threads))
        probs = runner.to_numpy(out)
        expected = reference.predict(x[:check].astype(np.float64), params64, net.activations)
        if probs.shape != (n, net.sizes[-1]):
            raise CheckFailed(f"predictions have shape {probs.shape}, expected {(n, net.sizes[-1])}")
        diff = float(np.max(np.abs(probs[:check] - expected)))
        result["max_abs_diff"] = diff
        if not diff <= PREDICT_TOLERANCE:
            raise CheckFailed(f"predictions differ from the reference by {diff:.3g}")
    result.update(seconds=seconds, samples_per_s=n / seconds, info=runner.info())
    if hasattr(os, "sched_getaffinity"):
        result["cpus"] = sorted(os.sched_getaffinity(0))
    return result


def machine_scaling(spec: dict[str, Any], threads: int) -> dict[str, float]:
    """The machine's FMA peak on `threads` threads over its 1-thread peak, now (fastmlp's
    multi-thread workers only, right after the timed run: before any NumPy call, whose BLAS
    threads spin for a while after it and would take a core)."""
    if threads < 2 or spec["framework"] != "fastmlp":
        return {}
    import fastmlp as fm

    seconds = QUICK_PEAK_SECONDS if spec["quick"] else SCALING_SECONDS
    return {"fma_scaling": fm.utils.peak_gflops(threads, seconds) / fm.utils.peak_gflops(1, seconds)}


def machine_info() -> dict[str, Any]:
    """The CPU, its cores and instruction set, and the versions that matter."""
    import numpy as np

    import fastmlp as fm

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "isa": fm.active_isa(),
        "available_isas": fm.available_isas(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "fastmlp": fm.__version__,
        "numpy": np.__version__,
    }


def _worker_main(text: str) -> int:
    spec = json.loads(text)
    result = run_worker(spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ----------------------------------------------------------------------------- coordinator


def launch(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one task in a new process with the thread count in its environment."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(spec["threads"])
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    cpus = spec.get("cpus")

    def pin() -> None:  # in the child before it runs Python: every thread it starts inherits it
        os.sched_setaffinity(0, cpus)

    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              preexec_fn=pin if cpus else None)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return parsed
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"exit status {done.returncode}: {tail}"}


def run_all(args: argparse.Namespace, frameworks: list[str], works: list[wl.Workload]) -> dict[str, Any]:
    """Every repetition: the peak per thread count, then each workload on each framework."""
    thread_counts = sorted({w.thread_count(args.threads) for w in works})
    cpus = {t: pinned_cpus(args.cpus, t) for t in thread_counts}
    peaks: dict[int, list[float]] = {t: [] for t in thread_counts}
    raw: dict[tuple[str, str], list[dict[str, Any]]] = {(w.key, f): [] for w in works for f in frameworks}
    machine: dict[str, Any] = {}
    for rep in range(args.reps):
        for t in thread_counts:
            got = launch({"framework": "peak", "threads": t, "quick": args.quick, "cpus": cpus[t]}, args.timeout)
            if "error" in got:
                raise SystemExit(f"measuring the FMA peak failed: {got['error']}")
            peaks[t].append(got["peak_gflops"])
            machine = got["machine"]
            log(f"[rep {rep + 1}/{args.reps}] FMA peak, {t} thread(s): {got['peak_gflops']:.1f} GFLOP/s")
        start = rep % len(frameworks)
        order = frameworks[start:] + frameworks[:start]
        for work in works:
            for framework in order:
                if not RUNNERS[framework].supports(work):
                    continue
                threads = work.thread_count(args.threads)
                spec = {"framework": framework, "workload": work.key, "threads": threads,
                        "quick": args.quick, "mnist": args.mnist, "cpus": cpus[threads]}
                got = launch(spec, args.timeout)
                raw[(work.key, framework)].append(got)
                if "error" in got:
                    log(f"[rep {rep + 1}/{args.reps}] {work.key:<20} {framework:<10} FAILED: {got['error']}")
                else:
                    scaling = (f"; machine's FMA scaling {got['fma_scaling']:.2f}x" if "fma_scaling" in got else "")
                    log(f"[rep {rep + 1}/{args.reps}] {work.key:<20} {framework:<10} "
                        f"{fmt_rate(got['samples_per_s']):>7} samples/s ({got['seconds']:.3f} s{scaling})")
    doc = summarize(args, frameworks, works, peaks, raw, machine)
    doc["settings"]["cpus"] = {str(t): c for t, c in cpus.items()}
    return doc


def pinned_cpus(requested: str, threads: int) -> Optional[list[int]]:
    """The CPUs a worker of ``threads`` threads is pinned to: the first ``threads`` of
    ``requested`` ("auto": those this process may use; all of them where there are fewer), or
    None ("none", or no affinity API)."""
    if requested == "none" or not hasattr(os, "sched_setaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    chosen = usable if requested == "auto" else [int(c) for c in requested.split(",")]
    if not chosen or not set(chosen) <= set(usable):
        raise SystemExit(f"--cpus must name CPUs among those this process may use, {usable}; received {requested!r}")
    if len(chosen) < threads:
        log(f"note: {threads} threads share {len(chosen)} CPU(s) {chosen}")
    return chosen[:threads]


def summarize(
    args: argparse.Namespace,
    frameworks: list[str],
    works: list[wl.Workload],
    peaks: dict[int, list[float]],
    raw: dict[tuple[str, str], list[dict[str, Any]]],
    machine: dict[str, Any],
) -> dict[str, Any]:
    """Medians, ratios, GFLOP/s and fractions of the peak, as one JSON-ready document."""
    peak_median = {t: statistics.median(v) for t, v in peaks.items()}
    rows = []
    for work in works:
        threads = work.thread_count(args.threads)
        flops = work.flops_per_sample()
        cells: dict[str, Any] = {}
        for framework in frameworks:
            runs = raw[(work.key, framework)]
            good = [r for r in runs if "error" not in r]
            cell: dict[str, Any] = {"errors": [r["error"] for r in runs if "error" in r]}
            if not runs and not RUNNERS[framework].supports(work):
                cell["unsupported"] = True
            if good and not cell["errors"]:
                rates = [r["samples_per_s"] for r in good]
                median = statistics.median(rates)
                gflops = median * flops / 1e9
                cell.update(
                    samples_per_s=rates, median=median, min=min(rates), max=max(rates),
                    gflops=gflops, fraction_of_peak=gflops / peak_median[threads],
                    info=good[-1].get("info", {}),
                )
                for key in ("loss_before", "loss_after", "max_abs_diff"):
                    if key in good[-1]:
                        cell[key] = statistics.median(r[key] for r in good)
                if all("fma_scaling" in r for r in good):
                    cell["fma_scaling"] = [r["fma_scaling"] for r in good]
            cells[framework] = cell
        base = cells.get("fastmlp", {}).get("median")
        for cell in cells.values():
            if base and cell.get("median"):
                cell["fastmlp_speedup"] = base / cell["median"]
        source = next((r["data_source"] for f in frameworks for r in raw[(work.key, f)] if "data_source" in r), None)
        samples = work.quick_samples if args.quick else work.samples
        rows.append({
            "key": work.key, "title": work.title(args.threads, samples), "net": work.net.name,
            "hidden_activation": work.net.hidden_activation, "kind": work.kind, "data": work.data,
            "data_source": source, "samples": samples,
            "batch": work.batch if work.kind == "train" else None,
            "optimizer": work.optimizer if work.kind == "train" else None,
            "learning_rate": work.learning_rate if work.kind == "train" else None,
            "threads": threads, "flops_per_sample": flops,
            "limit_samples_per_s": peak_median[threads] * 1e9 / flops, "results": cells,
        })
    return {
        "schema": 1,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "argv": sys.argv,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_info(),
        "machine": machine,
        "settings": {"repetitions": args.reps, "threads": args.threads, "quick": args.quick, "mnist": args.mnist,
                     "frameworks": frameworks, "not_installed": args.not_installed},
        "flop_formula": wl.FLOP_FORMULA,
        "peak_gflops": {str(t): {"runs": v, "median": peak_median[t]} for t, v in peaks.items()},
        "workloads": rows,
    }


def git_info() -> dict[str, Any]:
    def git(*cmd: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", *cmd], cwd=HERE.parent, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


# ----------------------------------------------------------------------------- output


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fmt_rate(value: float) -> str:
    """Samples per second the way the issue writes them: 2.1k, 151k, 1.23M."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e5:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def label(framework: str) -> str:
    return FRAMEWORKS[framework][0]


def render(doc: dict[str, Any]) -> str:
    """The report: machine, peak, formula, then two Markdown tables."""
    frameworks = doc["settings"]["frameworks"]
    m = doc["machine"]
    peak = ", ".join(f"{v['median']:.1f} GFLOP/s on {t} thread{'s' if t != '1' else ''}"
                     for t, v in doc["peak_gflops"].items())
    versions = [f"fastmlp {m.get('fastmlp')}", f"NumPy {m.get('numpy')}"]
    for framework in frameworks:
        info: dict[str, Any] = next((r["results"][framework].get("info", {}) for r in doc["workloads"]
                     if r["results"][framework].get("info")), {})
        if framework == "numpy" and info.get("blas"):
            versions[1] += f" ({info['blas']})"
        if framework in ("torch", "jax", "sklearn") and info.get("version"):
            versions.append(f"{FRAMEWORKS[framework][0]} {info['version']}")
    sources = sorted({r["data_source"] for r in doc["workloads"] if r["data_source"]})
    lines = [
        f"fastmlp comparison, {doc['date']}: median of {doc['settings']['repetitions']} repetition(s)"
        + (" [QUICK: tiny sizes, not a measurement]" if doc["settings"]["quick"] else ""),
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores ({m.get('usable_cores')} usable), "
        f"ISA {m.get('isa')}; FMA peak (fm.utils.peak_gflops, same run): {peak}",
        f"Versions: {', '.join(versions)}, Python {m.get('python')}",
        f"Data: {'; '.join(sources)}. Not installed: {', '.join(doc['settings']['not_installed']) or 'none'}",
        f"FLOPs: {doc['flop_formula']}",
        f"Command: {doc['command']}",
        "",
        "Samples (images) per second, median; in parentheses fastmlp's speed over that framework's "
        "(> 1: fastmlp is faster). Machine limit = FMA peak / FLOPs per sample.",
        "",
    ]
    head = ["workload", *(label(f) for f in frameworks), "machine limit"]
    lines += [_row(head), _row(["---"] * len(head))]
    for r in doc["workloads"]:
        cells = [r["title"]]
        for framework in frameworks:
            cell = r["results"][framework]
            if cell.get("errors"):
                cells.append("FAILED")
            elif "median" not in cell:
                cells.append("n/a")
            elif framework == "fastmlp":
                cells.append(fmt_rate(cell["median"]))
            else:
                cells.append(f"{fmt_rate(cell['median'])} ({cell['fastmlp_speedup']:.2f}x)"
                             if "fastmlp_speedup" in cell else fmt_rate(cell["median"]))
        cells.append(fmt_rate(r["limit_samples_per_s"]))
        lines.append(_row(cells))
    lines += ["", "Achieved GFLOP/s (% of the FMA peak at the same thread count)", ""]
    head = ["workload", "kFLOP/sample", *(label(f) for f in frameworks)]
    lines += [_row(head), _row(["---"] * len(head))]
    for r in doc["workloads"]:
        cells = [r["title"], f"{r['flops_per_sample'] / 1e3:,.0f}"]
        for framework in frameworks:
            cell = r["results"][framework]
            cells.append(f"{cell['gflops']:.1f} ({100 * cell['fraction_of_peak']:.0f}%)" if "gflops" in cell else "n/a")
        lines.append(_row(cells))
    rivals = [f for f in ("jax", "torch") if f in frameworks]
    if "fastmlp" in frameworks and rivals:
        lines += ["", "fastmlp over " + " and ".join(label(f) for f in rivals)
                  + " (speed ratios, > 1: fastmlp is faster), and fastmlp's share of the FMA peak", ""]
        head = ["workload", *(f"x {label(f)}" for f in rivals), "fastmlp % of peak"]
        lines += [_row(head), _row(["---"] * len(head))]
        for r in doc["workloads"]:
            mine = r["results"]["fastmlp"]
            cells = [r["title"]]
            for f in rivals:
                speedup = r["results"][f].get("fastmlp_speedup")
                cells.append(f"{speedup:.2f}" if speedup is not None and f != "fastmlp" else "n/a")
            cells.append(f"{100 * mine['fraction_of_peak']:.0f}%" if "fraction_of_peak" in mine else "n/a")
            lines.append(_row(cells))
    compiles = [(r["key"], r["results"]["jax"]["info"].get("compile_seconds", {})) for r in doc["workloads"]
                if r["results"].get("jax", {}).get("info")]
    if compiles:
        lines += ["", "JAX compile time, seconds (excluded from the timings above; a first predict call "
                  "includes its run):", ""]
        for key, seconds in compiles:
            lines.append(f"- {key}: " + ", ".join(f"{what} {value:.2f}" for what, value in seconds.items()))
    lines += ["", "Checks: training loss on the first rows before -> after one epoch (float64 reference); "
              "max |p - p_reference| for predictions", ""]
    for r in doc["workloads"]:
        parts = []
        for framework in frameworks:
            cell = r["results"][framework]
            if "loss_after" in cell:
                parts.append(f"{framework} {cell['loss_before']:.4f}->{cell['loss_after']:.4f}")
            elif "max_abs_diff" in cell:
                parts.append(f"{framework} {cell['max_abs_diff']:.1e}")
            elif cell.get("errors"):
                parts.append(f"{framework} FAILED: {cell['errors'][0]}")
        spread = [f"{f} {100 * (c['max'] - c['min']) / c['median']:.0f}%" for f, c in r["results"].items()
                  if "median" in c and (c["max"] - c["min"]) > 0.1 * c["median"]]
        lines.append(f"- {r['key']}: " + "; ".join(parts)
                     + (f"  [spread (max-min)/median > 10%: {', '.join(spread)}]" if spread else ""))
    scaled = [r for r in doc["workloads"] if "fma_scaling" in r["results"].get("fastmlp", {})]
    if scaled:
        lines += ["", "The machine's FMA peak on the row's threads over its 1-thread peak, timed in each fastmlp "
                  "worker right after its run (about the thread count when every vCPU has a core to itself; "
                  "near 1 when the host ran them on one core), per repetition:", ""]
        for r in scaled:
            cell = r["results"]["fastmlp"]
            pairs = ", ".join(f"{fmt_rate(rate)} ({s:.2f}x)" for rate, s in zip(cell["samples_per_s"], cell["fma_scaling"]))
            lines.append(f"- {r['key']}: fastmlp {pairs}")
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def short_title(row: dict[str, Any]) -> str:
    """A chart label: net, what, threads, data."""
    what = {"train": f"train b{row['batch']}", "predict": f"predict {row['samples']}",
            "predict1": "predict 1 by 1"}[row["kind"]]
    data = "MNIST" if row["data"] == "mnist" else "dense"
    return f"{row['net']} {what}, {row['threads']}t ({data})"


def plot(doc: dict[str, Any], path: Path) -> bool:
    """The table as a grouped horizontal bar chart; returns False when matplotlib is missing.

    The bars show each framework's speed as a share of the machine limit (FMA peak / FLOPs per
    sample, dense-equivalent), so that workloads a thousand times apart in samples/s share one
    linear axis; each bar is labelled with its samples/s and fastmlp's speedup over it. Bars
    past 100% are possible where a sparse path skips zeros that the FLOP count includes.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    frameworks = doc["settings"]["frameworks"]
    rows = doc["workloads"]
    height = 0.8 / len(frameworks)
    fig, ax = plt.subplots(figsize=(12, 0.55 * len(rows) * max(1.0, len(frameworks) / 3) + 1.6))
    colors = plt.get_cmap("tab10").colors
    for j, framework in enumerate(frameworks):
        ys, widths, texts = [], [], []
        for i, r in enumerate(rows):
            cell = r["results"][framework]
            if "median" in cell:
                ys.append(i + (j - (len(frameworks) - 1) / 2) * height)
                widths.append(100 * cell["fraction_of_peak"])
                speed = "" if framework == "fastmlp" else f"  ({cell.get('fastmlp_speedup', 0):.1f}x)"
                texts.append(f"{fmt_rate(cell['median'])}/s{speed}")
        ax.barh(ys, widths, height=height * 0.95, color=colors[j % 10], label=label(framework))
        for y, w, t in zip(ys, widths, texts):
            ax.text(w + 0.8, y, t, va="center", fontsize=6.5)
    ax.axvline(100, color="black", lw=1.0, label="machine limit (FMA peak)")
    ax.set_yticks(range(len(rows)), [short_title(r) for r in rows], fontsize=8)
    ax.invert_yaxis()
    right = max([100.0] + [100 * c["fraction_of_peak"] for r in rows for c in r["results"].values()
                           if "fraction_of_peak" in c])
    ax.set_xlim(0, right * 1.18)
    ax.set_xlabel("% of the FMA peak (dense-equivalent GFLOP/s); labels: samples/s "
                  "(fastmlp's speedup over that framework)")
    m = doc["machine"]
    ax.set_title(f"fastmlp vs peers on {m.get('cpu')} ({m.get('usable_cores')} cores, ISA {m.get('isa')}), "
                 f"median of {doc['settings']['repetitions']}", fontsize=10)
    ax.grid(axis="x", alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=len(frameworks) + 1,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(FRAMEWORKS),
                        help=f"comma-separated frameworks among {','.join(FRAMEWORKS)} (default: all installed)")
    parser.add_argument("--workloads", default=",".join(w.key for w in wl.WORKLOADS),
                        help="comma-separated workload keys (default: all): "
                        + ", ".join(w.key for w in wl.WORKLOADS))
    parser.add_argument("--reps", type=int, help="repetitions (default: 5, with --quick 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="thread count of the multi-thread ('-tN') rows (default: cores = %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repetition: a smoke run")
    parser.add_argument("--cpus", default="auto",
                        help="comma-separated CPUs every worker is pinned to (the first THREADS of them), "
                        "'auto' for the first this process may use, 'none' to leave workers unpinned "
                        "(default: auto)")
    parser.add_argument("--mnist", choices=["auto", "synthetic"], default="auto",
                        help="auto: real MNIST when fastmlp.datasets.mnist.load_data() works (it may "
                        "download), else a synthetic stand-in with MNIST's sparsity; synthetic: "
                        "always the stand-in (default: auto)")
    parser.add_argument("--json", type=Path, help="output file (default: ~/.cache/fastmlp/bench/compare-<date>.json, "
                        "outside the tree: only the runs the docs cite are kept in bench/results/)")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw the table as a bar chart")
    parser.add_argument("--from-json", type=Path, help="re-render the table (and --plot) of a saved run")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per worker (default: 900)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if args.reps < 1 or args.threads < 1:
        parser.error("--reps and --threads must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return _worker_main(args.worker)
    if args.from_json:
        doc = json.loads(args.from_json.read_text())
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in FRAMEWORKS]
        if unknown:
            raise SystemExit(f"unknown framework(s) {unknown}; known: {', '.join(FRAMEWORKS)}")
        frameworks = [n for n in names if available(n)]
        args.not_installed = [n for n in names if not available(n)]
        keys = [k.strip() for k in args.workloads.split(",") if k.strip()]
        works = [wl.workload(k) for k in keys]
        if args.threads == 1:  # the multi-thread rows would repeat the 1-thread ones
            works = [w for w in works if w.threads != 0]
        started = time.perf_counter()
        doc = run_all(args, frameworks, works)
        doc["wall_seconds"] = round(time.perf_counter() - started, 1)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M%S")
        out = args.json or RESULTS_DIR / f"compare-{'quick-' if args.quick else ''}{stamp}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {out}")
    print(render(doc))
    if args.plot:
        if plot(doc, args.plot):
            log(f"wrote {args.plot}")
        else:
            log("--plot: matplotlib is not importable here; no chart drawn (pip install matplotlib)")
    failed = [r["key"] for r in doc["workloads"] for c in r["results"].values() if c.get("errors")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
