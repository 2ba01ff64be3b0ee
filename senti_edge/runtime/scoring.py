"""From label-word logits to labels and confidences, in plain numpy (testable without a model).

The engine returns, for each text, the next-token logits of the first token of each label word.
The prediction is the arg-max (the paper's protocol, so output is always a valid label); the
confidence is the softmax over those label logits only.

Small models have a strong prior towards one label word whatever the text ("mostly predict one
label per set"). Contextual calibration (Zhao et al., 2021, "Calibrate before use") measures
that prior on content-free inputs ("N/A", "", "[MASK]") in the same prompt and divides it out;
it costs three extra texts per prompt and needs no labelled data. It has a blind spot: a model
reads "N/A" as neutral, so dividing that prior out removes "neutral" (15 of 20 plain facts came
out positive). So a model may carry its own per-task calibration, fitted offline on labelled
train data (`bench/calibrate.py`: a temperature and a bias per label, chosen per task against
none and content-free by measurement) and stored in its GGUF metadata under `METADATA_KEY`.

Where the label words' logits carry too little (a 135M model's "intimate" logit says little about
intimacy), a task may carry a `Head` instead: a linear classifier fitted on train data over the
model's next-token logits of a few hundred vocabulary words at the answer position. Those logits
are a linear map of the model's final hidden state, so the head is a linear probe of that state,
read from the logits llama.cpp already computes: no extra forward pass and no embedding mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

CONTENT_FREE = ("N/A", "", "[MASK]")
METADATA_KEY = "senti_edge.calibration"  # JSON: {"tasks": {task: {"method", "labels", "scale", "bias"[, "tokens", "weight"]}}}


def stored_entry(task: dict) -> dict:
    """What a model file carries for one task of a calibration file: the method and labels, and
    the fit's scale and bias, or for a head its tokens, weights and bias; a fitted temperature T is
    folded in (scores / T: weights, bias and scale divided by it, 7 significant digits)."""
    t = task.get("temperature", {}).get("t", 1.0)

    def div(x):
        return x if t == 1.0 or x is None else [div(v) for v in x] if isinstance(x, list) else float(f"{x / t:.7g}")

    if task["method"] == "head":
        head = task["head"]
        return {"method": "head", "labels": task["labels"], "scale": None, "tokens": head["tokens"],
                "weight": div(head["weight"]), "bias": div(head["bias"])}
    return {"method": task["method"], "labels": task["labels"], "scale": div(task["scale"]), "bias": div(task["bias"])}


def metadata_value(calibration: dict) -> str:
    """The `METADATA_KEY` string for a calibration file (`bench/calibrate.py`'s output); the
    measurements behind the choices stay in the file."""
    tasks = {t: stored_entry(v) for t, v in sorted(calibration["tasks"].items())}
    return json.dumps({"tasks": tasks}, sort_keys=True)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


@dataclass(frozen=True)
class Calibration:
    """Calibrated scores are `scale * logits - log_prior`: a per-label prior to divide out (and,
    when fitted, a temperature); the identity when the prior is uniform and the scale 1."""

    log_prior: np.ndarray
    scale: float = 1.0

    @classmethod
    def identity(cls, n_labels: int) -> "Calibration":
        return cls(np.zeros(n_labels))

    @classmethod
    def fitted(cls, entry: dict, labels: Sequence[str]) -> "Calibration":
        """A stored fit (`bias` in the order of `entry["labels"]`), reordered to `labels`."""
        bias = dict(zip(entry["labels"], entry["bias"]))
        return cls(np.array([float(bias[lab]) for lab in labels]), float(entry["scale"]))

    @classmethod
    def from_content_free(cls, cf_logits: np.ndarray) -> "Calibration":
        """Average the label distribution over content-free inputs; that is the prior."""
        p = softmax(np.atleast_2d(cf_logits)).mean(axis=0)
        return cls(np.log(np.clip(p, 1e-12, None)))

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated label log-scores (logits minus the log prior)."""
        return self.scale * np.asarray(logits, dtype=np.float64) - self.log_prior


@dataclass(frozen=True)
class Head:
    """A linear classifier over the next-token logits of `tokens` (the columns the engine reads for
    it): label log-scores are `features @ weight.T + bias`, one row of `weight` per label."""

    tokens: np.ndarray  # vocabulary ids, shape (m,)
    weight: np.ndarray  # (n_labels, m)
    bias: np.ndarray  # (n_labels,)

    @classmethod
    def fitted(cls, entry: dict, labels: Sequence[str]) -> "Head":
        """A stored head (rows in the order of `entry["labels"]`), reordered to `labels`."""
        rows = [entry["labels"].index(lab) for lab in labels]
        return cls(np.asarray(entry["tokens"], dtype=np.int64), np.asarray(entry["weight"], dtype=np.float64)[rows],
                   np.asarray(entry["bias"], dtype=np.float64)[rows])

    def apply(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, dtype=np.float64) @ self.weight.T + self.bias


def from_entry(entry: dict, labels: Sequence[str]) -> Calibration | Head | None:
    """A stored entry's calibration in the order of `labels`: a head, a fit, or None (method
    `none`); content-free calibration is measured by the model, not stored."""
    if entry["method"] == "head":
        return Head.fitted(entry, labels)
    if entry["method"] == "fitted":
        return Calibration.fitted(entry, labels)
    if entry["method"] == "none":
        return None
    raise ValueError(f"a {entry['method']!r} calibration is not stored as weights")


def predict(logits: np.ndarray, calibration: Calibration | Head | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (label index, label distribution) for each row of label logits."""
    logits = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    if calibration is not None:
        logits = calibration.apply(logits)
    probs = softmax(logits)
    return probs.argmax(axis=1), probs


def pool_chunks(chunk_logits: np.ndarray, head: bool = False) -> np.ndarray:
    """Pool a long text's chunks: the mean of their label log-probabilities, or for a head's
    features (raw logits, linear in the hidden state) their plain mean."""
    rows = np.atleast_2d(chunk_logits)
    return rows.mean(axis=0) if head else log_softmax(rows).mean(axis=0)
