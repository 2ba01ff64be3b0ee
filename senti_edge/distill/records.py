"""Teacher records: prompts stored with text references, and the append-and-resume generation loop.

A stored prompt is a list of parts: `["literal text", trusted]` for text we wrote, and
`{"ref": "sc/sst2:12"}` (or `{"ref": ..., "field": "target"}`) for corpus text, so a record
never copies a SentiBench text. `render` turns it back into `Segment`s with the corpus.

`generate_records` runs jobs through a work function and appends one JSON line per finished
item to a JSONL file; a rerun skips the ids already there. It writes a manifest beside the file
(`<name>.manifest.json`) with the settings, counts and throughput, and `complete: true` once
every job is done. A teacher that keeps failing stops the run with a `SentiEdgeError`; the
records already written stay.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import SentiEdgeError
from ..jsonl import JsonlAppender, read_jsonl, write_json
from ..runtime.prompts import Segment, one_line
from .corpus import Corpus

log = logging.getLogger(__name__)

Part = Any  # [text, trusted] or {"ref": ref, "field": "text" | "target"}


def lit(text: str) -> Part:
    return [text, True]


def ref(r: str, field: str = "text") -> Part:
    return {"ref": r} if field == "text" else {"ref": r, "field": field}


def render(parts: Sequence[Part], corpus: Corpus) -> list[Segment]:
    """Stored parts -> Segments; corpus text is untrusted, one line, after a space."""
    out = []
    for p in parts:
        if isinstance(p, dict):
            item = corpus.by_ref.get(p["ref"])
            if item is None:
                corpus.text(p["ref"])  # raises the friendly error
            value = item.target if p.get("field") == "target" else item.text
            out.append(Segment(" " + one_line(value or ""), False))
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
    new = errors_in_row = errors = 0
    last_error = ""
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

        step = max(1, teacher.concurrency) * 4
        with ThreadPoolExecutor(max_workers=max(1, teacher.concurrency)) as pool:
            for start in range(0, len(pending), step):
                chunk = pending[start:start + step]
                results = pool.map(safe, chunk) if teacher.concurrency > 1 else map(safe, chunk)
                for job, (record, err) in zip(chunk, results):
                    if err is not None:
                        errors += 1
                        errors_in_row += 1
                        last_error = err
                        log.warning("teacher failed on %s: %s", job.id, err)
                        if errors_in_row >= max_errors:
                            bar.close()
                            _write_manifest(path, jobs, out.done, teacher, settings, t0, stats0, new, errors, last_error)
                            raise SentiEdgeError(
                                f"the teacher failed {errors_in_row} times in a row (last: {last_error}); "
                                f"{len(out.done)} records are kept in {path}; fix the teacher and rerun to resume")
                        continue
                    errors_in_row = 0
                    record["id"] = job.id
                    out.append(record)
                    new += 1
                    bar.update(1)
        bar.close()
        return _write_manifest(path, jobs, out.done, teacher, settings, t0, stats0, new, errors, last_error)


def _write_manifest(path, jobs, done, teacher, settings, t0, stats0, new, errors, last_error) -> dict:
    secs = time.perf_counter() - t0
    n_done = sum(1 for j in jobs if j.id in done)
    ptok = teacher.stats.prompt_tokens - stats0[0]
    ctok = teacher.stats.completion_tokens - stats0[1]
    manifest = {
        "records": path.name,
        "teacher": teacher.name,
        "teacher_settings": teacher.settings,
        "settings": settings,
        "jobs": len(jobs),
        "done": n_done,
        "complete": n_done == len(jobs),
        "last_run": {
            "new_records": new, "errors": errors, "last_error": last_error, "seconds": round(secs, 3),
            "items_per_s": round(new / secs, 4) if secs else None,
            "prompt_tokens": ptok, "completion_tokens": ctok,
            "prompt_tokens_per_s": round(ptok / secs, 2) if secs else None,
            "completion_tokens_per_s": round(ctok / secs, 2) if secs else None,
        },
    }
    write_json(manifest_path(path), manifest)
    return manifest


def load_records(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise SentiEdgeError(f"teacher records not found: {path}; run the generate stage first")
    return read_jsonl(path)
