"""Scores: macro-F1 and accuracy for labels (scikit-learn), micro-F1 over exact tuples, averages.

Every score is a fraction in [0, 1]; tables multiply by 100. Tuple matching is exact after
`formats.norm_tuple` (case and whitespace do not count), and each sentence's gold and predicted
tuples are sets: a tuple predicted twice is one prediction, so repeating a right answer earns
nothing and repeating a wrong one costs once. A format error is an empty prediction.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable, Mapping, Sequence

from .formats import norm_tuple


def classification_scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Macro-F1 over the labels present in gold or predictions (scikit-learn's default), and accuracy."""
    from sklearn.metrics import accuracy_score, f1_score

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        return {"macro_f1": 0.0, "accuracy": 0.0, "score": 0.0}
    f1 = float(f1_score(gold, pred, average="macro", zero_division=0))
    return {"macro_f1": f1, "accuracy": float(accuracy_score(gold, pred)), "score": f1}


def tuple_scores(gold: Sequence[Iterable[Sequence[str]]], pred: Sequence[Iterable[Sequence[str]] | None]) -> dict[str, float]:
    """Micro precision, recall and F1 over exact tuples; `None` predictions are format errors."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold tuple lists but {len(pred)} predictions")
    n_gold = n_pred = n_hit = n_err = 0
    for g, p in zip(gold, pred):
        if p is None:
            n_err += 1
            p = ()
        gs = {norm_tuple(t) for t in g}
        ps = {norm_tuple(t) for t in p}
        n_gold += len(gs)
        n_pred += len(ps)
        n_hit += len(gs & ps)
    precision = n_hit / n_pred if n_pred else 0.0
    recall = n_hit / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if not n_gold and not n_pred:  # nothing to find and nothing claimed: perfect
        precision = recall = f1 = 1.0
    n = len(gold)
    return {"micro_f1": f1, "precision": precision, "recall": recall, "score": f1,
            "format_errors": n_err, "format_error_rate": n_err / n if n else 0.0,
            "n_gold_tuples": n_gold, "n_pred_tuples": n_pred, "n_correct_tuples": n_hit}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value), min and max over seeds."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": statistics.fmean(vals), "std": std, "min": min(vals), "max": max(vals), "n": len(vals)}


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """The mean, or None when any value is missing (a partial average would mislead)."""
    vals = list(values)
    if not vals or any(v is None for v in vals):
        return None
    return statistics.fmean(vals)


def category_averages(scores: Mapping[str, float | None], categories: Mapping[str, str]) -> dict[str, float | None]:
    """Per category (over the datasets of the run in it), "classification" (the basic and
    multifaceted sets) and "overall" (over all datasets of the run).

    `scores` maps dataset to its mean score (None: not run for this model, e.g. VADER on irony);
    `categories` maps each dataset of the run to its category.
    """
    out: dict[str, float | None] = {}
    for cat in dict.fromkeys(categories.values()):
        out[cat] = mean_or_none(scores.get(d) for d, c in categories.items() if c == cat)
    # the label-word tasks (basic and multifaceted), which the distillation targets are stated on
    out["classification"] = mean_or_none(scores.get(d) for d, c in categories.items() if c != "fine-grained")
    out["overall"] = mean_or_none(scores.get(d) for d in categories)
    return out
