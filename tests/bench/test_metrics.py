"""metrics.py: classification scores, tuple micro-F1, seed spread and averages."""

from __future__ import annotations

import pytest

from senti_edge.bench.metrics import (category_averages, classification_scores, ece, label_recall, mean_or_none, spread,
                                      tuple_scores)


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


def test_tuple_scores_flagged_errors_keep_their_finished_tuples():
    gold = [[("meal", "positive"), ("wine", "negative")], [("wine", "positive")]]
    s = tuple_scores(gold, [[("meal", "positive")], [("wine", "positive")]], errors=[True, False])
    assert s["format_errors"] == 1 and s["n_correct_tuples"] == 2 and s["recall"] == pytest.approx(2 / 3)


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


def test_labels_outside_the_dataset_count_as_wrong():
    # "none" (the runtime's extra stance label) is a miss for its gold label, not a class of its own
    s = classification_scores(["against", "favor", "favor"], ["against", "favor", "none"], ("against", "favor"))
    assert s["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2) and s["accuracy"] == pytest.approx(2 / 3)


def test_bootstrap_matches_the_metrics_on_every_resample():
    import random

    from senti_edge.bench.metrics import bootstrap_classification, bootstrap_tuples, ci95, resample

    rng = random.Random(3)
    labels = ("neg", "pos", "neu")
    gold = [rng.choice(labels[:2]) for _ in range(40)]
    pred = [rng.choice([*labels, "none"]) for _ in range(40)]
    idx = resample(40, reps=25, seed=1)
    reps = bootstrap_classification(gold, pred, labels, idx)
    for r, row in zip(reps, idx):
        assert r == pytest.approx(classification_scores([gold[i] for i in row], [pred[i] for i in row], labels)["macro_f1"])
    tg = [[("meal", "positive")], [], [("wine", "negative"), ("staff", "neutral")]] * 4
    tp = [[("meal", "positive")], None, [("wine", "negative")]] * 4
    idx = resample(12, reps=25, seed=1)
    for r, row in zip(bootstrap_tuples(tg, tp, idx), idx):
        assert r == pytest.approx(tuple_scores([tg[i] for i in row], [tp[i] for i in row])["micro_f1"])
    lo, hi = ci95(bootstrap_classification(gold, pred, labels))
    assert lo < classification_scores(gold, pred, labels)["macro_f1"] < hi


def test_interval_narrows_with_more_items():
    from senti_edge.bench.metrics import bootstrap_classification, ci95

    def width(n):
        gold = ["pos", "neg"] * n
        pred = ["pos", "neg", "neg", "neg"] * (n // 2)
        lo, hi = ci95(bootstrap_classification(gold, pred, ("neg", "pos")))
        return hi - lo

    assert width(24) > width(400) > 0


def test_mean_replicates_of_an_average():
    from senti_edge.bench.metrics import mean_replicates

    assert list(mean_replicates([[0.2, 0.4], [0.4, 0.8]])) == pytest.approx([0.3, 0.6])
    assert mean_replicates([[0.2], None]) is None and mean_replicates([]) is None


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    right = [True, True, True, False]
    assert ece([0.75] * 4, right) == pytest.approx(0.0)  # 75% confident, 75% right
    assert ece([0.99] * 4, right) == pytest.approx(0.24)
    assert ece([0.55, 0.95], [False, True]) == pytest.approx(0.5 * 0.55 + 0.5 * 0.05)  # two bins, weighted


def test_recall_per_label_and_ece_join_the_classification_scores():
    gold, pred = ["neg", "neg", "neu", "pos"], ["neg", "pos", "pos", "pos"]
    assert label_recall(gold, pred, ("neg", "neu", "pos")) == {"neg": 0.5, "neu": 0.0, "pos": 1.0}
    assert label_recall(["a"], ["a"], ("a", "b")) == {"a": 1.0}  # a label absent from gold has no recall
    s = classification_scores(gold, pred, ("neg", "neu", "pos"), confidence=[0.9, 0.6, 0.6, 0.9])
    assert s["recall"]["neu"] == 0.0
    assert s["ece"] == pytest.approx(0.5 * abs(0.0 - 0.6) + 0.5 * abs(1.0 - 0.9))
    assert "ece" not in classification_scores(gold, pred, ("neg", "neu", "pos"))
