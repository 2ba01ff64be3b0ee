"""Reading texts to analyse: plain text (a line each, or a whole file), JSONL, JSON arrays and CSV, or stdin.

Readers stream, so a 1 GB file costs no more memory than its longest line, and lines are read
with a length bound (`MAX_LINE_BYTES`), so a file without newlines cannot fill memory either.
Each text keeps its origin (`source`, 1-based `line`) and, for records, its other fields (so
results can be joined back). Blank lines are skipped but still counted. UTF-8 is the default;
a UTF-16 or UTF-32 byte-order mark switches to that encoding.

Nothing is dropped or changed silently: a record without usable text is skipped and a value that
is not a string is read as text, and each is counted by reason in a `Tally` (the CLI prints the
counts; `strict` makes the first one an error). Every bad input is a one-line `SentiEdgeError`
that names the file and line.

Limits: a line-per-text text longer than `MAX_TEXT_CHARS` is cut (and counted); a `--document`
is read whole up to `MAX_DOCUMENT_BYTES`. A file larger than `max_file_bytes` (default
`MAX_FILE_BYTES`, 2 GB: days of work for a small model on a CPU) is refused before anything is
analysed, so a wrong path fails at once instead of after hours; stdin and pipes are counted as
they stream and stop at the same cap.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import IO, Iterator, Sequence

from .errors import SentiEdgeError

MAX_TEXT_CHARS = 100_000  # longer line-per-text texts are cut (and counted); the model sees at most n_ctx tokens anyway
MAX_DOCUMENT_BYTES = 64 << 20  # --document and .json arrays are read into memory whole
MAX_LINE_BYTES = 16 << 20  # one line (a text, a JSONL record) at most; bounds memory per line
MAX_FILE_BYTES = 2_000_000_000  # per input file by default; analyze --max-file-mb changes it (0: no cap)

# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig"))


@dataclass(frozen=True)
class TextRecord:
    source: str
    line: int
    text: str
    target: str | None = None
    clipped: bool = False
    fields: dict | None = dc_field(default=None, compare=False)  # a record's other fields, in input order

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


class Tally:
    """Rows skipped or changed on the way in, counted by reason; with `strict`, the first is an error."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.skipped: collections.Counter = collections.Counter()
        self.changed: collections.Counter = collections.Counter()

    def _note(self, counter, where: str, reason: str) -> None:
        if self.strict:
            raise SentiEdgeError(f"{where}: {reason}; fix the input or drop --strict to skip or convert such rows")
        counter[reason] += 1

    def skip(self, where: str, reason: str) -> None:
        self._note(self.skipped, where, reason)

    def change(self, where: str, reason: str) -> None:
        self._note(self.changed, where, reason)

    def summary(self) -> str:
        """`skipped 2 rows (1 empty text, 1 no 'text' field); 1 number read as text`, or ''."""
        parts = []
        if self.skipped:
            n = sum(self.skipped.values())
            parts.append(f"skipped {n} row{'s' * (n != 1)} (" + ", ".join(f"{v} {k}" for k, v in self.skipped.most_common()) + ")")
        parts += [f"{v} {k}" for k, v in self.changed.most_common()]
        return "; ".join(parts)


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


def _sniff(fh: IO[bytes]) -> str:
    """The encoding a byte-order mark announces (the mark itself is consumed later); UTF-8 without one."""
    head = fh.peek(4)[:4] if hasattr(fh, "peek") else b""
    return next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8")


def _bad_encoding(name: str, lineno: int, encoding: str, byte: int | None = None) -> SentiEdgeError:
    what = f"invalid {encoding.upper().removesuffix('-SIG')}" + (f" (byte 0x{byte:02x})" if byte is not None else "")
    return SentiEdgeError(f"{name}:{lineno}: {what}; convert the file to UTF-8 or pass --errors replace to go on")


def _decode_lines(fh: IO[bytes], name: str, errors: str, *, max_line: int = MAX_LINE_BYTES,
                  max_bytes: int = 0) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) lines; NUL bytes in UTF-8 input mean binary.

    A line longer than `max_line` bytes is refused rather than read whole (memory stays bounded);
    reading stops with an error past `max_bytes` bytes (0: no cap), which is how the per-file cap
    holds for stdin and pipes, whose size is not known up front.
    """
    encoding = _sniff(fh)
    if encoding in ("utf-16", "utf-32"):
        yield from _decode_wide_lines(fh, name, encoding, errors, max_line, max_bytes)
        return
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
            raise _bad_encoding(name, lineno, "utf-8", raw[exc.start]) from None


def _decode_wide_lines(fh, name, encoding, errors, max_line, max_bytes) -> Iterator[tuple[int, str]]:
    """UTF-16/32 lines (the codec reads the mark and the byte order), with the same bounds."""
    unit = 2 if encoding == "utf-16" else 4
    text = io.TextIOWrapper(fh, encoding=encoding, errors=errors, newline="\n")
    seen, lineno = 0, 0
    try:
        while True:
            lineno += 1
            try:
                line = text.readline(max_line // unit + 1)
            except UnicodeDecodeError:
                raise _bad_encoding(name, lineno, encoding) from None
            if not line:
                return
            if len(line) > max_line // unit:
                raise SentiEdgeError(f"{name}:{lineno}: a line longer than {max_line >> 20} MB; give one text per line")
            seen += len(line) * unit
            if max_bytes and seen > max_bytes:
                raise _too_big(f"{name}:{lineno}: the input passes", max_bytes)
            yield lineno, line
    finally:
        text.detach()  # closing the wrapper would close stdin; the caller closes files


def _clip(text: str) -> tuple[str, bool]:
    return (text[:MAX_TEXT_CHARS], True) if len(text) > MAX_TEXT_CHARS else (text, False)


def _format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}.get(suffix, "text")


def read_texts(
    paths: Sequence[str],
    *,
    document: bool = False,
    field: str | None = None,
    target_field: str | None = None,
    target: str | None = None,
    fmt: str | None = None,
    errors: str = "strict",
    max_file_bytes: int = MAX_FILE_BYTES,
    tally: Tally | None = None,
) -> Iterator[TextRecord]:
    """Stream the texts of `paths` ("-" is stdin) in order; `max_file_bytes` caps each file (0: none).

    Regular files are checked against the cap before the first text is yielded, so every file is
    known to fit before a caller loads a model. With `target_field`, a record whose target is
    missing or empty gets `target` (None by default). Skips and conversions are counted in
    `tally` (a fresh, non-strict one when not given).
    """
    if errors not in ("strict", "replace"):
        raise SentiEdgeError(f"--errors must be strict or replace, not {errors!r}")
    for path in paths:
        if max_file_bytes and path != "-" and os.path.isfile(path):
            size = os.path.getsize(path)
            if size > max_file_bytes:
                raise _too_big(f"{path}: {_size(size)}, over", max_file_bytes)
    reader = _Records(field or "text", target_field, target, errors, max_file_bytes, tally or Tally())
    for path in paths:
        kind = _format(path, fmt)
        if field and kind == "text":
            raise SentiEdgeError(f"--field applies to .jsonl, .json and .csv inputs; {path} is read as plain text")
        fh, name = _open_binary(path)
        try:
            if document and kind == "text":
                yield _document(name, _read_whole(fh, name, errors, "--document reads a file as one text"))
            elif document:
                yield _document(name, "\n".join(r.text for r in reader.read(fh, name, kind)))
            else:
                yield from reader.read(fh, name, kind)
        finally:
            if fh is not sys.stdin.buffer:
                fh.close()


def _read_whole(fh: IO[bytes], name: str, errors: str, why: str) -> str:
    """A whole file decoded (any supported encoding), refused past `MAX_DOCUMENT_BYTES`."""
    data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SentiEdgeError(f"{name}: larger than {MAX_DOCUMENT_BYTES >> 20} MB; {why}")
    reader = io.BufferedReader(io.BytesIO(data))
    return "".join(line for _, line in _decode_lines(reader, name, errors, max_line=MAX_DOCUMENT_BYTES))


def _document(name: str, text: str) -> TextRecord:
    """A whole file as one text: no `MAX_TEXT_CHARS` cut, since long documents are what --chunk
    is for (records' texts are joined by newlines)."""
    if not text.strip():
        raise SentiEdgeError(f"{name}: empty document")
    return TextRecord(name, 1, text.strip())


@dataclass
class _Records:
    """Records (JSONL, JSON array, CSV/TSV rows) and plain lines, with the options they share."""

    field: str
    target_field: str | None
    target: str | None
    errors: str
    max_bytes: int
    tally: Tally

    def read(self, fh, name: str, kind: str) -> Iterator[TextRecord]:
        if kind in ("jsonl", "json"):
            return self._objects(self._jsonl(fh, name) if kind == "jsonl" else self._json(fh, name), name)
        if kind in ("csv", "tsv"):
            return self._csv(fh, name, "\t" if kind == "tsv" else ",")
        return self._plain(fh, name)

    def _plain(self, fh, name) -> Iterator[TextRecord]:
        for lineno, line in _decode_lines(fh, name, self.errors, max_bytes=self.max_bytes):
            text = line.rstrip("\r\n")
            if text.strip():
                yield self._clipped(TextRecord(name, lineno, text), f"{name}:{lineno}")

    def _objects(self, values: Iterator[tuple[int, object]], name: str) -> Iterator[TextRecord]:
        for i, (lineno, obj) in enumerate(values):
            rec = self._record(obj, name, lineno, first=i == 0)
            if rec is not None:
                yield rec

    def _jsonl(self, fh, name) -> Iterator[tuple[int, object]]:
        for lineno, line in _decode_lines(fh, name, self.errors, max_bytes=self.max_bytes):
            if line.strip():
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SentiEdgeError(f"{name}:{lineno}: not valid JSON ({exc.msg})") from None

    def _json(self, fh, name) -> Iterator[tuple[int, object]]:
        """A JSON array of objects (or one object), read like JSONL; `line` is where each object starts.
        A `.json` file that holds one object per line is read as JSONL."""
        text = _read_whole(fh, name, self.errors, "a .json file is read whole; convert it to JSONL "
                                                  "(one object per line) to stream it")
        decoder = json.JSONDecoder()
        pos = _skip_ws(text, 0)
        if text.startswith("{", pos):
            try:
                _, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                end = -1
            if end > 0 and _skip_ws(text, end) < len(text):  # more objects after the first: JSON lines
                yield from self._jsonl(io.BufferedReader(io.BytesIO(text.encode("utf-8"))), name)
                return
            text, pos = f"[{text}]", 0  # one object: a list of one (line numbers unchanged)
        elif not text.startswith("[", pos):
            raise SentiEdgeError(f"{name}: expected a JSON array of objects (or JSON lines)")
        pos = _skip_ws(text, pos + 1)
        lineno, counted = 1, 0
        while not text.startswith("]", pos):
            lineno, counted = lineno + text.count("\n", counted, pos), pos
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise SentiEdgeError(f"{name}:{text.count(chr(10), 0, exc.pos) + 1}: not valid JSON ({exc.msg})") from None
            yield lineno, obj
            pos = _skip_ws(text, pos)
            if text.startswith(",", pos):
                pos = _skip_ws(text, pos + 1)
            elif not text.startswith("]", pos):
                raise SentiEdgeError(f"{name}:{text.count(chr(10), 0, pos) + 1}: not valid JSON (expected , or ])")

    def _csv(self, fh, name, delimiter) -> Iterator[TextRecord]:
        lines = (line for _, line in _decode_lines(fh, name, self.errors, max_bytes=self.max_bytes))
        csv.field_size_limit(MAX_TEXT_CHARS * 4)
        reader = csv.DictReader(lines, delimiter=delimiter)
        try:
            for row in reader:
                where = f"{name}:{reader.line_num}"
                if self.field not in (reader.fieldnames or ()):
                    raise SentiEdgeError(f"{where}: no field {self.field!r} (fields: {', '.join(reader.fieldnames or ())}); "
                                         "choose another field")
                if None in row:  # cells past the header's columns
                    self.tally.change(where, "row(s) with more cells than the header (extra cells left out)")
                    del row[None]
                row = {k: v for k, v in row.items() if v is not None}  # a short row lacks its last cells
                rec = self._record(row, name, reader.line_num, False)
                if rec is not None:
                    yield rec
        except csv.Error as exc:
            raise SentiEdgeError(f"{name}:{reader.line_num}: bad CSV ({exc})") from None

    def _record(self, obj, name: str, lineno: int, first: bool) -> TextRecord | None:
        """A record's text, target and other fields; None (counted) when it has no usable text.

        A first record without the text field means the wrong --field, so that is an error that
        lists the fields; later ones are skipped and counted."""
        where = f"{name}:{lineno}"
        if not isinstance(obj, dict):
            raise SentiEdgeError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if self.field not in obj:
            if first:
                keys = ", ".join(str(k) for k in obj)
                raise SentiEdgeError(f"{where}: no field {self.field!r} (fields: {keys}); choose another field")
            self.tally.skip(where, f"no {self.field!r} field")
            return None
        text = self._string(obj[self.field], where)
        if text is None or not text.strip():
            self.tally.skip(where, "empty or null text")
            return None
        target = None
        if self.target_field:
            target = self._string(obj.get(self.target_field), where)
            if not (target and target.strip()):
                target = self.target
        fields = {k: v for k, v in obj.items() if k != self.field}
        return self._clipped(TextRecord(name, lineno, text, target=target, fields=fields), where)

    def _string(self, value, where: str) -> str | None:
        """A field value as text; a number, true/false, list or object is converted and counted."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            self.tally.change(where, "true/false value(s) read as text")
            return json.dumps(value)
        if isinstance(value, (int, float)):
            self.tally.change(where, "number(s) read as text")
            return str(value)
        self.tally.change(where, "list/object value(s) read as JSON text")
        return json.dumps(value, ensure_ascii=False)

    def _clipped(self, rec: TextRecord, where: str) -> TextRecord:
        if len(rec.text) <= MAX_TEXT_CHARS:
            return rec
        self.tally.change(where, f"text(s) cut at {MAX_TEXT_CHARS:,} characters")
        text, _ = _clip(rec.text)
        return TextRecord(rec.source, rec.line, text, rec.target, True, rec.fields)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
