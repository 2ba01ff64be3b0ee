"""Texts for the teacher: SentiBench train splits (labels kept aside) and the user's own files.

Every text is referred to by a `ref` string, `SOURCE:INDEX`: `sc/sst2:12` is record 12 of
`sc/sst2/train.json`; `file0:7` is the text on line 7 (1-based) of the first file in `corpus.files`. Records keep the
ref, never the text, so committed teacher outputs do not copy SentiBench. Only `train.json`
is ever opened; val and test files are refused even when named directly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

from ..errors import SentiEdgeError
from ..runtime.prompts import one_line
from ..sentibench import DATASETS, load_split
from .config import CorpusConfig

# folder -> (runtime task, gold labels in order): distill's view of the one table, `sentibench.DATASETS`
SENTIBENCH: dict[str, tuple[str, tuple[str, ...]]] = {d.dir: (d.task, d.labels) for d in DATASETS.values()}
_SPECS = {d.dir: d for d in DATASETS.values()}


class CorpusText(NamedTuple):
    """One teacher input: the text, its ref, and the gold label kept aside (never a target by default)."""

    ref: str  # SOURCE:INDEX
    text: str
    label: str | None = None  # gold label (classification sets), never a training target by default
    target: str | None = None  # stance target


def _read_user_file(path: Path, field: str, label_field: str = "") -> list[tuple[int, str, str | None]]:
    """(line number, text, label) of a .txt (a text per line), .jsonl or .csv file; blank texts skipped.
    The label is read from `label_field` of .jsonl/.csv files (None where it is missing or blank)."""
    from ..inputs import read_texts

    plain = path.suffix.lower() not in (".jsonl", ".ndjson", ".csv", ".tsv")
    recs = read_texts([str(path)], field=None if plain else field, target_field=None if plain else (label_field or None))
    return [(rec.line, rec.text, (rec.target or "").strip() or None) for rec in recs]


@dataclass
class Corpus:
    """Texts by ref; `items` keeps the deduplicated, sampled order used for generation."""

    by_ref: dict[str, CorpusText]
    items: list[CorpusText]

    def text(self, ref: str) -> str:
        try:
            return self.by_ref[ref].text
        except KeyError:
            raise SentiEdgeError(f"text {ref!r} is not in the corpus; was the corpus config changed since generation?") from None

    def in_dataset(self, dataset: str) -> list[CorpusText]:
        return [it for r, it in self.by_ref.items() if r.rsplit(":", 1)[0] == dataset]

    def labelled(self, dataset: str) -> list[CorpusText]:
        return [it for it in self.in_dataset(dataset) if it.label is not None]


def sentibench_train(root: Path, dataset: str) -> list[CorpusText]:
    """The records of `root/dataset/train.json` as items, read by the strict SentiBench reader; the
    label (canonical casing) kept aside for ICL demos."""
    if dataset not in SENTIBENCH:
        raise SentiEdgeError(f"unknown SentiBench dataset {dataset!r}; choose from {', '.join(SENTIBENCH)}")
    spec = _SPECS[dataset]
    path = spec.path(root, "train")
    if not path.is_file():
        raise SentiEdgeError(f"{path} not found; set corpus.sentibench_dir to the SentiBench root")
    return [CorpusText(f"{dataset}:{it.index}", it.text, None if spec.generative else it.gold, it.target)
            for it in load_split(root, spec, "train")]


def _check_not_eval(path: Path, root: Path | None) -> None:
    name = path.name.lower()
    if name.startswith(("val.", "test.", "dev.")):
        raise SentiEdgeError(f"{path} looks like an evaluation split; only train texts may be used for training")
    if root is not None and root.resolve() in path.resolve().parents and name != "train.json":
        raise SentiEdgeError(f"{path} is a SentiBench file other than train.json; only train splits may be used")


def load_corpus(cfg: CorpusConfig, seed: int = 42) -> Corpus:
    """All sources, deduplicated (first occurrence wins), then sampled evenly up to `max_texts`."""
    root = Path(cfg.sentibench_dir).expanduser() if cfg.sentibench_dir else None
    sources: list[list[CorpusText]] = []
    if root is not None:
        for ds in cfg.datasets or list(SENTIBENCH):
            sources.append(sentibench_train(root, ds))
    elif cfg.datasets:
        raise SentiEdgeError("corpus.datasets is set but corpus.sentibench_dir is empty; give the SentiBench root")
    for k, f in enumerate(cfg.files):
        path = Path(f).expanduser()
        _check_not_eval(path, root)
        sources.append([CorpusText(f"file{k}:{line}", t, label) for line, t, label in _read_user_file(path, cfg.text_field, cfg.label_field)])
    if not sources:
        raise SentiEdgeError("the corpus is empty: set corpus.sentibench_dir or corpus.files")
    by_ref: dict[str, CorpusText] = {}
    seen: set[str] = set()
    kept: list[list[CorpusText]] = []
    for items in sources:
        mine = []
        for it in items:
            by_ref[it.ref] = it
            key = one_line(it.text).lower()
            if not key or key in seen:
                continue
            seen.add(key)
            mine.append(it)
        kept.append(mine)
    if not any(kept):
        raise SentiEdgeError("the corpus has no non-empty texts; check corpus.files and corpus.text_field")
    return Corpus(by_ref, _sample_evenly(kept, cfg.max_texts, seed))


def _sample_evenly(groups: Sequence[list[CorpusText]], n: int, seed: int) -> list[CorpusText]:
    """Shuffle each source, then take round-robin until `n` (0: everything)."""
    rng = random.Random(seed)
    shuffled = []
    for g in groups:
        g = list(g)
        rng.shuffle(g)
        shuffled.append(g)
    out: list[CorpusText] = []
    total = sum(len(g) for g in shuffled)
    n = total if n <= 0 else min(n, total)
    i = 0
    while len(out) < n:
        for g in shuffled:
            if i < len(g) and len(out) < n:
                out.append(g[i])
        i += 1
    return out
