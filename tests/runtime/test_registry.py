"""registry.py: the shipped name table and the user's local entries."""

import json

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime import registry
from senti_edge.runtime.fetch import shipped_adapter, task_adapter
from senti_edge.runtime.registry import ModelEntry
from senti_edge.runtime.tasks import TASKS


def test_shipped_registry_is_complete():
    reg = {name: ModelEntry.from_dict(name, d) for name, d in registry._shipped().items()}  # not the user's entries
    assert registry.DEFAULT_MODEL in reg
    for e in reg.values():
        assert e.licence
        if e.base:  # distilled: a shipped base plus an adapter inside the package, hash-checked
            assert e.base in reg and not reg[e.base].base and len(e.adapter_sha256) == 64
            assert shipped_adapter(e).stat().st_size < 32_000_000  # keep the repo small (the default's rank 48: 29.5 MB)
        else:
            assert len(e.sha256) == 64 and e.size > 0 and e.sources
        for task, _, _ in e.task_adapters:  # a LoRA for one task, inside the package and hash-checked
            assert task in TASKS and task_adapter(e, task).stat().st_size < 12_000_000  # rank 16: 9.8 MB


def test_register_local_adds_a_named_model(tmp_home, tmp_path):
    gguf = tmp_path / "student-q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    registry.register_local("my-student", gguf, quant="Q4_0")
    assert registry.model_path(registry.get_entry("my-student")) == gguf.resolve()
    assert json.loads(registry.user_registry_path().read_text())["my-student"]["quant"] == "Q4_0"
    with pytest.raises(SentiEdgeError, match="taken by a shipped model"):
        registry.register_local("smollm2-135m", gguf)


def test_user_entries_may_not_shadow_shipped_names_and_a_broken_file_says_how_to_fix(tmp_home):
    registry.user_registry_path().parent.mkdir(parents=True, exist_ok=True)
    registry.user_registry_path().write_text(json.dumps({"smollm2-135m": {"path": "/x/other.gguf"}}))
    assert registry.get_entry("smollm2-135m").sources  # still the shipped one
    registry.user_registry_path().write_text("{not json")
    with pytest.raises(SentiEdgeError, match="not a valid registry file.*fix or delete it"):
        registry.load_registry()


def test_the_shipped_default_is_built_and_its_adapter_form_stays_available():
    reg = registry.load_registry()
    default = reg[registry.DEFAULT_MODEL]
    assert default.build and default.sha256 and default.base
    lora = reg[registry.DEFAULT_MODEL + "-lora"]
    assert lora.adapter == default.adapter and not lora.build
