"""baselines.py: majority class and VADER."""

from __future__ import annotations

from senti_edge.bench.baselines import BASELINES, applies, baseline_size, vader_label
from senti_edge.bench.datasets import DATASETS, Item


def _items(labels):
    return [Item(i, f"text {i}", lab) for i, lab in enumerate(labels)]


def test_majority_uses_train_and_breaks_ties_by_label_order():
    spec = DATASETS["twitter"]
    assert BASELINES["majority"](spec, _items(["neutral", "neutral", "positive"]), _items(["x"] * 3)) == ["neutral"] * 3
    assert BASELINES["majority"](spec, _items(["positive", "negative"]), _items(["x"])) == ["negative"]


def test_vader_thresholds():
    assert vader_label(0.5, ("negative", "positive", "neutral")) == "positive"
    assert vader_label(0.01, ("negative", "positive", "neutral")) == "neutral"
    assert vader_label(-0.05, ("negative", "positive", "neutral")) == "negative"
    assert vader_label(0.0, ("negative", "positive")) == "positive"
    assert vader_label(-0.01, ("negative", "positive")) == "negative"


def test_vader_predicts_and_applies_only_to_polarity_sets():
    spec = DATASETS["sst2"]
    test = [Item(0, "What a wonderful, lovely film!", "positive"), Item(1, "Terrible, boring and awful.", "negative")]
    assert BASELINES["vader"](spec, [], test) == ["positive", "negative"]
    assert applies("vader", DATASETS["twitter"]) and not applies("vader", DATASETS["irony18"])
    assert applies("majority", DATASETS["irony18"]) and not applies("majority", DATASETS["opener"])
    assert baseline_size("vader") > 100_000 and baseline_size("majority") == 0
