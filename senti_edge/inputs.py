"""Reading texts to analyse: plain text (a line each, or a whole file), JSONL and CSV, or stdin.

Readers stream, so a 1 GB file costs no more memory than its longest line. Each text keeps its
origin (`source`, 1-based `line`), blank lines are skipped but still counted, and every bad
input becomes a one-line `SentiEdgeError` that names the file and line.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence

from .errors import SentiEdgeError

MAX_TEXT_CHARS = 100_000  # longer texts are cut (and counted); the model sees at most n_ctx tokens anyway
MAX_DOCUMENT_BYTES = 64 << 20  # --document reads a whole file into memory


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


def _decode_lines(fh: IO[bytes], name: str, errors: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) decoding UTF-8 (a BOM is dropped); NUL bytes mean binary."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors)
    for lineno, raw in enumerate(fh, start=1):
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
) -> Iterator[TextRecord]:
    """Stream the texts of `paths` ("-" is stdin) in order."""
    if errors not in ("strict", "replace"):
        raise SentiEdgeError(f"--errors must be strict or replace, not {errors!r}")
    for path in paths:
        kind = _format(path, fmt)
        if field and kind == "text" and not document:
            raise SentiEdgeError(f"--field applies to .jsonl and .csv inputs; {path} is read as plain text")
        fh, name = _open_binary(path)
        try:
            if document:
                yield _read_document(fh, name, errors)
            elif kind == "jsonl":
                yield from _read_jsonl(fh, name, field or "text", target_field, errors)
            elif kind in ("csv", "tsv"):
                yield from _read_csv(fh, name, field or "text", target_field, errors, "\t" if kind == "tsv" else ",")
            else:
                for lineno, line in _decode_lines(fh, name, errors):
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
    text = "".join(line for _, line in _decode_lines(io.BytesIO(data), name, errors))
    if not text.strip():
        raise SentiEdgeError(f"{name}: empty document")
    text, clipped = _clip(text)
    return TextRecord(name, 1, text.strip(), clipped=clipped)


def _read_jsonl(fh, name, field, target_field, errors) -> Iterator[TextRecord]:
    for lineno, line in _decode_lines(fh, name, errors):
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


def _read_csv(fh, name, field, target_field, errors, delimiter) -> Iterator[TextRecord]:
    lines = (line for _, line in _decode_lines(fh, name, errors))
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
