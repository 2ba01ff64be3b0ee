"""Students against their teacher and their base models, from one bench run.

`senti-edge compare results/run --teacher qwen2.5-coder-1.5b --base senti-smollm2-135m=smollm2-135m`

Reads a bench directory's results.json and cells and prints the model card's summary: the mean
macro-F1 over the classification sets (with its spread over seeds and its 95% bootstrap
interval), the gain over the base,
the share of the teacher's score, the polarity sets where VADER is the bar, the fine-grained
micro-F1 and format errors, the file size and examples/s on the classification cells against
the teacher's, and the robustness columns (distractor / injection flip rates). Every figure
comes from the cells, so the README's table is this command's output.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SentiEdgeError
from .metrics import mean_or_none, spread
from .report import ci_text, pct

POLARITY = ("sst2", "yelp2", "twitter")


def read_results(results_dir: str | Path) -> dict:
    """A bench --out directory's results.json."""
    path = Path(results_dir) / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SentiEdgeError(f"cannot read {path}: {exc}; run `senti-edge bench --out {results_dir}` first") from None


def model_rows(results: dict) -> list[dict]:
    """One summary per model of the run (baselines included), from its cells."""
    cats = {d["name"]: d["category"] for d in results["datasets"]}
    cls = [d for d, c in cats.items() if c != "fine-grained"]
    fine = [d for d, c in cats.items() if c == "fine-grained"]
    rows = []
    for m in results["models"]:
        cells = [c for c in results["cells"] if c["model_id"] == m["id"]]
        seeds = sorted({c["seed"] for c in cells})
        per_seed = [mean_or_none(next((c["metrics"]["score"] for c in cells if c["dataset"] == d and c["seed"] == s), None)
                                 for d in cls) for s in seeds]
        cls_cells = [c for c in cells if c["dataset"] in cls]
        eval_s = sum(c["cost"]["eval_s"] for c in cls_cells)
        rows.append({
            "id": m["id"], "label": m["label"], "kind": m["kind"], "seeds": seeds,
            "cls": spread(per_seed), "cls_ci95": (m.get("averages_ci95") or {}).get("classification"),
            "robustness": m.get("robustness"),
            "polarity": {d: m["scores"][d]["mean"] if d in m["scores"] else None for d in POLARITY},
            "fine_micro_f1": mean_or_none(m["scores"][d]["mean"] if d in m["scores"] else None for d in fine) if fine else None,
            "format_error_rate": m.get("format_error_rate"),
            "size_mb": m["cost"]["size_bytes"] / 1e6 if m["cost"].get("size_bytes") else None,
            "cls_examples_per_s": sum(c["n"] for c in cls_cells) / eval_s if eval_s else None,
            "peak_rss_mb": m["cost"].get("peak_rss_mb"),
        })
    return rows


def relative_rows(results: dict, teacher: str | None, bases: dict[str, str]) -> list[dict]:
    """`model_rows` plus gain over the base, share of the teacher and speed relative to it."""
    rows = model_rows(results)
    by_id = {r["id"]: r for r in rows}
    for name in [teacher, *bases, *bases.values()]:
        if name and name not in by_id:
            raise SentiEdgeError(f"no model {name!r} in this run; models: {', '.join(by_id)}")
    t = by_id.get(teacher) if teacher else None
    for r in rows:
        mean = r["cls"]["mean"]
        base = by_id.get(bases.get(r["id"], ""))
        r["vs_base"] = mean - base["cls"]["mean"] if base and mean is not None and base["cls"]["mean"] is not None else None
        r["share_of_teacher"] = mean / t["cls"]["mean"] if t and mean is not None and t["cls"]["mean"] else None
        r["speed_vs_teacher"] = (r["cls_examples_per_s"] / t["cls_examples_per_s"]
                                 if t and r["kind"] == "model" and r["cls_examples_per_s"] and t["cls_examples_per_s"] else None)
        r["size_vs_teacher"] = r["size_mb"] / t["size_mb"] if t and r["size_mb"] and t["size_mb"] else None
    return rows


def markdown(rows: list[dict]) -> str:
    head = ["model", "cls avg", "vs base", "share of teacher", "sst2 / yelp2 / twitter", "fine-grained micro-F1",
            "format errors %", "size MB", "peak RSS MB", "cls examples/s", "x teacher speed", "distractor / injection flips %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["label"],
            pct(r["cls"]["mean"], r["cls"]["std"]) + ci_text(r.get("cls_ci95")),
            "-" if r["vs_base"] is None else f"{100 * r['vs_base']:+.1f}",
            pct(r["share_of_teacher"]) + ("%" if r["share_of_teacher"] is not None else ""),
            " / ".join(pct(v) for v in r["polarity"].values()),
            pct(r["fine_micro_f1"]),
            pct(r["format_error_rate"]),
            "-" if r["size_mb"] is None else f"{r['size_mb']:.1f}",
            "-" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}",
            "-" if r["cls_examples_per_s"] is None else f"{r['cls_examples_per_s']:.2f}",
            "-" if r["speed_vs_teacher"] is None else f"{r['speed_vs_teacher']:.1f}",
            "-" if not r.get("robustness") else
            f"{pct(r['robustness']['distractor_flip_rate'])} / {pct(r['robustness']['injection_flip_rate'])}",
        ]) + " |")
    return "\n".join(lines)
