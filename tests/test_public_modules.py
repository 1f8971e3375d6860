"""After a bare ``import fastmlp``, every public module and subpackage is an attribute
(``fm.datasets.mnist.load_data()``, the README's quickstart, needs no further import), and
nothing beyond the standard library and NumPy was imported for it.

The modules are discovered on disk with pkgutil, without importing them, so a module
added later is covered as well. Each check runs in a fresh interpreter: in this one, the
other tests have long since imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

_PROBE = textwrap.dedent(
    """
    import json, pkgutil, sys
    before = set(sys.modules)
    import fastmlp as fm
    imported = sorted(set(sys.modules) - before)

    def public_modules(path, prefix):
        # iter_modules lists a directory; unlike walk_packages it imports nothing.
        for info in pkgutil.iter_modules(path):
            if info.name.startswith("_"):
                continue
            yield prefix + info.name
            if info.ispkg:
                yield from public_modules([f"{path[0]}/{info.name}"], f"{prefix}{info.name}.")

    def attribute(dotted):
        obj = fm
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    names = sorted(public_modules(list(fm.__path__), ""))
    unreachable = []
    for name in names:
        try:
            obj = attribute(name)
        except AttributeError as exc:
            unreachable.append(f"fm.{name}: {exc}")
            continue
        if obj is not sys.modules.get(f"fastmlp.{name}"):
            unreachable.append(f"fm.{name} is {obj!r}, not the module fastmlp.{name}")
    quickstart = []
    for dotted in ("datasets.mnist.load_data", "datasets.fashion_mnist.load_data"):
        try:
            quickstart.append(callable(attribute(dotted)))
        except AttributeError:
            quickstart.append(False)
    print(json.dumps({
        "names": names, "unreachable": unreachable, "all": list(fm.__all__),
        "imported": imported, "quickstart": quickstart,
        "stdlib": sorted(getattr(sys, "stdlib_module_names", ())),
    }))
    """
)


@pytest.fixture(scope="module")
def result() -> dict[str, list[str]]:
    """What a fresh interpreter sees after ``import fastmlp``."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, list[str]] = json.loads(proc.stdout)
    return found


def test_every_public_module_is_an_attribute_after_import_fastmlp(
    result: dict[str, list[str]],
) -> None:
    names = result["names"]
    # Discovery found the package's modules, the nested ones included.
    assert {"datasets", "datasets.mnist", "datasets.fashion_mnist", "models"} <= set(names)
    assert {"datasets.idx", "optimizers", "optimizers.schedules"} <= set(names)
    assert not any(part.startswith("_") for name in names for part in name.split("."))
    assert result["unreachable"] == []
    assert result["quickstart"] == [True, True]  # the README's fm.datasets.mnist.load_data()
    # The top-level ones are exported, so ``from fastmlp import *`` brings them too.
    # The modules that need an optional dependency (fm.sklearn: scikit-learn, fm.onnx: onnx) are
    # imported on first access and left out of __all__, so that ``from fastmlp import *`` needs
    # none.
    optional = {"sklearn", "onnx"}
    top_level = {name for name in names if "." not in name}
    assert top_level - optional <= set(result["all"])
    assert not optional & set(result["all"])


def test_import_fastmlp_loads_only_the_standard_library_and_numpy(
    result: dict[str, list[str]],
) -> None:
    top_level = {name.split(".")[0] for name in result["imported"]}
    assert {"fastmlp", "numpy"} <= top_level
    # No optional dependency (the extras: matplotlib, torch, scikit-learn, pytest, ...)
    # and no network stack: neither is needed until something asks for it.
    assert not top_level & {"matplotlib", "torch", "sklearn", "pytest", "scipy", "jax", "onnx", "onnxruntime"}
    assert not {"urllib.request", "http.client", "ssl"} & set(result["imported"])
    stdlib = set(result["stdlib"])
    if stdlib:  # Python 3.10+ lists its standard library
        # Cython-compiled parts of NumPy register their shared runtime as modules too.
        cython = {n for n in top_level if n == "cython_runtime" or n.startswith("_cython_")}
        others = sorted(top_level - stdlib - cython - {"fastmlp", "numpy"})
        assert others == [], f"import fastmlp imported {others}"
