"""The measurement scripts in benchmarks/ run through the public API and measure what they say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_label_order_now_never_changes_an_answer(smollm2_path, tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("The battery died after a day.\nPlease sign the timesheet by Friday.\nWIN a FREE phone now!!!\n")
    rows = load("label_order").main(["-m", str(smollm2_path), "--texts", str(texts)])
    assert [(r["labels"], r["prompt"]) for r in rows] == [("urgent,routine,spam", "before"), ("urgent,routine,spam", "now"),
                                                         ("negative,neutral,positive", "before"),
                                                         ("negative,neutral,positive", "now")]
    assert all(r["of"] == 15 for r in rows)  # 3 texts x 5 orders besides the first
    assert all(r["differ"] == 0 and r["max_prob_diff"] == 0 for r in rows if r["prompt"] == "now")
    assert any(r["max_prob_diff"] > 0 for r in rows if r["prompt"] == "before")  # the old prompt did depend on it
    assert "labels differ from the first order" in capsys.readouterr().out


def test_first_row_arrives_before_the_run_ends(smollm2_path, tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("".join(f"Review number {i}: the food was {'good' if i % 2 else 'cold'}.\n" for i in range(20)))
    r = load("first_row").measure(str(texts), str(smollm2_path))
    assert r["rows"] == 20 and r["first_s"] <= r["ninth_s"] <= r["last_s"] <= r["exit_s"]
    assert r["first_s"] < r["last_s"]  # the first batch reached the pipe while the run went on
