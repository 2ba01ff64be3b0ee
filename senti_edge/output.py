"""Writing result rows: a readable table for a terminal, or json / jsonl / csv for programs.

Rows are dicts with stable keys (`id`, `source`, `line`, `text`, `label`, `confidence`, and
`probs` or `aspects`). Streaming formats write as rows arrive; with `--output FILE` everything
goes to a temporary file that replaces FILE only when the run completed.
"""

from __future__ import annotations

import csv
import json
import shutil
from typing import IO

FORMATS = ("table", "json", "jsonl", "csv")


class RowWriter:
    """Write rows to `fh` in `fmt`; call `close()` to finish (json needs its closing bracket)."""

    def __init__(self, fh: IO[str], fmt: str, *, probs: bool = False):
        self.fh, self.fmt, self.probs = fh, fmt, probs
        self.n = 0
        self._csv = None
        self._table: list[dict] = []

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
            self._table.append(row)
        self.n += 1

    def _write_csv(self, row: dict) -> None:
        flat = {k: v for k, v in row.items() if k not in ("probs", "aspects")}
        if "probs" in row:
            flat.update({f"p_{k}": round(v, 6) for k, v in row["probs"].items()})
        if "aspects" in row:
            flat["aspects"] = json.dumps(row["aspects"], ensure_ascii=False)
        if self._csv is None:
            self._csv = csv.DictWriter(self.fh, fieldnames=list(flat), lineterminator="\n")
            self._csv.writeheader()
        self._csv.writerow(flat)

    def close(self) -> None:
        if self.fmt == "json":
            self.fh.write("[]\n" if self.n == 0 else "\n]\n")
        elif self.fmt == "table":
            self.fh.write(render_table(self._table, probs=self.probs))
        self.fh.flush()


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def render_table(rows: list[dict], *, probs: bool = False) -> str:
    """Columns id, label, confidence (and the distribution), then the text cut to the terminal;
    with `explanation` (from --explain), a second line per row holds it."""
    if not rows:
        return ""
    term = shutil.get_terminal_size((100, 20)).columns
    id_w = min(24, max(2, *(len(str(r["id"])) for r in rows)))
    if "aspects" in rows[0]:
        lines = [f"{'id':<{id_w}}  {'aspects (aspect, category, opinion, polarity)':<50}  text"]
        for r in rows:
            tuples = "; ".join(f"({a['aspect']}, {a['category']}, {a['opinion']}, {a['polarity']})" for a in r["aspects"]) or "-"
            lines.append(f"{_cut(str(r['id']), id_w):<{id_w}}  {_cut(tuples, 50):<50}  {_cut(r['text'], max(10, term - id_w - 56))}")
        return "\n".join(lines) + "\n"
    label_w = max(5, *(len(r["label"]) for r in rows))
    dist = ""
    header = f"{'id':<{id_w}}  {'label':<{label_w}}  conf "
    if probs:
        labels = list(rows[0].get("probs", {}))
        header += " " + " ".join(f"{lab[:6]:>6}" for lab in labels)
    lines = [header + "  text"]
    for r in rows:
        if probs:
            dist = " " + " ".join(f"{r['probs'][lab]:>6.2f}" for lab in labels)
        left = f"{_cut(str(r['id']), id_w):<{id_w}}  {r['label']:<{label_w}}  {r['confidence']:.2f}{dist}"
        lines.append(f"{left}  {_cut(r['text'], max(10, term - len(left) - 2))}")
        if r.get("explanation"):  # --explain: the model's analysis on its own line under the text
            lines.append(" " * (id_w + 2) + "-> " + _cut(r["explanation"], max(10, term - id_w - 5)))
    return "\n".join(lines) + "\n"
