"""Fit a model's calibration per task on SentiBench train data, and choose it per task on val.

    python -m senti_edge.bench.calibrate -m senti-gemma3-270m --data-dir ../shared/sentibench \
        --out results/calibration-senti-gemma3-270m.json --stamp senti_edge/data/adapters/senti-gemma3-270m.lora.gguf

For each runtime task with a SentiBench set, the model's raw label logits (the shipped zero-shot
prompt, uncalibrated) are read on a seeded sample of `train` and on the first items of `val`.
On train it fits `scale * logits - bias` by class-balanced maximum likelihood (so no label is
favoured for being frequent in train: macro-F1 weighs labels equally). On val it measures three
choices, none, content-free (what `analyze` did before) and the fit, by macro-F1, per-label
recall and expected calibration error, and keeps the best macro-F1 per task. A fourth choice,
`head`, is a linear classifier over the next-token logits of the `--head-tokens` vocabulary words
that vary most over the train sample (the label words always among them): class-balanced
logistic regression on standardised logits, its regularisation chosen by 5-fold cross-validation
on train (macro-F1), the standardisation folded into the stored weights (`scoring.Head`); it is
kept only where it beats the best of the others by `HEAD_MARGIN` (the head reads many more
words, so it can also be moved by more of what is written around the opinion). With `--augment R`,
a share R of the train items also enter the fit and the head with a training distractor added
(`distill.consistency.distract`: harmless sentences, other texts' fragments, injected
instructions, before or after the text) and the clean text's label, so the head learns to ignore
them; the bench's robustness strings stay held back. Where the sets lack one of the task's labels
(P-Stance has no `none`), `FILL` draws its train texts from another set: general tweets that name
no target, each paired with one of the set's targets. Val is scored by macro-F1 over the set's
labels only (a prediction of the missing label counts as wrong, as in the bench); a task whose
train sample still lacks a label gets only none and content-free. The output JSON holds every measurement. With `--stamp
ADAPTER`, the choice (method, labels, scale, bias per task) is written into the GGUF LoRA
adapter's metadata, so it travels with the model: `Engine.metadata` reads it when the adapter
is applied at load time, and a merged build copies it into its own file (`fetch.build_metadata`).

With `--temperature N`, each task kept as a fit or a head then gets a temperature: about N train
items the fit never saw (another seeded sample, the fit's texts left out) are scored through the
kept calibration, and T minimises their negative log-likelihood of softmax(scores / T) (Guo et
al., 2017). Dividing by T leaves every arg-max, so labels and macro-F1 stay as they are; it only
makes the confidences mean what they say (a class-balanced, regularised head is not calibrated
on real label frequencies). The stamp folds 1/T into the stored weights, so the runtime is unchanged.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SentiEdgeError
from ..runtime import scoring
from ..sentibench import DATASETS, Item, load_split
from .metrics import ece

# Which SentiBench sets fit and judge each runtime task (P-Stance lacks the stance task's `none`).
TASK_SETS = {"polarity": ("twitter",), "binary": ("sst2", "yelp2", "imdb"), "emotion": ("tweeteval",),
             "irony": ("irony18",), "intimacy": ("intimacy",), "stance": ("pstance",)}
METHODS = ("none", "content-free", "fitted", "head")
HEAD_C = (0.001, 0.003, 0.01, 0.03, 0.1)  # inverse L2 strengths tried by cross-validation
# A head is kept only where it beats the best other choice by this much mean val macro-F1: on
# binary it won by 0.005 on 200-item sets (noise) and, on the full val split, moved sst2's
# flips under harmless sentences from 1.3% to 5.3% and under injections from 14.5% to 18.5%.
HEAD_MARGIN = 0.01
# task -> (label its sets lack, set whose train texts stand for it, paired with the task's targets)
FILL = {"stance": ("none", "twitter")}
# The arguments that change what a fit measures: a rerun resumes a file only where they all match.
FIT_SETTINGS = ("data_dir", "train", "val", "head_tokens", "head_margin", "augment", "threads", "seed")


def fit(logits: np.ndarray, gold: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, bias) minimising the class-balanced negative log-likelihood of
    softmax(scale * logits - bias); bias[0] is 0 (softmax ignores a shared shift)."""
    from scipy.optimize import minimize

    n, k = logits.shape
    counts = np.bincount(gold, minlength=k).astype(np.float64)
    w = np.where(counts[gold] > 0, 1.0 / (k * np.maximum(counts[gold], 1)), 0.0)
    w = w / w.sum()
    onehot = np.eye(k)[gold]

    def loss(theta):
        a, b = theta[0], np.concatenate([[0.0], theta[1:]])
        z = a * logits - b
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        nll = -(w * logp[np.arange(n), gold]).sum()
        g = (p - onehot) * w[:, None]  # d nll / d z
        grad_a = (g * logits).sum()
        grad_b = -g.sum(axis=0)[1:]
        return nll, np.concatenate([[grad_a], grad_b])

    res = minimize(loss, np.concatenate([[1.0], np.zeros(k - 1)]), jac=True, method="L-BFGS-B",
                   bounds=[(1e-3, 100.0)] + [(None, None)] * (k - 1))
    return float(res.x[0]), np.concatenate([[0.0], res.x[1:]])


def fit_head(features: np.ndarray, gold: np.ndarray, label_ids: Sequence[int], n_tokens: int,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(token ids, weight, bias, C) of a `scoring.Head` fitted on full-vocabulary logits
    `features` (n, n_vocab): the `n_tokens` most variable columns (label words first), standardised,
    class-balanced logistic regression with C chosen by 5-fold cross-validation on macro-F1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    var = features.var(axis=0, dtype=np.float64)  # no float64 copy of the whole matrix (2,000 x 49,152)
    var[list(label_ids)] = np.inf
    tokens = np.sort(np.argsort(-var, kind="stable")[:n_tokens])
    x = features[:, tokens].astype(np.float64)
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    search = GridSearchCV(LogisticRegression(class_weight="balanced", max_iter=5000), {"C": list(HEAD_C)},
                          scoring="f1_macro", cv=folds).fit((x - mu) / sd, gold)
    clf = search.best_estimator_
    coef, intercept = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # scikit-learn's binary form: one row for class 1 against class 0
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = coef / sd
    return tokens, weight, intercept - weight @ mu, float(clf.C)


def measure(logits: np.ndarray, gold: np.ndarray, labels: tuple[str, ...], cal: scoring.Calibration | scoring.Head | None,
            scored: Sequence[str] | None = None) -> dict:
    """Macro-F1 and recall over the `scored` labels (default: all), ECE over all."""
    from sklearn.metrics import f1_score, recall_score

    idx, probs = scoring.predict(logits, cal)
    keep = [labels.index(lab) for lab in (scored or labels)]
    recall = recall_score(gold, idx, labels=keep, average=None, zero_division=0)
    return {"macro_f1": float(f1_score(gold, idx, labels=keep, average="macro", zero_division=0)),
            "recall": {labels[k]: float(r) for k, r in zip(keep, recall)},
            "ece": ece(probs.max(axis=1), idx == gold),
            "n": int(len(gold))}


def gold_index(items, labels: Sequence[str]) -> np.ndarray:
    return np.array([labels.index(it.gold) for it in items])


def content_free_logits(az, logits: np.ndarray, items) -> np.ndarray:
    """`logits` after content-free calibration measured under each item's own prompt (its target's,
    for stance), as `analyze` computes it."""
    cals = {tg: az._content_free(tg) for tg in dict.fromkeys(it.target for it in items)}
    return np.vstack([cals[it.target].apply(row[None]) for row, it in zip(logits, items)])


def choose(mean_f1: dict[str, float], head_margin: float = HEAD_MARGIN) -> str:
    """The method with the best mean val macro-F1 (ties to the later of `METHODS`), where a head
    must beat the best of the others by `head_margin`."""
    best = max((m for m in mean_f1 if m != "head"), key=lambda m: (mean_f1[m], METHODS.index(m)))
    return "head" if "head" in mean_f1 and mean_f1["head"] >= mean_f1[best] + head_margin else best


def train_sample(task: str, labels: Sequence[str], data_dir: Path, n_train: int, seed: int,
                 augment: float = 0.0, exclude: frozenset[str] = frozenset()) -> list[Item]:
    """A seeded sample of the task's train sets (`n_train` split over them), then `FILL`'s texts
    for a label the sets lack (as many as the sample's average label has, each text naming none of
    the targets' words), then distracted copies of a share `augment` of all of them; texts in
    `exclude` are never drawn."""
    rng = random.Random(seed)
    train = []
    for name in TASK_SETS[task]:
        pool = [it for it in load_split(data_dir, DATASETS[name], "train") if it.text not in exclude]
        train += random.Random(seed).sample(pool, min(len(pool), n_train // len(TASK_SETS[task])))
    if task in FILL and FILL[task][0] not in {it.gold for it in train}:
        label, source = FILL[task]
        targets = sorted({it.target for it in train if it.target})
        names = {w.lower() for t in targets for w in re.findall(r"\w+", t)}
        pool = [it for it in load_split(data_dir, DATASETS[source], "train")
                if it.text not in exclude and not names & set(re.findall(r"\w+", it.text.lower()))]
        k = min(len(pool), len(train) // max(1, len({it.gold for it in train})))
        train += [Item(-1 - it.index, it.text, label, rng.choice(targets)) for it in rng.sample(pool, k)]
    if augment:
        from ..distill.consistency import distract

        chosen = rng.sample(train, round(augment * len(train)))
        train += [it._replace(text=distract(it.text, rng, labels, rng.choice(train).text)[0]) for it in chosen]
    return train


def calibrate_task(model: str, task: str, data_dir: Path, n_train: int, n_val: int, threads: int, seed: int,
                   head_tokens: int = 0, head_margin: float = HEAD_MARGIN, augment: float = 0.0) -> dict:
    from ..runtime.analyzer import Analyzer

    with Analyzer(model=model, task=task, calibrate=False, n_threads=threads) as az:
        labels = az.task.labels
        train = train_sample(task, labels, data_dir, n_train, seed, augment)
        val = {name: load_split(data_dir, DATASETS[name], "val", limit=n_val) for name in TASK_SETS[task]}
        with _bar(task, len(train) + sum(map(len, val.values()))) as bar:
            partial = set(labels) != {it.gold for it in train}
            tr_gold = gold_index(train, labels)
            val_gold = {name: gold_index(items, labels) for name, items in val.items()}
            vocab, head = np.arange(az.engine.n_vocab), None
            if partial:
                tr_logits = None
            elif head_tokens:  # the whole vocabulary's logits once (float16 keeps 3,000 texts near 300 MB)
                full = np.vstack([az.scores([it.text for it in train[i:i + 64]], [it.target for it in train[i:i + 64]], vocab,
                                            bar.update).astype(np.float16) for i in range(0, len(train), 64)])
                tr_logits = full[:, az.label_ids].astype(np.float64)
                tokens, weight, bias, c = fit_head(full, tr_gold, az.label_ids, head_tokens, seed)
                head = scoring.Head(tokens, weight, bias)
                del full
            else:
                tr_logits = az.label_logits([it.text for it in train], [it.target for it in train], bar.update)
            val_head, val_logits = {}, {}
            for name, items in val.items():
                if head is None:
                    val_logits[name] = az.label_logits([it.text for it in items], [it.target for it in items], bar.update)
                    continue
                # one pass per text: the head's columns hold the label words' too
                val_head[name] = az.scores([it.text for it in items], [it.target for it in items], list(head.tokens), bar.update)
                cols = [int(np.flatnonzero(head.tokens == t)[0]) for t in az.label_ids]
                val_logits[name] = val_head[name][:, cols]
            cf_logits = {name: content_free_logits(az, val_logits[name], items) for name, items in val.items()}
    results = {"none": {name: measure(lg, val_gold[name], labels, None, DATASETS[name].labels) for name, lg in val_logits.items()},
               "content-free": {name: measure(lg, val_gold[name], labels, None, DATASETS[name].labels)
                                for name, lg in cf_logits.items()}}
    scale = bias = None
    if not partial:
        scale, bias = fit(tr_logits, tr_gold)
        results["fitted"] = {name: measure(lg, val_gold[name], labels, scoring.Calibration(bias, scale), DATASETS[name].labels)
                             for name, lg in val_logits.items()}
    if head is not None:
        results["head"] = {name: measure(lg, val_gold[name], labels, head, DATASETS[name].labels)
                           for name, lg in val_head.items()}
    methods = [m for m in METHODS if m in results]
    mean_f1 = {m: float(np.mean([r["macro_f1"] for r in results[m].values()])) for m in methods}
    best = choose(mean_f1, head_margin)
    out = {"method": best, "labels": list(labels), "scale": scale, "bias": None if bias is None else [float(b) for b in bias],
           "train_items": 0 if partial else len(train), "val_mean_macro_f1": mean_f1, "val": results}
    if head is not None:  # 7 significant digits keep the file small
        out["head"] = {"tokens": [int(t) for t in head.tokens], "bias": [float(f"{b:.7g}") for b in head.bias],
                       "weight": [[float(f"{w:.7g}") for w in row] for row in head.weight], "c": c}
    return out


def _bar(desc: str, total: int):
    """A task's progress on stderr (texts, rate, ETA): a head's fit scores thousands of texts."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="text", file=sys.stderr, mininterval=5.0, dynamic_ncols=True, disable=not total)


def nll(scores: np.ndarray, gold: np.ndarray, t: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under softmax(scores / t)."""
    return float(-scoring.log_softmax(scores / t)[np.arange(len(gold)), gold].mean())


def fit_temperature(scores: np.ndarray, gold: np.ndarray) -> float:
    """The T in [0.05, 20] minimising `nll(scores, gold, T)`."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda log_t: nll(scores, gold, np.exp(log_t)),
                          bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def held_out(task: str, labels: Sequence[str], data_dir: Path, n: int, fit_settings: dict) -> list[Item]:
    """`n` train items of the task (another seed, `FILL` included), drawn from those the
    calibration file's fit (`fit_settings`: its train size, seed and augment share) never saw."""
    seed = int(fit_settings["seed"])
    seen = frozenset(it.text for it in train_sample(task, labels, data_dir, int(fit_settings["train"]), seed,
                                                    float(fit_settings["augment"])))
    return train_sample(task, labels, data_dir, n, seed + 1, exclude=seen)


def temper_task(model: str, task: str, entry: dict, data_dir: Path, n: int, fit_settings: dict, threads: int) -> dict:
    """Fit a temperature for the task's kept fit or head on held-out train items, with the
    negative log-likelihood and ECE before and after it."""
    from ..runtime.analyzer import Analyzer

    with Analyzer(model=model, task=task, calibrate=False, n_threads=threads) as az:
        labels = az.task.labels
        items = held_out(task, labels, data_dir, n, fit_settings)
        cal = scoring.from_entry(scoring.stored_entry({k: v for k, v in entry.items() if k != "temperature"}), labels)
        ids = list(cal.tokens) if isinstance(cal, scoring.Head) else az.label_ids
        with _bar(f"{task} temperature", len(items)) as bar:
            scores = cal.apply(az.scores([it.text for it in items], [it.target for it in items], ids, bar.update)) if items else None
    gold = gold_index(items, labels)
    if scores is None or len(set(gold)) < 2:
        return {"t": 1.0, "n": len(items), "n_asked": n, "note": "no held-out train items of two labels: the fit used the train split"}
    t = fit_temperature(scores, gold)

    def nll_ece(temp: float) -> tuple[float, float]:
        idx, p = scoring.predict(scores / temp)
        return nll(scores, gold, temp), ece(p.max(axis=1), idx == gold)

    (nll0, ece0), (nll1, ece1) = nll_ece(1.0), nll_ece(t)
    return {"t": round(t, 4), "n": len(items), "n_asked": n, "nll": [round(nll0, 4), round(nll1, 4)],
            "ece": [round(ece0, 4), round(ece1, 4)]}


def report(calibration: dict) -> str:
    """A markdown table of a calibration file: per task and val set, each method's macro-F1 x100,
    the one kept, and recall per label and ECE of the fit (else none) -> the kept method."""
    tempered = any("temperature" in r for r in calibration["tasks"].values())
    rows = ["| task (val set) | " + " | ".join(METHODS) + " | kept | recall, before -> kept | ECE, before -> kept |"
            + (" temperature (held-out train ECE) |" if tempered else ""),
            "|---|" + "---|" * (len(METHODS) + 3 + tempered)]
    for task, r in calibration["tasks"].items():
        kept, before = r["method"], "fitted" if "fitted" in r["val"] else "none"
        for name in r["val"][kept]:
            f1 = [f"{100 * r['val'][m][name]['macro_f1']:.1f}" if m in r["val"] else "-" for m in METHODS]
            b, k = r["val"][before][name], r["val"][kept][name]
            recall = ", ".join(f"{lab} {b['recall'][lab]:.2f} -> {k['recall'][lab]:.2f}" for lab in k["recall"])
            t = r.get("temperature")
            temp = "" if not tempered else (" - |" if not t else f" {t['t']:.2f} ({t['ece'][0]:.3f} -> {t['ece'][1]:.3f}) |"
                                            if "ece" in t else f" - ({t['note']}) |")
            rows.append(f"| {task} ({name}) | " + " | ".join(f1) + f" | {kept} | {recall} | {b['ece']:.3f} -> {k['ece']:.3f} |"
                        + temp)
    return "\n".join(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--tasks", default=",".join(TASK_SETS))
    ap.add_argument("--train", type=int, default=300, help="train items per task (split over its sets)")
    ap.add_argument("--val", type=int, default=200, help="first val items per set")
    ap.add_argument("--head-tokens", type=int, default=0,
                    help="also fit and measure a head over this many vocabulary words' logits (0: none)")
    ap.add_argument("--head-margin", type=float, default=HEAD_MARGIN,
                    help="keep a head only where its mean val macro-F1 beats the others' by this much")
    ap.add_argument("--augment", type=float, default=0.0,
                    help="share of train items also fitted with a training distractor added (0: none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--temperature", type=int, default=0, metavar="N",
                    help="then fit each kept fit's or head's temperature on about N held-out train items (0: none)")
    ap.add_argument("--stamp", type=Path, help="GGUF LoRA adapter to write the chosen calibration into (in place)")
    ap.add_argument("--method", action="append", default=[], metavar="TASK=METHOD",
                    help="keep METHOD for TASK instead of the measured best (repeatable); the file says so, and a "
                         "temperature fitted for the other method is dropped (--temperature refits it)")
    ap.add_argument("--report", action="store_true", help="print --out's table and stop (no scoring)")
    args = ap.parse_args(argv)
    if args.report:
        if not args.out.is_file():
            ap.error(f"--report: {args.out} does not exist; give the calibration file a run wrote with --out")
        print(report(json.loads(args.out.read_text("utf-8"))))
        return
    if not (args.model and args.data_dir):
        ap.error("-m/--model and --data-dir are required (except with --report)")
    if args.temperature < 0:
        ap.error(f"--temperature {args.temperature}: give a number of held-out train items, or 0 for none")
    overrides = dict(m.partition("=")[::2] for m in args.method)
    for task, method in overrides.items():
        if task not in args.tasks.split(",") or method not in METHODS:
            ap.error(f"--method {task}={method}: give one of the run's tasks ({args.tasks}) and one of {', '.join(METHODS)}")
    from ..jsonl import write_json

    if args.stamp:
        from ..runtime.engine import check_gguf

        check_gguf(args.stamp)  # before the scoring, not after it

    settings = {k: str(getattr(args, k)) for k in FIT_SETTINGS}
    out = {"model": args.model, "settings": settings, "tasks": {}}
    if args.out.exists():  # resume: keep the tasks an earlier run with the same settings finished
        try:
            old = json.loads(args.out.read_text("utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("model") == args.model and old.get("settings") == settings:
            out["tasks"] = old.get("tasks", {})
    for task in args.tasks.split(","):
        if task in out["tasks"]:
            print(f"{task}: done in {args.out}, skipped", file=sys.stderr)
            continue
        r = calibrate_task(args.model, task, args.data_dir, args.train, args.val, args.threads, args.seed,
                           args.head_tokens, args.head_margin, args.augment)
        out["tasks"][task] = r
        f1 = ", ".join(f"{m} {100 * v:.1f}" for m, v in r["val_mean_macro_f1"].items())
        print(f"{task}: {f1} -> {r['method']}", file=sys.stderr, flush=True)
        write_json(args.out, out)  # after every task, so an interrupted run keeps what it measured
    for task, method in overrides.items():
        r = out["tasks"][task]
        if method not in r["val"]:
            raise SentiEdgeError(f"--method {task}={method}: the calibration of {task} measured only "
                                 f"{', '.join(r['val'])}; rerun it with the settings that fit {method}")
        if r["method"] != method:
            r.update(method=method, chosen_by=f"--method {task}={method} (measured best: {r['method']})")
            r.pop("temperature", None)
            print(f"{task}: kept {method} (--method)", file=sys.stderr, flush=True)
            write_json(args.out, out)
    for task in args.tasks.split(",") if args.temperature else ():
        r = out["tasks"][task]
        if r["method"] not in ("head", "fitted") or r.get("temperature", {}).get("n_asked") == args.temperature:
            continue
        r["temperature"] = t = temper_task(args.model, task, r, args.data_dir, args.temperature, settings, args.threads)
        print(f"{task}: temperature {t['t']:.2f} on {t['n']} held-out train items"
              + (f", ECE {t['ece'][0]:.3f} -> {t['ece'][1]:.3f}" if "ece" in t else f" ({t['note']})"),
              file=sys.stderr, flush=True)
        write_json(args.out, out)
    if args.stamp:
        stamp(args.stamp, out)
        print(f"calibration of {len(out['tasks'])} tasks written into {args.stamp}", file=sys.stderr)


def stamp(adapter: Path, calibration: dict) -> None:
    """Write `calibration`'s choice into the adapter's metadata, replacing the file atomically."""
    from ..quantize.files import atomic_path
    from ..runtime.build import stamp_metadata

    with atomic_path(adapter) as tmp:
        stamp_metadata(adapter, tmp, {scoring.METADATA_KEY: scoring.metadata_value(calibration)})


if __name__ == "__main__":
    try:
        main()
    except SentiEdgeError as exc:
        sys.exit(f"Error: {exc}")
