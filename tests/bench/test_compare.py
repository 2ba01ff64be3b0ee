"""The model card's summary (bench.compare, `senti-edge compare`) on a hand-made results.json."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from senti_edge.bench import compare
from senti_edge.cli import cli

DATASETS = [{"name": "sst2", "category": "basic"}, {"name": "irony18", "category": "multifaceted"},
            {"name": "opener", "category": "fine-grained"}]


def _cell(model, dataset, seed, score, n=10, eval_s=1.0, **metrics):
    return {"model_id": model, "dataset": dataset, "seed": seed, "n": n, "metrics": {"score": score, **metrics},
            "cost": {"eval_s": eval_s}}


def _results():
    cells = []
    # student: cls avg 0.6 (seed 42) and 0.8 (seed 52); 20 cls items per seed in 2 s at 1 s a cell
    for seed, (a, b) in {42: (0.5, 0.7), 52: (0.7, 0.9)}.items():
        cells += [_cell("student", "sst2", seed, a), _cell("student", "irony18", seed, b),
                  _cell("student", "opener", seed, 0.2, eval_s=50.0, format_error_rate=0.0)]
        cells += [_cell("base", "sst2", seed, 0.3), _cell("base", "irony18", seed, 0.3),
                  _cell("base", "opener", seed, 0.1, format_error_rate=0.1)]
        cells += [_cell("teacher", "sst2", seed, 0.8, eval_s=5.0), _cell("teacher", "irony18", seed, 0.8, eval_s=5.0),
                  _cell("teacher", "opener", seed, 0.4, format_error_rate=0.0)]

    def model(mid, scores, size, fer):
        return {"id": mid, "label": mid, "kind": "model", "format_error_rate": fer,
                "scores": {d: {"mean": v} for d, v in scores.items()}, "cost": {"size_bytes": size, "peak_rss_mb": size / 4e5}}

    models = [model("student", {"sst2": 0.6, "irony18": 0.8, "opener": 0.2}, 100e6, 0.0),
              model("base", {"sst2": 0.3, "irony18": 0.3, "opener": 0.1}, 90e6, 0.1),
              model("teacher", {"sst2": 0.8, "irony18": 0.8, "opener": 0.4}, 1000e6, 0.0)]
    return {"datasets": DATASETS, "models": models, "cells": cells}


def test_compare_against_teacher_and_base():
    rows = {r["id"]: r for r in compare.relative_rows(_results(), "teacher", {"student": "base"})}
    s = rows["student"]
    assert s["cls"]["mean"] == pytest.approx(0.7)            # mean of the per-seed averages 0.6 and 0.8
    assert s["cls"]["std"] == pytest.approx(0.1414, abs=1e-3)
    assert s["vs_base"] == pytest.approx(0.4)
    assert s["share_of_teacher"] == pytest.approx(0.7 / 0.8)
    assert s["cls_examples_per_s"] == pytest.approx(10.0)   # fine-grained cells' time left out
    assert s["speed_vs_teacher"] == pytest.approx(5.0)       # the teacher: 40 items in 20 s
    assert s["size_vs_teacher"] == pytest.approx(0.1)
    assert s["fine_micro_f1"] == pytest.approx(0.2)
    assert rows["base"]["vs_base"] is None
    table = compare.markdown(list(rows.values()))
    assert "| student | 70.0 ± 14.1 | +40.0 | 87.5% |" in table
    assert "| 100.0 | 250 | 10.00 | 5.0 |" in table  # size MB, peak RSS MB, cls examples/s, x teacher speed


def run(*args):
    return CliRunner().invoke(cli, ["compare", *map(str, args)])


def test_cli_errors_are_one_line(tmp_path):
    r = run(tmp_path)
    assert r.exit_code == 1 and r.output.startswith("Error: cannot read ") and "run `senti-edge bench" in r.output
    assert len(r.output.strip().splitlines()) == 1
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    r = run(tmp_path, "--teacher", "gpt")
    assert r.exit_code == 1 and "Error: " in r.output and "no model 'gpt' in this run" in r.output
    r = run(tmp_path, "--base", "student")
    assert r.exit_code == 2 and "takes STUDENT=BASE, got 'student'" in r.output  # a usage error
    r = run(tmp_path, "--teacher", "teacher", "--base", "student=base", "--json", tmp_path / "rows.json")
    assert r.exit_code == 0, r.output
    assert "| teacher |" in r.output and r.output == compare.markdown(compare.relative_rows(_results(), "teacher", {"student": "base"})) + "\n"
    assert json.loads((tmp_path / "rows.json").read_text())[0]["id"] == "student"


def test_interval_and_robustness_columns():
    res = _results()
    res["models"][0]["averages_ci95"] = {"classification": [0.55, 0.83]}
    res["models"][0]["robustness"] = {"distractor_flip_rate": 0.02, "injection_flip_rate": 0.25}
    rows = compare.relative_rows(res, "teacher", {"student": "base"})
    table = compare.markdown(rows)
    assert "| student | 70.0 ± 14.1 (55.0–83.0) |" in table
    assert table.splitlines()[2].endswith("| 2.0 / 25.0 |") and table.splitlines()[3].endswith("| - |")
