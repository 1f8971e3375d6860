"""Download of published files from a list of mirrors, each file checked against its hashes.

Files are fetched into memory (the largest, Fashion-MNIST's training images, is 26 MB)
and parsed from there; nothing unverified is ever written to disk. Failing is fast: a
request gets a short socket timeout, and no new request starts once the step's time
budget is spent, so a machine without internet moves on to the next source within
seconds. (A download that is making progress is not cut off by the budget: the socket
timeout applies to each read, not to the whole transfer.)
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import ChecksumError
from ._log import note

__all__ = ["RemoteFile", "download_all", "fetch", "verify"]

#: Socket timeout of one request, seconds (connect, and each read).
REQUEST_TIMEOUT_S = 10.0
#: No new request starts after this many seconds of the download step.
BUDGET_S = 20.0
#: Ceiling for a file of unknown size; real ones are far smaller.
_MAX_UNKNOWN_SIZE = 64 << 20
_USER_AGENT = "fastmlp-datasets"


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its name on the mirrors, and what it must hash to."""

    name: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None


def verify(data: bytes, remote: RemoteFile, url: str) -> None:
    """Raise :class:`ChecksumError` unless ``data`` matches every hash of ``remote``."""
    if remote.sha256 is None and remote.md5 is None:
        raise ChecksumError(f"{url}: no published checksum to verify against; refusing it")
    if remote.size is not None and len(data) != remote.size:
        raise ChecksumError(f"{url}: expected {remote.size} bytes, received {len(data)}")
    checks = (("sha256", remote.sha256), ("md5", remote.md5))
    for algorithm, expected in checks:
        if expected is None:
            continue
        # md5 is only an integrity check against a published value here, not security.
        digest = hashlib.new(algorithm, data, usedforsecurity=False).hexdigest()
        if digest != expected.lower():
            raise ChecksumError(
                f"{url}: {algorithm} mismatch: expected {expected}, received {digest}"
            )


def fetch(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """GET ``url`` into memory; raises OSError (URLError, HTTPError, timeout)."""
    # The network stack (urllib, http.client, ssl, email) is imported on the first
    # download, not by ``import fastmlp``: it is most of this package's import cost and
    # only a download uses it.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open response
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    if len(data) > max_bytes:
        raise OSError(f"larger than the expected {max_bytes} bytes")
    return data


def download_all(files: Sequence[RemoteFile], mirrors: Sequence[str]) -> list[tuple[str, bytes]]:
    """Fetch every file, trying the mirrors in order; return ``(url, data)`` per file.

    Raises:
        OSError: some file could not be had from any mirror; the message lists the
            reason of each attempt.
    """
    import http.client  # imported here for the reason given in fetch

    deadline = time.monotonic() + BUDGET_S
    results: list[tuple[str, bytes]] = []
    for remote in files:
        failures: list[str] = []
        for mirror in mirrors:
            url = mirror + remote.name
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append(f"{url}: not tried, the {BUDGET_S:g} s budget is spent")
                continue
            note(f"downloading {url}")
            try:
                data = fetch(
                    url,
                    timeout=min(REQUEST_TIMEOUT_S, remaining),
                    max_bytes=remote.size if remote.size is not None else _MAX_UNKNOWN_SIZE,
                )
                verify(data, remote, url)
            except ChecksumError as exc:
                failures.append(str(exc))
                continue
            except (OSError, ValueError, http.client.HTTPException) as exc:
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
                continue
            results.append((url, data))
            break
        else:
            raise OSError("\n".join(failures) if failures else "no mirror configured")
    return results
