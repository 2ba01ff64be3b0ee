"""metrics.py: classification scores, tuple micro-F1, seed spread and averages."""

from __future__ import annotations

import pytest

from senti_edge.bench.metrics import category_averages, classification_scores, mean_or_none, spread, tuple_scores


def test_classification_scores():
    s = classification_scores(["a", "a", "b", "b"], ["a", "a", "a", "b"])
    assert s["accuracy"] == pytest.approx(0.75)
    # F1(a) = 2*2/(2*2+1) = 0.8, F1(b) = 2*1/(2*1+1) = 2/3
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert s["score"] == s["macro_f1"]


def test_classification_one_label_predicted():
    s = classification_scores(["neg", "pos", "pos", "pos"], ["pos"] * 4)
    assert s["macro_f1"] == pytest.approx((0 + 2 * 3 / (2 * 3 + 1)) / 2)


def test_classification_length_mismatch():
    with pytest.raises(ValueError):
        classification_scores(["a"], [])


def test_tuple_scores_exact_match_case_insensitive():
    gold = [[("meal", "positive"), ("service", "negative")], [("wine", "positive")]]
    pred = [[("Meal", "Positive"), ("staff", "negative")], [("wine", "neutral")]]
    s = tuple_scores(gold, pred)
    assert (s["n_gold_tuples"], s["n_pred_tuples"], s["n_correct_tuples"]) == (3, 3, 1)
    assert s["micro_f1"] == pytest.approx(1 / 3)


def test_tuple_scores_duplicates_count_once():
    gold = [[("meal", "positive"), ("meal", "positive")]]
    pred = [[("meal", "positive"), ("meal", "positive"), ("meal", "positive")]]
    s = tuple_scores(gold, pred)
    assert s["micro_f1"] == 1.0 and s["n_pred_tuples"] == 1


def test_tuple_scores_empty_lists():
    assert tuple_scores([[]], [[]])["micro_f1"] == 1.0  # nothing to find, nothing claimed
    s = tuple_scores([[], [("a", "positive")]], [[], []])
    assert s["micro_f1"] == 0.0 and s["recall"] == 0.0 and s["precision"] == 0.0
    s = tuple_scores([[]], [[("a", "positive")]])
    assert s["micro_f1"] == 0.0 and s["n_pred_tuples"] == 1


def test_tuple_scores_format_errors_are_empty_predictions():
    gold = [[("meal", "positive")], [("wine", "positive")]]
    s = tuple_scores(gold, [None, [("wine", "positive")]])
    assert s["format_errors"] == 1 and s["format_error_rate"] == 0.5
    assert s["precision"] == 1.0 and s["recall"] == 0.5
    assert s["micro_f1"] == pytest.approx(2 / 3)


def test_tuple_scores_null_fields():
    gold = [[("food quality", "NULL", "tasty", "positive")]]
    assert tuple_scores(gold, [[("Food Quality", None, "tasty", "positive")]])["micro_f1"] == 1.0
    assert tuple_scores(gold, [[("food quality", "null", "tasty", "positive")]])["micro_f1"] == 1.0
    assert tuple_scores(gold, [[("food quality", "food", "tasty", "positive")]])["micro_f1"] == 0.0


def test_spread():
    s = spread([0.5, 0.7, 0.6])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1) and s["n"] == 3
    assert spread([0.4])["std"] == 0.0
    assert spread([])["mean"] is None


def test_category_averages():
    cats = {"sst2": "basic", "imdb": "basic", "irony18": "multifaceted", "opener": "fine-grained"}
    avg = category_averages({"sst2": 0.5, "imdb": 0.7, "irony18": 0.3, "opener": 0.1}, cats)
    assert avg["basic"] == pytest.approx(0.6) and avg["multifaceted"] == pytest.approx(0.3)
    assert avg["classification"] == pytest.approx(0.5) and avg["overall"] == pytest.approx(0.4)
    partial = category_averages({"sst2": 0.5, "imdb": 0.7}, cats)  # e.g. VADER: no irony
    assert partial["basic"] == pytest.approx(0.6) and partial["multifaceted"] is None and partial["overall"] is None
    assert mean_or_none([]) is None
