"""`senti-edge bench` on tiny fixture data: baselines, outputs, resume and bad input (no model needed)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, ["bench", "--no-progress", *map(str, args)])
    return result


def test_baselines_end_to_end_and_resume(tiny_bench, tmp_path):
    out = tmp_path / "out"
    args = ["-b", "majority", "-b", "vader", "-b", "tfidf", "--data-dir", tiny_bench, "--out", out,
            "-d", "sst2,pstance,atsa_rest16"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    cells = sorted(p.relative_to(out / "cells").as_posix() for p in (out / "cells").rglob("*.json"))
    assert cells == ["baseline-majority/pstance.json", "baseline-majority/robustness.json", "baseline-majority/sst2.json",
                     "baseline-tfidf/pstance.json", "baseline-tfidf/robustness.json", "baseline-tfidf/sst2.json",
                     "baseline-vader/robustness.json", "baseline-vader/sst2.json"]
    cell = json.loads((out / "cells/baseline-majority/sst2.json").read_text())
    assert len(cell["predictions"]) == 12 and cell["predictions"][0].keys() >= {"index", "pred", "ms"}
    assert "gold" not in cell["predictions"][0]  # gold stays in the data set; cells refer to it by index
    assert cell["metrics"]["accuracy"] == pytest.approx(0.5)
    lo, hi = cell["metrics"]["ci95"]
    assert lo <= cell["metrics"]["score"] <= hi and len(cell["metrics"]["bootstrap"]) == 1000
    tfidf = json.loads((out / "cells/baseline-tfidf/sst2.json").read_text())
    assert tfidf["cost"]["fit_s"] > 0 and tfidf["cost"]["size_bytes"] > 1000 and tfidf["cost"]["peak_rss_mb"] > 10
    rob = json.loads((out / "cells/baseline-tfidf/robustness.json").read_text())["robustness"]
    assert rob["n"] == 12 and 0 <= rob["injection_flip_rate"] <= 1 and rob["distractor_flip_rate"] is not None
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "shipped" and res["machine"]["cpu"] and res["missing_cells"] == 0
    maj, vader, tf = res["models"]
    assert maj["scores"]["sst2"]["n"] == 1 and maj["averages"]["fine-grained"] is None
    assert maj["scores"]["sst2"]["ci95"] and maj["averages_ci95"]["basic"]
    assert "pstance" not in vader["scores"] and vader["averages"]["basic"] is not None
    assert tf["cost"]["fit_s"] > 0 and tf["robustness"]["n"] == 12 and "perturbations" not in tf["robustness"]
    md = (out / "results.md").read_text()
    assert "| majority |" in md and "**shipped**" in md and "95% bootstrap interval" in md and md in r.output
    assert (out / "quality_vs_ms.png").exists() and (out / "quality_vs_size.png").exists()
    assert not (out / ".bench.lock").exists()

    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}
    assert run(*args).exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")} == before  # all skipped
    assert run(*args, "--report-only").exit_code == 0
    assert "rebuilt from the cells (--report-only)" in (out / "results.md").read_text()
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")} == before
    assert run(*args, "--limit", "4").exit_code == 0  # other settings: recomputed
    cell = json.loads((out / "cells/baseline-majority/sst2.json").read_text())
    assert cell["n"] == 4 and cell["settings"]["limit"] == 4
    md = (out / "results.md").read_text()
    assert "first 4 items per dataset" in md


def _error(r) -> str:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, r.output
    return lines[0]


def test_missing_data_dir(tmp_path):
    line = _error(run("-b", "majority", "--data-dir", tmp_path / "nope", "--out", tmp_path / "o"))
    assert "data directory" in line and "nope" in line


def test_missing_split(tiny_bench, tmp_path):
    line = _error(run("-b", "majority", "--data-dir", tiny_bench, "-d", "sst2", "--split", "test", "--out", tmp_path / "o"))
    assert "sc/sst2/test.json not found" in line and "train, val" in line


def test_unknown_dataset(tiny_bench, tmp_path):
    line = _error(run("-b", "majority", "--data-dir", tiny_bench, "-d", "sst2,sst5", "--out", tmp_path / "o"))
    assert "'sst5'" in line


def test_bad_record_names_file_and_record(tiny_bench, tmp_path, write_records):
    path = write_records(tiny_bench / "sc/sst2/val.json", [{"sentence": "ok", "label": "positive"}, {"label": "negative"}])
    line = _error(run("-b", "majority", "--data-dir", tiny_bench, "-d", "sst2", "--out", tmp_path / "o"))
    assert str(path) in line and "record 1: missing field 'sentence'" in line


def test_unloadable_model(tiny_bench, tmp_path):
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"not a model at all, just some bytes")
    line = _error(run("-m", fake, "--data-dir", tiny_bench, "-d", "sst2", "--out", tmp_path / "o"))
    assert str(fake) in line and "not a GGUF file" in line
    line = _error(run("-m", tmp_path / "missing.gguf", "--data-dir", tiny_bench, "-d", "sst2", "--out", tmp_path / "o"))
    assert "missing.gguf" in line


def test_nothing_to_run_and_bad_seeds(tiny_bench, tmp_path):
    assert "nothing to run" in _error(run("--data-dir", tiny_bench, "--out", tmp_path / "o"))
    assert "zero-shot" in _error(run("-b", "majority", "--data-dir", tiny_bench, "--seeds", "1,2", "--out", tmp_path / "o"))
    assert "does not exist" in _error(run("-b", "majority", "--data-dir", tiny_bench, "--report-only",
                                          "--out", tmp_path / "none"))
    assert not (tmp_path / "o").exists() and not (tmp_path / "none").exists()
    r = run("-b", "majority", "--data-dir", tiny_bench, "--seeds", "4x", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "comma-separated integers" in r.output


def test_limit_runs_state_their_interval_width(tiny_bench, tmp_path):
    out = tmp_path / "w"
    assert run("-b", "majority", "--data-dir", tiny_bench, "--out", out, "-d", "sst2", "--limit", "6").exit_code == 0
    md = (out / "results.md").read_text()
    assert "Interval widths: median" in md and "`--limit` makes them wider" in md
