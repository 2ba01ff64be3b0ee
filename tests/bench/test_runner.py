"""runner.py helpers that need no model: config checks, ids, planning, timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from senti_edge.bench import runner
from senti_edge.bench.runner import BenchConfig, Timer, draw, slug
from senti_edge.errors import SentiEdgeError
from senti_edge.runtime.prompts import Example, sample_demos


def cfg(tmp_path, **kw):
    base = dict(data_dir=tmp_path, out_dir=tmp_path / "out", baselines=("majority",))
    return BenchConfig(**{**base, **kw})


@pytest.mark.parametrize("kw, match", [
    (dict(demos="random"), "demos='random'"),
    (dict(shots=-1), "shots=-1"),
    (dict(limit=0), "limit=0"),
    (dict(seeds=()), "at least one seed"),
    (dict(seeds=(1, 1)), "repeat"),
    (dict(baselines=("coinflip",)), "unknown baseline 'coinflip'"),
    (dict(baselines=()), "nothing to run"),
    (dict(datasets=("sst2", "sst5")), "unknown dataset or category 'sst5'"),
    (dict(protocol="vibes"), "protocol='vibes'"),
    (dict(seeds=(1, 2)), "shipped protocol is zero-shot"),
    (dict(robust_dataset="opener"), "give a polarity set"),
    (dict(robust_n=-1), "robust_n=-1"),
])
def test_config_rejects(tmp_path, kw, match):
    with pytest.raises(SentiEdgeError, match=match):
        cfg(tmp_path, **kw)


def test_slug_and_cell_path():
    assert slug("smollm2-135m") == "smollm2-135m"
    assert slug("/models/student-Q4_0.gguf") == "student-Q4_0"
    assert slug("smollm2-135m+/tmp/ad apter.gguf") == "smollm2-135m+ad_apter"
    assert runner.cell_path(Path("o"), "m", "sst2", 42, "paper") == Path("o/cells/m/paper/sst2-seed42.json")
    assert runner.cell_path(Path("o"), "m", "sst2", None, "shipped") == Path("o/cells/m/shipped/sst2.json")
    assert runner.cell_path(Path("o"), "baseline-tfidf", "sst2") == Path("o/cells/baseline-tfidf/sst2.json")


def test_guess_quant():
    class Entry:
        quant = ""

    class Ref:
        entry = Entry()
        path = Path("/x/SmolLM2-135M-Instruct.Q4_1.gguf")

    assert runner.guess_quant(Ref) == "Q4_1"
    Ref.path = Path("/x/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert runner.guess_quant(Ref) == "Q4_K_M"
    Ref.path = Path("/x/model-f16.gguf")
    assert runner.guess_quant(Ref) == "F16"
    Ref.path = Path("/x/model.gguf")
    assert runner.guess_quant(Ref) == ""


def test_draw_matches_runtime_sampler():
    pool = [Example(f"t{i}", "positive") for i in range(50)]
    for seed in (42, 52, 62):
        assert [pool[i] for i in draw(50, 4, seed)] == sample_demos(pool, 4, seed)
    assert draw(3, 4, 1) and len(draw(3, 4, 1)) == 3 and draw(10, 0, 1) == []


def test_plan_skips_inapplicable_and_rejects_duplicates(tiny_bench, tmp_path):
    units = runner.plan(cfg(tiny_bench, baselines=("vader",), datasets=("sst2", "irony18", "opener")))
    assert [(c.spec.name, c.seed, c.robustness) for c in units[0].cells] == [("sst2", None, False), ("sst2", None, True)]
    assert units[0].cells[1].path.name == "robustness.json"
    units = runner.plan(cfg(tiny_bench, baselines=("majority",), datasets=("sst2",), robust_n=0))
    assert [c.path.name for c in units[0].cells] == ["sst2.json"]
    fake = fake_gguf(tmp_path / "a" / "m.gguf")
    fake_gguf(tmp_path / "b" / "m.gguf")
    with pytest.raises(SentiEdgeError, match="share the results folder"):
        runner.plan(cfg(tiny_bench, models=(str(fake), str(tmp_path / "b" / "m.gguf"))))


def fake_gguf(path: Path, payload: bytes = b"") -> Path:
    """A file with a plausible GGUF header: enough to resolve and hash, never loaded."""
    import struct

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + payload)
    return path


def test_cache_key_names_every_file_and_setting(tiny_bench, tmp_path):
    """A cell is reused only for the same model bytes, data bytes, protocol and n_ctx."""
    model = fake_gguf(tmp_path / "m.gguf", b"one")

    def key(**kw):
        units = runner.plan(cfg(tiny_bench, models=(str(model),), baselines=(), datasets=("sst2",), **kw))
        return units[0].cells[0].key

    k = key()
    assert k["protocol"] == "shipped" and k["n_ctx"] == 4096 and k["adapter_sha256"] is None
    assert len(k["model_sha256"]) == 64 and len(k["data_sha256"]) == 64 and "shots" not in k
    assert key(n_ctx=2048) != k
    paper = key(protocol="paper")
    assert paper["protocol"] == "paper" and paper["shots"] == 4 and "train_sha256" in paper
    fake_gguf(model, b"two")  # the model file replaced in place
    assert key()["model_sha256"] != k["model_sha256"]
    (tiny_bench / "sc/sst2/val.json").write_text('[{"sentence": "x", "label": "positive"}]')
    assert key()["data_sha256"] != k["data_sha256"]


def test_stale_cell_is_pending(tiny_bench, tmp_path):
    c = cfg(tiny_bench, datasets=("sst2",), robust_n=0)
    unit = runner.plan(c)[0]
    cell = unit.cells[0]
    cell.path.parent.mkdir(parents=True)
    cell.path.write_text(json.dumps({"settings": cell.key}))
    assert unit.pending == []
    cell.path.write_text(json.dumps({"settings": {**cell.key, "data_sha256": "0" * 64}}))
    assert unit.pending == [cell]
    cell.path.write_text("{not json")
    assert unit.pending == [cell]


def test_failed_bench_leaves_no_lock_or_empty_folder(tiny_bench, tmp_path, monkeypatch):
    out = tmp_path / "fresh"

    def boom(*a, **k):
        raise SentiEdgeError("baseline broke")

    monkeypatch.setattr(runner.bl, "fit", boom)
    with pytest.raises(SentiEdgeError, match="baseline broke"):
        runner.run_bench(cfg(tiny_bench, out_dir=out, datasets=("sst2",)), progress=False)
    assert not out.exists()
    out.mkdir()  # a folder the user made stays, but without our lock file
    with pytest.raises(SentiEdgeError):
        runner.run_bench(cfg(tiny_bench, out_dir=out, datasets=("sst2",)), progress=False)
    assert out.exists() and not (out / runner.LOCK_NAME).exists()


def test_timer_spreads_group_time():
    done = []
    t = Timer(done.append)
    t.done(4)
    t.done(1)
    assert len(t.ms) == 5 and done == [4, 1] and len(set(t.ms[:4])) == 1
    c = t.cost()
    assert c["examples_per_s"] > 0 and c["ms_per_example_median"] >= 0


def test_baseline_key_holds_its_configuration(tiny_bench, tmp_path, monkeypatch):
    def key():
        return runner.plan(cfg(tiny_bench, baselines=("tfidf",), datasets=("sst2",)))[0].cells[0].key

    k = key()
    assert "class_weight=balanced" in k["baseline_config"] and len(k["train_sha256"]) == 64 and "protocol" not in k
    monkeypatch.setitem(runner.bl.CONFIG, "tfidf", "other settings")
    assert key() != k


class _StandIn:
    """A shipped-protocol session without llama.cpp: labels by the first word, counts what it scores,
    and can be told to stop (as Ctrl-C would) after some chunks."""

    protocol = "shipped"
    scored: list[int] = []
    stop_after: int | None = None

    def __init__(self, model, cfg):
        from types import SimpleNamespace

        from senti_edge.runtime.fetch import resolve

        self.engine = SimpleNamespace(ref=resolve(model), n_threads=1, n_ctx=cfg.n_ctx, load_s=0.0,
                                      stats=SimpleNamespace(prompt_tokens=0, generated_tokens=0, truncated=0))

    def engine_for(self, spec):
        return self.engine

    def classify(self, spec, train, test, seed, timer):
        if self.stop_after is not None and len(self.scored) >= self.stop_after:
            raise KeyboardInterrupt
        _StandIn.scored = self.scored + [it.index for it in test]
        self.engine.stats.prompt_tokens += 10 * len(test)
        timer.done(len(test))
        preds = [{"index": it.index, "pred": "positive" if it.text.startswith("a great") else "negative"} for it in test]
        return preds, {"labels": list(spec.labels), "targets": []}

    def close(self):
        pass


def test_an_interrupted_model_cell_resumes_at_its_first_unfinished_chunk(tiny_bench, tmp_path, monkeypatch):
    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF toy")
    monkeypatch.setitem(runner.SESSIONS, "shipped", _StandIn)
    monkeypatch.setattr(runner, "CHUNK", 5)
    c = cfg(tiny_bench, models=(str(gguf),), baselines=(), datasets=("sst2",), robust_n=0)
    cell = runner.plan(c)[0].cells[0]
    partial = runner.partial_path(c.out_dir, cell.path)

    monkeypatch.setattr(_StandIn, "scored", [])
    monkeypatch.setattr(_StandIn, "stop_after", 10)  # two chunks of 5, then Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        runner.run_bench(c, progress=False)
    assert not cell.path.exists() and _StandIn.scored == list(range(10))
    lines = [json.loads(x) for x in partial.read_text().splitlines()]
    assert lines[0] == {"start": -1, "settings": cell.key, "chunk": 5} and [r["start"] for r in lines[1:]] == [0, 5]

    monkeypatch.setattr(_StandIn, "scored", [])
    monkeypatch.setattr(_StandIn, "stop_after", None)
    runner.run_bench(c, progress=False)
    assert _StandIn.scored == [10, 11]  # only the last chunk ran again
    done = json.loads(cell.path.read_text())
    assert [p["index"] for p in done["predictions"]] == list(range(12))
    assert done["metrics"]["macro_f1"] == 1.0 and done["cost"]["prompt_tokens"] == 120
    assert done["labels"] == list(runner.DATASETS["sst2"].labels)
    assert not partial.exists() and not (c.out_dir / "partial").exists()
    assert "Robustness columns: not measured in this run (--robust-n 0)." in (c.out_dir / "results.md").read_text()


def test_a_partial_file_of_another_key_is_not_reused(tiny_bench, tmp_path, monkeypatch):
    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF toy")
    monkeypatch.setitem(runner.SESSIONS, "shipped", _StandIn)
    monkeypatch.setattr(runner, "CHUNK", 5)
    monkeypatch.setattr(_StandIn, "scored", [])
    monkeypatch.setattr(_StandIn, "stop_after", None)
    c = cfg(tiny_bench, models=(str(gguf),), baselines=(), datasets=("sst2",), robust_n=0)
    cell = runner.plan(c)[0].cells[0]
    partial = runner.partial_path(c.out_dir, cell.path)
    stale = {"start": 0, "preds": [{"index": i, "pred": "negative", "ms": 1.0} for i in range(5)], "extra": {},
             "eval_s": 1.0, "prompt_tokens": 0, "generated_tokens": 0, "truncated": 0}
    for header in ({"start": -1, "settings": {**cell.key, "n_ctx": 1}, "chunk": 5},  # another model setting
                   {"start": -1, "settings": cell.key, "chunk": 4}):  # another chunk size: other boundaries
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(header) + "\n" + json.dumps(stale) + "\n")
        _StandIn.scored = []
        cell.path.unlink(missing_ok=True)
        runner.run_bench(c, progress=False)
        assert _StandIn.scored == list(range(12))
        assert json.loads(cell.path.read_text())["metrics"]["macro_f1"] == 1.0


def test_chunk_extras_merge_into_the_cells():
    extras = [{"labels": ["a", "b"], "targets": ["x"], "demos": [[1], [2]]}, {"labels": ["a", "b"], "targets": ["y", "x"], "demos": [[3]]}]
    assert runner._merge_extras(extras, per_item_demos=True) == {"labels": ["a", "b"], "targets": ["x", "y"], "demos": [[1], [2], [3]]}
    fixed = [{"demos": [4, 5]}, {"demos": [4, 5]}]
    assert runner._merge_extras(fixed, per_item_demos=False) == {"demos": [4, 5]}


class _Confident(_StandIn):
    """The stand-in with label probabilities: 0.9 on its first-word guess."""

    def classify(self, spec, train, test, seed, timer):
        preds, extra = super().classify(spec, train, test, seed, timer)
        for p in preds:
            p["probs"] = [0.9, 0.1] if p["pred"] == spec.labels[0] else [0.1, 0.9]
        return preds, extra


def test_ece_and_recall_per_label_reach_the_report_and_old_cells_are_scored_again(tiny_bench, tmp_path, monkeypatch):
    gguf = tmp_path / "toy.gguf"
    gguf.write_bytes(b"GGUF toy")
    monkeypatch.setitem(runner.SESSIONS, "shipped", _Confident)
    monkeypatch.setattr(_StandIn, "scored", [])
    monkeypatch.setattr(_StandIn, "stop_after", None)
    c = cfg(tiny_bench, models=(str(gguf),), baselines=("majority",), datasets=("sst2",), robust_n=0)
    runner.run_bench(c, progress=False)
    cell = runner.plan(c)[0].cells[0]
    done = json.loads(cell.path.read_text())
    assert done["metrics"]["recall"] == {"negative": 1.0, "positive": 1.0}
    assert done["metrics"]["ece"] == pytest.approx(0.1)  # always right, 90% sure

    old = {k: v for k, v in done["metrics"].items() if k not in ("recall", "ece")}  # a cell run before these metrics
    cell.path.write_text(json.dumps({**done, "metrics": old}))
    results = runner.report_only(c)
    toy, majority = results["models"]
    assert toy["details"]["sst2"]["ece"] == pytest.approx(0.1)
    assert majority["details"]["sst2"]["ece"] is None  # a baseline gives no probabilities
    assert set(majority["details"]["sst2"]["recall"].values()) == {0.0, 1.0}  # one label always
    md = (c.out_dir / "results.md").read_text()
    assert "| sst2 (negative/positive) |" in md and "| 0.100 |" in md and "| 100/100 |" in md


def test_report_only_rewrites_the_config_so_it_describes_the_reports(tiny_bench, tmp_path, monkeypatch):
    """A subset run writes its own config.json; rebuilding the reports over every model must not
    leave that subset's config beside them."""
    monkeypatch.setattr(_StandIn, "scored", [])
    monkeypatch.setattr(_StandIn, "stop_after", None)
    full = cfg(tiny_bench, baselines=("majority", "vader"), datasets=("sst2",), robust_n=0)
    runner.run_bench(full, progress=False)
    runner.run_bench(cfg(tiny_bench, baselines=("majority",), datasets=("sst2",), robust_n=0), progress=False)
    assert json.loads((full.out_dir / "config.json").read_text())["baselines"] == ["majority"]
    runner.report_only(full)
    assert json.loads((full.out_dir / "config.json").read_text())["baselines"] == ["majority", "vader"]
    assert [m["name"] for m in json.loads((full.out_dir / "results.json").read_text())["models"]][-2:] == \
        ["majority", "vader"]


def test_the_shipped_path_keys_a_cell_on_the_task_adapter_analyze_would_load(tiny_bench, tmp_path, monkeypatch):
    """A registry model may apply a LoRA for one task only (`task_adapters`): its cells of that
    task are keyed on that adapter too, so a new task adapter recomputes them and nothing else."""
    seen = []

    def files(name, task=None):
        seen.append(task)
        return {"model_sha256": "m", "adapter_sha256": "lists" if task == "aspects" else None}

    monkeypatch.setattr(runner, "model_files", files)
    keys = {c.path.stem: c.key for c in runner.plan(cfg(tiny_bench, models=("reg-model",), baselines=(),
                                                             datasets=("sst2", "atsa_rest16")))[0].cells}
    assert keys["atsa_rest16"]["adapter_sha256"] == "lists"
    assert keys["sst2"]["adapter_sha256"] is None and keys["robustness"]["adapter_sha256"] is None
    assert sorted(set(seen), key=str) == ["aspects", "binary"]
    paper = runner.plan(cfg(tiny_bench, models=("reg-model",), baselines=(), datasets=("atsa_rest16",), protocol="paper"))
    assert paper[0].cells[0].key["adapter_sha256"] is None  # the paper protocol loads the bare model file
