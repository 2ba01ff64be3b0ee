"""runner.py helpers that need no model: config checks, ids, planning, timing."""

from __future__ import annotations

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
])
def test_config_rejects(tmp_path, kw, match):
    with pytest.raises(SentiEdgeError, match=match):
        cfg(tmp_path, **kw)


def test_slug_and_cell_path():
    assert slug("smollm2-135m") == "smollm2-135m"
    assert slug("/models/student-Q4_0.gguf") == "student-Q4_0"
    assert slug("smollm2-135m+/tmp/ad apter.gguf") == "smollm2-135m+ad_apter"
    assert runner.cell_path(Path("o"), "m", "sst2", 42) == Path("o/cells/m/sst2-seed42.json")


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


def test_plan_skips_inapplicable_and_rejects_duplicates(tmp_path):
    units = runner.plan(cfg(tmp_path, baselines=("vader",), datasets=("sst2", "irony18", "opener")))
    assert [(d.name, s) for d, s in units[0].cells] == [("sst2", 42)]
    with pytest.raises(SentiEdgeError, match="share the results folder"):
        runner.plan(cfg(tmp_path, models=("a/m.gguf", "b/m.gguf")))


def test_timer_spreads_group_time():
    done = []
    t = Timer(done.append)
    t.done(4)
    t.done(1)
    assert len(t.ms) == 5 and done == [4, 1] and len(set(t.ms[:4])) == 1
    c = t.cost()
    assert c["examples_per_s"] > 0 and c["ms_per_example_median"] >= 0
