"""End to end with the real SmolLM2 GGUF as teacher and student, through the CLI."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _toml(path: Path, out_dir: Path, bench: Path, student: str, teacher: str) -> Path:
    path.write_text(f"""
out_dir = "{out_dir}"
seed = 5
student = "{student}"
[teacher]
model = "{teacher}"
n_threads = 1
n_ctx = 1024
[corpus]
sentibench_dir = "{bench}"
datasets = ["sc/sst2", "multifaced/pstance"]
max_texts = 3
[knowdist]
max_tokens = 20
drop = []
[icldist]
n_items = 4
max_shots = 2
general_fraction = 0.25
max_tokens = 12
[consistency]
enabled = true
gold_texts = 1
replay = 0.5
[train]
batch_size = 2
max_length = 96
max_steps = 2
checkpoint_every = 1
n_threads = 1
lora_r = 4
""")
    return path


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_run_all_stages_then_skip(smollm2_path, student_dir, fake_bench, tmp_path):
    cfg = _toml(tmp_path / "c.toml", tmp_path / "run", fake_bench, str(student_dir), str(smollm2_path))
    runner = CliRunner()
    res = runner.invoke(cli, ["distill", "run", str(cfg)])
    assert res.exit_code == 0, res.output
    assert [ln for ln in res.stdout.split() if ln in ("done", "skipped") or ln.endswith(":")][-10:] == [
        "knowdist-generate:", "done", "knowdist-train:", "done", "icldist-generate:", "done", "icldist-train:", "done",
        "consistency-train:", "done"]
    run = tmp_path / "run"
    kd = _records(run / "knowdist.jsonl")
    assert len(kd) == 3 and all(r["teacher"] and r["label_logits"] and len(r["label_logits"]) == 3 for r in kd)
    icl = _records(run / "icldist.jsonl")
    assert len(icl) == 4
    for stage in ("knowdist", "icldist", "consistency"):
        state = json.loads((run / stage / "state.json").read_text())
        assert state["complete"] and state["step"] == 2
        assert (run / stage / "adapter" / "adapter_model.safetensors").is_file()
        prov = json.loads((run / stage / "adapter" / "distill_config.json").read_text())  # for quantize's card
        assert prov["stage"] == stage and prov["distill_config"]["out_dir"] == str(run) and {"consistency": "icldist"}.get(stage, stage) in prov["data"]
        assert len((run / stage / "log.csv").read_text().splitlines()) == 3
    assert json.loads((run / "icldist" / "state.json").read_text())["base_model"].endswith("knowdist-merged")
    # stage 3 continues stage 2's adapter on the base stage 2 trained it on
    assert json.loads((run / "consistency" / "state.json").read_text())["base_model"].endswith("knowdist-merged")
    res = runner.invoke(cli, ["distill", "run", str(cfg)])
    assert res.exit_code == 0 and res.output.count("skipped") == 5, res.output
    res = runner.invoke(cli, ["distill", "report", str(cfg)])
    assert "knowdist.qc.json" in res.output and "teacher_gold_agreement" in res.output
    card = runner.invoke(cli, ["distill", "report", str(cfg), "--markdown"]).output
    assert "- KnowDist: 3 teacher analyses" in card and "- ICLDist: 4 teacher answers" in card
    for part in ("teacher, knowdist | 3 of 3 records |", "teacher, icldist | 4 of 4", "student, knowdist | 2 steps",
                 "student, icldist | 2 steps"):
        assert part in card, card

    # generation killed after one item, then resumed, gives the records of the uninterrupted run
    cfg2 = _toml(tmp_path / "c2.toml", tmp_path / "run2", fake_bench, str(student_dir), str(smollm2_path))
    res = runner.invoke(cli, ["distill", "generate", str(cfg2), "knowdist", "--max-items", "1"])
    assert res.exit_code == 0 and "1/3 records" in res.output, res.output
    res = runner.invoke(cli, ["distill", "train", str(cfg2), "knowdist"])
    assert res.exit_code == 1 and "not complete" in res.output
    res = runner.invoke(cli, ["distill", "generate", str(cfg2), "knowdist"])
    assert res.exit_code == 0 and "3/3 records (2 new" in res.output, res.output
    a = {r["id"]: r for r in kd}
    b = {r["id"]: r for r in _records(tmp_path / "run2" / "knowdist.jsonl")}
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["response"] == b[k]["response"] and a[k]["qc"] == b[k]["qc"]
        assert a[k]["label_logits"] == pytest.approx(b[k]["label_logits"], abs=1e-3)


def test_cli_errors_are_one_line(fake_bench, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlora_rnk = 4\n")
    res = runner.invoke(cli, ["distill", "run", str(bad)])
    assert res.exit_code == 1 and "Error: " in res.output and "unknown key 'train.lora_rnk'" in res.output
    empty = tmp_path / "empty.toml"
    empty.write_text(f'out_dir = "{tmp_path / "r"}"\n[teacher]\nbackend = "openai"\nurl = "http://127.0.0.1:9/v1"\n')
    res = runner.invoke(cli, ["distill", "generate", str(empty), "knowdist"])
    assert res.exit_code == 1 and "corpus is empty" in res.output
    res = runner.invoke(cli, ["distill", "train", str(empty), "icldist"])
    assert res.exit_code == 1 and "run `senti-edge distill generate icldist` first" in res.output
