"""MNIST test accuracy over several seeds, fastmlp next to PyTorch with the same setup.

One seed says little about a 10-epoch run: this prints each seed's test accuracy and the mean,
for fastmlp (through ``examples/mnist.py``'s model and defaults) and, when installed, PyTorch
with the same model, initialization (Glorot-uniform kernels, zero biases), optimizer, batch size
and a fresh shuffle per epoch.

    python bench/mnist_seeds.py --activation relu --optimizer adam --lr 0.001 --seeds 0-9
    python bench/mnist_seeds.py --frameworks fastmlp --seeds 0-4     # the default sigmoid/SGD run

Not a timed benchmark (accuracy only); each run takes a few seconds for fastmlp and about ten
for PyTorch on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Callable

import numpy as np

import fastmlp as fm
from fastmlp.datasets import mnist

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load() -> Data:
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    scale = np.float32(255.0)
    return (x_train.reshape(len(x_train), -1).astype(np.float32) / scale, y_train.astype(np.int64),
            x_test.reshape(len(x_test), -1).astype(np.float32) / scale, y_test.astype(np.int64))


def fastmlp_accuracy(data: Data, args: argparse.Namespace, seed: int) -> float:
    x, y, x_test, y_test = data
    fm.utils.set_random_seed(seed)
    model = fm.Sequential(
        [fm.layers.Input(shape=(784,))]
        + [fm.layers.Dense(units, activation=args.activation) for units in args.hidden]
        + [fm.layers.Dense(10, activation="softmax")]
    )
    optimizer = {"sgd": fm.optimizers.SGD, "adam": fm.optimizers.Adam}[args.optimizer](learning_rate=args.lr)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert isinstance(logs, dict)
    return float(logs["accuracy"])


def torch_accuracy(data: Data, args: argparse.Namespace, seed: int) -> float:
    import torch

    x, y, x_test, y_test = (torch.from_numpy(a) for a in data)
    torch.manual_seed(seed)
    activation = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}[args.activation]
    layers: list[Any] = []
    fan_in = 784
    for units in args.hidden:
        layers += [torch.nn.Linear(fan_in, units), activation()]
        fan_in = units
    layers.append(torch.nn.Linear(fan_in, 10))
    net = torch.nn.Sequential(*layers)
    for layer in net:
        if isinstance(layer, torch.nn.Linear):  # Keras's defaults, not PyTorch's
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    optimizers: dict[str, Callable[[], Any]] = {
        "sgd": lambda: torch.optim.SGD(net.parameters(), lr=args.lr),
        "adam": lambda: torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-7),
    }
    optimizer = optimizers[args.optimizer]()
    loss_fn = torch.nn.CrossEntropyLoss()  # softmax + cross-entropy from the logits
    for _ in range(args.epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), args.batch_size):
            batch = order[start : start + args.batch_size]
            optimizer.zero_grad()
            loss_fn(net(x[batch]), y[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        return float((net(x_test).argmax(1) == y_test).double().mean())


def seed_list(text: str) -> list[int]:
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_list, default=seed_list("0-4"), help="e.g. 0-9 or 0,3,7")
    parser.add_argument("--frameworks", default="fastmlp,torch")
    parser.add_argument("--hidden", type=int, nargs="+", default=[100])
    parser.add_argument("--activation", default="sigmoid", choices=["relu", "sigmoid", "tanh"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--target", type=float, default=97.5, help="count the seeds below this accuracy (%%)")
    args = parser.parse_args()

    runners: dict[str, Callable[[Data, argparse.Namespace, int], float]] = {
        "fastmlp": fastmlp_accuracy, "torch": torch_accuracy}
    data = load()
    for name in args.frameworks.split(","):
        if name == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch: not installed (pip install torch==2.13.0), skipped")
                continue
        scores = []
        for seed in args.seeds:
            scores.append(100 * runners[name](data, args, seed))
            print(f"{name} seed {seed}: {scores[-1]:.2f}%", flush=True)
        below = sum(score < args.target for score in scores)
        print(f"{name}: mean {statistics.mean(scores):.2f}%, min {min(scores):.2f}%, max {max(scores):.2f}% "
              f"over {len(scores)} seeds ({below} below {args.target}%)")


if __name__ == "__main__":
    main()
