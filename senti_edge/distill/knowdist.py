"""Stage 1, KnowDist: the teacher analyses texts from several sentiment perspectives.

Each text gets `per_text` perspectives (drawn with a seed per text, so a rerun draws the same).
The teacher writes a short analysis ending in `Overall sentiment: <label>`; the student learns
to write that analysis from the same prompt. Quality control records, per item, every reason
that applies (truncated, empty, off-format, repetitive, inconsistent with the teacher's own
label-logit prediction, teacher error); the config decides which reasons drop an item and
which down-weight it, so changing the policy needs no regeneration.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

from ..runtime.prompts import ANALYSIS_INSTRUCTION, FOCUS, build_prefix, build_query, stated_label
from ..runtime.tasks import TASKS
from .config import DistillConfig, KnowDistConfig
from .corpus import Corpus
from .records import Job, lit, ref, to_segments
from .teachers import Teacher

POLARITY = ("negative", "neutral", "positive")

def prompt_parts(text_ref: str, perspective: str) -> list:
    return [lit(ANALYSIS_INSTRUCTION.format(focus=FOCUS[perspective])), ref(text_ref)]


def jobs(corpus: Corpus, cfg: KnowDistConfig, seed: int) -> list[Job]:
    out = []
    for item in corpus.items:
        rng = random.Random(f"{seed}:kd:{item.ref}")
        for p in rng.sample(list(cfg.perspectives), min(cfg.per_text, len(cfg.perspectives))):
            out.append(Job(f"kd:{item.ref}:{p}", {"ref": item.ref, "perspective": p}))
    return out


def is_repetitive(response: str) -> bool:
    words = response.lower().split()
    if len(words) >= 20 and len(set(words)) / len(words) < 0.3:
        return True
    lines = [ln.strip() for ln in response.splitlines() if ln.strip()]
    return len(lines) >= 4 and len(set(lines)) <= len(lines) // 2


def qc_reasons(response: str, finished: bool, stated: str | None, teacher_label: str | None) -> list[str]:
    reasons = []
    if not response.strip() or len(response.split()) < 5:
        reasons.append("empty")
    if not finished:
        reasons.append("truncated")
    if stated is None:
        reasons.append("off_format")
    if is_repetitive(response):
        reasons.append("repetitive")
    if stated is not None and teacher_label is not None and stated != teacher_label:
        reasons.append("inconsistent")
    return reasons


def make_work(teacher: Teacher, corpus: Corpus, cfg: KnowDistConfig):
    def work(job: Job) -> dict:
        parts = prompt_parts(job.data["ref"], job.data["perspective"])
        reply = teacher.generate(to_segments(parts, corpus), chat=True, max_tokens=cfg.max_tokens)
        text = corpus.text(job.data["ref"])
        task = TASKS["polarity"]
        check = build_prefix(task) + build_query(task, text)
        logits = teacher.label_logits(check, POLARITY)
        teacher_label = POLARITY[max(range(3), key=lambda i: logits[i])] if logits else None
        stated = stated_label(reply.text)
        return {
            "stage": "knowdist", "ref": job.data["ref"], "perspective": job.data["perspective"],
            "prompt": parts, "response": reply.text, "finished": reply.finished,
            "teacher": teacher.name, "settings": {**teacher.settings, "max_tokens": cfg.max_tokens},
            "label_words": list(POLARITY), "label_logits": logits,
            "teacher_label": teacher_label, "stated_label": stated,
            "qc": qc_reasons(reply.text, reply.finished, stated, teacher_label),
        }

    return work


def decide(record: dict, cfg: KnowDistConfig) -> float:
    """The loss weight of a record under the QC policy: 0 (dropped), low_weight or 1."""
    reasons = record.get("qc", [])
    if any(r in cfg.drop for r in reasons):
        return 0.0
    if any(r in cfg.downweight for r in reasons):
        return cfg.low_weight
    return 1.0


def qc_report(records: Sequence[dict], cfg: KnowDistConfig) -> dict:
    reasons = Counter(r for rec in records for r in rec.get("qc", []))
    weights = [decide(rec, cfg) for rec in records]
    agree = [rec["stated_label"] == rec["teacher_label"] for rec in records
             if rec.get("stated_label") and rec.get("teacher_label")]
    return {
        "records": len(records),
        "kept": sum(w == 1.0 for w in weights),
        "downweighted": sum(0 < w < 1 for w in weights),
        "dropped": sum(w == 0 for w in weights),
        "reasons": dict(sorted(reasons.items())),
        "stated_vs_logit_agreement": round(sum(agree) / len(agree), 4) if agree else None,
        "policy": {"drop": cfg.drop, "downweight": cfg.downweight, "low_weight": cfg.low_weight},
    }


def examples(records: Sequence[dict], corpus: Corpus, cfg: DistillConfig) -> list[dict]:
    """Training examples: the analysis prompt as a chat turn, the teacher's analysis as the answer."""
    out = []
    for rec in records:
        w = decide(rec, cfg.knowdist)
        if w > 0:
            out.append({"id": rec["id"], "prompt": to_segments(rec["prompt"], corpus), "chat": True,
                        "response": rec["response"].strip(), "weight": w})
    return out
