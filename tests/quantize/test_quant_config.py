"""QuantizeConfig, the type table and the output layout: no model needed."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.quantize.config import QUANT_TYPES, QuantizeConfig, parse_types
from senti_edge.jsonl import ensure_space


def test_ftypes_match_llama_cpp():
    import llama_cpp

    for q in QUANT_TYPES.values():
        assert getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{q.name.upper()}") == q.ftype, q.name


def test_parse_types_normalises_and_rejects_unknown():
    assert parse_types("Q8_0, q4-k-m,q8_0") == ("q8_0", "q4_k_m")
    assert parse_types("all") == tuple(QUANT_TYPES)
    with pytest.raises(SentiEdgeError, match="unknown quantization type 'q3_x'"):
        parse_types("q8_0,q3_x")
    with pytest.raises(SentiEdgeError, match="no quantization type"):
        parse_types(" , ")


def test_config_defaults_and_layout(tmp_path):
    cfg = QuantizeConfig(adapter="a", out_dir=str(tmp_path / "my-student"), types="q4_0")
    assert cfg.name == "my-student"
    assert cfg.gguf_path("q4_0").name == "my-student-q4_0.gguf"
    assert cfg.lora_path.name == "my-student-lora-f16.gguf"
    assert cfg.f16_path in cfg.outputs() and cfg.card_path in cfg.outputs()
    assert QuantizeConfig(out_dir=str(tmp_path / "x")).export_lora is False  # nothing to export without an adapter


@pytest.mark.parametrize("kwargs, match", [
    ({"out_dir": ""}, "out_dir is empty"),
    ({"name": "bad name!"}, "not a valid model name"),
    ({"max_probes": 2}, "max_probes=2"),
    ({"n_threads": -1}, "n_threads=-1"),
])
def test_config_rejects_bad_values(tmp_path, kwargs, match):
    with pytest.raises(SentiEdgeError, match=match):
        QuantizeConfig(**{"out_dir": str(tmp_path / "o"), **kwargs})


def test_existing_targets_are_refused_unless_force(tmp_path):
    cfg = QuantizeConfig(out_dir=str(tmp_path), name="m", types="q4_0")
    cfg.check_targets()
    cfg.gguf_path("q4_0").write_bytes(b"old")
    with pytest.raises(SentiEdgeError, match=r"m-q4_0.gguf exists; pass --force"):
        cfg.check_targets()
    cfg.force = True
    cfg.check_targets()


def test_no_disk_space_is_a_clear_error(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(SentiEdgeError, match=r"not enough disk space for x.gguf .* 100 MB needed, 1 MB free"):
        ensure_space(tmp_path, 100 * 10**6, "x.gguf")
