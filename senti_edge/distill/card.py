"""The data-and-cost part of a distilled model's card, read from a run's files.

Everything comes from what the stages wrote (manifests, QC and agreement reports, training
logs), so the card of a resumed or partly repeated run still adds up its whole cost.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from .config import DistillConfig


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds / 60:.1f} min"


def teacher_rows(out: Path) -> list[list[str]]:
    rows = []
    for stage in ("knowdist", "icldist"):
        m = _read(out / f"{stage}.manifest.json")
        if not m:
            continue
        t = m.get("total") or {k: m["last_run"].get(k, 0) for k in ("new_records", "seconds", "prompt_tokens", "completion_tokens")}
        secs = t["seconds"]
        rate = f"{t['new_records'] / secs:.2f}" if secs else "-"
        toks = f"{t['prompt_tokens'] / secs:.0f} prompt, {t['completion_tokens'] / secs:.1f} generated tokens/s" if secs else "-"
        amount = f"{m['done']} of {m['jobs']} records"
        if t["new_records"] != m["done"]:  # runs before throughput was recorded, or records from a pack
            amount += f" ({t['new_records']} timed)"
        rows.append([f"teacher, {stage}", amount, _hours(secs) if secs else "-", f"{rate} items/s", toks])
    return rows


def training_rows(out: Path) -> list[list[str]]:
    rows = []
    for stage in ("knowdist", "icldist"):
        log = out / stage / "log.csv"
        if not log.exists():
            continue
        with open(log, newline="") as fh:
            steps = list(csv.DictReader(fh))
        if not steps:
            continue
        secs = sum(float(r["seconds"]) for r in steps)
        toks = sum(int(r["tokens"]) for r in steps)
        state = _read(out / stage / "state.json") or {}
        s_step = statistics.median(float(r["seconds"]) for r in steps)
        rows.append([f"student, {stage}", f"{len(steps)} steps, {state.get('examples', '?')} examples, {toks:,} tokens",
                     _hours(secs), f"{s_step:.1f} s/step (median)", f"{toks / secs:.0f} tokens/s"])
    return rows


def data_lines(out: Path) -> list[str]:
    lines = []
    qc = _read(out / "knowdist.qc.json")
    if qc:
        reasons = ", ".join(f"{k} {v}" for k, v in qc["reasons"].items()) or "none"
        lines.append(f"- KnowDist: {qc['records']} teacher analyses; {qc['kept']} kept, {qc['downweighted']} down-weighted "
                     f"(x{qc['policy']['low_weight']}), {qc['dropped']} dropped (QC reasons: {reasons}); the analysis' stated "
                     f"polarity agrees with the teacher's label logits on {100 * (qc['stated_vs_logit_agreement'] or 0):.1f}%.")
    rep = _read(out / "icldist.report.json")
    if rep:
        kinds = ", ".join(f"{k} {v}" for k, v in rep["by_kind"].items())
        line = f"- ICLDist: {rep['records']} teacher answers ({kinds}) over {len(rep['by_dataset'])} sources"
        if rep.get("teacher_gold_agreement") is not None:
            line += f"; the teacher agrees with the train label on {100 * rep['teacher_gold_agreement']:.1f}% of label prompts"
        if rep.get("filtered_by_gold"):
            line += f"; the {rep['filtered_by_gold']} disagreeing answers are left out of training (gold = \"filter\")"
        lines.append(line + ".")
    return lines


def render(cfg: DistillConfig) -> str:
    """Markdown: what the teacher made, what was kept, and what each stage cost on this machine."""
    out = Path(cfg.out_dir)
    rows = teacher_rows(out) + training_rows(out)
    parts = [f"Teacher {cfg.teacher.model} ({cfg.teacher.backend}), student {cfg.student}, "
             f"LoRA r={cfg.train.lora_r} alpha={cfg.train.lora_alpha} on {', '.join(cfg.train.target_modules)}, "
             f"stage 2 {cfg.train.stage2_init}, seed {cfg.seed}.", ""]
    parts += data_lines(out)
    if rows:
        parts += ["", "| part | amount | time (timed part) | rate | throughput |", "|---|---|---|---|---|"]
        parts += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(parts) + "\n"
