"""Two processes training at once, as ``GridSearchCV(n_jobs=2)``, two notebooks or a test runner
with two workers do: how much slower each fit gets with fastmlp's default thread count than with
one thread each.

Usage (from the repository root)::

    python bench/concurrent_processes.py                  # 784-100-10 MNIST, 8 rounds
    python bench/concurrent_processes.py --rounds 20 --samples 60000 --json out.json

Each round starts two fits at the same moment, one per process, first in two processes with
``FASTMLP_NUM_THREADS=1``, then in two with the default thread count (one per CPU the process
may use, unless ``--threads`` names another). With as many processes as cores, one thread each
already fills the machine; more threads can only win where a process's threads run together,
and must not lose much where they do not: the figure of merit is the slowest round with default
threads over the fastest round with one thread each (a round's time is its slower fit).

Four worker processes (two per setting) are started once and each then waits, blocked on its
pipe, for its rounds: the settings alternate round by round, so both see the same minutes of a
shared host. Every fit trains the same network from the same weights on the same data and
shuffle (784-100-10, sigmoid then softmax, SGD 0.1, batch 64), so every process must end with
the same weights whatever its thread count; the script checks that. Prints one line per round and
a summary; writes every fit's time as JSON (``--json``, else a file in the temporary directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads as wl  # noqa: E402


def worker(data_dir: Path, epochs: int) -> int:
    """One process: builds the model, warms up, then per line "go" on stdin fits once and prints
    the fit's seconds and a digest of the weights after it."""
    import fastmlp as fm

    x = np.load(data_dir / "x.npy")
    y = np.load(data_dir / "y.npy")
    net = wl.MNIST_NET
    initial = [array for layer in wl.initial_params(net, seed=0) for array in layer]
    model = fm.Sequential([fm.layers.Input(shape=(net.sizes[0],))]
                          + [fm.layers.Dense(units, activation=act) for units, act in zip(net.sizes[1:], net.activations)])

    def restart() -> None:
        """The same starting point for every fit: the weights, and the shuffle's seed (a trainer
        draws it when the model is compiled)."""
        fm.utils.set_random_seed(1)
        model.compile(optimizer=fm.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
        model.set_weights(initial)

    # Warm-up: the pool started, buffers sized, pages touched.
    restart()
    model.fit(x[: 8 * 64], y[: 8 * 64], batch_size=64, epochs=1, verbose=0, shuffle=True)
    print(json.dumps({"ready": True, "threads": fm.get_num_threads(), "isa": fm.active_isa(),
                      "version": fm.__version__}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        restart()
        started = time.perf_counter()
        model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
        seconds = time.perf_counter() - started
        digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
        print(json.dumps({"seconds": seconds, "weights": digest}), flush=True)
    return 0


class Worker:
    def __init__(self, data_dir: Path, epochs: int, threads: Optional[int]) -> None:
        env = dict(os.environ)
        env.pop("FASTMLP_NUM_THREADS", None)
        if threads is not None:
            env["FASTMLP_NUM_THREADS"] = str(threads)
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(data_dir), "--epochs", str(epochs)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a worker process ended early (exit status {self.process.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process.wait(timeout=60)


def run_round(pair: list[Worker]) -> list[dict[str, Any]]:
    """Both fits of a round, started together; returns each process's result."""
    for w in pair:
        w.go()
    return [w.read() for w in pair]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds per setting (default: 8)")
    parser.add_argument("--samples", type=int, default=30000, help="rows per epoch (default: 30000)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fit (default: 1)")
    parser.add_argument("--threads", type=int, help="threads per process in the second setting "
                        "(default: fastmlp's default, one per CPU the process may use)")
    parser.add_argument("--mnist", choices=["auto", "synthetic"], default="auto",
                        help="real MNIST when it loads, else (or always) the synthetic stand-in")
    parser.add_argument("--json", type=Path, help="output file (default: one in the temporary directory)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.epochs)
    if args.rounds < 1 or args.samples < 64 or args.epochs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("needs --rounds >= 1, --samples >= 64, --epochs >= 1, --threads >= 1")

    x, y, source = wl.load("mnist", args.samples, 784, real_mnist=args.mnist == "auto")
    with tempfile.TemporaryDirectory(prefix="fastmlp-concurrent-") as tmp:
        data_dir = Path(tmp)
        np.save(data_dir / "x.npy", np.ascontiguousarray(x, np.float32))
        np.save(data_dir / "y.npy", np.ascontiguousarray(y, np.int32))
        settings = {"1": [Worker(data_dir, args.epochs, 1) for _ in range(2)],
                    "default": [Worker(data_dir, args.epochs, args.threads) for _ in range(2)]}
        try:
            threads = settings["default"][0].info["threads"]
            print(f"784-100-10 MNIST, batch 64, {args.samples} samples x {args.epochs} epoch(s), data: {source}; "
                  f"2 processes at once, 1 thread each vs {threads} each; {os.cpu_count()} CPUs")
            times: dict[str, list[list[float]]] = {"1": [], "default": []}
            digests: set[str] = set()
            for i in range(args.rounds):
                line = [f"round {i + 1}:"]
                for name, pair in settings.items():
                    results = run_round(pair)
                    times[name].append([r["seconds"] for r in results])
                    digests.update(r["weights"] for r in results)
                    label = "1 thread" if name == "1" else f"{threads} threads"
                    line.append(f"{label} " + ", ".join(f"{r['seconds']:.3f}" for r in results) + " s")
                print("  ".join(line), flush=True)
        finally:
            for pair in settings.values():
                for w in pair:
                    w.close()
    if len(digests) != 1:
        raise SystemExit(f"the fits ended with {len(digests)} different weights; every thread count must give "
                         "the same bits")
    round_one = [max(r) for r in times["1"]]
    round_default = [max(r) for r in times["default"]]
    ratio = max(round_default) / min(round_one)
    print(f"slowest round with {threads} threads each {max(round_default):.3f} s, fastest with 1 thread each "
          f"{min(round_one):.3f} s: {ratio:.2f}x (medians {float(np.median(round_default)):.3f} s and "
          f"{float(np.median(round_one)):.3f} s)")
    out = args.json or Path(tempfile.gettempdir()) / f"fastmlp-concurrent-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    info = settings["default"][0].info
    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "data_source": source, "samples": args.samples,
        "epochs": args.epochs, "rounds": args.rounds, "cpus": os.cpu_count(), "threads_default": threads,
        "seconds": times, "round_seconds": {"1": round_one, "default": round_default},
        "worst_default_over_best_one": ratio, "fastmlp": info["version"], "isa": info["isa"],
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
