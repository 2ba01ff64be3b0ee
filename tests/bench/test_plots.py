"""plots.py: the Pareto front and the PNG files."""

from __future__ import annotations

from senti_edge.bench.plots import pareto_front, plot_tradeoffs


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.4), (30, 0.7), (5, 0.2), (30, 0.6), (10, 0.5)]
    # (20, 0.4) is dominated by (10, 0.5); (30, 0.6) by (30, 0.7); equal points do not dominate each other
    assert pareto_front(pts) == [3, 0, 5, 2]
    assert pareto_front([]) == []


def test_plots_written(tmp_path):
    def model(label, q, ms, size):
        return {"label": label, "averages": {"classification": q}, "cost": {"ms_per_example_median": ms, "size_bytes": size}}

    models = [model("a Q4_1", 0.3, 100, 98e6), model("b Q4_K_M", 0.5, 300, 250e6), model("vader", None, 1, 4e5),
              model("majority", 0.2, 0.01, 0)]
    names = plot_tradeoffs(models, tmp_path)
    assert names == ["quality_vs_ms.png", "quality_vs_size.png"]
    for n in names:
        assert (tmp_path / n).read_bytes()[:4] == b"\x89PNG"
