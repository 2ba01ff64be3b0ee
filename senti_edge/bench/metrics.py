"""Scores: macro-F1 and accuracy for labels (scikit-learn), micro-F1 over exact tuples, averages,
and bootstrap confidence intervals for all of them.

Every score is a fraction in [0, 1]; tables multiply by 100. Tuple matching is exact after
`formats.norm_tuple` (case and whitespace do not count), and each sentence's gold and predicted
tuples are sets: a tuple predicted twice is one prediction, so repeating a right answer earns
nothing and repeating a wrong one costs once. A format error is an empty prediction.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable, Mapping, Sequence

import numpy as np

from .formats import norm_tuple


def present_labels(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None) -> list[str] | None:
    """The labels macro-F1 averages over: those present in gold or predictions (scikit-learn's
    default), kept to `labels` when given, so a prediction outside the dataset's labels (the
    runtime's stance `none` on P-Stance) only counts as a miss of its gold label."""
    if labels is None:
        return None
    seen = set(gold) | set(pred)
    return [lab for lab in labels if lab in seen]


def classification_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None,
                          confidence: Sequence[float] | None = None) -> dict:
    """Macro-F1 over the labels present in gold or predictions (within `labels`), accuracy, recall
    per label of `labels` (those in gold), and with the predicted label's `confidence` per item, the
    expected calibration error."""
    from sklearn.metrics import accuracy_score, f1_score

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        return {"macro_f1": 0.0, "accuracy": 0.0, "score": 0.0}
    f1 = float(f1_score(gold, pred, labels=present_labels(gold, pred, labels), average="macro", zero_division=0))
    out = {"macro_f1": f1, "accuracy": float(accuracy_score(gold, pred)), "score": f1}
    if labels is not None:
        out["recall"] = label_recall(gold, pred, labels)
    if confidence is not None:
        out["ece"] = ece(confidence, [g == p for g, p in zip(gold, pred)])
    return out


def label_recall(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Per label of `labels` that occurs in `gold`: the share of its items predicted as it."""
    from sklearn.metrics import recall_score

    present = [lab for lab in labels if lab in set(gold)]
    if not present:
        return {}
    return dict(zip(present, map(float, recall_score(gold, pred, labels=present, average=None, zero_division=0))))


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over equal-width bins of the predicted label's confidence, the
    item-weighted gap between accuracy and mean confidence (Guo et al., 2017)."""
    conf, hit = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)  # (lo, hi] bins, 0 in the first
    total = 0.0
    for b in np.unique(which):
        m = which == b
        total += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(total)


def tuple_scores(gold: Sequence[Iterable[Sequence[str]]], pred: Sequence[Iterable[Sequence[str]] | None],
                 errors: Sequence[bool] | None = None) -> dict[str, float]:
    """Micro precision, recall and F1 over exact tuples. `None` predictions are format errors and
    score as empty; `errors`, where given, flags the format errors instead (an answer cut off by
    the token budget is one, yet the tuples it had finished are what the user got, and score)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold tuple lists but {len(pred)} predictions")
    errors = [p is None for p in pred] if errors is None else errors
    n_gold = n_pred = n_hit = 0
    n_err = sum(map(bool, errors))
    for g, p in zip(gold, pred):
        if p is None:
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


# -- bootstrap -----------------------------------------------------------------------------------

BOOT_REPS = 1000
BOOT_SEED = 0


def resample(n: int, reps: int = BOOT_REPS, seed: int = BOOT_SEED) -> np.ndarray:
    """Bootstrap item indices, (reps, n). The same for every model on a dataset of n items, so
    two models' replicates are paired (the same resampled items) and can be averaged across sets."""
    return np.random.default_rng(seed).integers(0, n, size=(reps, n))


def bootstrap_classification(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str],
                             idx: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 of each bootstrap resample, as `classification_scores` computes it (vectorised)."""
    vocab = {lab: i for i, lab in enumerate(labels)}
    k = len(labels) + 1  # the last code: a prediction outside the dataset's labels
    g = np.array([vocab[x] for x in gold])
    p = np.array([vocab.get(x, k - 1) for x in pred])
    idx = resample(len(g)) if idx is None else idx
    reps = idx.shape[0]
    codes = (np.arange(reps)[:, None] * k * k + g[idx] * k + p[idx]).ravel()
    conf = np.bincount(codes, minlength=reps * k * k).reshape(reps, k, k)[:, :-1, :-1].astype(float)
    tp = np.einsum("rii->ri", conf)
    gold_n = conf.sum(axis=2) + _outside(g, p, idx, k)  # gold count includes items predicted outside
    pred_n = conf.sum(axis=1)
    present = (gold_n + pred_n) > 0
    denom = gold_n + pred_n
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def _outside(g: np.ndarray, p: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Per resample and gold label: items whose prediction lies outside the dataset's labels."""
    out = np.zeros((idx.shape[0], k - 1))
    miss = p[idx] == k - 1
    if miss.any():
        for lab in range(k - 1):
            out[:, lab] = (miss & (g[idx] == lab)).sum(axis=1)
    return out


def bootstrap_tuples(gold: Sequence[Iterable[Sequence[str]]], pred: Sequence[Iterable[Sequence[str]] | None],
                     idx: np.ndarray | None = None) -> np.ndarray:
    """Micro-F1 over exact tuples of each bootstrap resample of sentences (`tuple_scores`' rules)."""
    counts = np.array([(len(gs := {norm_tuple(t) for t in g}), len(ps := {norm_tuple(t) for t in (p or ())}),
                        len(gs & ps)) for g, p in zip(gold, pred)], dtype=float).reshape(-1, 3)
    idx = resample(len(counts)) if idx is None else idx
    n_gold, n_pred, n_hit = (counts[idx][..., j].sum(axis=1) for j in range(3))
    prec = np.divide(n_hit, n_pred, out=np.zeros_like(n_hit), where=n_pred > 0)
    rec = np.divide(n_hit, n_gold, out=np.zeros_like(n_hit), where=n_gold > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(prec), where=(prec + rec) > 0)
    return np.where((n_gold == 0) & (n_pred == 0), 1.0, f1)


def ci95(replicates: Sequence[float] | np.ndarray) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of bootstrap replicates (a percentile interval)."""
    r = np.asarray(replicates, dtype=float)
    if not r.size:
        return None
    lo, hi = np.percentile(r, [2.5, 97.5])
    return [float(lo), float(hi)]


def mean_replicates(arrays: Sequence[Sequence[float] | None]) -> np.ndarray | None:
    """Replicates of a mean over datasets (or seeds): the element-wise mean; None if any is missing."""
    if not arrays or any(a is None for a in arrays):
        return None
    return np.mean([np.asarray(a, dtype=float) for a in arrays], axis=0)
