"""fastmlp: fast, trustworthy dense neural networks (MLPs) on the CPU.

A C++ core with SIMD kernels (chosen at import for this CPU) runs whole training epochs
natively; this package gives it a Keras-like API. ``fastmlp.reference`` holds the same math in
plain NumPy, for reading and for checking.
"""

from __future__ import annotations

import importlib
import numbers
import types

from . import _core, _thread_count, _threadpoolctl_hook

# The kernel table is chosen once, here: FASTMLP_ISA=scalar|avx2|avx512 forces one (a path this CPU
# lacks is a ValueError naming the available ones); otherwise the best the CPU supports.
_core.select_isa_from_environment()
# So is fit's training step: FASTMLP_STEP=pipeline|rows|columns forces one where it can run (an
# unknown name is a ValueError naming the available ones); otherwise a best-first table chooses.
_core.select_step_from_environment()
# The thread pool starts with FASTMLP_NUM_THREADS threads, else OMP_NUM_THREADS, else one per CPU
# this process may use (affinity and cgroup quota); see _thread_count.
_core.set_num_threads(_thread_count.default_num_threads())
# threadpoolctl's threadpool_limits limits fastmlp too, whenever threadpoolctl is imported.
_threadpoolctl_hook.install()

from . import (  # noqa: E402  (the ISA must be chosen before anything runs a kernel)
    activations,
    backend,
    callbacks,
    config,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    reference,
    regularizers,
    saving,
    tuning,
    utils,
)
from ._symbolic import KerasTensor  # noqa: E402
from ._version import __version__  # noqa: E402
from .layers import Input  # noqa: E402
from .models import Model, Sequential  # noqa: E402

# Submodules that need an optional dependency (fm.sklearn needs scikit-learn, fm.onnx needs onnx):
# imported on first access, so that ``import fastmlp`` itself loads only the standard library
# and NumPy.
_OPTIONAL_SUBMODULES = ("onnx", "sklearn")


def __getattr__(name: str) -> types.ModuleType:
    if name in _OPTIONAL_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available_isas() -> list[str]:
    """Instruction sets this build has and this CPU supports, best first."""
    return list(_core.available_isas())


def active_isa() -> str:
    """The instruction set whose kernels run now."""
    return str(_core.active_isa())


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for training and prediction (results are identical for every ``n``)."""
    given: object = n  # validated here: users pass anything
    if isinstance(given, bool) or not isinstance(given, numbers.Integral) or not 1 <= int(given) <= 1024:
        raise ValueError(f"`n` must be an integer from 1 to 1024. Received: n={n!r}")
    _core.set_num_threads(int(given))


def get_num_threads() -> int:
    """The number of threads fastmlp computes with."""
    return int(_core.get_num_threads())


__all__ = [
    "Input",
    "KerasTensor",
    "Model",
    "Sequential",
    "__version__",
    "activations",
    "active_isa",
    "available_isas",
    "backend",
    "callbacks",
    "config",
    "datasets",
    "get_num_threads",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "reference",
    "regularizers",
    "saving",
    "set_num_threads",
    "tuning",
    "utils",
]
