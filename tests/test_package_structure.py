"""How the package's modules depend on each other, read from their source with ``ast``.

The library does not depend on ``fastmlp.reference``, the readable yardstick the tests compare
against (its copies of shared tables are checked here instead).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import fastmlp as fm
from fastmlp import reference as ref

PACKAGE = Path(fm.__file__).parent


def module_name(path: Path) -> str:
    parts = ["fastmlp", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.joinpath(*name.split(".")[1:]) / "__init__.py").is_file()


def is_module(name: str) -> bool:
    relative = name.split(".")[1:]
    return is_package(name) or PACKAGE.joinpath(*relative).with_suffix(".py").is_file()


def sources() -> dict[str, ast.Module]:
    """Every module of the package (``_core`` is compiled), parsed."""
    found = {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert {"fastmlp", "fastmlp.models", "fastmlp.optimizers.schedules", "fastmlp.datasets.idx"} <= set(found)
    return found


def imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The fastmlp modules an import statement in ``module`` imports by name."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "fastmlp" or alias.name.startswith("fastmlp."):
                yield alias.name
        return
    if node.level == 0:
        if node.module is None or node.module.split(".")[0] != "fastmlp":
            return
        base = node.module
    else:
        package = module if is_package(module) else module.rsplit(".", 1)[0]
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        if node.module:
            base = f"{base}.{node.module}"
    yield base
    for alias in node.names:
        if is_module(f"{base}.{alias.name}"):
            yield f"{base}.{alias.name}"


def imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def test_the_library_does_not_import_the_reference() -> None:
    """Only the package itself imports it, to offer it as ``fm.reference``."""
    importers = sorted(
        f"{module}:{node.lineno}"
        for module, tree in sources().items()
        if module not in ("fastmlp", "fastmlp.reference")
        for node in imports(tree)
        if "fastmlp.reference" in imported_modules(module, node)
    )
    assert not importers, f"library modules import fastmlp.reference: {importers}"


def test_the_reference_imports_nothing_from_fastmlp() -> None:
    """It reads on its own, next to a textbook."""
    tree = sources()["fastmlp.reference"]
    imported = [name for node in imports(tree) for name in imported_modules("fastmlp.reference", node)]
    assert not imported


def test_the_activation_tables_agree_with_the_reference() -> None:
    assert fm.activations.ACTIVATIONS == ref.ACTIVATIONS
    assert fm.activations.DEFAULT_ALPHA == ref.DEFAULT_ALPHA
    for name in ref.ACTIVATIONS:
        assert fm.activations.get(name) == name
