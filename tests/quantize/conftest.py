"""Fixtures for the quantize tests: the cached converter, a tiny trained LoRA, one pipeline run.

The pipeline runs once per session (merge, convert, Q8_0 + Q4_0, verify, LoRA export) and the
slow tests read its outputs. It needs torch/transformers/peft, SmolLM2 (`smollm2_path`) and the
llama-cpp-python sdist (downloaded once from PyPI into the real cache, then offline); each
missing piece skips with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TRAIN_TEXTS = [
    ("I love this phone, it is fantastic.", "positive"),
    ("Terrible service, I want a refund.", "negative"),
    ("The train leaves at noon.", "neutral"),
    ("Best concert of my life!", "positive"),
    ("The food was cold and tasteless.", "negative"),
    ("The office is on the second floor.", "neutral"),
]


@pytest.fixture(scope="session")
def stack():
    for mod in ("torch", "transformers", "peft"):
        pytest.importorskip(mod, reason=f"{mod} missing: pip install 'senti-edge[distill]'")
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def converter():
    """The llama.cpp converter from the pinned sdist (pip-downloaded once into the real cache)."""
    from senti_edge.errors import SentiEdgeError
    from senti_edge.quantize.convert import ensure_converter

    try:
        return ensure_converter()
    except SentiEdgeError as exc:
        pytest.skip(f"llama.cpp converter unavailable (PyPI unreachable and no cached sdist?): {exc}")


@pytest.fixture(scope="session")
def tiny_lora(stack, smollm2_path, tmp_path_factory) -> Path:
    """A rank-4 LoRA on q/v/up projections of SmolLM2, trained 4 steps on six labelled strings."""
    torch = stack
    from peft import LoraConfig, get_peft_model

    from senti_edge.quantize.merge import BaseModel, load_base

    torch.manual_seed(0)
    model, tok = load_base(BaseModel(str(smollm2_path), gguf=smollm2_path))
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]))
    texts = [f"Sentence: {t}\nLabel: {lab}" for t, lab in TRAIN_TEXTS]
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(4):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def quant_home(converter, tmp_path_factory) -> Path:
    """A fresh SENTI_EDGE_HOME whose converter cache is the real one (so nothing is downloaded)."""
    home = tmp_path_factory.mktemp("home")
    (home / "converter").symlink_to(converter.root.parent, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def pipeline_run(stack, converter, tiny_lora, smollm2_path, quant_home, tmp_path_factory):
    """(config, report) of one full run, registered in quant_home: Q8_0 straight from the converter,
    Q4_0 (with an importance matrix) through llama_model_quantize, 16 probes, 1 thread."""
    from senti_edge.quantize import QuantizeConfig
    from senti_edge.quantize.pipeline import run

    out = tmp_path_factory.mktemp("quant") / "tiny-senti"
    cfg = QuantizeConfig(adapter=str(tiny_lora), base=str(smollm2_path), out_dir=str(out), types=("q8_0", "q4_0"),
                         q8_direct=True, max_probes=16, n_threads=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTI_EDGE_HOME", str(quant_home))
        report = run(cfg)
    return cfg, report


@pytest.fixture
def in_quant_home(quant_home, monkeypatch) -> Path:
    monkeypatch.setenv("SENTI_EDGE_HOME", str(quant_home))
    return quant_home


def no_temp_files(directory: Path) -> list[str]:
    return [p.name for p in Path(directory).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
