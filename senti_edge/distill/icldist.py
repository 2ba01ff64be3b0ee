"""Stage 2, ICLDist: diversified few-shot prompts answered by the teacher.

Each job `icl:N` is drawn from its own seeded generator, so job N is the same on every run:

- task diversification: any labelled SentiBench classification set (polarity, emotion, irony,
  stance, intimacy), and the user's labelled files (`corpus.label_field`), each a task over its
  own label set; with `aspects_fraction`, the runtime's zero-shot opinion-tuple prompt on
  the ABSA train texts (the teacher's JSON, parsed and re-serialised, is the target); with
  `general_fraction`, a general instruction about a text (summary, key phrases, topic) so the
  student keeps following prompts;
- format diversification: a paraphrased instruction, the label words in a random order and
  casing, 0-8 demonstrations from the same train split, field names and separators.

For label tasks the teacher's label-word logits give both its answer (the arg-max word, as the
student's text target) and its distribution (the student's KL target). Gold labels appear only
in demonstrations; `gold = "report"` records whether the teacher agrees with the gold label of
the query, `gold = "filter"` also drops disagreeing answers from training.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Sequence

from ..errors import SentiEdgeError
from ..runtime.prompts import parse_aspects
from ..runtime.tasks import TASKS
from ..runtime.scoring import softmax
from .config import DistillConfig, ICLDistConfig
from .corpus import SENTIBENCH, Corpus, CorpusText
from .records import Job, lit, ref, to_segments
from .teachers import Teacher

CLASSIFICATION = [d for d, (kind, _) in SENTIBENCH.items() if kind != "aspects"]
ABSA = [d for d, (kind, _) in SENTIBENCH.items() if kind == "aspects"]

INSTRUCTIONS = {
    "binary": ["Classify the sentiment of each {unit} as one of: {labels}.",
               "Is the sentiment of the {unit} {labels}? Answer with one word.",
               "Read the {unit} and label its sentiment ({labels})."],
    "polarity": ["Classify the sentiment of each {unit} as one of: {labels}.",
                 "What is the sentiment of the {unit}? Answer {labels}.",
                 "Label the attitude of the {unit} as {labels}."],
    "emotion": ["Classify the emotion expressed in each {unit} as one of: {labels}.",
                "Which emotion does the {unit} express? Choose from {labels}."],
    "irony": ["Decide whether each {unit} is ironic. Answer with one of: {labels}.",
              "Is the {unit} ironic or not? Answer {labels}."],
    "stance": ["Classify the stance of each {unit} towards its target as one of: {labels}.",
               "Does the {unit} argue for or against the target? Answer {labels}."],
    "intimacy": ["Rate how intimate each {unit} is, as one of: {labels}.",
                 "How personal is the {unit}? Answer {labels}."],
    "custom": ["Classify each {unit} as one of: {labels}.",  # the runtime's instruction for --labels
               "Which label fits the {unit} best: {labels}?",
               "Label each {unit} with one of: {labels}."],
}
FIELDS = [("Sentence", "Label"), ("Text", "Answer"), ("Input", "Output"), ("Tweet", "Label"), ("Review", "Class")]
SEPARATORS = ["\n\n", "\n---\n", "\n###\n"]
JOINERS = [", ", " / ", " or "]
CASINGS = [str.lower, str.title, str.upper]
GENERAL = [
    "Summarise the text below in one sentence.",
    "List up to five key phrases of the text below, separated by commas.",
    "Who or what is the text below about? Answer in a few words.",
    "Describe the tone of the text below in one short sentence.",
]


MAX_USER_LABELS = 20


def _pools(corpus: Corpus, datasets: Sequence[str]) -> dict[str, tuple[str, tuple[str, ...], list[CorpusText]]]:
    """source -> (task kind, label words, labelled items): the SentiBench sets asked for, plus
    every user file with labels (`corpus.label_field`), as a `custom` task over its own labels."""
    pools = {}
    for ds in datasets:
        if ds not in CLASSIFICATION:
            raise SentiEdgeError(f"icldist.datasets entry {ds!r} is not a labelled classification set; choose from {', '.join(CLASSIFICATION)}")
        items = corpus.labelled(ds)
        if items:
            pools[ds] = (*SENTIBENCH[ds], items)
    for src in sorted({r.rsplit(":", 1)[0] for r in corpus.by_ref if r.startswith("file")}):
        items = corpus.labelled(src)
        labels = tuple(sorted({it.label for it in items}))
        if len(labels) > MAX_USER_LABELS:
            raise SentiEdgeError(f"{src} has {len(labels)} distinct labels in corpus.label_field; at most "
                                 f"{MAX_USER_LABELS} are supported (is label_field the right column?)")
        if len(labels) >= 2:
            pools[src] = ("custom", labels, items)
    return pools


def jobs(corpus: Corpus, cfg: ICLDistConfig, seed: int) -> list[Job]:
    """`n_items` prompt specs; label tasks need labelled train texts in the corpus.

    Jobs come in groups of `group_size` that share their task, format and demonstrations and
    differ only in the query, so the teacher evaluates the shared prefix once per group.
    """
    pools = _pools(corpus, cfg.datasets or CLASSIFICATION)
    texts = corpus.items
    if not pools and cfg.general_fraction == 0:
        raise SentiEdgeError("icldist has no labelled train texts: add SentiBench classification sets to corpus.datasets "
                             "or labelled files (corpus.files with corpus.label_field)")
    absa = [it for ds in ABSA for it in corpus.in_dataset(ds)]
    out = []
    for i in range(cfg.n_items):
        rng = random.Random(f"{seed}:icl:{i}")
        grng = random.Random(f"{seed}:icl-group:{i // cfg.group_size}")
        r = grng.random() if pools else 0.0
        if r < cfg.general_fraction or not pools and not absa:
            item = texts[rng.randrange(len(texts))]
            instr = grng.choice(GENERAL)
            out.append(Job(f"icl:{i}", {"kind": "general", "parts": [lit(instr + "\n\nText:"), ref(item.ref, chars=cfg.query_chars)]}))
        elif absa and (r < cfg.general_fraction + cfg.aspects_fraction or not pools):
            item = absa[rng.randrange(len(absa))]
            instr = TASKS["aspects"].instruction.format(labels=", ".join(TASKS["aspects"].labels))
            out.append(Job(f"icl:{i}", {"kind": "aspects", "dataset": item.ref.rsplit(":", 1)[0],
                                        "parts": [lit(instr + "\n\n"), lit("Sentence:"), ref(item.ref, chars=cfg.query_chars)]}))
        else:
            ds = grng.choice(sorted(pools))
            out.append(Job(f"icl:{i}", _label_job(grng, rng, ds, *pools[ds], cfg)))
    return out


def _label_job(grng: random.Random, rng: random.Random, ds: str, kind: str, labels: tuple[str, ...], pool: list[CorpusText],
               cfg: ICLDistConfig) -> dict:
    """Format and demonstrations from the group's generator `grng`, the query from `rng`.

    With probability `canonical_fraction` the format is the runtime's own (the prompt that
    `analyze` and `bench` build: first instruction, `Sentence:`/`Label:`, lower-case label words
    in the dataset's order, blank-line separators); otherwise every element is varied.
    """
    if grng.random() < cfg.canonical_fraction:
        words = list(labels)
        order = list(range(len(labels)))
        x_name, y_name, sep, joiner = "Sentence", "Label", "\n\n", ", "
        instr_tpl = INSTRUCTIONS[kind][0]
        k = grng.choice([2, 4, 4, 4, 6, 8])
    else:
        case = grng.choice(CASINGS)
        words = [case(lab) for lab in labels]
        order = list(range(len(labels)))
        grng.shuffle(order)
        x_name, y_name = grng.choice(FIELDS)
        sep = grng.choice(SEPARATORS)
        joiner = grng.choice(JOINERS)
        instr_tpl = grng.choice(INSTRUCTIONS[kind])
        k = grng.randint(cfg.min_shots, cfg.max_shots)
    k = max(cfg.min_shots, min(cfg.max_shots, k))
    unit = x_name.lower()
    shown = joiner.join(words[j] for j in order)
    instr = instr_tpl.format(unit=unit, labels=shown)
    demos = grng.sample(pool, min(len(pool), k))
    taken = {d.ref for d in demos}
    query = pool[rng.randrange(len(pool))]
    while query.ref in taken and len(pool) > len(taken):
        query = pool[rng.randrange(len(pool))]
    needs_target = kind == "stance"

    def block(it: CorpusText, chars: int) -> list:
        parts = [lit(f"{x_name}:"), ref(it.ref, chars=chars)]
        if needs_target:
            parts += [lit("\nTarget:"), ref(it.ref, "target")]
        return parts + [lit(f"\n{y_name}:")]

    parts = [lit(instr + sep)]
    for demo in demos:
        parts += block(demo, cfg.demo_chars) + [lit(" " + words[labels.index(demo.label)] + sep)]
    parts += block(query, cfg.query_chars)
    return {"kind": "label", "dataset": ds, "parts": parts, "label_words": words, "gold_index": labels.index(query.label)
            if query.label in labels else None}


def make_work(teacher: Teacher, corpus: Corpus, cfg: ICLDistConfig):
    def work(job: Job) -> dict:
        d = job.data
        rec = {"stage": "icldist", "kind": d["kind"], "prompt": d["parts"], "teacher": teacher.name}
        if d["kind"] == "general":
            reply = teacher.generate(to_segments(d["parts"], corpus), chat=True, max_tokens=cfg.max_tokens)
            ok = reply.finished and len(reply.text.split()) >= 1
            return {**rec, "response": reply.text, "finished": reply.finished,
                    "settings": {**teacher.settings, "max_tokens": cfg.max_tokens}, "qc": [] if ok else ["truncated_or_empty"]}
        if d["kind"] == "aspects":  # the runtime's prompt (chat models answer after "Opinions:")
            reply = teacher.generate(to_segments(d["parts"], corpus), chat=True, max_tokens=max(cfg.max_tokens, 150))
            tuples = parse_aspects(reply.text)
            qc = (["truncated"] if not reply.finished else []) + (["off_format"] if tuples is None else [])
            return {**rec, "dataset": d["dataset"], "raw_response": reply.text, "finished": reply.finished,
                    "response": "Opinions: " + json.dumps(tuples or [], ensure_ascii=False),
                    "settings": {**teacher.settings, "max_tokens": max(cfg.max_tokens, 150)}, "qc": qc}
        prompt = to_segments(d["parts"], corpus)
        logits = teacher.label_logits(prompt, d["label_words"])
        if logits is not None:
            best = max(range(len(logits)), key=lambda i: logits[i])
        else:  # a server without logprobs: read the label from a short greedy answer, no KL target
            best = answer_index(teacher.generate(prompt, chat=False, max_tokens=8, stop=["\n"]).text, d["label_words"])
            if best is None:
                raise SentiEdgeError(f"teacher {teacher.name} answered none of {d['label_words']} for {job.id}")
        rec.update({"dataset": d["dataset"], "label_words": d["label_words"], "label_logits": logits,
                    "response": " " + d["label_words"][best], "settings": dict(teacher.settings), "qc": []})
        if cfg.gold != "off" and d.get("gold_index") is not None:
            rec["gold_agree"] = best == d["gold_index"]
        return rec

    return work


def answer_index(text: str, words: Sequence[str]) -> int | None:
    """The label word a generated answer starts with (longest match, any casing)."""
    t = text.strip().lower()
    hits = [i for i, w in enumerate(words) if t.startswith(w.lower())]
    return max(hits, key=lambda i: len(words[i])) if hits else None


def report(records: Sequence[dict], cfg: ICLDistConfig) -> dict:
    agree = [r["gold_agree"] for r in records if "gold_agree" in r]
    return {
        "records": len(records),
        "by_kind": dict(Counter(r.get("kind") for r in records)),
        "by_dataset": dict(sorted(Counter(r.get("dataset", "general") for r in records).items())),
        "qc": dict(Counter(q for r in records for q in r.get("qc", []))),
        "teacher_gold_agreement": round(sum(agree) / len(agree), 4) if agree else None,
        "filtered_by_gold": sum(1 for a in agree if not a) if cfg.gold == "filter" else 0,
    }


def examples(records: Sequence[dict], corpus: Corpus, cfg: DistillConfig) -> list[dict]:
    out = []
    for rec in records:
        if rec.get("qc") or (cfg.icldist.gold == "filter" and rec.get("gold_agree") is False):
            continue
        ex = {"id": rec["id"], "prompt": to_segments(rec["prompt"], corpus), "chat": rec["kind"] != "label",
              "response": rec["response"] if rec["kind"] == "label" else rec["response"].strip(), "weight": 1.0}
        if rec["kind"] == "label" and rec.get("label_logits") and cfg.icldist.kl_weight > 0:
            ex["label_words"] = rec["label_words"]
            ex["teacher_probs"] = [float(p) for p in softmax(rec["label_logits"])]
        out.append(ex)
    return out
