"""Plain-file I/O shared by every stage: atomic writes and append-and-resume JSONL.

Every stage reads and writes plain files so any stage can be rerun alone. Final files are
written under a temporary name and renamed into place, so a crash never leaves a half-written
file under the final name. Long jobs append one JSON object per finished item and, when rerun,
skip the ids already present; a torn last line (a kill mid-write) is ignored and overwritten.
A full disk becomes a `SentiEdgeError` that says what was kept (the old file, or the complete records).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import SentiEdgeError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # out of space, or over the user's quota


def ensure_space(directory: Path, need: int, what: str) -> None:
    """Fail before writing `what` when `directory`'s disk has less than `need` bytes (+5%) free."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < need * 1.05:
        raise SentiEdgeError(
            f"not enough disk space for {what} in {directory}: about {need / 1e6:.0f} MB needed, "
            f"{free / 1e6:.0f} MB free; free some space or write elsewhere (--out, SENTI_EDGE_HOME)"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise SentiEdgeError(f"no space left on the disk of {path.parent} while writing {path.name}; "
                                 "the file was not replaced and no partial file is left; free some space and rerun") from None
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON with sorted keys, atomically."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read complete JSONL records; a torn final line (no newline, bad JSON) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if i == len(lines) - 1:  # torn tail from a killed writer
                break
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid UTF-8"
            raise SentiEdgeError(f"{path}:{i + 1}: not valid JSON ({why}); fix or delete that line") from None
        if not isinstance(row, dict):
            raise SentiEdgeError(f"{path}:{i + 1}: expected a JSON object per line; fix or delete that line")
        rows.append(row)
    return rows


class JsonlAppender:
    """Append-and-resume writer: `done` holds the ids already on disk; `append` adds one record.

    Each record is written and flushed as one line, so a kill loses at most the record in
    flight. On open, a torn tail is cut off so the next append starts on a clean line.
    """

    def __init__(self, path: str | os.PathLike, id_key: str = "id"):
        self.path = Path(path)
        self.id_key = id_key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_torn_tail()
        self.records = read_jsonl(self.path)
        self.done = {r[id_key] for r in self.records if id_key in r}
        self._fh = open(self.path, "a", encoding="utf-8")

    def _truncate_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict) -> None:
        if record.get(self.id_key) in self.done:
            raise ValueError(f"duplicate id {record.get(self.id_key)!r} in {self.path}")
        size = os.fstat(self._fh.fileno()).st_size  # earlier records are flushed: this is where ours starts
        try:
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            with contextlib.suppress(OSError):
                self._fh.close()  # drops the buffer it cannot write
            with contextlib.suppress(OSError):
                os.truncate(self.path, size)  # and the part of this record that did get written
            raise SentiEdgeError(f"no space left on the disk of {self.path}: the {len(self.done)} complete records "
                                 "written so far are kept; free some space and rerun to resume") from None
        self.done.add(record.get(self.id_key))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
