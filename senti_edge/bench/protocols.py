"""How a model answers SentiBench items: the `shipped` protocol or the `paper` protocol.

- `shipped` is what `senti-edge analyze` does by default, through the same public API: an
  `Analyzer` per runtime task (its zero-shot prompt from `runtime.tasks.TASKS`, contextual
  calibration, the model's registry files, texts fed through `Analyzer.stream` in analyze's
  batches). P-Stance gets one Analyzer per target, as `analyze -t stance --target T` would; the
  fine-grained sets use the runtime's `aspects` task (`Analyzer.extract`, grammar-constrained
  JSON) mapped onto each dataset's tuples by `datasets.from_aspects`. Nothing here re-implements
  a prompt or the calibration, so when the runtime changes, this protocol follows.
- `paper` is the paper's protocol: k train demonstrations (one draw per dataset and seed, or a
  fresh draw per example), raw arg-max over the dataset's label words, no calibration; the
  fine-grained sets generate the dataset's own tuple format (`formats`).

A session (`Shipped` or `Paper`) holds one loaded model; `classify` and `tuples` answer a cell's
items (predictions only: the runner scores them), `labeler` gives the texts -> labels function
the robustness columns perturb.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np

from ..runtime.prompts import Example, build_prefix, build_query
from ..runtime.tasks import Task
from ..sentibench import DatasetSpec, Item
from .datasets import from_aspects, instruction
from .formats import build_tuple_prefix, build_tuple_query, close_truncated, parse_tuples, tuples_grammar

PROTOCOLS = ("shipped", "paper")
Labeler = Callable[[list[str]], list[str]]


def draw(n: int, k: int, seed: int) -> list[int]:
    """k distinct train indices; the same draw as `prompts.sample_demos(pool, k, seed)`."""
    return random.Random(seed).sample(range(n), min(k, n)) if k > 0 and n else []


def item_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


class Shipped:
    """`senti-edge analyze`'s path: an Analyzer per task (and P-Stance target), on one engine per
    set of files the tasks resolve to (the default's aspects task loads its task adapter)."""

    protocol = "shipped"

    def __init__(self, model: str, cfg):
        self.model, self.cfg = model, cfg
        self._engines: dict = {}  # ModelRef -> Engine
        self._analyzers: dict = {}
        self.engine = self._engine("binary")  # loads the model exactly as analyze does

    def _engine(self, task: str):
        from ..runtime.engine import Engine
        from ..runtime.fetch import resolve

        ref = resolve(self.model, task=task)
        if ref not in self._engines:
            self._engines[ref] = Engine(ref, n_threads=self.cfg.n_threads, n_ctx=self.cfg.n_ctx)
        return self._engines[ref]

    def engine_for(self, spec: DatasetSpec):
        """The engine a dataset's cell runs on (its files, load time and token counts)."""
        return self._engine("aspects" if spec.generative else spec.task)

    def analyzer(self, task: str, target: str | None = None):
        from ..runtime.analyzer import Analyzer

        key = (task, target)
        if key not in self._analyzers:
            self._analyzers[key] = Analyzer(engine=self._engine(task), task=task, target=target,
                                            n_threads=self.cfg.n_threads, n_ctx=self.cfg.n_ctx)
        return self._analyzers[key]

    def close(self) -> None:
        for eng in self._engines.values():
            eng.close()

    def classify(self, spec: DatasetSpec, train, test: Sequence[Item], seed: int, timer) -> tuple[list[dict], dict]:
        groups: dict[str | None, list[Item]] = {}
        for it in test:
            groups.setdefault(it.target if spec.needs_target else None, []).append(it)
        results = {}
        for target, items in groups.items():
            for it, res in self.analyzer(spec.task, target).stream(items, on_done=timer.done):
                results[it.index] = res
        labels = self.analyzer(spec.task, next(iter(groups))).task.labels
        preds = [{"index": it.index, "pred": results[it.index]["label"],
                  "probs": [results[it.index]["probs"][lab] for lab in labels]} for it in test]
        return preds, {"labels": list(labels), "targets": [t for t in groups if t]}

    def tuples(self, spec: DatasetSpec, train, test: Sequence[Item], seed: int, timer) -> tuple[list[dict], dict]:
        preds = []
        for it, res in self.analyzer("aspects").stream(test, on_done=timer.done):
            preds.append({"index": it.index, "aspects": res["aspects"], "format_error": not res["complete"],
                          "pred": [list(t) for t in from_aspects(spec, res["aspects"])]})
        return preds, {}

    def labeler(self, spec: DatasetSpec, train, seed: int) -> Labeler:
        az = self.analyzer(spec.task)
        return lambda texts: [res["label"] for _, res in az.stream([Item(i, t, None) for i, t in enumerate(texts)])]


class Paper:
    """The paper's few-shot protocol on the bare engine (no calibration)."""

    protocol = "paper"

    def __init__(self, model: str, cfg):
        from ..runtime.engine import Engine

        self.cfg = cfg
        self.engine = Engine(model, n_threads=cfg.n_threads, n_ctx=cfg.n_ctx)

    def engine_for(self, spec: DatasetSpec):
        return self.engine

    def close(self) -> None:
        self.engine.close()

    @staticmethod
    def task(spec: DatasetSpec) -> Task:
        """The runtime task's instruction with the dataset's own label words and order."""
        return Task(spec.name, spec.labels, instruction(spec), needs_target=spec.needs_target)

    def _demo(self, it: Item) -> Item:
        return it._replace(text=it.text[: self.cfg.demo_chars])

    def _prefix(self, spec: DatasetSpec, train: Sequence[Item], idx: list[int]):
        return build_prefix(self.task(spec), [Example(*self._demo(train[i])[1:]) for i in idx])

    def classify(self, spec: DatasetSpec, train, test: Sequence[Item], seed: int, timer) -> tuple[list[dict], dict]:
        eng, cfg, task = self.engine, self.cfg, self.task(spec)
        ids = eng.label_token_ids(spec.labels)
        queries = [build_query(task, it.text, it.target) for it in test]
        if cfg.demos == "fixed":
            demos: list = draw(len(train), cfg.shots, seed)
            logits = eng.score(self._prefix(spec, train, demos), queries, ids, on_done=timer.done)
        else:
            rows, demos = [], []
            for it, q in zip(test, queries):
                idx = draw(len(train), cfg.shots, item_seed(seed, it.index))
                rows.append(eng.score(self._prefix(spec, train, idx), [q], ids)[0])
                demos.append(idx)
                timer.done(1)
            logits = np.asarray(rows)
        preds = [{"index": it.index, "pred": spec.labels[int(row.argmax())], "logits": [round(float(x), 4) for x in row]}
                 for it, row in zip(test, logits)]
        return preds, {"demos": demos}

    def tuples(self, spec: DatasetSpec, train, test: Sequence[Item], seed: int, timer) -> tuple[list[dict], dict]:
        cfg = self.cfg
        grammar = tuples_grammar(len(spec.fields), spec.labels) if cfg.grammar else None
        fixed = draw(len(train), cfg.shots, seed) if cfg.demos == "fixed" else None
        preds, demos = [], []
        for it in test:
            idx = fixed if fixed is not None else draw(len(train), cfg.shots, item_seed(seed, it.index))
            prefix = build_tuple_prefix(instruction(spec), spec.labels,
                                        [(self._demo(train[i]).text, train[i].gold) for i in idx])
            text, finished = self.engine.generate(prefix + build_tuple_query(it.text), max_tokens=cfg.max_tokens,
                                                  grammar=grammar, stop=["\n"])
            parsed = parse_tuples(close_truncated(text) if grammar and not finished else text, len(spec.fields),
                                  spec.labels)
            if fixed is None:
                demos.append(idx)
            preds.append({"index": it.index, "output": text, "finished": finished, "format_error": parsed is None,
                          "pred": None if parsed is None else [list(t) for t in parsed]})
            timer.done(1)
        return preds, {"demos": fixed if fixed is not None else demos}

    def labeler(self, spec: DatasetSpec, train: Sequence[Item], seed: int) -> Labeler:
        """Fixed demonstrations (one draw for `seed`), whatever the demo mode: the attack is on the text."""
        task, prefix = self.task(spec), self._prefix(spec, train, draw(len(train), self.cfg.shots, seed))
        ids = self.engine.label_token_ids(spec.labels)

        def label(texts: list[str]) -> list[str]:
            logits = self.engine.score(prefix, [build_query(task, t) for t in texts], ids)
            return [spec.labels[int(j)] for j in logits.argmax(axis=1)]

        return label


SESSIONS = {"shipped": Shipped, "paper": Paper}
