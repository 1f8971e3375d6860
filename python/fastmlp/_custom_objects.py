"""The user's classes that files may name (internal): Keras's registry of custom objects.

A saved model names a user's class (a ``LearningRateSchedule`` subclass) and never holds its
code; ``load_model`` rebuilds it only from a class found here or in its own ``custom_objects``.
``fastmlp.saving`` exposes Keras's ways to fill it: ``register_keras_serializable`` (the global
registry, keyed ``"package>name"`` as Keras keys it; a saved registered class is named by that
key), ``get_custom_objects`` (that registry itself) and ``custom_object_scope`` (classes that
count as registered inside a ``with`` block, in this thread, without touching the registry).
"""

from __future__ import annotations

import contextlib
import contextvars
import types
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

# "package>name" -> class. Keras's get_custom_objects() returns this very dict.
REGISTERED: dict[str, Any] = {}
# The classes of the custom_object_scope blocks this thread (or task) is inside.
# (An immutable empty default: each block sets a new dict, never changes one in place.)
_SCOPE: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "fastmlp_custom_object_scope", default=types.MappingProxyType({})
)


def register(package: str, name: Optional[str]) -> Callable[[Any], Any]:
    if not isinstance(package, str) or (name is not None and not isinstance(name, str)):
        raise TypeError(f"`package` and `name` must be strings. Received: package={package!r}, name={name!r}")

    def decorate(cls: Any) -> Any:
        if not hasattr(cls, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        key = f"{package}>{name or cls.__name__}"
        if REGISTERED.get(key, cls) is not cls:
            raise ValueError(f"{key} has already been registered to {REGISTERED[key]}")
        REGISTERED[key] = cls
        return cls

    return decorate


def registered_name(cls: type) -> str:
    """The name a file gives the class: its registry key when registered, else its __name__."""
    for key, value in REGISTERED.items():
        if value is cls:
            return key
    return cls.__name__


@contextlib.contextmanager
def scope(*objects: Mapping[str, Any]) -> Iterator[None]:
    """``objects``' classes count as registered while the block runs, in this thread."""
    merged = dict(_SCOPE.get())
    for mapping in objects:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"custom_object_scope takes dicts of name -> class. Received: {mapping!r}")
        merged.update(mapping)
    token = _SCOPE.set(merged)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def with_registered(custom_objects: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The classes a file's names may select, by name: the registry's (a plain class name too,
    when one registered class alone has it: files written before the key), the scope's, then a
    call's own ``custom_objects``, each over the one before."""
    plain: dict[str, list[Any]] = {}
    for key, cls in REGISTERED.items():
        plain.setdefault(key.split(">", 1)[-1], []).append(cls)
    unique = {name: classes[0] for name, classes in plain.items() if len(classes) == 1}
    return {**unique, **REGISTERED, **_SCOPE.get(), **(custom_objects or {})}
