"""Teacher records: prompts stored with text references, and the append-and-resume generation loop.

A stored prompt is a list of parts: `["literal text", trusted]` for text we wrote, and
`{"ref": "sc/sst2:12"}` (or `{"ref": ..., "field": "target"}`) for corpus text, so a record
never copies a SentiBench text. `to_segments` turns it back into `Segment`s with the corpus.

`generate_records` runs jobs through a work function and appends one JSON line per finished
item to a JSONL file; a rerun skips the ids already there. It writes a manifest beside the file
(`<name>.manifest.json`) with the settings, counts and throughput, and `complete: true` once
every job is done. A teacher that keeps failing stops the run with a `SentiEdgeError`; the
records already written stay.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SentiEdgeError
from ..jsonl import JsonlAppender, atomic_open, read_jsonl, write_json
from ..runtime.prompts import Segment, one_line
from .corpus import Corpus

log = logging.getLogger(__name__)

Part = Any  # [text, trusted] or {"ref": ref, "field": "text" | "target"}


def lit(text: str) -> Part:
    return [text, True]


def ref(r: str, field: str = "text", chars: int = 0) -> Part:
    """A corpus text by reference; `chars` > 0 keeps only its first `chars` characters."""
    part = {"ref": r} if field == "text" else {"ref": r, "field": field}
    if chars:
        part["chars"] = chars
    return part


def to_segments(parts: Sequence[Part], corpus: Corpus) -> list[Segment]:
    """Stored parts -> Segments; corpus text is untrusted, one line, after a space."""
    out = []
    for p in parts:
        if isinstance(p, dict):
            item = corpus.by_ref.get(p["ref"])
            if item is None:
                corpus.text(p["ref"])  # raises the friendly error
            value = one_line((item.target if p.get("field") == "target" else item.text) or "")
            if p.get("chars"):
                value = value[: p["chars"]]
            out.append(Segment(" " + value, False))
        else:
            out.append(Segment(p[0], bool(p[1])))
    return out


@dataclass
class Job:
    id: str
    data: dict


def manifest_path(path: Path) -> Path:
    return path.with_name(path.stem + ".manifest.json")


def is_complete(path: Path) -> bool:
    m = manifest_path(path)
    if not m.exists():
        return False
    try:
        return bool(json.loads(m.read_text()).get("complete"))
    except ValueError:
        return False


def generate_records(
    path: str | Path,
    jobs: Sequence[Job],
    work: Callable[[Job], dict],
    *,
    teacher,
    settings: dict,
    max_items: int = 0,
    desc: str = "teacher",
) -> dict:
    """Append one record per pending job; returns the manifest (also written beside `path`)."""
    from tqdm import tqdm

    path = Path(path)
    if not jobs:
        raise SentiEdgeError(f"nothing to generate for {path.name}: the job list is empty (empty corpus?)")
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate job ids")
    max_errors = settings.get("max_errors", 5)
    t0 = time.perf_counter()
    stats0 = (teacher.stats.prompt_tokens, teacher.stats.completion_tokens)

    def secs() -> float:
        return time.perf_counter() - t0

    def tokens() -> tuple[int, int]:
        return teacher.stats.prompt_tokens - stats0[0], teacher.stats.completion_tokens - stats0[1]

    state = {"new": 0, "errors": 0, "in_row": 0, "last_error": ""}
    with JsonlAppender(path) as out:
        pending = [j for j in jobs if j.id not in out.done]
        if max_items:
            pending = pending[:max_items]
        bar = tqdm(total=len(jobs), initial=len(jobs) - len([j for j in jobs if j.id not in out.done]),
                   desc=desc, unit="item", disable=None, dynamic_ncols=True)

        def safe(job: Job):
            try:
                return work(job), None
            except SentiEdgeError as exc:
                return None, str(exc)

        def on_error(job: Job, err: str) -> None:
            state["errors"] += 1
            state["in_row"] += 1
            state["last_error"] = err
            log.warning("teacher failed on %s: %s", job.id, err)
            if state["in_row"] >= max_errors:
                raise SentiEdgeError(
                    f"the teacher failed {state['in_row']} times in a row (last: {err}); "
                    f"{len(out.done)} records are kept in {path}; fix the teacher and rerun to resume")

        step = max(1, teacher.concurrency) * 4
        report = _LogLine(desc, len(jobs), len(jobs) - len(pending)) if bar.disable else None

        def _keep(job: Job, record: dict) -> None:
            state["in_row"] = 0
            record["id"] = job.id
            out.append(record)
            state["new"] += 1
            bar.update(1)
            if report:
                report.update()

        try:
            _run_pending(pool_size=max(1, teacher.concurrency), step=step, pending=pending, safe=safe,
                         on_record=_keep, on_error=on_error)
        except BaseException:  # Ctrl-C, SIGTERM, a failing teacher: the records stay, and so do the stats
            bar.close()
            try:
                _write_manifest(path, jobs, out.done, _info(teacher), settings, secs(), tokens(), state["new"],
                                state["errors"], state["last_error"])
            except (OSError, SentiEdgeError):  # a full disk: the original error is the one to report
                pass
            raise
        bar.close()
        return _write_manifest(path, jobs, out.done, _info(teacher), settings, secs(), tokens(), state["new"],
                               state["errors"], state["last_error"])


def _run_pending(*, pool_size: int, step: int, pending, safe, on_record, on_error) -> None:
    """Run jobs in order, `pool_size` at a time (server teachers), appending each result in job order."""
    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        for start in range(0, len(pending), step):
            chunk = pending[start:start + step]
            results = pool.map(safe, chunk) if pool_size > 1 else map(safe, chunk)
            for job, (record, err) in zip(chunk, results):
                if err is not None:
                    on_error(job, err)
                else:
                    on_record(job, record)


class _LogLine:
    """Progress for runs without a terminal (background jobs): a line a minute with rate and ETA."""

    def __init__(self, desc: str, total: int, done: int, every: float = 60.0):
        self.desc, self.total, self.done, self.every = desc, total, done, every
        self.t0 = self.last = time.perf_counter()
        self.new = 0

    def update(self) -> None:
        self.done += 1
        self.new += 1
        now = time.perf_counter()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            rate = self.new / (now - self.t0)
            eta = (self.total - self.done) / rate if rate else float("inf")
            print(f"{self.desc}: {self.done}/{self.total} ({100 * self.done / self.total:.1f}%), {rate:.2f} items/s, "
                  f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta)) if eta < 86400 * 7 else '?'}",
                  file=sys.stderr, flush=True)


def _info(teacher) -> dict:
    return {"name": teacher.name, "settings": teacher.settings}


def _write_manifest(path, jobs, done, teacher: dict, settings, secs: float, tokens: tuple[int, int], new, errors, last_error) -> dict:
    n_done = sum(1 for j in jobs if j.id in done)
    ptok, ctok = tokens
    run = {
        "new_records": new, "errors": errors, "last_error": last_error, "seconds": round(secs, 3),
        "items_per_s": round(new / secs, 4) if secs else None,
        "prompt_tokens": ptok, "completion_tokens": ctok,
        "prompt_tokens_per_s": round(ptok / secs, 2) if secs else None,
        "completion_tokens_per_s": round(ctok / secs, 2) if secs else None,
    }
    try:  # every run's throughput is kept, so a job resumed many times still tells its whole cost
        history = json.loads(manifest_path(path).read_text()).get("history", [])
    except (OSError, ValueError):
        history = []
    if new or secs:
        history = [*history, {k: run[k] for k in ("new_records", "seconds", "prompt_tokens", "completion_tokens")}]
    manifest = {
        "records": path.name,
        "teacher": teacher["name"],
        "teacher_settings": teacher["settings"],
        "settings": settings,
        "jobs": len(jobs),
        "done": n_done,
        "complete": n_done == len(jobs),
        "last_run": run,
        "history": history,
        "total": {k: round(sum(h[k] for h in history), 3) for k in ("new_records", "seconds", "prompt_tokens", "completion_tokens")},
    }
    write_json(manifest_path(path), manifest)
    return manifest


def pack(path: Path, dest: Path) -> int:
    """Gzip a stage's records (and copy its manifest) into `dest`, atomically; returns the count.

    Records hold text references, not texts, so a pack of SentiBench records can be committed."""
    import gzip

    records = load_records(path)
    dest.mkdir(parents=True, exist_ok=True)
    with atomic_open(dest / (path.name + ".gz"), "wb", encoding=None) as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            for rec in records:
                gz.write((json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n").encode())
    if manifest_path(path).exists():
        write_json(manifest_path(dest / path.name), json.loads(manifest_path(path).read_text()))
    return len(records)


def unpack(src: Path, path: Path, job_ids: set[str]) -> int:
    """Append the packed records of `src` (a .jsonl.gz) that `path` lacks; returns how many."""
    import gzip

    try:
        with gzip.open(src, "rt", encoding="utf-8") as fh:
            packed = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError, EOFError) as exc:
        raise SentiEdgeError(f"{src} is not a readable gzip JSONL pack ({exc}); restore it from git") from None
    added = 0
    with JsonlAppender(path) as out:
        for rec in packed:
            if isinstance(rec, dict) and rec.get("id") in job_ids and rec["id"] not in out.done:
                out.append(rec)
                added += 1
    return added


def finish_from_records(path: Path, jobs: Sequence[Job], settings: dict, records: Sequence[dict]) -> dict:
    """The manifest of a stage whose `records` (read from `path`) cover every job: no teacher loaded."""
    teacher = {"name": records[0].get("teacher", "unknown") if records else "unknown", "settings": {"from": "packed records"}}
    return _write_manifest(path, jobs, {r.get("id") for r in records}, teacher, settings, 0.0, (0, 0), 0, 0, "")


def load_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise SentiEdgeError(f"teacher records not found: {path}; run the generate stage first")
    return read_jsonl(path)
