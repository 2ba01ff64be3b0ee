"""`senti-edge doctor`: the bug-report paste, complete and never failing half-way."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from senti_edge.cli import cli


def test_doctor_reports_versions_cpu_llama_build_cache_and_decisions(tmp_home):
    res = CliRunner().invoke(cli, ["doctor", "--json", "--no-probe"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["packages"]["llama-cpp-python"] == "0.3.36"
    assert "AVX" in data["llama.cpp system info"] or "NEON" in data["llama.cpp system info"]
    assert data["cpu"]["cores"] >= 1 and isinstance(data["cpu"]["features"], list)
    assert data["cache"] == str(tmp_home) and data["models present"] == []
    assert data["threads (free cores now)"] >= 1


def test_doctor_text_names_each_section(tmp_home, monkeypatch):
    monkeypatch.setenv("SENTI_EDGE_EXTRA_BUFTS", "0")
    res = CliRunner().invoke(cli, ["doctor", "--no-probe"])
    assert res.exit_code == 0, res.output
    for heading in ("senti-edge:", "llama.cpp system info:", "cpu:", "cache:", "models present:",
                    "extra buffer types override: SENTI_EDGE_EXTRA_BUFTS=0"):
        assert heading in res.output


def test_doctor_lists_a_task_adapter_as_a_load_of_its_own():
    """The default's aspects LoRA is loaded for `-t aspects` only: the report shows that load, with
    its adapter, beside the plain one (each gets its own CPU decision)."""
    from senti_edge.runtime.fetch import is_present
    from senti_edge.runtime.registry import DEFAULT_MODEL, get_entry

    if not is_present(get_entry(DEFAULT_MODEL)):
        pytest.skip(f"{DEFAULT_MODEL} is not built here; run `senti-edge models pull`")
    res = CliRunner().invoke(cli, ["doctor", "--json", "--no-probe"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    loads = {m["name"]: m for m in data["models present"]}
    assert loads[DEFAULT_MODEL]["adapter"] is None
    assert loads[f"{DEFAULT_MODEL} -t aspects"]["adapter"].endswith("senti-smollm2-135m-aspects.lora.gguf")
    assert f"{DEFAULT_MODEL} -t aspects" in data["extra buffer decision"]
