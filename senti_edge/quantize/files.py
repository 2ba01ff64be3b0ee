"""File-system helpers of the quantize stage: space checks and write-then-rename outputs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import SentiEdgeError


def make_public(path: Path) -> None:
    """Give a file made by mkstemp/mkdtemp (0600/0700) the usual permissions under the umask."""
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o777 if path.is_dir() else 0o666
    os.chmod(path, mode & ~umask)
    if path.is_dir():
        for p in path.iterdir():
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside `final` for a tool to write; renamed to `final` only on success.

    For writers that need a file name (a converter subprocess, llama_model_quantize) rather than
    a file handle (`senti_edge.jsonl.atomic_open`). On any error the temporary file is removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.getsize(tmp) == 0:
            raise SentiEdgeError(f"nothing was written for {final.name}")
        make_public(Path(tmp))
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
