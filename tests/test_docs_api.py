"""docs/api.md against the code, so that the API reference cannot fall behind it.

Rules (the page itself says ``fm`` is ``import fastmlp as fm``):

- Public names. For each public module (``fastmlp`` and every submodule or subpackage that
  ``pkgutil.walk_packages`` finds, skipping any whose name has a part starting with ``_``), its
  public names are those in its ``__all__`` if it defines one, else every attribute not starting
  with ``_`` that is a function or class defined in it (``obj.__module__ == module.__name__``).
  A name ``N`` of ``fastmlp.M`` is documented when a backticked span of the page *starts* with
  its qualified path ``fm.M.N`` (then the span ends, or goes on with ``(`` or ``.``), or, for a
  class, function or module, with any ``fm.`` path that resolves to that very object (a
  re-export is documented once: ``fm.datasets.read_idx`` covers ``fastmlp.datasets.idx``'s).
- Signatures. A backticked span ``fm.path(...)`` or ``model.method(...)`` (``model`` standing for
  a ``Sequential``) whose path resolves is a signature-looking entry. As the first cell of a
  table row it is *the* signature entry and must equal ``inspect.signature`` of the object with
  annotations left out and without ``self`` (same names, order, kinds and defaults); anywhere
  else (a call example in prose) every parameter name it uses must exist.
- Every ``fm.``/``model.`` path that starts a backticked span resolves.

A module of an optional extra (``fastmlp.onnx``, ``fastmlp.sklearn``) is checked where its
dependency is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import fastmlp

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LEADING_PATH = re.compile(r"(?:fm|model)(?:\.\w+)+")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


# The modules of an optional extra, and the package each needs: checked where it is installed.
OPTIONAL_MODULES = {"fastmlp.onnx": "onnx", "fastmlp.sklearn": "sklearn"}


def unavailable(name: str) -> bool:
    """Whether ``name`` (a module or a doc path ``fm.x.y``) is in an optional module whose
    dependency is not installed."""
    dotted = "fastmlp" + name[len("fm") :] if name.startswith("fm.") else name
    return any(
        (dotted == module or dotted.startswith(module + ".")) and importlib.util.find_spec(package) is None
        for module, package in OPTIONAL_MODULES.items()
    )


def _fail_import(name: str) -> None:
    if not unavailable(name):
        raise ImportError(f"pkgutil.walk_packages could not import {name}")


def public_modules() -> list[ModuleType]:
    modules: list[ModuleType] = [fastmlp]
    for info in pkgutil.walk_packages(fastmlp.__path__, "fastmlp.", onerror=_fail_import):
        if any(part.startswith("_") for part in info.name.split(".")[1:]) or unavailable(info.name):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def public_names(module: ModuleType) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    return sorted(
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    )


def qualified(module: ModuleType, name: str) -> str:
    return "fm" + module.__name__[len("fastmlp") :] + "." + name


def doc_spans() -> list[tuple[int, bool, str]]:
    """(line number, is the first cell of a table row, text) of every backticked span."""
    spans = []
    for number, line in enumerate(DOC.read_text(encoding="utf-8").splitlines(), start=1):
        for match in CODE_SPAN.finditer(line):
            first_cell = line.startswith("| `") and match.start() == 2
            spans.append((number, first_cell, match.group(1)))
    return spans


def resolve(path: str) -> tuple[Any, bool]:
    """The object a doc path names, and whether its signature has a ``self`` to drop (a plain
    function reached through its class). Raises LookupError if the path names nothing."""
    parts = path.split(".")
    # A named model: a default name would advance the counter behind "sequential_1", ...
    obj: Any = fastmlp.Sequential(name="api_doc_check") if parts[0] == "model" else fastmlp
    drop_self = False
    for part in parts[1:]:
        parent = obj
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif inspect.ismodule(obj):
            try:
                obj = importlib.import_module(f"{obj.__name__}.{part}")
            except ImportError:
                raise LookupError(path) from None
        else:
            raise LookupError(path)
        drop_self = inspect.isclass(parent) and inspect.isfunction(
            inspect.getattr_static(parent, part, None)
        )
    return obj, drop_self


def documented_signature(obj: Any, drop_self: bool) -> inspect.Signature:
    signature = inspect.signature(obj)
    parameters = list(signature.parameters.values())[1 if drop_self else 0 :]
    return signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in parameters],
        return_annotation=inspect.Signature.empty,
    )


def call_arguments(span: str) -> tuple[str, str] | None:
    """(path, text between the parentheses) when the whole span is ``path(...)``."""
    match = LEADING_PATH.match(span)
    if match is None or span[match.end() : match.end() + 1] != "(" or not span.endswith(")"):
        return None
    inside = span[match.end() + 1 : -1]
    depth = 0
    for char in inside:  # `f(a), g(b)` is two calls, not one signature
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return None
    return match.group(), inside


def split_arguments(text: str) -> list[str]:
    """Split at the commas outside brackets and quotes."""
    items, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        items.append(current.strip())
    return items


def parameter_name(item: str) -> str | None:
    """The parameter an argument names (``x``, ``x=1``, ``*args``, ``**kw``); None for a bare
    value (``64``, ``(784,)``) or a marker (``*``, ``/``)."""
    name = item.split("=", 1)[0].strip().lstrip("*") if "=" in item else item.lstrip("*")
    return name if IDENTIFIER.fullmatch(name) else None


def test_every_public_name_is_in_the_api_doc() -> None:
    paths = set()
    objects = set()
    for _, _, span in doc_spans():
        match = LEADING_PATH.match(span)
        if match is None or span[match.end() : match.end() + 1] not in ("", "(", "."):
            continue
        paths.add(match.group())
        if unavailable(match.group()):
            continue
        try:
            obj, _ = resolve(match.group())
        except LookupError:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
            objects.add(id(obj))

    missing: dict[str, list[str]] = {}
    for module in public_modules():
        for name in public_names(module):
            path = qualified(module, name)
            obj = getattr(module, name, None)
            shared = inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj)
            if path in paths or (shared and id(obj) in objects):
                continue
            missing.setdefault(module.__name__, []).append(f"`{path}`")
    assert not missing, (
        f"{DOC.name} lacks public names; add each to the table of its module's section, "
        "qualified as shown, with its signature and one line on what it is:\n"
        + "\n".join(f"  {module}: {', '.join(names)}" for module, names in sorted(missing.items()))
    )


def test_signatures_in_the_api_doc_match_the_code() -> None:
    problems = []
    entries = 0
    for number, first_cell, span in doc_spans():
        call = call_arguments(span)
        if call is None:
            continue
        path, inside = call
        if unavailable(path):
            continue
        try:
            obj, drop_self = resolve(path)
        except LookupError:
            continue  # reported by test_every_path_in_the_api_doc_resolves
        try:
            signature = documented_signature(obj, drop_self)
        except (TypeError, ValueError):
            problems.append(
                f"line {number}: `{span}`: {path} has no signature; drop the parentheses"
            )
            continue
        if first_cell:
            entries += 1
            if f"({inside})" != str(signature):
                problems.append(f"line {number}: `{span}` should be `{path}{signature}`")
            continue
        for item in split_arguments(inside):
            name = parameter_name(item)
            if name is not None and name not in signature.parameters:
                problems.append(
                    f"line {number}: `{span}`: {path} has no parameter {name!r}; it takes {signature}"
                )
    assert not problems, f"{DOC.name} disagrees with the code:\n  " + "\n  ".join(problems)
    # A change of the page's layout must not turn this test into one that checks nothing.
    assert entries >= 100, f"only {entries} signature entries found in {DOC.name}'s tables"


def test_every_path_in_the_api_doc_resolves() -> None:
    unknown = []
    for number, _, span in doc_spans():
        match = LEADING_PATH.match(span)
        if match is None:
            continue
        if unavailable(match.group()):
            continue
        try:
            resolve(match.group())
        except LookupError:
            unknown.append(f"line {number}: `{match.group()}`")
    assert not unknown, f"{DOC.name} names what fastmlp lacks:\n  " + "\n  ".join(unknown)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a, b=(1, 2), *, c='x,y', **kw", ["a", "b=(1, 2)", "*", "c='x,y'", "**kw"]),
        ("", []),
    ],
)
def test_split_arguments(text: str, expected: list[str]) -> None:
    assert split_arguments(text) == expected
