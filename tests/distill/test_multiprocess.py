"""Multi-process training: `accelerate launch --num_processes 2 --cpu` (gloo) on the tiny student.

Two processes must give the single-process loss curve and weights (same global batch), write each
checkpoint and log row once (the main process), and resume exactly. This is the code path of
multi-GPU training; only the device differs.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli
from senti_edge.distill.config import load_config
from senti_edge.distill.pipeline import generate, train_stage

from .conftest import ScriptedTeacher, free_port

pytestmark = pytest.mark.slow

STEPS = 4


def _toml(path, out_dir, bench, student, **train) -> str:
    opts = {"batch_size": 4, "max_length": 96, "max_steps": STEPS, "checkpoint_every": 2, "n_threads": 1,
            "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lr": 5e-3, "warmup_steps": 1, "amp": "off",
            "stage2_init": "fresh", **train}
    lines = [f'out_dir = "{out_dir}"', "seed = 11", f'student = "{student}"', "[corpus]", f'sentibench_dir = "{bench}"',
             'datasets = ["sc/sst2", "multifaced/pstance"]', "[knowdist]", "enabled = false",
             "[icldist]", "n_items = 12", "max_shots = 1", "general_fraction = 0.25", "[train]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in opts.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _launch(*runs: list[str], home: Path, n: int = 2) -> list[dict]:
    """`accelerate launch` n CPU processes (gloo) running `distill train` with each argument list
    in turn; returns the states the main process printed, one per run. `home`: an empty HF_HOME,
    so no accelerate config of the user's takes part."""
    pytest.importorskip("accelerate", reason="accelerate is not installed: pip install 'senti-edge[distill]'")
    driver = Path(__file__).with_name("ddp_driver.py")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           str(driver), json.dumps([["distill", "train", *args] for args in runs])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(home)}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    states, text, dec = [], res.stdout.strip(), json.JSONDecoder()
    while text:
        state, end = dec.raw_decode(text)
        states.append(state)
        text = text[end:].strip()
    return states


def _log(run) -> list[dict]:
    with open(run / "icldist" / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _adapter(run) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "icldist" / "adapter" / "adapter_model.safetensors"))


@pytest.fixture
def runs(tmp_path, fake_bench, tiny_student):
    """Out_dirs holding the same ICLDist records (a scripted teacher, so with KL targets)."""
    made = []
    for name in ("one", "two", "dropout", "resumed"):
        config = _toml(tmp_path / f"{name}.toml", tmp_path / name, fake_bench, tiny_student)
        if not made:
            generate(load_config(config), "icldist", teacher=ScriptedTeacher())
        else:
            shutil.copytree(tmp_path / "one", tmp_path / name, ignore=shutil.ignore_patterns("icldist"))
        made.append((config, tmp_path / name))
    return made


def test_two_processes_match_one_checkpoint_once_and_resume_exactly(runs, tmp_path):
    (cfg1, one), (cfg2, two), (cfg3, dropout), (cfg4, resumed) = runs
    state1 = train_stage(load_config(cfg1), "icldist")
    assert state1["complete"] and state1["processes"] == 1

    # in two processes: the same run; then, with LoRA dropout (each process draws its own masks), a
    # whole run and one stopped at step 2 (as a kill would) and resumed
    drop = ["--set", "train.lora_dropout=0.1"]
    full, full_drop, stopped, resumed_state = _launch(
        [cfg2, "icldist"], [cfg3, "icldist", *drop], [cfg4, "icldist", "--stop-after", "2", *drop], [cfg4, "icldist", *drop],
        home=tmp_path / "hf")
    assert full["complete"] and full["processes"] == 2 and full["step"] == STEPS  # printed once, by the main process
    assert stopped == {"complete": False, "step": 2, "total_steps": STEPS}
    assert resumed_state["complete"] and full_drop["complete"]

    a, b = _log(one), _log(two)
    assert [r["step"] for r in b] == [str(s) for s in range(1, STEPS + 1)]  # one row per step: rank 1 logs nothing
    assert [r["tokens"] for r in a] == [r["tokens"] for r in b]  # the same global batches
    assert any(float(r["kl"]) > 0 for r in a)
    for ra, rb in zip(a, b):
        for key in ("loss", "ce", "kl"):
            assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-4, abs=1e-5), (key, ra, rb)
    assert float(a[-1]["loss"]) < float(a[0]["loss"])  # it learns, so matching curves mean something
    wa, wb = _adapter(one), _adapter(two)
    assert wa.keys() == wb.keys() and len(wa) > 0
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-4

    ck = two / "icldist" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["latest.json", "step-0000002", "step-0000004"]
    assert json.loads((ck / "latest.json").read_text()) == {"step": 4, "dir": "step-0000004", "processes": 2}

    # the resumed run: the uninterrupted run's weights and log, bit for bit
    wc, wd = _adapter(dropout), _adapter(resumed)
    assert all((wc[k] == wd[k]).all() for k in wc) and any((wc[k] != wb[k]).any() for k in wc)
    cols = ("step", "loss", "ce", "kl", "lr", "tokens")
    assert [[r[k] for k in cols] for r in _log(resumed)] == [[r[k] for k in cols] for r in _log(dropout)]


def test_qlora_without_cuda_is_refused_in_one_line(runs):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: QLoRA would run")
    config, run = runs[0]
    res = CliRunner().invoke(cli, ["distill", "train", config, "icldist", "--set", "train.qlora=true"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "Error: train.qlora = true needs a CUDA GPU (bitsandbytes 4-bit) and this process has none; "
        "set train.qlora = false to train plain LoRA on CPU"]
    assert not (run / "icldist" / "checkpoints").exists()


def test_generation_refuses_several_processes(runs, monkeypatch):
    config, _ = runs[0]
    monkeypatch.setenv("WORLD_SIZE", "2")
    res = CliRunner().invoke(cli, ["distill", "generate", config, "icldist"])
    assert res.exit_code == 1 and res.output.startswith("Error: icldist generation runs in one process")
