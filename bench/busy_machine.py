"""A dense fit on a busy machine: 1 thread against 2 (or ``--threads``) while two CPU-bound
neighbour processes spin, one per core of a 2-core machine.

Usage (from the repository root, on an otherwise quiet machine)::

    python bench/busy_machine.py                     # 10 rounds, 2 spinning neighbours
    python bench/busy_machine.py --rounds 20 --neighbours 0 --json out.json

A fit of a tabular problem (54 features, 100 relu units, 7 classes, Adam, batch 200, the issue's
dense workload at a smaller row count; ``--network dense784``: 784 uniform features, 100 sigmoid
units, 10 classes, SGD 0.1, batch 64, issue 16's dense workload) runs in two persistent worker
processes, one with
``FASTMLP_NUM_THREADS=1``, one with 2; the settings alternate round by round, one fit at a
time, while ``--neighbours`` processes spin in pure Python for the whole run. The target: the
multi-thread fit is not slower than the 1-thread fit (median over rounds, and median of the
per-round ratios). Every fit starts from the same weights and shuffle seed, so every fit must
end with the same weights whatever its thread count; the script checks that. Wall time is the
measure here, so run it only where nothing else runs; ``--neighbours 0`` gives the quiet-machine
baseline.
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
from typing import Any

import numpy as np

SPIN = "while True:\n    pass\n"


# name: (features, hidden units, hidden activation, classes, optimizer, learning rate, batch size)
NETWORKS: dict[str, tuple[int, int, str, int, str, float, int]] = {
    "tabular": (54, 100, "relu", 7, "adam", 1e-3, 200),
    "dense784": (784, 100, "sigmoid", 10, "sgd", 0.1, 64),
}


def dense_problem(rows: int, network: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The network's features (normal for the tabular one, uniform in [0, 1) for dense784) and
    classes from a fixed random linear teacher (learnable, not trivial)."""
    features, _, _, classes, _, _, _ = NETWORKS[network]
    rng = np.random.default_rng(seed)
    if network == "tabular":
        x = rng.standard_normal((rows, features)).astype(np.float32)
    else:
        x = rng.random((rows, features), dtype=np.float32)
    teacher = rng.standard_normal((features, classes)).astype(np.float32)
    noise = 0.5 * rng.standard_normal((rows, classes)).astype(np.float32)
    centred = x if network == "tabular" else x - np.float32(0.5)
    y = np.argmax(centred @ teacher + noise, axis=1)
    return x, y.astype(np.int32)


def worker(data_dir: Path, epochs: int, network: str) -> int:
    """One process: per line "go" on stdin fits once and prints the seconds and a digest of the
    weights."""
    import fastmlp as fm

    x = np.load(data_dir / "x.npy")
    y = np.load(data_dir / "y.npy")
    features, units, activation, classes, optimizer, learning_rate, batch_size = NETWORKS[network]

    def fresh_model() -> Any:
        fm.utils.set_random_seed(1)  # the same weights and shuffle seed for every fit
        model = fm.Sequential([fm.layers.Input(shape=(features,)), fm.layers.Dense(units, activation=activation),
                               fm.layers.Dense(classes, activation="softmax")])
        make = fm.optimizers.Adam if optimizer == "adam" else fm.optimizers.SGD
        model.compile(optimizer=make(learning_rate=learning_rate), loss="sparse_categorical_crossentropy")
        return model

    fresh_model().fit(x[:2000], y[:2000], batch_size=batch_size, epochs=1, verbose=0)  # warm-up
    print(json.dumps({"ready": True, "threads": fm.get_num_threads(), "isa": fm.active_isa()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        model = fresh_model()
        started = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
        seconds = time.perf_counter() - started
        digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
        print(json.dumps({"seconds": seconds, "weights": digest}), flush=True)
    return 0


class Worker:
    def __init__(self, data_dir: Path, epochs: int, threads: int, network: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("FASTMLP_NUM_THREADS", "OMP_NUM_THREADS")}
        env["FASTMLP_NUM_THREADS"] = str(threads)
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(data_dir), "--epochs", str(epochs),
                   "--network", network]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.read()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"a worker process ended early (exit status {self.process.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def fit(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        self.process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="fits per setting (default: 10)")
    parser.add_argument("--rows", type=int, default=60000, help="rows of the data set (default: 60000)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (default: 2)")
    parser.add_argument("--threads", type=int, default=2, help="threads of the second setting (default: 2)")
    parser.add_argument("--neighbours", type=int, default=2, help="spinning neighbour processes (default: 2)")
    parser.add_argument("--json", type=Path, help="output file (default: one in the temporary directory)")
    parser.add_argument("--network", choices=sorted(NETWORKS), default="tabular",
                        help="tabular: 54-100-7 (default); dense784: 784-100-10 sigmoid, SGD, batch 64")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.epochs, args.network)
    if args.rounds < 1 or args.rows < 2000 or args.epochs < 1 or args.threads < 2 or args.neighbours < 0:
        parser.error("needs --rounds >= 1, --rows >= 2000, --epochs >= 1, --threads >= 2, --neighbours >= 0")

    x, y = dense_problem(args.rows, args.network)
    neighbours: list[subprocess.Popen[bytes]] = []
    times: dict[str, list[float]] = {"1": [], "n": []}
    digests: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="fastmlp-busy-") as tmp:
        data_dir = Path(tmp)
        np.save(data_dir / "x.npy", x)
        np.save(data_dir / "y.npy", y)
        workers = {"1": Worker(data_dir, args.epochs, 1, args.network),
                   "n": Worker(data_dir, args.epochs, args.threads, args.network)}
        try:
            neighbours = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(args.neighbours)]
            time.sleep(0.5)  # the neighbours running before the first fit
            features, units, activation, classes, optimizer, _, batch_size = NETWORKS[args.network]
            print(f"{features}-{units}-{classes} {activation}, {optimizer}, batch {batch_size}, "
                  f"{args.rows} rows x {args.epochs} epochs; "
                  f"{args.neighbours} spinning neighbours; {os.cpu_count()} CPUs; 1 thread vs {args.threads}")
            for i in range(args.rounds):
                order = ["1", "n"] if i % 2 == 0 else ["n", "1"]  # neither always runs first
                seconds = {}
                for name in order:
                    result = workers[name].fit()
                    times[name].append(result["seconds"])
                    digests.add(result["weights"])
                    seconds[name] = result["seconds"]
                print(f"round {i + 1}: 1 thread {seconds['1']:.3f} s, {args.threads} threads {seconds['n']:.3f} s, "
                      f"ratio {seconds['n'] / seconds['1']:.2f}", flush=True)
        finally:
            for p in neighbours:
                p.kill()
                p.wait()
            for w in workers.values():
                w.close()
    if len(digests) != 1:
        raise SystemExit(f"the fits ended with {len(digests)} different weights; every thread count must give the same bits")
    median_1, median_n = float(np.median(times["1"])), float(np.median(times["n"]))
    ratios = [n / one for n, one in zip(times["n"], times["1"])]
    print(f"median 1 thread {median_1:.3f} s, {args.threads} threads {median_n:.3f} s: {median_n / median_1:.2f}x "
          f"(median per-round ratio {float(np.median(ratios)):.2f}, worst {max(ratios):.2f}); target <= 1.00")
    out = args.json or Path(tempfile.gettempdir()) / f"fastmlp-busy-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]), "network": args.network, "rows": args.rows, "epochs": args.epochs, "rounds": args.rounds,
        "threads": args.threads, "neighbours": args.neighbours, "cpus": os.cpu_count(), "seconds": times,
        "ratio_of_medians": median_n / median_1, "isa": workers["1"].info["isa"],
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
