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
from .engine import Engine

BATCH = 64  # texts scored per Engine.score call; bounds memory while streaming


@dataclass
class AnalyzerConfig:
    model: str | None = None
    adapter: str | None = None
    task: str = "polarity"
    labels: tuple[str, ...] | None = None
    target: str | None = None
    shots: str | None = None  # a file of demonstrations
    calibrate: bool = True  # contextual calibration; see scoring.py
    chunk: bool = False
    n_threads: int | None = None
    n_ctx: int = 4096
    max_tokens: int = 200  # aspects: generation budget
    explain: bool = False  # label tasks: also generate the model's short analysis of each text
    explain_tokens: int = 96


def load_shots(path: str, task: prompts.Task) -> list[prompts.Example]:
    """Demonstrations from JSONL/JSON (`text` or `sentence`, `label`, optional `target`) or TSV (label<TAB>text)."""
    p = Path(path)
    if not p.is_file():
        raise SentiEdgeError(f"--shots file not found: {path}")
    raw = p.read_text("utf-8-sig", errors="replace")
    shots: list[prompts.Example] = []
    if p.suffix.lower() in (".jsonl", ".json"):
        rows = json.loads(raw) if p.suffix.lower() == ".json" else [json.loads(x) for x in raw.splitlines() if x.strip()]
        for i, row in enumerate(rows, 1):
            text = row.get("text", row.get("sentence")) if isinstance(row, dict) else None
            if text is None or "label" not in row:
                raise SentiEdgeError(f"{path}:{i}: a demonstration needs `text` (or `sentence`) and `label`")
            shots.append(prompts.Example(str(text), str(row["label"]), row.get("target")))
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


class Analyzer:
    """A model plus a task: `classify` for label tasks, `extract` for aspect tuples."""

    def __init__(self, config: AnalyzerConfig | None = None, *, engine: Engine | None = None, **overrides):
        cfg = config or AnalyzerConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"unknown Analyzer option {key!r}")
            setattr(cfg, key, value)
        self.config = cfg
        self.task = prompts.get_task(cfg.task, cfg.labels)
        if self.task.needs_target and not cfg.target:
            raise SentiEdgeError(f"task {self.task.name!r} needs --target (what the stance is towards)")
        self.shots = load_shots(cfg.shots, self.task) if cfg.shots and not self.task.generative else []
        self.engine = engine or Engine(cfg.model, adapter=cfg.adapter, n_threads=cfg.n_threads, n_ctx=cfg.n_ctx)
        self.prefix = prompts.build_prefix(self.task, self.shots, cfg.target) if not self.task.generative else []
        self.label_ids = self.engine.label_token_ids(self.task.labels) if not self.task.generative else []
        self.calibration = self._calibrate() if cfg.calibrate and not self.task.generative else None
        self._chunk_budget = self.engine.max_query_tokens(len(self.engine.tokenize_segments(self.prefix, bos=True))) - 16

    def close(self) -> None:
        self.engine.close()

    def _calibrate(self) -> scoring.Calibration:
        queries = [prompts.build_query(self.task, t, self.config.target) for t in scoring.CONTENT_FREE]
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
        """Raw label logits, one row per text (long texts pooled over chunks with --chunk)."""
        targets = targets or [self.config.target] * len(texts)
        if not self.config.chunk:
            queries = [prompts.build_query(self.task, t, tg) for t, tg in zip(texts, targets)]
            return self.engine.score(self.prefix, queries, self.label_ids, on_done=on_done)
        pieces, owner = [], []
        for i, (t, tg) in enumerate(zip(texts, targets)):
            for piece in self._chunks(t):
                pieces.append(prompts.build_query(self.task, piece, tg))
                owner.append(i)
        raw = self.engine.score(self.prefix, pieces, self.label_ids)
        owner_arr = np.asarray(owner)
        out = np.stack([scoring.pool_chunks(raw[owner_arr == i]) for i in range(len(texts))])
        if on_done:
            on_done(len(texts))
        return out

    def classify(self, texts: Sequence[str], targets: Sequence[str | None] | None = None,
                 on_done: Callable[[int], None] | None = None) -> list[dict]:
        """Label each text: `label`, `confidence` (softmax over the label words) and `probs`."""
        if self.task.generative:
            raise SentiEdgeError("the aspects task extracts tuples; use extract()")
        if not len(texts):
            return []
        logits = self.label_logits(texts, targets, on_done)
        idx, probs = scoring.predict(logits, self.calibration)
        labels = self.task.labels
        out = [
            {"label": labels[k], "confidence": float(p[k]), "probs": {lab: float(x) for lab, x in zip(labels, p)}}
            for k, p in zip(idx, probs)
        ]
        if self.config.explain:
            for row, text in zip(out, texts):
                row["explanation"] = self.explain(text)
        return out

    def explain(self, text: str) -> str:
        """The model's short analysis of a text, in the KnowDist format it was distilled on.

        It is generated separately from the label (which comes from the label-word scores), so
        the two can disagree; a base model that was never distilled writes weaker analyses."""
        prompt = prompts.build_analysis_prompt(text, "polarity", self.engine.template)
        raw, _ = self.engine.generate(prompt, max_tokens=self.config.explain_tokens, stop=["Overall sentiment"])
        return prompts.analysis_text(raw)

    # -- aspects ----------------------------------------------------------------------------------

    def extract(self, texts: Sequence[str], on_done: Callable[[int], None] | None = None) -> list[dict]:
        """Opinion tuples per text, generated under a JSON grammar (so every output parses)."""
        grammar = prompts.aspects_grammar(self.task.labels)
        out = []
        for text in texts:
            prompt = prompts.build_aspects_prompt(text, template=self.engine.template)
            raw, finished = self.engine.generate(prompt, max_tokens=self.config.max_tokens, grammar=grammar)
            tuples = prompts.parse_aspects(raw, self.task.labels)
            out.append({"aspects": tuples or [], "complete": finished and tuples is not None})
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
