"""Quality against cost: two PNGs with one point per model (and quantization), Pareto front marked.

`pareto_front` is plain Python (tested without matplotlib): a point is on the front when no other
point is at least as cheap and at least as good and strictly better in one of the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

PLOTS = {
    "quality_vs_ms.png": ("ms_per_example_median", "median ms per example (log scale)"),
    "quality_vs_size.png": ("size_bytes", "file size on disk, MB (log scale)"),
}


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, quality) that no other point dominates, by increasing cost."""
    front = []
    for i, (c, q) in enumerate(points):
        dominated = any((c2 <= c and q2 >= q) and (c2 < c or q2 > q) for j, (c2, q2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def plot_tradeoffs(models: Sequence[dict], out_dir: Path) -> list[str]:
    """Write the plots for models with a classification average and a positive cost (so the
    trained baselines, which have no fine-grained scores, stand on the same axes); return the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for fname, (key, xlabel) in PLOTS.items():
        pts, labels = [], []
        for m in models:
            q, x = m["averages"].get("classification"), m["cost"].get(key)
            if q is None or not x or x <= 0:
                continue
            pts.append((x / 1e6 if key == "size_bytes" else x, 100 * q))
            labels.append(m["label"])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        if pts:
            front = pareto_front(pts)
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], color="tab:blue", zorder=3)
            for (x, y), lab in zip(pts, labels):
                ax.annotate(lab, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
            fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
            ax.step(fx, fy, where="post", color="tab:red", linestyle="--", label="Pareto front")
            ax.scatter(fx, fy, facecolors="none", edgecolors="tab:red", s=140, zorder=4)
            ax.set_xscale("log")
            ax.legend(loc="lower right")
        else:
            ax.text(0.5, 0.5, "no model with a classification average and a cost", ha="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("classification average x100 (macro-F1)")
        ax.set_title("SentiBench: quality against " + ("latency" if key.startswith("ms") else "size"))
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / fname, dpi=120)
        plt.close(fig)
        written.append(fname)
    return written
