"""Provenance: what `distill train` writes into an adapter directory is what the quantize card says."""

from __future__ import annotations

import json

from senti_edge.distill.config import PROVENANCE, DistillConfig
from senti_edge.distill.pipeline import write_provenance
from senti_edge.quantize.card import _training_data


def _run_dir(tmp_path, stages=("knowdist", "icldist")) -> DistillConfig:
    cfg = DistillConfig.from_dict({"out_dir": str(tmp_path / "run"), "seed": 7, "student": "smollm2-135m",
                                   "corpus": {"sentibench_dir": "/data/sentibench", "datasets": ["sc/sst2", "st/sem16"],
                                              "files": ["mine.txt"]}})
    (tmp_path / "run").mkdir()
    for n, stage in enumerate(stages, 1):
        (tmp_path / "run" / f"{stage}.manifest.json").write_text(json.dumps(
            {"records": f"{stage}.jsonl", "teacher": "gguf:qwen2.5-coder-1.5b", "done": 100 * n, "jobs": 100 * n, "complete": True}))
    return cfg


def test_the_adapter_carries_the_config_and_both_stages_data(tmp_path):
    cfg = _run_dir(tmp_path)
    adapter = tmp_path / "run" / "icldist" / "adapter"
    adapter.mkdir(parents=True)
    path = write_provenance(adapter, cfg, "icldist")
    assert path == adapter / PROVENANCE
    prov = json.loads(path.read_text())
    assert prov["stage"] == "icldist" and DistillConfig.from_dict(prov["distill_config"]) == cfg
    assert sorted(prov["data"]) == ["icldist", "knowdist"]  # stage 2 started from stage 1 and replays it
    line = _training_data(str(adapter))
    assert "not recorded" not in line
    for part in ("knowdist 100 records from gguf:qwen2.5-coder-1.5b", "icldist 200 records",
                 "SentiBench train splits (sc/sst2, st/sem16)", "`mine.txt`", "student smollm2-135m, seed 7", str(path)):
        assert part in line, line


def test_stage_one_alone_and_an_adapter_without_provenance(tmp_path):
    cfg = _run_dir(tmp_path, stages=("knowdist",))
    adapter = tmp_path / "run" / "knowdist" / "adapter"
    adapter.mkdir(parents=True)
    write_provenance(adapter, cfg, "knowdist")
    assert list(json.loads((adapter / PROVENANCE).read_text())["data"]) == ["knowdist"]
    assert "(knowdist stage) from knowdist 100 records" in _training_data(str(adapter))
    (adapter / PROVENANCE).write_text("{not json")
    assert "unreadable" in _training_data(str(adapter))
    bare = tmp_path / "bare"
    bare.mkdir()
    assert _training_data(str(bare)) == "not recorded in the adapter directory"
    assert _training_data(None) == "none (no adapter)"
