"""End to end with the real SmolLM2 GGUF on small slices of the real SentiBench val split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from senti_edge.bench import runner
from senti_edge.bench.runner import BenchConfig, run_bench
from senti_edge.sentibench import DATASETS, load_split

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.sentibench]


def _cell(out, model_id, dataset, seed=42, protocol="paper"):
    return json.loads(runner.cell_path(out, model_id, dataset, seed if protocol == "paper" else None, protocol).read_text())


def test_fixed_mode_all_kinds_then_resume(smollm2_path, sentibench_dir, tmp_path, engine, monkeypatch):
    out = tmp_path / "out"
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=out, models=(str(smollm2_path),), baselines=("majority",),
                      datasets=("sst2", "pstance", "atsa_rest16", "opener"), limit=4, n_threads=1, max_tokens=60,
                      protocol="paper", robust_n=3)
    res = run_bench(cfg, progress=False)
    mid = runner.slug(str(smollm2_path))
    model = res["models"][0]
    assert model["quant"] == "Q4_1" and "Q4_1" in model["label"]
    cost = model["cost"]
    assert cost["size_bytes"] == smollm2_path.stat().st_size
    assert cost["load_s"] > 0 and cost["peak_rss_mb"] > 50 and cost["prompt_tokens"] > 100
    assert cost["examples"] == 16 and cost["examples_per_s"] > 0 and cost["ms_per_example_median"] > 0
    assert set(model["scores"]) == {"sst2", "pstance", "atsa_rest16", "opener"}
    assert model["averages"]["overall"] is not None and model["format_error_rate"] is not None

    sst2 = _cell(out, mid, "sst2")
    assert sst2["n"] == 4 and len(sst2["demos"]) == 4 and sst2["settings"]["demos"] == "fixed"
    assert all(p["pred"] in DATASETS["sst2"].labels and len(p["logits"]) == 2 for p in sst2["predictions"])
    # the runner's scores are the runtime scorer's: recompute one with the shared engine
    from senti_edge.runtime.prompts import Example, build_prefix, build_query
    from senti_edge.bench.datasets import instruction
    from senti_edge.runtime.tasks import Task

    spec = DATASETS["pstance"]
    train = load_split(sentibench_dir, spec, "train")
    test = load_split(sentibench_dir, spec, "val", limit=4)
    cell = _cell(out, mid, "pstance")
    task = Task(spec.name, spec.labels, instruction(spec), needs_target=True)
    assert instruction(spec) == "Classify the stance of each sentence towards its target as one of: {labels}."
    prefix = build_prefix(task, [Example(*train[i][1:]) for i in cell["demos"]])
    logits = engine.score(prefix, [build_query(task, test[2].text, test[2].target)], engine.label_token_ids(spec.labels))
    # batch shape and thread count move logits slightly (see shared/models.md), so compare with a tolerance
    np.testing.assert_allclose(logits[0], cell["predictions"][2]["logits"], atol=0.5)

    for name in ("atsa_rest16", "opener"):
        cell = _cell(out, mid, name)
        assert cell["metrics"]["format_errors"] == sum(p["format_error"] for p in cell["predictions"])
        for p in cell["predictions"]:
            assert isinstance(p["output"], str) and (p["pred"] is None) == p["format_error"]

    # resume: every cell is on disk, so no model is loaded and the cell files stay untouched
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")}

    def no_load(*a, **k):
        raise AssertionError("a finished model was loaded again")

    monkeypatch.setattr(runner, "_open_model", no_load)
    again = run_bench(cfg, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.json")} == before
    assert again["models"][0]["scores"] == model["scores"]


def test_resume_after_interruption(smollm2_path, sentibench_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=out, models=(str(smollm2_path),),
                      datasets=("sst2", "irony18"), limit=2, n_threads=1, protocol="paper", robust_n=0)
    from senti_edge.bench.protocols import Paper

    real = Paper.classify

    def crash_on_irony(self, spec, *a, **k):
        if spec.name == "irony18":
            raise KeyboardInterrupt
        return real(self, spec, *a, **k)

    monkeypatch.setattr(Paper, "classify", crash_on_irony)
    with pytest.raises(KeyboardInterrupt):
        run_bench(cfg, progress=False)
    mid = runner.slug(str(smollm2_path))
    done = sorted(p.name for p in (out / "cells" / mid / "paper").iterdir())
    assert done == ["sst2-seed42.json"]  # the finished cell was kept, no partial file left
    sst2_mtime = (out / "cells" / mid / "paper" / "sst2-seed42.json").stat().st_mtime_ns
    monkeypatch.setattr(Paper, "classify", real)
    res = run_bench(cfg, progress=False)
    assert (out / "cells" / mid / "paper" / "sst2-seed42.json").stat().st_mtime_ns == sst2_mtime
    assert res["missing_cells"] == 0 and set(res["models"][0]["scores"]) == {"sst2", "irony18"}


def test_grammar_gives_no_format_errors(smollm2_path, sentibench_dir, tmp_path):
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=tmp_path / "g", models=(str(smollm2_path),),
                      datasets=("asqp_rest16", "opener"), limit=3, n_threads=1, grammar=True, max_tokens=40,
                      protocol="paper", robust_n=0)
    res = run_bench(cfg, progress=False)
    for cell in res["cells"]:
        assert cell["metrics"]["format_errors"] == 0, cell["dataset"]
    assert res["models"][0]["format_error_rate"] == 0


def test_per_example_demos(smollm2_path, sentibench_dir, tmp_path):
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=tmp_path / "p", models=(str(smollm2_path),),
                      datasets=("sst2",), limit=3, n_threads=1, demos="per-example", shots=2, seeds=(42, 52),
                      protocol="paper", robust_n=0)
    res = run_bench(cfg, progress=False)
    cell = _cell(tmp_path / "p", runner.slug(str(smollm2_path)), "sst2", 52)
    assert len(cell["demos"]) == 3 and all(len(d) == 2 for d in cell["demos"]) and len(set(map(tuple, cell["demos"]))) == 3
    assert res["models"][0]["scores"]["sst2"]["n"] == 2
    assert "per-example" in (tmp_path / "p" / "results.md").read_text()


def test_cli_with_model(smollm2_path, sentibench_dir, tmp_path):
    from click.testing import CliRunner

    from senti_edge.cli import cli

    out = tmp_path / "c"
    r = CliRunner().invoke(cli, ["bench", "-m", str(smollm2_path), "-b", "vader", "--data-dir", str(sentibench_dir),
                                 "-d", "twitter", "--limit", "3", "--threads", "1", "--out", str(out), "--robust-n", "3"])
    assert r.exit_code == 0, r.output
    assert "| vader |" in r.output and "Q4_1" in r.output
    assert (out / "results.json").exists() and (out / "quality_vs_size.png").exists()


def test_shipped_cell_equals_analyze(smollm2_path, sentibench_dir, tmp_path):
    """A shipped cell's label distribution for a text is what `Analyzer.classify` gives for it:
    the same prompt, calibration and model file, so `bench` measures what `analyze` ships."""
    from senti_edge.runtime.analyzer import Analyzer

    out = tmp_path / "s"
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=out, models=(str(smollm2_path),),
                      datasets=("twitter", "pstance", "atsa_rest16"), limit=6, n_threads=1, robust_n=4)
    res = run_bench(cfg, progress=False)
    mid = runner.slug(str(smollm2_path))
    cell = _cell(out, mid, "twitter", protocol="shipped")
    assert cell["protocol"] == "shipped" and cell["labels"] == ["negative", "neutral", "positive"]
    texts = [it.text for it in load_split(sentibench_dir, DATASETS["twitter"], "val", limit=6)]
    with Analyzer(model=str(smollm2_path), task="polarity", n_threads=1) as az:
        # the same texts in one call, as `analyze` would read them from a file: identical numbers
        same = az.classify(texts)
        assert [p["pred"] for p in cell["predictions"]] == [r["label"] for r in same]
        for p, r in zip(cell["predictions"], same):
            assert p["probs"] == [r["probs"][lab] for lab in cell["labels"]]
        # one text alone: the engine decodes one text at a time, so its neighbours change nothing
        alone = az.classify(texts[2:3])[0]
        assert cell["predictions"][2]["probs"] == [alone["probs"][lab] for lab in cell["labels"]]
    stance = _cell(out, mid, "pstance", protocol="shipped")
    assert stance["targets"] and set(stance["labels"]) >= {"against", "favor"}
    assert stance["metrics"]["ci95"] and len(stance["metrics"]["bootstrap"]) == 1000
    atsa = _cell(out, mid, "atsa_rest16", protocol="shipped")
    assert all(isinstance(p["aspects"], list) for p in atsa["predictions"])
    rob = json.loads(runner.cell_path(out, mid, "robustness", None, "shipped").read_text())["robustness"]
    assert rob["n"] == 4 and set(rob) >= {"distractor_flip_rate", "injection_flip_rate", "injection_to_target"}
    assert res["models"][0]["robustness"]["n"] == 4


def test_shipped_opinion_lists_load_the_task_adapter_as_analyze_does(sentibench_dir, tmp_path):
    """The default applies its aspects LoRA for `-t aspects` only: the bench's aspects cells load
    it (on an engine of their own) and give exactly `analyze`'s lists, the label cells share the
    plain merged file."""
    from senti_edge.bench.protocols import Shipped
    from senti_edge.runtime.analyzer import Analyzer
    from senti_edge.runtime.fetch import is_present
    from senti_edge.runtime.registry import DEFAULT_MODEL, get_entry

    if not is_present(get_entry(DEFAULT_MODEL)) or not get_entry(DEFAULT_MODEL).task_adapters:
        pytest.skip(f"{DEFAULT_MODEL} with a task adapter is not built here; run `senti-edge models pull`")
    out = tmp_path / "s"
    cfg = BenchConfig(data_dir=sentibench_dir, out_dir=out, models=(DEFAULT_MODEL,), datasets=("atsa_rest16", "sst2"),
                      limit=3, n_threads=1, robust_n=0)
    sh = Shipped(DEFAULT_MODEL, cfg)
    try:
        assert sh.analyzer("polarity").engine is sh.engine and sh.engine.ref.adapter is None
        lists = sh.analyzer("aspects").engine
        assert lists is not sh.engine and lists.ref.adapter.name == "senti-smollm2-135m-aspects.lora.gguf"
    finally:
        sh.close()
    res = run_bench(cfg, progress=False)
    cell = _cell(out, DEFAULT_MODEL, "atsa_rest16", protocol="shipped")
    assert cell["settings"]["adapter_sha256"] == get_entry(DEFAULT_MODEL).task_adapters[0][2]
    # the cell describes and counts the engine it ran on, not the shared one
    info, plain = cell["model_info"], _cell(out, DEFAULT_MODEL, "sst2", protocol="shipped")["model_info"]
    assert Path(info["adapter"]).name == "senti-smollm2-135m-aspects.lora.gguf" and plain["adapter"] is None
    assert info["size_bytes"] == plain["size_bytes"] + Path(info["adapter"]).stat().st_size
    assert cell["cost"]["prompt_tokens"] > 0 and cell["cost"]["generated_tokens"] > 0
    assert res["models"][0]["cost"]["size_bytes"] == info["size_bytes"]  # the row: the most a task loads
    texts = [it.text for it in load_split(sentibench_dir, DATASETS["atsa_rest16"], "val", limit=3)]
    with Analyzer(model=DEFAULT_MODEL, task="aspects", n_threads=1) as az:
        assert [p["aspects"] for p in cell["predictions"]] == [r["aspects"] for r in az.extract(texts)]
