"""The MNIST network of the teaching texts, 784-100-10: a sigmoid hidden layer of 100 units, a
softmax output over the 10 digits, cross-entropy, SGD with learning rate 0.1, batches of 64.

This runs the main example, examples/mnist.py, with its defaults (10 epochs, about 2 s once the
data is cached; the first run downloads it) and puts its picture (learning curves, confusion
matrix, mistakes) in --out as mnist.png. Every other option goes to examples/mnist.py as it is:

    python examples/learn/mnist_784_100_10.py [--out DIR] [--epochs 3] [--data-dir DIR] ...
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import pyplot

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", metavar="DIR", help="folder for mnist.png (default: the current folder)")
    args, rest = parser.parse_known_args(argv)
    spec = importlib.util.spec_from_file_location("fastmlp_example_mnist", os.path.join(HERE, "..", "mnist.py"))
    assert spec is not None and spec.loader is not None
    mnist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mnist)
    if pyplot() is not None:
        os.makedirs(args.out, exist_ok=True)
        rest = [*rest, "--plot", os.path.join(args.out, "mnist.png")]
    return int(mnist.main(rest))


if __name__ == "__main__":
    sys.exit(main())
