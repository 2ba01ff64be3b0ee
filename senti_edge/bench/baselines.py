"""Baselines that need no LLM: the majority class of train, and VADER on the polarity sets.

A baseline is a function (spec, train items, test items) -> predicted labels, registered by name
in `BASELINES`. `applies(name, spec)` says whether a baseline can run on a dataset; cells where
it cannot are skipped and shown as "-".
"""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path
from typing import Callable, Sequence

from ..errors import SentiEdgeError
from .datasets import DatasetSpec, Item

Baseline = Callable[[DatasetSpec, Sequence[Item], Sequence[Item]], list[str]]
BASELINES: dict[str, Baseline] = {}


def register(name: str):
    def deco(fn: Baseline) -> Baseline:
        BASELINES[name] = fn
        return fn
    return deco


def applies(name: str, spec: DatasetSpec) -> bool:
    if name == "vader":
        return spec.polarity
    return not spec.generative


@register("majority")
def majority(spec: DatasetSpec, train: Sequence[Item], test: Sequence[Item]) -> list[str]:
    """The most frequent train label (ties: the first in the label order) for every item."""
    counts = collections.Counter(it.gold for it in train)
    best = max(spec.labels, key=lambda lab: (counts[lab], -spec.labels.index(lab)))
    return [best] * len(test)


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


def _analyzer():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise SentiEdgeError("the vader baseline needs vaderSentiment: pip install 'senti-edge[bench]'") from None
    return SentimentIntensityAnalyzer()


@register("vader")
def vader(spec: DatasetSpec, train: Sequence[Item], test: Sequence[Item]) -> list[str]:
    if not spec.polarity:
        raise SentiEdgeError(f"the vader baseline applies to polarity sets only, not {spec.name}")
    sia = _analyzer()
    return [vader_label(sia.polarity_scores(it.text)["compound"], spec.labels) for it in test]


def baseline_size(name: str) -> int:
    """Bytes on disk of what the baseline loads (VADER's lexicon; 0 for majority)."""
    if name != "vader":
        return 0
    spec = importlib.util.find_spec("vaderSentiment")
    if spec is None or not spec.origin:
        return 0
    lex = Path(spec.origin).parent / "vader_lexicon.txt"
    return lex.stat().st_size if lex.exists() else 0
