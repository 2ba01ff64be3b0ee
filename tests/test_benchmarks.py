"""The measurement scripts in benchmarks/ run through the public API and measure what they say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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


def test_runtime_speed_measures_every_part_in_one_run(smollm2_path, tmp_path, capsys):
    out = tmp_path / "speed.json"
    load("runtime_speed").main(["-m", str(smollm2_path), "--threads", "1", "--repeats", "1", "--n-seq", "1,4",
                                "--short", "12", "--long", "2", "--out", str(out)])
    r = json.loads(out.read_text())
    (m,) = r["models"]
    assert m["file"] == smollm2_path.name and m["adapter"] is None and m["raw_prompt_tok_per_s"] > 0
    assert [(t["set"], t["n_seq"], t["texts"]) for t in m["throughput"]] == [
        ("short (tweet)", 1, 12), ("short (tweet)", 4, 12), ("long (review)", 1, 2), ("long (review)", 4, 2)]
    assert all(t["texts_per_s"] > 0 and 0 < t["ratio"] for t in m["throughput"])
    assert m["cold_start_s"] > m["model_load_s"] > 0 and m["cli_imports_torch"] is False and m["peak_rss_mb"] > 0
    assert "| model | size MB | raw tok/s |" in capsys.readouterr().out


def test_training_speed_compares_its_settings(smollm2_path, tmp_path):
    torch = pytest.importorskip("torch")
    speed = load("train_speed")
    out = tmp_path / "speed.json"
    speed.main(["--steps", "1", "--threads", "2", "--batch", "2", "--length", "64", "--out", str(out)])
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [r["setting"] for r in rows] == [name for name, _, _ in speed.SETTINGS] and res["batch"] == [2, 64]
    fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    for r, (_, amp, _) in zip(rows, speed.SETTINGS):
        if amp and not fast:  # emulated bf16 is minutes per step: skipped, and says why
            assert "s_per_step" not in r and "no fast bf16" in r["skipped"]
        else:
            assert r["tokens_per_s"] > 0 and r["s_per_step"] > 0


def test_memory_peak_rss_does_not_grow_with_the_input(tmp_path):
    memory = load("memory")
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    memory.make_input(small, 5_000_000)
    memory.make_input(large, 20_000_000)
    s, l = memory.measure_stream(small, runs=1), memory.measure_stream(large, runs=1)
    assert l["texts"] > 3.5 * s["texts"] > 100_000
    assert l["peak_rss_mb"] < s["peak_rss_mb"] + 4  # 15 MB more input, (almost) no more memory
    # the measure does see memory that the input costs: a 15 MB line is read whole (then cut)
    one_line = tmp_path / "one-line.txt"
    one_line.write_text("word " * 3_000_000 + "\n")
    assert memory.measure_stream(one_line, runs=1)["peak_rss_mb"] > s["peak_rss_mb"] + 15


def test_memory_command_writes_json_and_removes_its_input(tmp_path):
    out = tmp_path / "mem.json"
    load("memory").main(["--size-mb", "2", "--runs", "2", "--format", "jsonl", "--to-file", "--dir", str(tmp_path),
                         "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["format"] == "jsonl" and len(r["stream"]["runs"]) == 2 and r["command"].startswith("python benchmarks/memory.py")
    assert r["stream"]["bytes"] >= 2_000_000 and r["stream"]["texts"] > 10_000
    assert r["stream"]["peak_rss_mb"] > 0 and r["one_line_peak_rss_mb"] > 0 and "analyze" not in r
    assert [p.name for p in tmp_path.iterdir()] == ["mem.json"]  # input, output and temporary directory gone


def test_robustness_reports_held_back_and_trained_kinds_side_by_side(tmp_path, capsys):
    rob = load("robustness")
    fams = rob.families(("negative", "positive"))
    held = " ".join(how for how, _ in list(fams["held-back"].values()) + list(fams["held-back prepended"].values()))
    trained = " ".join(how for how, _ in fams["trained kinds"].values())
    assert not any(how.strip() in trained for how, _ in fams["held-back"].values())
    assert "<|im_end|>" in held and "<|im_end|>" not in trained and "{text}" in trained
    assert {t for _, t in fams["trained kinds"].values()} == {None, "negative", "positive"}
    assert "injection:instruction:neutral" in rob.families(("negative", "positive", "neutral"))["held-back"]

    root = tmp_path / "bench"
    (root / "sc" / "sst2").mkdir(parents=True)
    pos, neg = ["a great and lovely film", "wonderful, I loved it"], ["an awful, boring mess", "bad and ugly"]
    rows = [{"sentence": t, "label": "positive"} for t in pos] + [{"sentence": t, "label": "negative"} for t in neg]
    for split in ("train", "val"):
        (root / "sc" / "sst2" / f"{split}.json").write_text(json.dumps(rows))
    out = tmp_path / "rob.json"
    rob.main(["-b", "vader", "--data-dir", str(root), "--datasets", "sst2", "--n", "4", "--out", str(out)])
    res = json.loads(out.read_text())["datasets"]["sst2"]["vader"]
    assert set(res) == {"held-back", "held-back prepended", "trained kinds"}
    assert all(r["n"] == 4 and 0 <= r["distractor_flip_rate"] <= 1 for r in res.values())
    assert res["held-back prepended"]["injection_flip_rate"] is None  # distractors only
    for fam, r in res.items():  # the flips by direction add up to the rates
        for what in ("distractor", "injection"):
            k = sum(name.startswith(what) for name in fams[fam])
            assert sum(r[f"{what}_moves"].values()) == pytest.approx(4 * k * (r[f"{what}_flip_rate"] or 0))
    printed = capsys.readouterr().out
    assert "| vader |" in printed and "vader injection flips: " in printed


@pytest.mark.slow
@pytest.mark.model
def test_stage3_parity_shows_a_gguf_beside_the_torch_model_it_came_from(smollm2_path, tmp_path, capsys):
    """A LoRA that changes nothing (peft's B = 0) on the student made from the SmolLM2 GGUF:
    the torch column and that GGUF's column must tell the same story."""
    pytest.importorskip("peft", reason="the training stack is not installed: pip install 'senti-edge[distill]'")
    from peft import LoraConfig, get_peft_model

    from senti_edge.distill.train import prepare_student
    from senti_edge.hfstack import load_causal_lm

    run = tmp_path / "run"
    student = prepare_student(str(smollm2_path), run / "student")
    model, _ = load_causal_lm(str(student))
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(run / "consistency" / "adapter")
    load("stage3_parity").main(["--run", str(run), "-m", str(smollm2_path)])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 15
    probs = [[[float(x) for x in cell.split()[1].split("/")] for cell in row[1:]] for row in rows]
    diffs = [abs(a - b) for torch_p, gguf_p in probs for a, b in zip(torch_p, gguf_p)]
    # the same weights, float32 against Q4_1, tokenised as training tokenises: at most 0.07 apart
    # and 15 of 15 labels on an AMD EPYC (a wrong build, as v4's first, differs by up to 0.45 and
    # in 4 labels; joining the prompt's text before tokenising gave 0.12 and 14); room for other
    # CPUs' kernels
    assert max(diffs) < 0.15, max(diffs)
    same = sum(row[1].split()[0] == row[2].split()[0] for row in rows)
    assert same >= 14, rows


def test_build_type_builds_a_candidate_adapter_with_its_own_calibration(smollm2_path, tmp_path, capsys):
    """A new stage is measured as the merged file users would get, before it ships: the same
    build as `models pull`, with the candidate adapter and the calibration stamped into it."""
    from senti_edge.runtime.build import senti_metadata, stamp_metadata
    from senti_edge.runtime.fetch import shipped_adapter
    from senti_edge.runtime.registry import get_entry

    candidate = tmp_path / "candidate.lora.gguf"
    stamp_metadata(shipped_adapter(get_entry("senti-smollm2-135m")), candidate, {"senti_edge.calibration": "{}"})
    out = tmp_path / "candidate.Q8_0.gguf"
    load("build_type").main(["senti-smollm2-135m", "--type", "Q8_0", "--adapter", str(candidate), "--out", str(out)])
    assert senti_metadata(out)["senti_edge.calibration"] == "{}"
    assert f"{out} {out.stat().st_size} bytes sha256 " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="does not exist"):
        load("build_type").main(["senti-smollm2-135m", "--type", "Q8_0", "--adapter", str(tmp_path / "no.gguf"),
                                 "--out", str(tmp_path / "x.gguf")])
