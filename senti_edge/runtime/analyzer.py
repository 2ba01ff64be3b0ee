"""The high-level API: an `Analyzer` keeps a model and a task, and labels texts.

    >>> from senti_edge import Analyzer
    >>> az = Analyzer(task="polarity")
    >>> az.classify(["Great phone!", "Awful battery."])
    [{'label': 'positive', 'confidence': 0.71, ...}, ...]

Label tasks are scored by one forward pass per text under a shared, cached prefix (see
`engine.py`); the `aspects` task generates a grammar-constrained JSON list, so it always parses.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import SentiEdgeError
from . import prompts, scoring
from .tasks import TASKS, Task, get_task
from .engine import Engine
from .fetch import resolve

BATCH = 64  # texts scored per Engine.score call; bounds memory while streaming


@dataclass
class AnalyzerConfig:
    model: str | None = None
    adapter: str | None = None
    task: str = "polarity"
    labels: tuple[str, ...] | None = None
    instruction: str | None = None  # replaces the task's (custom labels get a neutral one); may use {labels}
    target: str | None = None
    shots: str | None = None  # a file of demonstrations
    calibrate: bool = True  # contextual calibration; see scoring.py
    chunk: bool = False
    n_threads: int | None = None
    n_ctx: int = 4096
    max_tokens: int = 200  # aspects: generation budget
    explain: bool = False  # label tasks: also generate the model's short analysis of each text
    explain_tokens: int = 96
    verbose: bool = False  # let llama.cpp's own log through (the CLI's -v)


def load_shots(path: str, task: Task) -> list[prompts.Example]:
    """Demonstrations from JSONL/JSON (`text` or `sentence`, `label`, optional `target`) or TSV (label<TAB>text).

    Every malformed file (bad JSON, a non-object row, a missing key, an unknown label) is one
    `SentiEdgeError` naming the file and row."""
    p = Path(path)
    if not p.is_file():
        raise SentiEdgeError(f"--shots file not found: {path}")
    raw = p.read_text("utf-8-sig", errors="replace")
    shots: list[prompts.Example] = []
    if p.suffix.lower() in (".jsonl", ".json"):
        for i, row in _shot_rows(raw, path, whole=p.suffix.lower() == ".json"):
            text = row.get("text", row.get("sentence")) if isinstance(row, dict) else None
            if not isinstance(text, str) or "label" not in row:
                raise SentiEdgeError(f"{path}:{i}: a demonstration needs `text` (or `sentence`) and `label`")
            target = row.get("target")
            shots.append(prompts.Example(text, str(row["label"]), None if target is None else str(target)))
    else:
        for i, line in enumerate(csv.reader(raw.splitlines(), delimiter="\t"), 1):
            if not line:
                continue
            if len(line) < 2:
                raise SentiEdgeError(f"{path}:{i}: expected label<TAB>text")
            shots.append(prompts.Example(line[1], line[0]))
    for i, ex in enumerate(shots, 1):
        if ex.label not in task.labels:
            raise SentiEdgeError(f"{path}: demonstration {i} has label {ex.label!r}, not one of {', '.join(task.labels)}")
    return shots


def _shot_rows(raw: str, path: str, whole: bool) -> list[tuple[int, object]]:
    """(row number, value) of a .json array (or object) or of .jsonl lines; bad JSON is a SentiEdgeError."""
    lines = [(1, raw)] if whole else [(i, x) for i, x in enumerate(raw.splitlines(), 1) if x.strip()]
    rows = []
    for i, text in lines:
        try:
            rows.append((i, json.loads(text)))
        except json.JSONDecodeError as exc:
            raise SentiEdgeError(f"{path}:{exc.lineno if whole else i}: not valid JSON ({exc.msg}); "
                                 "demonstrations are JSON objects with text and label") from None
    if whole:
        data = rows[0][1]
        rows = list(enumerate(data if isinstance(data, list) else [data], 1))
    return rows


def _check_texts(texts) -> None:
    """A bare string is a sequence of characters; refuse it rather than label each character."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list of strings, not one string; write classify([text])")


class Analyzer:
    """A model plus a task: `classify` for label tasks, `extract` for aspect tuples."""

    def __init__(self, config: AnalyzerConfig | None = None, *, engine: Engine | None = None, **overrides):
        cfg = config or AnalyzerConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"unknown Analyzer option {key!r}")
            setattr(cfg, key, value)
        if isinstance(cfg.labels, str):  # "a,b,c" as on the command line
            cfg.labels = tuple(label.strip() for label in cfg.labels.split(","))
        self.config = cfg
        self.task = get_task(cfg.task, cfg.labels, cfg.instruction)
        if cfg.explain:
            prompts.explain_focus(self.task)  # refuse --explain where it does not apply, before loading
        self.shots = load_shots(cfg.shots, self.task) if cfg.shots and not self.task.generative else []
        self.engine = engine or Engine(resolve(cfg.model, cfg.adapter, self.task.name), n_threads=cfg.n_threads,
                                       n_ctx=cfg.n_ctx, verbose=cfg.verbose)
        self.prefix = prompts.build_prefix(self.task, self.shots, cfg.target) if not self.task.generative else []
        self.label_ids = self.engine.label_token_ids(self.task.labels) if not self.task.generative else []
        self.calibration_method = "none"
        self.calibration = self._calibrate() if cfg.calibrate and not self.task.generative else None
        # what classify reads: a head's vocabulary columns (the label words among them), or the label words
        self.score_ids = list(self.calibration.tokens) if isinstance(self.calibration, scoring.Head) else self.label_ids
        self._chunk_budget = self.engine.max_query_tokens(len(self.engine.tokenize_segments(self.prefix, bos=True))) - 16

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> "Analyzer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _calibrate(self) -> scoring.Calibration | scoring.Head | None:
        """The model's own fitted choice for this task where it has one (see scoring.py), else
        content-free calibration. A fit holds only for the prompt it was fitted under: the
        built-in task's instruction and labels, zero-shot."""
        fit = self.stored_calibration()
        if fit is not None:
            self.calibration_method = fit["method"]
            return self._content_free() if fit["method"] == "content-free" else scoring.from_entry(fit, self.task.labels)
        self.calibration_method = "content-free"
        return self._content_free()

    def stored_calibration(self) -> dict | None:
        """This model's stored calibration entry for the task, when it applies to this prompt."""
        try:
            tasks = json.loads(self.engine.metadata().get(scoring.METADATA_KEY, "{}")).get("tasks", {})
        except (json.JSONDecodeError, AttributeError):
            return None
        fit = tasks.get(self.task.name)
        builtin = TASKS.get(self.task.name)
        if not fit or self.shots or builtin is None or self.task != builtin or sorted(fit.get("labels", ())) != sorted(self.task.labels):
            return None
        if fit["method"] == "head" and not all(0 <= t < self.engine.n_vocab for t in fit["tokens"]):
            return None  # a head fitted on another vocabulary
        return fit

    def _content_free(self, target: str | None = None) -> scoring.Calibration:
        queries = [prompts.build_query(self.task, t, target or self.config.target) for t in scoring.CONTENT_FREE]
        return scoring.Calibration.from_content_free(self.engine.score(self.prefix, queries, self.label_ids))

    # -- label tasks ------------------------------------------------------------------------------

    def _chunks(self, text: str) -> list[str]:
        """Split a text too long for the context into pieces that fit (by tokens)."""
        budget = self._chunk_budget
        tokens = self.engine.tokenize(text)
        if len(tokens) <= budget:
            return [text]
        return [self.engine.detokenize(tokens[i:i + budget]) for i in range(0, len(tokens), budget)]

    def label_logits(self, texts: Sequence[str], targets: Sequence[str | None] | None = None,
                     on_done: Callable[[int], None] | None = None) -> np.ndarray:
        """Raw label-word logits, one row per text (long texts pooled over chunks with --chunk)."""
        return self.scores(texts, targets, self.label_ids, on_done)

    def scores(self, texts: Sequence[str], targets: Sequence[str | None] | None = None,
               ids: Sequence[int] | None = None, on_done: Callable[[int], None] | None = None) -> np.ndarray:
        """Next-token logits of the vocabulary `ids` (default: the columns this Analyzer's
        calibration reads) at the answer position, one row per text; with --chunk, a long
        text's chunks are pooled."""
        ids = self.score_ids if ids is None else ids
        head = self._head_columns(ids)
        targets = [tg or self.config.target for tg in targets] if targets else [self.config.target] * len(texts)
        if self.task.needs_target and not all(targets):
            raise SentiEdgeError(f"task {self.task.name!r} needs a target for every text: give --target "
                                 "(or per-text targets)")
        if not self.config.chunk:
            queries = [prompts.build_query(self.task, t, tg) for t, tg in zip(texts, targets)]
            return self.engine.score(self.prefix, queries, ids, on_done=on_done)
        pieces, owner = [], []
        for i, (t, tg) in enumerate(zip(texts, targets)):
            for piece in self._chunks(t):
                pieces.append(prompts.build_query(self.task, piece, tg))
                owner.append(i)
        raw = self.engine.score(self.prefix, pieces, ids)
        owner_arr = np.asarray(owner)
        out = np.stack([scoring.pool_chunks(raw[owner_arr == i], head) for i in range(len(texts))])
        if on_done:
            on_done(len(texts))
        return out

    def _head_columns(self, ids: Sequence[int]) -> bool:
        """Whether `ids` are other columns than the label words, so that chunks pool as a head's."""
        return list(ids) != list(self.label_ids)

    def classify(self, texts: Sequence[str], targets: Sequence[str | None] | None = None,
                 on_done: Callable[[int], None] | None = None) -> list[dict]:
        """Label each text: `label`, `confidence` (softmax over the label words) and `probs`."""
        _check_texts(texts)
        if self.task.generative:
            raise SentiEdgeError("the aspects task extracts tuples; use extract()")
        if not len(texts):
            return []
        idx, probs = scoring.predict(self.scores(texts, targets, on_done=on_done), self.calibration)
        labels = self.task.labels
        out = [
            {"label": labels[k], "confidence": float(p[k]), "probs": {lab: float(x) for lab, x in zip(labels, p)}}
            for k, p in zip(idx, probs)
        ]
        if self.config.explain:
            for row, text, target in zip(out, texts, targets or [None] * len(texts)):
                row["explanation"] = self.explain(text, target, row["label"])
        return out

    def classify_chunks(self, text: str, target: str | None = None) -> dict:
        """`classify` for one text, plus `chunks`: each chunk's own label and confidence (the
        pooled label is the same as classify's; the chunks are scored once)."""
        target = target or self.config.target
        pieces = self._chunks(text)
        raw = self.engine.score(self.prefix, [prompts.build_query(self.task, p, target) for p in pieces], self.score_ids)
        labels = self.task.labels
        (k,), (p,) = scoring.predict(scoring.pool_chunks(raw, self._head_columns(self.score_ids)), self.calibration)
        row = {"label": labels[k], "confidence": float(p[k]), "probs": {lab: float(x) for lab, x in zip(labels, p)}}
        idx, probs = scoring.predict(raw, self.calibration)
        row["chunks"] = [{"label": labels[i], "confidence": float(q[i])} for i, q in zip(idx, probs)]
        if self.config.explain:
            row["explanation"] = self.explain(text, target, row["label"])
        return row

    def explain(self, text: str, target: str | None = None, label: str | None = None) -> str:
        """The model's short analysis of a text, in the KnowDist format it was distilled on, from
        the task's own perspective (emotion, irony, stance towards the target, or polarity).

        Given the `label` the classifier chose, the answer is made to open with it ("The sentiment
        is negative because") and the model writes the reasons, so the explanation cannot state
        another label than the row's (left to itself, the student's analysis often did). Whole
        sentences only: a verdict sentence and a sentence cut off by the budget are dropped."""
        focus = prompts.explain_focus(self.task)
        target = (target or self.config.target) if focus == "stance" else None
        prompt = prompts.build_analysis_prompt(text, focus, self.engine.template, target)
        lead = prompts.explanation_lead(focus, label, target) if label is not None else ""
        if lead:
            prompt = prompt + [prompts.Segment(lead, True)]
        raw, _ = self.engine.generate(prompt, max_tokens=self.config.explain_tokens, stop=["Overall sentiment"])
        return prompts.analysis_text(lead + raw)

    # -- aspects ----------------------------------------------------------------------------------

    def extract(self, texts: Sequence[str], on_done: Callable[[int], None] | None = None) -> list[dict]:
        """Opinion tuples per text, generated under a JSON grammar built for that text (so every
        output parses, and every aspect and opinion is the text's own words); a tuple repeated
        word for word is kept once, and generation stops at the first repeat, where small
        students would loop until the budget ran out. `complete` is False when the budget cut
        the list off; the tuples finished before the cut are kept."""
        _check_texts(texts)
        labels = self.task.labels
        out = []
        for text in texts:
            prompt = prompts.build_aspects_prompt(text, template=self.engine.template)
            grammar = prompts.aspects_grammar(labels, text=text)
            raw, finished = self.engine.generate(prompt, max_tokens=self.config.max_tokens, grammar=grammar,
                                                 stop_if=lambda so_far: prompts.repeats_an_opinion(so_far, labels))
            tuples = prompts.aspects_so_far(raw, labels)
            unique = list({json.dumps(tp, sort_keys=True): tp for tp in tuples}.values())
            out.append({"aspects": unique, "complete": finished})
            if on_done:
                on_done(1)
        return out

    def run(self, texts: Sequence[str], targets=None, on_done=None) -> list[dict]:
        return self.extract(texts, on_done) if self.task.generative else self.classify(texts, targets, on_done)

    def stream(self, records: Iterable, on_done=None) -> Iterator[tuple[object, dict]]:
        """Label records (anything with `.text`, optional `.target`) in batches, yielding as it goes."""
        batch: list = []
        for rec in records:
            batch.append(rec)
            if len(batch) == BATCH:
                yield from self._run_batch(batch, on_done)
                batch = []
        if batch:
            yield from self._run_batch(batch, on_done)

    def _run_batch(self, batch: list, on_done) -> Iterator[tuple[object, dict]]:
        targets = [getattr(r, "target", None) or self.config.target for r in batch]
        return zip(batch, self.run([r.text for r in batch], targets, on_done))

def analyze(texts: Sequence[str], **options) -> list[dict]:
    """One-off convenience: load the model, label `texts`, free the model."""
    az = Analyzer(**options)
    try:
        return az.run(list(texts))
    finally:
        az.close()
