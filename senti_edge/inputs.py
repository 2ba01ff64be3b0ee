"""Reading texts to analyse: plain text (a line each, or a whole file), JSONL and CSV, or stdin.

Readers stream, so a 1 GB file costs no more memory than its longest line, and lines are read
with a length bound (`MAX_LINE_BYTES`), so a file without newlines cannot fill memory either.
Each text keeps its origin (`source`, 1-based `line`), blank lines are skipped but still counted,
and every bad input becomes a one-line `SentiEdgeError` that names the file and line.

Limits: a text longer than `MAX_TEXT_CHARS` is cut (and flagged); a file larger than
`max_file_bytes` (default `MAX_FILE_BYTES`, 2 GB: days of work for a small model on a CPU) is
refused before anything is analysed, so a wrong path (a disk image, a log archive) fails at once
instead of after hours; stdin and pipes are counted as they stream and stop at the same cap.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

from .errors import SentiEdgeError

MAX_TEXT_CHARS = 100_000  # longer texts are cut (and counted); the model sees at most n_ctx tokens anyway
MAX_DOCUMENT_BYTES = 64 << 20  # --document reads a whole file into memory
MAX_LINE_BYTES = 16 << 20  # one line (a text, a JSONL record) at most; bounds memory per line
MAX_FILE_BYTES = 2_000_000_000  # per input file by default; analyze --max-file-mb changes it (0: no cap)


@dataclass(frozen=True)
class TextRecord:
    source: str
    line: int
    text: str
    target: str | None = None
    clipped: bool = False

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def _open_binary(path: str) -> tuple[IO[bytes], str]:
    if path == "-":
        return sys.stdin.buffer, "<stdin>"
    p = Path(path)
    if p.is_dir():
        raise SentiEdgeError(f"{path} is a directory; give a file (or - for stdin)")
    if not p.exists():
        raise SentiEdgeError(f"file not found: {path}")
    try:
        return open(p, "rb"), path
    except OSError as exc:
        raise SentiEdgeError(f"cannot read {path}: {exc.strerror}") from None


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 100_000 else f"{n / 1e6:,.1f}".removesuffix(".0") + " MB"


def _too_big(where: str, limit: int) -> SentiEdgeError:
    return SentiEdgeError(f"{where} the {_size(limit)} limit per input file; "
                          "raise it with --max-file-mb (0: no limit) or split the input")


def _decode_lines(fh: IO[bytes], name: str, errors: str, *, max_line: int = MAX_LINE_BYTES,
                  max_bytes: int = 0) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) decoding UTF-8 (a BOM is dropped); NUL bytes mean binary.

    A line longer than `max_line` bytes is refused rather than read whole (memory stays bounded);
    reading stops with an error past `max_bytes` bytes (0: no cap), which is how the per-file cap
    holds for stdin and pipes, whose size is not known up front.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors)
    seen = 0
    for lineno, raw in enumerate(iter(lambda: fh.readline(max_line + 1), b""), start=1):
        if len(raw) > max_line:
            raise SentiEdgeError(f"{name}:{lineno}: a line longer than {max_line >> 20} MB; "
                                 "give one text per line (or a smaller --document)")
        seen += len(raw)
        if max_bytes and seen > max_bytes:
            raise _too_big(f"{name}:{lineno}: the input passes", max_bytes)
        if b"\x00" in raw:
            raise SentiEdgeError(f"{name}:{lineno}: NUL byte; this looks like a binary file, not text")
        if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            yield lineno, decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise SentiEdgeError(
                f"{name}:{lineno}: invalid UTF-8 (byte 0x{raw[exc.start]:02x}); convert the file to UTF-8 "
                "or pass --errors replace to go on"
            ) from None


def _clip(text: str) -> tuple[str, bool]:
    return (text[:MAX_TEXT_CHARS], True) if len(text) > MAX_TEXT_CHARS else (text, False)


def _format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(suffix, "text")


def read_texts(
    paths: Sequence[str],
    *,
    document: bool = False,
    field: str | None = None,
    target_field: str | None = None,
    fmt: str | None = None,
    errors: str = "strict",
    max_file_bytes: int = MAX_FILE_BYTES,
) -> Iterator[TextRecord]:
    """Stream the texts of `paths` ("-" is stdin) in order; `max_file_bytes` caps each file (0: none).

    Regular files are checked against the cap before the first text is yielded, so every file is
    known to fit before a caller loads a model.
    """
    if errors not in ("strict", "replace"):
        raise SentiEdgeError(f"--errors must be strict or replace, not {errors!r}")
    for path in paths:
        if max_file_bytes and path != "-" and os.path.isfile(path):
            size = os.path.getsize(path)
            if size > max_file_bytes:
                raise _too_big(f"{path}: {_size(size)}, over", max_file_bytes)
    for path in paths:
        kind = _format(path, fmt)
        if field and kind == "text" and not document:
            raise SentiEdgeError(f"--field applies to .jsonl and .csv inputs; {path} is read as plain text")
        fh, name = _open_binary(path)
        try:
            if document:
                yield _read_document(fh, name, errors)
            elif kind == "jsonl":
                yield from _read_jsonl(fh, name, field or "text", target_field, errors, max_file_bytes)
            elif kind in ("csv", "tsv"):
                yield from _read_csv(fh, name, field or "text", target_field, errors, "\t" if kind == "tsv" else ",",
                                     max_file_bytes)
            else:
                for lineno, line in _decode_lines(fh, name, errors, max_bytes=max_file_bytes):
                    text = line.rstrip("\r\n")
                    if text.strip():
                        text, clipped = _clip(text)
                        yield TextRecord(name, lineno, text, clipped=clipped)
        finally:
            if fh is not sys.stdin.buffer:
                fh.close()


def _read_document(fh: IO[bytes], name: str, errors: str) -> TextRecord:
    data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SentiEdgeError(f"{name}: larger than {MAX_DOCUMENT_BYTES >> 20} MB; --document reads a file as one text")
    text = "".join(line for _, line in _decode_lines(io.BytesIO(data), name, errors, max_line=MAX_DOCUMENT_BYTES))
    if not text.strip():
        raise SentiEdgeError(f"{name}: empty document")
    text, clipped = _clip(text)
    return TextRecord(name, 1, text.strip(), clipped=clipped)


def _read_jsonl(fh, name, field, target_field, errors, max_bytes) -> Iterator[TextRecord]:
    for lineno, line in _decode_lines(fh, name, errors, max_bytes=max_bytes):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SentiEdgeError(f"{name}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise SentiEdgeError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        rec = _from_mapping(obj, name, lineno, field, target_field)
        if rec.text.strip():
            yield rec


def _read_csv(fh, name, field, target_field, errors, delimiter, max_bytes) -> Iterator[TextRecord]:
    lines = (line for _, line in _decode_lines(fh, name, errors, max_bytes=max_bytes))
    csv.field_size_limit(MAX_TEXT_CHARS * 4)
    reader = csv.DictReader(lines, delimiter=delimiter)
    try:
        for row in reader:
            rec = _from_mapping(row, name, reader.line_num, field, target_field, header=reader.fieldnames)
            if rec.text.strip():
                yield rec
    except csv.Error as exc:
        raise SentiEdgeError(f"{name}:{reader.line_num}: bad CSV ({exc})") from None


def _from_mapping(obj: dict, name: str, lineno: int, field: str, target_field: str | None, header=None) -> TextRecord:
    if field not in obj:
        keys = ", ".join(str(k) for k in (header or obj.keys()))
        raise SentiEdgeError(f"{name}:{lineno}: no field {field!r} (fields: {keys}); choose another field")
    text = obj[field]
    if text is None:
        text = ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False) if isinstance(text, (list, dict)) else str(text)
    target = None
    if target_field:
        if target_field not in obj:
            raise SentiEdgeError(f"{name}:{lineno}: no field {target_field!r} for the stance target")
        target = str(obj[target_field])
    text, clipped = _clip(text)
    return TextRecord(name, lineno, text, target=target, clipped=clipped)
