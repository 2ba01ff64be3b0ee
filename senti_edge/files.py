"""File plumbing below every stage: the cache home, a portable inter-process lock and a file's sha256.

The lock is `filelock`'s (fcntl on POSIX, msvcrt on Windows), so the runtime imports on every OS;
the kernel drops it when its holder dies, so a killed process never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator

import filelock

from .errors import SentiEdgeError

_CHUNK = 1 << 20


def cache_home() -> Path:
    """Where models, builds and CPU decisions are cached: `SENTI_EDGE_HOME`, else
    `$XDG_CACHE_HOME/senti-edge`, else `~/.cache/senti-edge`."""
    if os.environ.get("SENTI_EDGE_HOME"):
        return Path(os.environ["SENTI_EDGE_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "senti-edge"


@contextlib.contextmanager
def locked(lock_path: Path, busy: str | None = None) -> Iterator[None]:
    """An exclusive lock on `lock_path`, so two processes never build the same file at once.

    Waits for the holder; with `busy`, fails at once with that message instead (for long jobs,
    where waiting would look like a hang)."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_path), timeout=0 if busy else -1)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise SentiEdgeError(busy) from None
    try:
        yield
    finally:
        lock.release()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
