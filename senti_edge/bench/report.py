"""Merge cell files into results.json, a Markdown table (results.md) and the trade-off plots.

Only cells that match the run's settings, models, datasets and seeds are merged, so an output
directory can hold older cells without mixing them in. Per model: each dataset's score as mean
and spread over seeds, category and overall averages (`metrics.category_averages`), the
format-error rate of the fine-grained sets, and the cost (size on disk, load time, peak RSS,
prompt tokens, examples/s over all cells, median ms per example over all items).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Sequence

from ..jsonl import write_json
from .datasets import CATEGORIES, DATASETS, select_datasets
from .metrics import category_averages, spread

DEMO_MODE_TEXT = {
    "fixed": "fixed (one demonstration draw per dataset and seed, evaluated once as a cached prefix)",
    "per-example": "per-example (fresh demonstrations for every test item, the paper's protocol)",
}


def load_cells(out_dir: Path, cfg, model_ids: Sequence[tuple[str, str, str]]) -> list[dict]:
    """The cell files of this run, predictions included."""
    from .runner import cell_path

    settings = cfg.settings()
    cells = []
    for _, _, uid in model_ids:
        for d in select_datasets(cfg.datasets):
            for seed in cfg.seeds:
                path = cell_path(out_dir, uid, d.name, seed)
                if not path.exists():
                    continue
                with open(path, encoding="utf-8") as fh:
                    cell = json.load(fh)
                if cell.get("settings") == settings:
                    cells.append(cell)
    return cells


def summarize_model(uid: str, name: str, kind: str, cells: list[dict], datasets: Sequence[str]) -> dict:
    """Scores and cost of one model from its cells."""
    scores, extra = {}, {}
    for d in datasets:
        mine = [c for c in cells if c["dataset"] == d]
        if not mine:
            continue
        scores[d] = spread([c["metrics"]["score"] for c in mine])
        m = mine[0]["metrics"]
        if "accuracy" in m:
            extra[d] = {"accuracy": spread([c["metrics"]["accuracy"] for c in mine])["mean"]}
        else:
            extra[d] = {"format_error_rate": spread([c["metrics"]["format_error_rate"] for c in mine])["mean"],
                        "precision": spread([c["metrics"]["precision"] for c in mine])["mean"],
                        "recall": spread([c["metrics"]["recall"] for c in mine])["mean"]}
    cats = {d: DATASETS[d].category for d in datasets}
    averages = category_averages({d: s["mean"] for d, s in scores.items()}, cats)
    fsa = [extra[d]["format_error_rate"] for d in extra if "format_error_rate" in extra[d]]
    ms = [p["ms"] for c in cells for p in c["predictions"] if "ms" in p]
    n = sum(c["n"] for c in cells)
    eval_s = sum(c["cost"]["eval_s"] for c in cells)
    info = dict(cells[-1]["model_info"]) if cells else {}
    cost = {
        "size_bytes": info.get("size_bytes"), "load_s": info.get("load_s"),
        "peak_rss_mb": max((c["cost"]["peak_rss_mb"] for c in cells), default=None),
        "prompt_tokens": sum(c["cost"]["prompt_tokens"] for c in cells),
        "examples": n, "eval_s": eval_s, "examples_per_s": n / eval_s if eval_s > 0 else None,
        "ms_per_example_median": statistics.median(ms) if ms else None,
        "truncated": sum(c["cost"].get("truncated", 0) for c in cells),
    }
    return {"id": uid, "name": name, "kind": kind, "label": _label(info, name), "quant": info.get("quant", ""),
            "info": info, "scores": scores, "details": extra, "averages": averages,
            "format_error_rate": statistics.fmean(fsa) if fsa else None, "cost": cost}


def _label(info: dict, name: str) -> str:
    q = info.get("quant")
    base = info.get("name") or name
    return f"{base} {q}" if q and q.lower() not in base.lower() else base


def write_reports(out_dir: Path, cfg, machine: dict, wall_s: float | None = None) -> dict:
    """Write results.json, results.md and the plots from the cells on disk; return the merged results.

    `wall_s` is this invocation's wall time; `compute_s` sums, over all merged cells, evaluation
    time plus one load per model, so it also counts cells finished by earlier (resumed) runs.
    """
    from .plots import plot_tradeoffs
    from .runner import plan, slug

    out_dir = Path(out_dir)
    datasets = [d.name for d in select_datasets(cfg.datasets)]
    units = [(n, "model", slug(n)) for n in cfg.models] + [(n, "baseline", f"baseline-{n}") for n in cfg.baselines]
    cells = load_cells(out_dir, cfg, units)
    models = [summarize_model(uid, name, kind, [c for c in cells if c["model_id"] == uid], datasets)
              for name, kind, uid in units]
    missing = sum(len(u.cells) for u in plan(cfg))
    results = {
        "config": cfg.to_dict(), "settings": cfg.settings(), "machine": machine,
        "demo_mode": cfg.demos, "datasets": [{"name": d, "category": DATASETS[d].category,
                                               "metric": "micro_f1" if DATASETS[d].generative else "macro_f1"}
                                              for d in datasets],
        "models": models, "missing_cells": missing, "wall_s": wall_s,
        "compute_s": sum(m["cost"]["eval_s"] + (m["cost"]["load_s"] or 0) for m in models),
        "cells": [{k: v for k, v in c.items() if k not in ("predictions", "machine")} for c in cells],
    }
    write_json(out_dir / "results.json", results)
    (out_dir / "results.md").write_text(markdown_table(results), encoding="utf-8")
    results["plots"] = plot_tradeoffs(models, out_dir)
    return results


def pct(x: float | None, std: float | None = None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" + (f" ± {100 * std:.1f}" if std else "")


def markdown_table(results: dict) -> str:
    cfg, machine = results["config"], results["machine"]
    datasets = [d["name"] for d in results["datasets"]]
    cats = list(dict.fromkeys(d["category"] for d in results["datasets"]))
    head = (["model"] + datasets + [f"{CATEGORIES[c].split(' (')[1][:-1]} avg" for c in cats]
            + ["cls avg", "overall", "FSA format errors %", "size MB", "load s", "peak RSS MB", "examples/s", "ms/example"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in results["models"]:
        c = m["cost"]
        row = [m["label"]]
        row += [pct(m["scores"][d]["mean"], m["scores"][d]["std"]) if d in m["scores"] else "-" for d in datasets]
        row += [pct(m["averages"].get(cat)) for cat in cats]
        row += [pct(m["averages"].get("classification")), pct(m["averages"].get("overall"))]
        row += [pct(m["format_error_rate"]),
                f"{c['size_bytes'] / 1e6:.1f}" if c["size_bytes"] else "-",
                f"{c['load_s']:.2f}" if c["load_s"] else "-",
                f"{c['peak_rss_mb']:.0f}" if c["peak_rss_mb"] else "-",
                f"{c['examples_per_s']:.1f}" if c["examples_per_s"] else "-",
                f"{c['ms_per_example_median']:.1f}" if c["ms_per_example_median"] is not None else "-"]
        lines.append("| " + " | ".join(row) + " |")
    limit = f"first {cfg['limit']} items per dataset" if cfg["limit"] else "all items"
    seeds = ", ".join(str(s) for s in cfg["seeds"])
    notes = [
        f"SentiBench `{cfg['split']}` split, {limit}; {cfg['shots']}-shot; seeds {seeds} (mean ± sample std "
        "over seeds when more than one).",
        f"Demonstration mode: {DEMO_MODE_TEXT[cfg['demos']]}.",
        "Scores x100: macro-F1 for classification (label-word logits), micro-F1 over exact tuples for the "
        f"fine-grained sets (greedy generation, at most {cfg['max_tokens']} tokens, grammar "
        f"{'on' if cfg['grammar'] else 'off'}; a malformed answer counts as empty). Averages per category "
        "and overall are over the datasets of this run; '-' where a model does not apply.",
        f"Machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, llama.cpp threads "
        f"{machine['n_threads'] or 'auto (free cores)'}; llama-cpp-python {machine['llama_cpp_python']}.",
    ]
    notes.append(f"Time: {results['compute_s'] / 60:.1f} min of evaluation and model loading in all; "
                 f"this invocation took {(results.get('wall_s') or 0) / 60:.1f} min wall time.")
    if results.get("missing_cells"):
        notes.append(f"**Incomplete: {results['missing_cells']} cells not yet run.**")
    return "\n".join(["# SentiBench results", "", *lines, "", *[f"- {n}" for n in notes], ""])
