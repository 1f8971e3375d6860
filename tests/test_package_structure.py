"""How the package's modules depend on each other, read from their source with ``ast``.

Imports are at the top of a module and the import graph has no cycle. No code touches another
object's underscore members: objects talk through public methods (the model's core is reached
through ``fastmlp._engine.Engine``). The library does not depend on ``fastmlp.reference``, the
readable yardstick the tests compare against (its copies of shared tables are checked here
instead).
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
    """A package, a .py file or a compiled extension (``_core``)."""
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return is_package(name) or any(path.parent.glob(f"{path.name}.*"))


def sources() -> dict[str, ast.Module]:
    """Every module of the package (``_core`` is compiled), parsed."""
    found = {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert {"fastmlp", "fastmlp.models", "fastmlp.optimizers.schedules", "fastmlp.datasets.idx"} <= set(found)
    return found


def import_base(module: str, node: ast.ImportFrom) -> str | None:
    """The fastmlp module or package ``from ... import`` takes names from, if it is one."""
    if node.level == 0:
        if node.module is None or node.module.split(".")[0] != "fastmlp":
            return None
        return node.module
    package = module if is_package(module) else module.rsplit(".", 1)[0]
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The fastmlp modules an import statement in ``module`` needs: those it names, and the
    module it takes other names from (``from .layers import Dense`` needs ``fastmlp.layers``;
    ``from . import layers`` needs only ``fastmlp.layers``, its package being set up first)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "fastmlp" or alias.name.startswith("fastmlp."):
                yield alias.name
        return
    base = import_base(module, node)
    if base is None:
        return
    names = [alias.name for alias in node.names]
    submodules = [name for name in names if is_module(f"{base}.{name}")]
    yield from (f"{base}.{name}" for name in submodules)
    if len(submodules) < len(names):
        yield base


def imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def run_time_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported: not those in functions (they run
    later) nor under ``if TYPE_CHECKING:`` (they never run)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_fastmlp_module_is_imported_inside_a_function() -> None:
    """Imports are at the top, where a reader sees what a module depends on; a cycle is broken
    by the design (see test_the_import_graph_is_acyclic), not hidden in a function."""
    found = sorted(
        {
            f"{module}:{node.lineno} ({function.name}) imports {', '.join(names)}"
            for module, tree in sources().items()
            for function in functions(tree)
            for node in imports(function)
            for names in [sorted(set(imported_modules(module, node)))]
            if names
        }
    )
    assert not found, "fastmlp modules imported inside functions:\n" + "\n".join(found)


def import_graph() -> dict[str, set[str]]:
    """Each module and the modules its import runs first."""
    trees = sources()
    return {
        module: {name for node in run_time_imports(tree) for name in imported_modules(module, node)} & set(trees)
        for module, tree in trees.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of the graph as a path that returns to its start, or [] if there is none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        path.append(module)
        for name in sorted(graph[module]):
            cycle = visit(name)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return []

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return []


def test_the_import_graph_is_acyclic() -> None:
    """No module needs, to be imported, a module that needs it: each layer of the package
    builds on the ones below (``_engine`` on ``_core``; ``layers`` on ``_engine``; ``models``
    on ``layers`` and ``_model_file``; ``saving`` on ``models``), and only ``fastmlp`` itself
    imports them all."""
    graph = import_graph()
    assert "fastmlp._model_file" in graph["fastmlp.models"]
    assert "fastmlp.models" in graph["fastmlp.saving"]
    assert find_cycle(graph) == [], " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


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


# Where a module must touch an underscore member that is not its own, and why.
ALLOWED_PRIVATE_ACCESS = {
    ("fastmlp.datasets._restricted_pickle", "module._reconstruct"): (
        "a pickled NumPy array names numpy's private _reconstruct: the restricted unpickler "
        "hands back exactly that function and nothing else"
    ),
    ("fastmlp.models", "owner._locks"): (
        "a feature extractor (a Model) takes its owner's locks (a Model's, the same class) before "
        "its own, so that every thread takes the two in one order: a lock is no public interface"
    ),
}


def is_private(name: str) -> bool:
    """``_name`` (and ``__name``), not ``__dunder__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def own_instances(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """``self``, ``cls``, and names bound to ``cls(...)`` here: a class's own code may finish an
    instance it has just made (``Sequential.from_config``)."""
    names = {"self", "cls"}
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "cls"
        ):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


class ForeignPrivateAccess(ast.NodeVisitor):
    """Finds each underscore member read or written on something other than the code's own
    object (``x._name``, ``getattr(x, "_name")``), and each underscore name imported from another
    fastmlp module."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.own = [{"self", "cls"}]
        self.found: list[tuple[int, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.own.append(own_instances(node))
        self.generic_visit(node)
        self.own.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def owned(self, owner: ast.expr) -> bool:
        if isinstance(owner, ast.Name):
            return owner.id in self.own[-1]
        return isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr) and not self.owned(node.value):
            self.found.append((node.lineno, f"{ast.unparse(node.value)}.{node.attr}"))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and not self.owned(node.args[0])
        ):
            self.found.append((node.lineno, f"{ast.unparse(node.args[0])}.{node.args[1].value}"))
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = import_base(self.module, node)
        for alias in node.names:
            if base is not None and is_private(alias.name) and not is_module(f"{base}.{alias.name}"):
                self.found.append((node.lineno, f"{base}.{alias.name}"))


def test_no_module_touches_another_objects_underscore_members() -> None:
    found = []
    allowed = set()
    for module, tree in sources().items():
        visitor = ForeignPrivateAccess(module)
        visitor.visit(tree)
        for line, access in visitor.found:
            if (module, access) in ALLOWED_PRIVATE_ACCESS:
                allowed.add((module, access))
            else:
                found.append(f"{module}:{line} {access}")
    assert not found, "underscore members touched from outside their object:\n" + "\n".join(found)
    assert allowed == set(ALLOWED_PRIVATE_ACCESS), "allowed accesses that no longer happen: remove them"


def test_the_private_access_finder_finds_them() -> None:
    code = """
from fastmlp.layers import _unique_name
from . import _core
class A:
    def f(self, other):
        self._mine = other._theirs
        getattr(other, "_x")
        super()._parent()
        _core.thing
    @classmethod
    def make(cls):
        made = cls()
        made._state = 1
        return made
"""
    visitor = ForeignPrivateAccess("fastmlp.models")
    visitor.visit(ast.parse(code))
    assert [access for _, access in visitor.found] == ["fastmlp.layers._unique_name", "other._theirs", "other._x"]
