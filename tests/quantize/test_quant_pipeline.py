"""End to end on SmolLM2 with a tiny trained LoRA: merge, convert, Q8_0 + Q4_0, verify, LoRA, register.

One pipeline run per session (fixture `pipeline_run`, ~1.5 min on one thread); the tests read its
outputs. Offline once the llama-cpp-python sdist is cached.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from senti_edge.errors import SentiEdgeError

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_outputs_exist_and_nothing_half_written(pipeline_run):
    cfg, report = pipeline_run
    for path in cfg.outputs():
        assert path.exists(), path
    assert (cfg.merged_dir / "model.safetensors").is_file()
    assert (cfg.merged_dir / "tokenizer.json").is_file()
    assert json.loads((cfg.merged_dir / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert not _leftovers(cfg.out)
    assert json.loads(cfg.report_path.read_text())["failures"] == []


def test_f16_matches_the_merged_model_in_torch(pipeline_run):
    _, report = pipeline_run
    vs = report["f16"]["vs_torch"]
    assert vs["agreement"] == 1.0
    assert vs["max_logit_diff"] < 0.25
    assert report["f16"]["status"] == "ok"


def test_two_quantized_types_pass_their_thresholds(pipeline_run):
    from senti_edge.quantize.config import QUANT_TYPES

    _, report = pipeline_run
    got = {q["type"]: q for q in report["quantized"]}
    assert set(got) == {"q8_0", "q4_0"}
    assert got["q8_0"]["agreement"] >= QUANT_TYPES["q8_0"].min_agreement
    assert got["q8_0"]["mean_kl"] <= got["q4_0"]["mean_kl"]  # more bits, closer to F16
    assert got["q4_0"]["size"] < got["q8_0"]["size"] < report["f16"]["size"]
    assert got["q4_0"]["imatrix"] and not got["q8_0"]["imatrix"]
    assert got["q8_0"]["tensor_types"].get("Q8_0", 0) > 100
    assert got["q8_0"]["made_by"] == "converter" and got["q4_0"]["made_by"].startswith("llama_model_quantize")
    assert all(q["status"] == "ok" for q in report["quantized"])


def test_converter_version_is_recorded_in_the_gguf_and_the_card(pipeline_run):
    from gguf import GGUFReader

    cfg, report = pipeline_run
    for path in (cfg.f16_path, cfg.gguf_path("q4_0")):
        field = GGUFReader(str(path)).fields["general.description"]
        desc = bytes(field.parts[-1]).decode()
        assert "llama-cpp-python 0.3.36 sdist" in desc
    card = cfg.card_path.read_text()
    assert "0.3.36" in card and "| `tiny-senti-q4_0.gguf` | Q4_0 (imatrix) |" in card
    assert report["converter"]["version"] == "0.3.36"


def test_base_gguf_plus_gguf_lora_gives_the_merged_f16_labels(pipeline_run, smollm2_path):
    from senti_edge.quantize import verify

    cfg, report = pipeline_run
    texts = verify.load_probes(None, 16)
    merged = verify.score_gguf(cfg.f16_path, texts, n_threads=1)
    with_lora = verify.score_gguf(smollm2_path, texts, adapter=cfg.lora_path, n_threads=1)
    plain = verify.score_gguf(smollm2_path, texts, n_threads=1)
    assert (with_lora.logits.argmax(-1) == merged.logits.argmax(-1)).all()
    # the adapter is what closes the gap: the base alone is further from the merged model
    assert np.abs(with_lora.logits - merged.logits).mean() < np.abs(plain.logits - merged.logits).mean()
    assert report["lora"]["agreement"] == 1.0
    assert cfg.lora_path.stat().st_size < 5_000_000


def test_results_are_registered_and_load_by_name(pipeline_run, in_quant_home):
    from senti_edge.runtime.engine import Engine
    from senti_edge.runtime.fetch import resolve

    cfg, report = pipeline_run
    assert report["registered"] == ["tiny-senti", "tiny-senti-f16", "tiny-senti-q8_0", "tiny-senti-q4_0"]
    ref = resolve("tiny-senti")
    assert ref.path == cfg.gguf_path("q4_0").resolve()  # the smallest verified file
    assert resolve("tiny-senti-q8_0").path == cfg.gguf_path("q8_0").resolve()
    with Engine("tiny-senti", n_threads=1, n_ctx=256) as eng:
        assert eng.template == "chatml"


def test_existing_outputs_are_refused_without_force(pipeline_run):
    from senti_edge.quantize import QuantizeConfig
    from senti_edge.quantize.pipeline import run

    cfg, _ = pipeline_run
    again = QuantizeConfig(**{**cfg.to_dict(), "types": cfg.types})
    with pytest.raises(SentiEdgeError, match=r"merged-hf exists .*pass --force"):
        run(again)


def test_a_failed_threshold_fails_loudly_and_is_not_registered(pipeline_run, tmp_path, in_quant_home, monkeypatch):
    """Reuse the merged model as the 'base' (no adapter) with an impossible Q4_0 threshold."""
    import dataclasses

    from senti_edge.quantize import config as qconfig
    from senti_edge.quantize.pipeline import run
    from senti_edge.runtime.registry import load_registry

    cfg, _ = pipeline_run
    strict = dataclasses.replace(qconfig.QUANT_TYPES["q4_0"], min_agreement=1.01)
    monkeypatch.setitem(qconfig.QUANT_TYPES, "q4_0", strict)
    bad = qconfig.QuantizeConfig(base=str(cfg.merged_dir), out_dir=str(tmp_path / "bad"), types=("q4_0",),
                                 imatrix=False, max_probes=8, n_threads=1)
    with pytest.raises(SentiEdgeError, match="verification failed: Q4_0: agreement"):
        run(bad)
    report = json.loads(bad.report_path.read_text())
    assert report["quantized"][0]["status"] == "FAIL"
    assert "FAIL" in bad.card_path.read_text()
    assert "bad-q4_0" not in load_registry() and "bad-f16" in load_registry()
