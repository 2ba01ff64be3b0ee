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
