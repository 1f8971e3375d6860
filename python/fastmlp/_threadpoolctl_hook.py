"""Registers fastmlp's threadpoolctl controller (``fastmlp._threadpoolctl``) whenever
threadpoolctl is imported, without ``import fastmlp`` importing threadpoolctl.

threadpoolctl has no plug-in discovery: a library registers its controller by calling
``threadpoolctl.register``. If threadpoolctl is already imported when fastmlp is, that happens
at once. Otherwise a finder at the front of ``sys.meta_path`` waits for threadpoolctl's import
(scikit-learn, joblib users and ``from threadpoolctl import threadpool_limits`` all import it
after fastmlp as often as before): it answers for that one name only, removes itself, lets the
other finders find the module, and registers once the module has run. Imports of every other
name pass it by at the cost of one comparison.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

TARGET = "threadpoolctl"
CONTROLLER = "fastmlp._threadpoolctl"


def install() -> None:
    """Registers now if threadpoolctl is imported, else when it is."""
    if TARGET in sys.modules:
        register()
    elif not any(isinstance(finder, RegisterWhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, RegisterWhenImported())


def register() -> None:
    # threadpoolctl's own import errors stay its importer's business; a controller that cannot
    # load leaves threadpoolctl as it was.
    try:
        importlib.import_module(CONTROLLER)
    except ImportError:
        pass


class RegisterWhenImported(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:  # another thread's import of threadpoolctl removed it first
            pass
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = RegisterAfterLoading(spec.loader)
        return spec


class RegisterAfterLoading(importlib.abc.Loader):
    """Runs the module with its own loader, then registers; everything else is the loader's."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        # The import machinery puts the module in sys.modules before running it, so the
        # controller's own `import threadpoolctl` finds this module, not a second copy.
        register()

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)
