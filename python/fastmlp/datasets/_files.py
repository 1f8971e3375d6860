"""Opening a data file for reading, refusing anything but a regular file.

A named pipe, a device or a socket has no size to check a header against, may never
end (``/dev/zero``), and opening a pipe for reading blocks until some writer appears.
Every file the loaders read goes through :func:`open_regular`, so none of these can
hang a load or feed it unbounded data.
"""

from __future__ import annotations

import io
import os
import stat

__all__ = ["open_regular"]

# O_NONBLOCK: opening a named pipe returns at once instead of waiting for a writer, so
# the fstat below can refuse it; on a regular file the flag changes nothing, and it is
# cleared before any read. O_NOCTTY: a terminal never becomes the controlling one.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "an unknown kind of file")


def _refuse(name: str, mode: int) -> OSError:
    return OSError(f"{name}: is {_kind(mode)}, not a regular file; refusing to read it")


def open_regular(path: str | os.PathLike[str]) -> io.BufferedReader:
    """Open ``path`` for binary reading if it is a regular file (symlinks followed).

    The path is checked before opening (so a device is never even opened) and the open
    file again (so a file swapped in between is caught too).

    Raises:
        OSError: ``path`` cannot be opened, or is a directory, pipe, device or socket.
    """
    name = os.fspath(path)
    mode = os.stat(name).st_mode
    if not stat.S_ISREG(mode):
        raise _refuse(name, mode)
    fd = os.open(name, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(name, mode)
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
