"""fastmlp's speed-up on N threads over one, measured so that the host's drift cancels out.

Usage (from the repository root)::

    python bench/thread_scaling.py                 # 784-100-10 MNIST, batch 64, 12 pairs
    python bench/thread_scaling.py --workload wide-train-b64-tN --pairs 6

bench/compare.py times each epoch in its own process, minutes apart from the 1-thread epoch it
is compared with; on a shared host whose speed drifts from minute to minute, that ratio varies
more than the effect it measures. Here one process trains one model (compare.py's fastmlp
runner: the same network, data and settings) and alternates 1-thread and N-thread epochs in
ABBA order (``fm.set_num_threads`` between them), so that both settings see the same minutes.
It reports each setting's median, and the median of the paired ratios (each N-thread epoch over
the 1-thread epoch next to it). The model keeps training from epoch to epoch; its speed does not
depend on its weights. Prints one line; ``--json`` also writes every epoch's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as wl
from runners import FastmlpRunner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="train-b64-tN", help="a training workload of compare.py")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="N (default: cores)")
    parser.add_argument("--pairs", type=int, default=12, help="1-thread/N-thread epoch pairs (default: 12)")
    parser.add_argument("--samples", type=int, default=30000, help="rows per epoch (default: 30000)")
    parser.add_argument("--mnist", choices=["auto", "synthetic"], default="auto",
                        help="as compare.py's: real MNIST when it loads, or always the stand-in")
    parser.add_argument("--json", type=Path, help="also write every epoch's rate here")
    args = parser.parse_args()
    work = wl.workload(args.workload)
    if work.kind != "train" or args.threads < 2 or args.pairs < 1 or args.samples < work.batch:
        parser.error("needs a training workload, --threads >= 2, --pairs >= 1, --samples >= its batch")

    import fastmlp as fm

    x, y, source = wl.load(work.data, args.samples, work.net.sizes[0], real_mnist=args.mnist == "auto",
                           classes=work.net.classes)
    runner = FastmlpRunner(work.net, wl.initial_params(work.net, seed=0), args.threads)
    xs, ys = runner.prepare(x, y)
    for threads in (1, args.threads):  # warm-up: buffers sized, pages touched, pool started
        fm.set_num_threads(threads)
        runner.train_epoch(xs[: 8 * work.batch], ys[: 8 * work.batch], work.batch, work.learning_rate, work.optimizer)
    rates: dict[int, list[float]] = {1: [], args.threads: []}
    for pair in range(args.pairs):
        for threads in (1, args.threads) if pair % 2 == 0 else (args.threads, 1):
            fm.set_num_threads(threads)
            started = time.perf_counter()
            runner.train_epoch(xs, ys, work.batch, work.learning_rate, work.optimizer)
            rates[threads].append(len(xs) / (time.perf_counter() - started))
    one, many = rates[1], rates[args.threads]
    paired = statistics.median(b / a for a, b in zip(one, many))
    print(f"{work.title(args.threads, args.samples)}, data: {source}, {args.pairs} pairs: 1 thread "
          f"{statistics.median(one) / 1e3:.0f}k samples/s, {args.threads} threads "
          f"{statistics.median(many) / 1e3:.0f}k (medians); {args.threads} threads over 1, "
          f"median of the pairs: {paired:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join(["python", *sys.argv]), "workload": work.key, "data_source": source,
            "samples": len(xs), "threads": args.threads, "samples_per_s": {str(t): r for t, r in rates.items()},
            "paired_ratio_median": paired, "fastmlp": fm.__version__, "isa": fm.active_isa(),
        }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
