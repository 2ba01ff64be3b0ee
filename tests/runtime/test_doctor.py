"""`senti-edge doctor`: the bug-report paste, complete and never failing half-way."""

from __future__ import annotations

import json

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
