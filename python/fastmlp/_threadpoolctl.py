"""fastmlp's threadpoolctl controller: ``threadpoolctl.threadpool_info()`` lists fastmlp's pool
and ``threadpool_limits(n)`` limits it, as it limits BLAS and OpenMP pools.

Importing this module imports threadpoolctl and registers the controller (a threadpoolctl too
old to have ``register`` is left alone). ``fastmlp._threadpoolctl_hook`` imports it once
threadpoolctl is imported, so ``import fastmlp`` itself never imports threadpoolctl.

threadpoolctl finds the controller's library among the loaded shared libraries: its file name
starts with ``_core.`` (the extension, ``fastmlp/_core.cpython-*.so``), and it exports
``fastmlp_get_num_threads``, which no other ``_core`` extension does. The controller calls the
library's C entry points (cpp/bindings/threadpoolctl_entry.cpp) through ctypes.
"""

from __future__ import annotations

import ctypes

import threadpoolctl

from ._version import __version__


class FastmlpController(threadpoolctl.LibController):  # type: ignore[misc]
    user_api = "fastmlp"
    internal_api = "fastmlp"
    filename_prefixes = ("_core.",)
    check_symbols = ("fastmlp_get_num_threads", "fastmlp_set_num_threads")

    def get_num_threads(self) -> int | None:
        get = getattr(self.dynlib, "fastmlp_get_num_threads", None)
        if get is None:  # another library called _core, about to be rejected by check_symbols
            return None
        get.restype = ctypes.c_int
        return int(get())

    def set_num_threads(self, num_threads: int) -> None:
        set_threads = getattr(self.dynlib, "fastmlp_set_num_threads", None)
        if set_threads is None:
            return
        set_threads.restype = ctypes.c_int
        set_threads.argtypes = [ctypes.c_int]
        if set_threads(max(1, min(int(num_threads), 1024))) != 0:
            raise RuntimeError(f"fastmlp could not start {num_threads} threads.")

    def get_version(self) -> str | None:
        return __version__ if hasattr(self.dynlib, "fastmlp_get_num_threads") else None


if hasattr(threadpoolctl, "register"):
    threadpoolctl.register(FastmlpController)
