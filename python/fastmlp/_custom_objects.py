"""The user's classes that files may name (internal): Keras's registry of custom objects.

A saved model names a user's class (a ``LearningRateSchedule`` subclass) by its class name and
never holds its code; ``load_model`` rebuilds it only from a class found here or in its own
``custom_objects``. ``fastmlp.saving`` exposes Keras's ways to fill it:
``register_keras_serializable``, ``get_custom_objects`` and ``custom_object_scope``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

# Name -> class. Keras's get_custom_objects() returns this very dict, which users may change.
REGISTERED: dict[str, Any] = {}


def register(package: str, name: Optional[str]) -> Callable[[Any], Any]:
    if not isinstance(package, str) or (name is not None and not isinstance(name, str)):
        raise TypeError(f"`package` and `name` must be strings. Received: package={package!r}, name={name!r}")

    def decorate(cls: Any) -> Any:
        # Keras's key is "package>name"; fastmlp's files name a class by its __name__, so that
        # finds it too (and the given name, when it differs).
        for key in {f"{package}>{name or cls.__name__}", name or cls.__name__, cls.__name__}:
            REGISTERED[key] = cls
        return cls

    return decorate


@contextlib.contextmanager
def scope(*objects: Mapping[str, Any]) -> Iterator[None]:
    """The classes of ``objects`` registered while the block runs, then the registry as it was."""
    saved = dict(REGISTERED)
    for mapping in objects:
        if not isinstance(mapping, Mapping):
            raise TypeError(f"custom_object_scope takes dicts of name -> class. Received: {mapping!r}")
        REGISTERED.update(mapping)
    try:
        yield
    finally:
        REGISTERED.clear()
        REGISTERED.update(saved)


def with_registered(custom_objects: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The registered classes, overridden by a call's own ``custom_objects``."""
    return {**REGISTERED, **(custom_objects or {})}
