"""Replacing a file atomically, and removing the temporary files of writers that died.

A file is written to a temporary file in the target's directory, flushed to disk, then renamed
over the target: an interrupted or failing write leaves any existing file as it was, never a torn
one. A writer killed outright (SIGKILL, power loss) leaves its temporary file behind; each name
says which host and process wrote it, ``.fastmlp-<host>-<pid>-<random>.tmp``, so that a later
save or load in the same directory removes those of this host whose process no longer exists.

Only regular files whose whole name has that form are removed, never through a symbolic link,
and never while their process lives (a process this one may not signal is alive). A process of
another PID namespace on this host with the same host name (containers sharing a directory and
a host name) looks dead here: its temporary file can be removed while it writes, and its save
then fails with ``FileNotFoundError``, leaving the target as it was. Windows is skipped: there
``os.kill`` would end the process it probes.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import tempfile
import zlib
from typing import IO, Callable

PREFIX = ".fastmlp-"
SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"\.fastmlp-([0-9a-f]{8})-([1-9][0-9]{0,9})-[a-z0-9_]+\.tmp")


def _host() -> str:
    """This host, as 8 hex digits (a host name may hold any character)."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it exists; a PID beyond the OS's: not ours
        return True
    return True


def remove_orphans(directory: str) -> None:
    """Remove the temporary files in ``directory`` left by dead writers of this host; every
    failure (an unreadable directory, a file gone meanwhile) is ignored."""
    if os.name == "nt":
        return
    host = _host()
    try:
        entries = os.scandir(directory)
    except OSError:
        return
    with entries:
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match is None or match[1] != host or _alive(int(match[2])):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            except OSError:
                pass


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only
    read it by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(filepath: str) -> int:
    """The permissions the new file gets: the replaced file's, else those open() would give a
    new file (0o666 less the umask); mkstemp alone would leave it readable by its owner only."""
    try:
        return stat.S_IMODE(os.stat(filepath).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _target(filepath: str) -> str:
    """The regular file a save replaces: through a symbolic link, its target (the link stays, as
    ``open()`` writes through it). A device, FIFO or socket there is refused (``OSError`` EINVAL):
    a rename would put a regular file in its place (``/dev/null`` included, for root). A file
    ``open()`` could not write is ``PermissionError``, as ``open()`` raises it; a missing file
    is created."""
    target = os.path.realpath(filepath)
    try:
        status = os.stat(target)
    except OSError:  # missing (the save creates it) or unreadable (the write reports it)
        return target
    if not stat.S_ISREG(status.st_mode) and not stat.S_ISDIR(status.st_mode):
        raise OSError(errno.EINVAL, "not a regular file: a save would replace it", filepath)
    if stat.S_ISREG(status.st_mode) and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), filepath)
    return target


def atomic_write(filepath: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` with a new temporary file open for writing, then put that file, flushed to
    disk, in place of ``filepath`` (of the file it links to: ``_target``). Errors name
    ``filepath``, as ``open()``'s do."""
    target = _target(filepath)
    directory = os.path.dirname(target)
    remove_orphans(directory)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f"{PREFIX}{_host()}-{os.getpid()}-", suffix=SUFFIX, dir=directory)
    except OSError as error:  # e.g. no such directory: name the file asked for, not ours
        raise OSError(error.errno, error.strerror, filepath) from None
    try:
        if hasattr(os, "fchmod"):  # POSIX (and Windows from Python 3.13, where it is moot)
            os.fchmod(fd, _mode_for(target))
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(temporary, target)
        except OSError as error:  # e.g. the target is a directory: name it, not our file
            raise OSError(error.errno, error.strerror, filepath) from None
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
