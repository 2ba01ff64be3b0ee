"""Writing result rows: a readable table for a terminal, or json / jsonl / csv for programs.

Rows are dicts with stable keys: `id`, `source`, `line`, `text` (unless left out), the result
(`label`, `confidence`, `probs`, `explanation`, `chunks`; or `aspects`, `complete`), then the
input record's own fields. Rows are written and flushed batch by batch, so a pipe sees them as
they are produced; with `--output FILE` everything goes to a temporary file that replaces FILE
only when the run completed.

Output is made safe for where it lands: CSV cells that a spreadsheet would run as a formula get
a leading `'`, and the table escapes control characters instead of sending them to the terminal.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import unicodedata
from pathlib import Path
from typing import IO, Iterable, Sequence

FORMATS = ("table", "json", "jsonl", "csv")
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".txt": "table"}
RESULT_KEYS = ("id", "source", "line", "text", "label", "confidence", "probs", "explanation", "chunks",
               "aspects", "complete")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Bidirectional overrides reorder what a terminal shows; escape them like control characters.
_BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}


def format_for(output: str | None, fmt: str | None, tty: bool) -> str:
    """`-o` if given, else the `--output` file's extension (jsonl for any other), else table on a terminal."""
    if fmt:
        return fmt
    if output:
        return EXTENSIONS.get(Path(output).suffix.lower(), "jsonl")
    return "table" if tty else "jsonl"


def make_row(rec, result: dict, *, text: bool = True, keep: Sequence[str] | None = None,
             labels: Sequence[str] = ()) -> dict:
    """One output row: where the text came from, the result, then the record's own fields
    (`keep`: those named; None: all). A field named like a result column becomes `input_<name>`."""
    row = {"id": rec.id, "source": rec.source, "line": rec.line}
    if text:
        row["text"] = rec.text
    row.update(result)
    taken = set(RESULT_KEYS) | {f"p_{lab}" for lab in labels}
    for name, value in (getattr(rec, "fields", None) or {}).items():
        if keep is None or name in keep:
            row[f"input_{name}" if name in taken else name] = value
    return row


def csv_cell(value):
    """A value as a CSV cell; text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or
    CR first, not a plain number) is prefixed with `'` so it shows as text."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def printable(text: str) -> str:
    """Whitespace folded to single spaces, and control and bidi characters shown as `\\x1b` escapes,
    so text from a file cannot move the cursor, clear the screen or retitle the terminal."""
    out = []
    for ch in " ".join(str(text).split()):
        if unicodedata.category(ch) == "Cc" or ord(ch) in _BIDI:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class RowWriter:
    """Write rows to `fh` in `fmt`, one batch at a time (flushed); `close()` finishes (json's `]`).

    `labels` sizes the table's columns. CSV columns are fixed by the first row; fields that first
    appear later are left out of the CSV and their names collected in `unknown` for a warning.
    """

    def __init__(self, fh: IO[str], fmt: str, *, probs: bool = False, labels: Sequence[str] = ()):
        self.fh, self.fmt, self.probs, self.labels = fh, fmt, probs, tuple(labels)
        self.n = 0
        self.unknown: set[str] = set()
        self._csv: csv.DictWriter | None = None
        self._table: _Table | None = None

    def write_batch(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.write(row)
        self.fh.flush()

    def write(self, row: dict) -> None:
        if not self.probs:
            row = {k: v for k, v in row.items() if k != "probs"}
        if self.fmt == "jsonl":
            self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "json":
            self.fh.write(("[\n  " if self.n == 0 else ",\n  ") + json.dumps(row, ensure_ascii=False))
        elif self.fmt == "csv":
            self._write_csv(row)
        else:
            self._table = self._table or _Table(row, self.labels, self.probs, self.fh)
            self._table.write(row)
        self.n += 1

    def _write_csv(self, row: dict) -> None:
        flat = {}
        for key, value in row.items():
            if key == "probs":
                flat.update({f"p_{k}": round(v, 6) for k, v in value.items()})
            else:
                flat[key] = value
        if self._csv is None:
            self._csv = csv.DictWriter(self.fh, fieldnames=list(flat), lineterminator="\n", extrasaction="ignore")
            self._csv.writerow({k: csv_cell(k) for k in flat})
        self.unknown.update(k for k in flat if k not in self._csv.fieldnames)
        self._csv.writerow({k: csv_cell(v) for k, v in flat.items()})

    def close(self) -> None:
        if self.fmt == "json":
            self.fh.write("[]\n" if self.n == 0 else "\n]\n")
        self.fh.flush()


def _cut(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class _Table:
    """A terminal table written row by row: column widths come from the labels and the first row
    (ids wider than that are cut), so no row has to wait for the last one."""

    def __init__(self, first: dict, labels: Sequence[str], probs: bool, fh: IO[str]):
        self.fh, self.term = fh, shutil.get_terminal_size((100, 20)).columns
        self.aspects = "aspects" in first
        self.show_text = "text" in first
        self.id_w = min(24, max(2, len(printable(first["id"]))))
        labels = [printable(lab) for lab in labels] or [printable(first.get("label", ""))]
        self.label_w = max(5, *(len(lab) for lab in labels))
        self.prob_labels = list(first.get("probs", {})) if probs else []
        self.prob_w = [max(6, len(printable(lab))) for lab in self.prob_labels]
        if self.aspects:
            head = f"{'id':<{self.id_w}}  {'aspects (aspect, category, opinion, polarity)':<50}"
        else:
            head = f"{'id':<{self.id_w}}  {'label':<{self.label_w}}  conf " + "".join(
                f" {printable(lab):>{w}}" for lab, w in zip(self.prob_labels, self.prob_w))
        fh.write(head + ("  text" if self.show_text else "") + "\n")

    def write(self, r: dict) -> None:
        rid = f"{_cut(str(r['id']), self.id_w):<{self.id_w}}"
        if self.aspects:
            tuples = "; ".join(f"({a['aspect']}, {a['category']}, {a['opinion']}, {a['polarity']})"
                               for a in r["aspects"]) or "-"
            left = f"{rid}  {_cut(tuples, 50):<50}"
        else:
            dist = "".join(f" {r['probs'][lab]:>{w}.2f}" for lab, w in zip(self.prob_labels, self.prob_w))
            left = f"{rid}  {_cut(r['label'], self.label_w):<{self.label_w}}  {r['confidence']:.2f}{dist}"
        text = f"  {_cut(r['text'], max(10, self.term - len(left) - 2))}" if self.show_text and "text" in r else ""
        lines = [left + text]
        indent, room = " " * (self.id_w + 2), max(10, self.term - self.id_w - 5)
        if r.get("chunks"):
            lines.append(indent + "-> " + _cut("chunks: " + ", ".join(f"{c['label']} {c['confidence']:.2f}"
                                                                       for c in r["chunks"]), room))
        if r.get("explanation"):  # --explain: the model's analysis on its own line under the text
            lines.append(indent + "-> " + _cut(r["explanation"], room))
        self.fh.write("\n".join(lines) + "\n")

