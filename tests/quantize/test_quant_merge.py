"""Adapter/base checks on tiny random models, and quantize's error path: fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.quantize import merge


def _tiny_llama(hidden: int, layers: int = 1):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg)


def _adapter(tmp_path: Path, model) -> Path:
    peft = pytest.importorskip("peft")
    pm = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path / "adapter"
    pm.save_pretrained(out)
    return out


def test_adapter_for_another_width_is_refused(tmp_path):
    adapter = _adapter(tmp_path, _tiny_llama(32))
    assert merge.check_match(_tiny_llama(32), adapter) == 4  # A and B for q and v
    with pytest.raises(SentiEdgeError, match=r"does not match the base model: .*q_proj.lora_A.weight has shape \[2, 32\] but .* is 48->48"):
        merge.check_match(_tiny_llama(48), adapter)


def test_adapter_for_more_layers_is_refused(tmp_path):
    adapter = _adapter(tmp_path, _tiny_llama(32, layers=2))
    with pytest.raises(SentiEdgeError, match=r"'model.layers.1.self_attn.\w_proj', which is not a linear layer"):
        merge.check_match(_tiny_llama(32, layers=1), adapter)


def test_adapter_directory_problems(tmp_path):
    with pytest.raises(SentiEdgeError, match="not a PEFT adapter directory"):
        merge.read_adapter_config(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    with pytest.raises(SentiEdgeError, match="is a IA3 adapter; only LoRA"):
        merge.read_adapter_config(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    with pytest.raises(SentiEdgeError, match="adapter weights are missing"):
        merge.read_adapter_config(tmp_path)


def test_base_directory_problems(tmp_path):
    with pytest.raises(SentiEdgeError, match="without config.json"):
        merge.locate_base(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SentiEdgeError, match="has no tokenizer"):
        merge.locate_base(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text("{}")
    assert merge.locate_base(str(tmp_path)).hf_dir == tmp_path
    with pytest.raises(SentiEdgeError, match="model file not found"):
        merge.locate_base(str(tmp_path / "nope.gguf"))


def test_quantize_failure_leaves_nothing_behind(tmp_path):
    from senti_edge.quantize.quantize import quantize

    src = tmp_path / "broken-f16.gguf"
    src.write_bytes(b"GGUF" + b"\0" * 200)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SentiEdgeError, match="llama_model_quantize returned"):
        quantize(src, out / "m-q4_0.gguf", "q4_0")
    assert list(out.iterdir()) == []
