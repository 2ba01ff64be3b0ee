"""Merge cell files into results.json, a Markdown report (results.md) and the trade-off plots.

Only cells whose cache key matches the run's (same files, protocol and settings) are merged, so
an output directory can hold older cells without mixing them in. Per model: each dataset's score
(mean over seeds, spread, and a 95% bootstrap interval), category and overall averages with
their own intervals (the mean of the datasets' paired bootstrap replicates), the format-error
rate of the fine-grained sets, the robustness columns, and the cost (size on disk, fit time for
trained baselines, load time, peak RSS, examples/s over all cells, median ms per example).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Sequence

from ..jsonl import write_json
from ..sentibench import CATEGORIES, DATASETS
from .datasets import select_datasets
from .metrics import category_averages, ci95, mean_replicates, spread

DEMO_MODE_TEXT = {
    "fixed": "fixed (one demonstration draw per dataset and seed, evaluated once as a cached prefix)",
    "per-example": "per-example (fresh demonstrations for every test item, the paper's protocol)",
}
PROTOCOL_TEXT = {
    "shipped": ("**shipped**: what `senti-edge analyze` does by default (zero-shot prompt from the runtime's task "
                "table, contextual calibration, the model's registry files; P-Stance with one Analyzer per target; "
                "the fine-grained sets through the `aspects` task mapped onto each dataset's tuples)"),
    "paper": "**paper**: {shots}-shot prompts, raw arg-max over the dataset's label words, no calibration",
}


def ci_text(ci) -> str:
    return f" ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})" if ci else ""


def summarize_model(uid: str, name: str, kind: str, cells: list[dict], datasets: Sequence[str]) -> dict:
    """Scores with intervals, robustness and cost of one model from its cells."""
    robust = next((c for c in cells if c["dataset"] == "robustness"), None)
    cells = [c for c in cells if c["dataset"] != "robustness"]
    scores, extra, reps = {}, {}, {}
    for d in datasets:
        mine = [c for c in cells if c["dataset"] == d]
        if not mine:
            continue
        reps[d] = mean_replicates([c["metrics"].get("bootstrap") for c in mine])
        scores[d] = {**spread([c["metrics"]["score"] for c in mine]), "ci95": ci95(reps[d]) if reps[d] is not None else None}
        m = mine[0]["metrics"]
        if "accuracy" in m:
            extra[d] = {"accuracy": spread([c["metrics"]["accuracy"] for c in mine])["mean"],
                        "recall": {lab: statistics.fmean(c["metrics"]["recall"][lab] for c in mine)
                                   for lab in m.get("recall", {})},
                        "ece": spread([c["metrics"].get("ece") for c in mine])["mean"]}
        else:
            extra[d] = {"format_error_rate": spread([c["metrics"]["format_error_rate"] for c in mine])["mean"],
                        "precision": spread([c["metrics"]["precision"] for c in mine])["mean"],
                        "recall": spread([c["metrics"]["recall"] for c in mine])["mean"]}
    cats = {d: DATASETS[d].category for d in datasets}
    averages = category_averages({d: s["mean"] for d, s in scores.items()}, cats)
    groups = {cat: [d for d in datasets if cats[d] == cat] for cat in dict.fromkeys(cats.values())}
    groups["classification"] = [d for d in datasets if cats[d] != "fine-grained"]
    groups["overall"] = list(datasets)
    average_ci = {}
    for group, members in groups.items():
        r = mean_replicates([reps.get(d) for d in members]) if members else None
        average_ci[group] = ci95(r) if r is not None else None
    fsa = [extra[d]["format_error_rate"] for d in extra if "format_error_rate" in extra[d]]
    ms = [p["ms"] for c in cells for p in c["predictions"] if "ms" in p]
    n = sum(c["n"] for c in cells)
    eval_s = sum(c["cost"]["eval_s"] for c in cells)
    info = dict(cells[-1]["model_info"]) if cells else {}
    # a baseline's fitted size, else the files a cell loaded: the largest (a task adapter included)
    sizes = [b for c in cells if (b := c["cost"].get("size_bytes") or c["model_info"].get("size_bytes"))]
    fits = [c["cost"].get("fit_s") for c in cells if c["cost"].get("fit_s") is not None]
    cost = {
        "size_bytes": max(sizes, default=None), "load_s": info.get("load_s"),
        "fit_s": sum(fits) if fits else None,
        "peak_rss_mb": max((c["cost"]["peak_rss_mb"] for c in cells), default=None),
        "prompt_tokens": sum(c["cost"].get("prompt_tokens", 0) for c in cells),
        "examples": n, "eval_s": eval_s, "examples_per_s": n / eval_s if eval_s > 0 else None,
        "ms_per_example_median": statistics.median(ms) if ms else None,
        "truncated": sum(c["cost"].get("truncated", 0) for c in cells),
    }
    return {"id": uid, "name": name, "kind": kind, "label": _label(info, name), "quant": info.get("quant", ""),
            "info": info, "scores": scores, "details": extra, "averages": averages, "averages_ci95": average_ci,
            "format_error_rate": statistics.fmean(fsa) if fsa else None, "cost": cost,
            "robustness": ({k: v for k, v in robust["robustness"].items() if k != "perturbations"}
                           | {"eval_s": robust["cost"]["eval_s"]}) if robust else None}


def _label(info: dict, name: str) -> str:
    q = info.get("quant")
    base = info.get("name") or name
    return f"{base} {q}" if q and q.lower() not in base.lower() else base


def write_reports(out_dir: Path, cfg, machine: dict, units, cells: list[dict], wall_s: float | None = None) -> dict:
    """Write results.json, results.md and the plots from the units' current `cells`; return the merged results.

    `wall_s` is this invocation's wall time; `compute_s` sums, over all merged cells, evaluation
    time plus one load per model, so it also counts cells finished by earlier (resumed) runs.
    """
    from .plots import plot_tradeoffs

    out_dir = Path(out_dir)
    datasets = [d.name for d in select_datasets(cfg.datasets)]
    models = [summarize_model(u.id, u.spec, u.kind, [c for c in cells if c["model_id"] == u.id], datasets)
              for u in units]
    missing = sum(len(u.cells) for u in units) - len(cells)
    results = {
        "config": cfg.to_dict(), "protocol": cfg.protocol, "machine": machine,
        "demo_mode": cfg.demos, "datasets": [{"name": d, "category": DATASETS[d].category,
                                               "metric": "micro_f1" if DATASETS[d].generative else "macro_f1"}
                                              for d in datasets],
        "models": models, "missing_cells": missing, "wall_s": wall_s,
        "compute_s": sum(m["cost"]["eval_s"] + (m["cost"]["load_s"] or 0) + (m["cost"]["fit_s"] or 0)
                         + ((m["robustness"] or {}).get("eval_s") or 0) for m in models),
        "cells": [{k: v for k, v in c.items() if k not in ("predictions", "machine")}
                  | ({"metrics": {k: v for k, v in c["metrics"].items() if k != "bootstrap"}} if "metrics" in c else {})
                  for c in cells],
    }
    write_json(out_dir / "results.json", results)
    (out_dir / "results.md").write_text(markdown_table(results), encoding="utf-8")
    results["plots"] = plot_tradeoffs(models, out_dir)
    return results


def pct(x: float | None, std: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" + (f" ± {100 * std:.1f}" if std else "")


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def markdown_table(results: dict) -> str:
    cfg, machine = results["config"], results["machine"]
    datasets = [d["name"] for d in results["datasets"]]
    cats = list(dict.fromkeys(d["category"] for d in results["datasets"]))
    groups = cats + (["classification", "overall"] if len(cats) > 1 else [])
    names = {c: CATEGORIES[c].split(" (")[1][:-1] + " avg" for c in cats} | {"classification": "cls avg",
                                                                            "overall": "overall"}
    head = ["model"] + datasets + [names[g] for g in groups]
    quality = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chead = ["model", "size MB", "fit s", "load s", "peak RSS MB", "examples/s", "ms/example", "FSA format errors %",
             "distractor flips %", "injection flips %", "injected label taken %"]
    cost = ["| " + " | ".join(chead) + " |", "|" + "---|" * len(chead)]
    for m in results["models"]:
        row = [m["label"]]
        for d in datasets:
            s = m["scores"].get(d)
            row.append(pct(s["mean"], s["std"]) + ci_text(s.get("ci95")) if s else "-")
        row += [pct(m["averages"].get(g)) + (ci_text(m["averages_ci95"].get(g)) if m["averages"].get(g) is not None else "")
                for g in groups]
        quality.append("| " + " | ".join(row) + " |")
        c, r = m["cost"], m.get("robustness") or {}
        cost.append("| " + " | ".join([
            m["label"], _num(c["size_bytes"] / 1e6, ".1f") if c["size_bytes"] else "-",
            _num(c.get("fit_s"), ".1f"), _num(c["load_s"] or None, ".2f"), _num(c["peak_rss_mb"], ".0f"),
            _num(c["examples_per_s"], ".1f"), _num(c["ms_per_example_median"], ".2f"), pct(m["format_error_rate"]),
            pct(r.get("distractor_flip_rate")), pct(r.get("injection_flip_rate")), pct(r.get("injection_to_target")),
        ]) + " |")
    return "\n".join(["# SentiBench results", "", f"Protocol: {_protocol(cfg)}.", "", *quality, "", *cost, "",
                      *calibration_tables(results), *[f"- {n}" for n in _notes(results, cfg, machine)], ""])


def calibration_tables(results: dict) -> list[str]:
    """Per classification set: each model's expected calibration error (where its predictions carry
    label probabilities) and its recall per label, the two things a macro-F1 can hide."""
    sets = [d["name"] for d in results["datasets"] if d["metric"] == "macro_f1"]
    if not sets:
        return []
    ece_rows = ["| model | " + " | ".join(sets) + " |", "|" + "---|" * (len(sets) + 1)]
    recall_rows = ["| model | " + " | ".join(f"{d} ({'/'.join(DATASETS[d].labels)})" for d in sets) + " |",
                   "|" + "---|" * (len(sets) + 1)]
    for m in results["models"]:
        det = [m["details"].get(d, {}) for d in sets]
        if any(x.get("ece") is not None for x in det):
            ece_rows.append(f"| {m['label']} | " + " | ".join(_num(x.get("ece"), ".3f") for x in det) + " |")
        recall_rows.append(f"| {m['label']} | " + " | ".join(
            "/".join(f"{100 * x['recall'][lab]:.0f}" if lab in x.get("recall", {}) else "-" for lab in DATASETS[d].labels)
            if x else "-" for d, x in zip(sets, det)) + " |")
    return ["Expected calibration error of the predicted label's confidence (10 equal-width bins; models whose "
            "predictions carry label probabilities):", "", *ece_rows, "",
            "Recall per label x100, in the order the header gives:", "", *recall_rows, ""]


def _protocol(cfg: dict) -> str:
    text = PROTOCOL_TEXT[cfg["protocol"]].format(shots=cfg["shots"])
    if cfg["protocol"] == "paper":
        text += f"; demonstration mode {DEMO_MODE_TEXT[cfg['demos']]}"
    return text


def _notes(results: dict, cfg: dict, machine: dict) -> list[str]:
    limit = f"first {cfg['limit']} items per dataset" if cfg["limit"] else "all items"
    seeds = (f"seeds {', '.join(str(s) for s in cfg['seeds'])} (± sample std over seeds when more than one)"
             if cfg["protocol"] == "paper" else "zero-shot, so no seeds")
    cut = ("`analyze`'s answers always parse; one cut off by the token budget is a format error and scores the "
           "tuples it had finished" if cfg["protocol"] == "shipped" else "a malformed answer is a format error and "
           "scores as empty")
    notes = [
        f"SentiBench `{cfg['split']}` split, {limit}; {seeds}. Baselines (majority, VADER, and the classifiers "
        "trained on each dataset's train split: TF-IDF + logistic regression, all-MiniLM-L6-v2 embeddings + "
        "logistic regression) do not depend on the protocol.",
        "Scores x100: macro-F1 over the dataset's labels for classification, micro-F1 over exact tuples for the "
        f"fine-grained sets ({cut}). In brackets: the 95% bootstrap "
        "interval (1000 resamples of the items, percentile method); for averages, the interval of the mean over "
        "the datasets' paired resamples. '-' where a model does not apply.",
        "Cost: size on disk (model file + adapter; for trained baselines the largest pickled classifier plus the "
        "encoder files); fit s: training time summed over datasets; examples/s over all cells of the model.",
        (f"Robustness on the first {cfg['robust_n']} `{cfg['robust_dataset']}` {cfg['split']} sentences: the share of "
         "labels that change when a harmless distractor sentence is appended (3 kinds), or an injected instruction "
         "(4 kinds, each asking once for positive and once for negative); 'injected label taken' is, among texts "
         "not already so labelled, the share moved to the label the injection asked for."
         if cfg["robust_n"] else "Robustness columns: not measured in this run (--robust-n 0)."),
    ]
    widths = [s["ci95"][1] - s["ci95"][0] for m in results["models"] for s in m["scores"].values() if s.get("ci95")]
    if widths:
        notes.append(f"Interval widths: median {100 * statistics.median(widths):.1f} points per dataset cell "
                     f"(widest {100 * max(widths):.1f}); differences smaller than that are not results"
                     + (", and `--limit` makes them wider" if cfg["limit"] else "") + ".")
    if cfg["protocol"] == "shipped":
        notes.append("Shipped on P-Stance: the runtime's stance task also offers `none`; a `none` prediction counts "
                     "as wrong (macro-F1 stays over against and favor). On OpeNER the runtime's aspects objects have "
                     "no holder, so every predicted holder is NULL (49 of the 400 val opinions name one).")
    notes.append(f"Machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, llama.cpp threads "
                 f"{machine['n_threads'] or 'auto (free cores)'}; llama-cpp-python {machine['llama_cpp_python']}.")
    wall = (f"this invocation took {results['wall_s'] / 60:.1f} min wall time" if results.get("wall_s") is not None
            else "these reports were rebuilt from the cells (--report-only)")
    notes.append(f"Time: {results['compute_s'] / 60:.1f} min of evaluation, fitting and model loading in all; {wall}.")
    if results.get("missing_cells"):
        notes.append(f"**Incomplete: {results['missing_cells']} cells not yet run.**")
    return notes
