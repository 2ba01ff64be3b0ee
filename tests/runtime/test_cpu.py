"""The extra-buffer decision: probe children that crash never take the parent down, and the
decision is made once per machine and model, then read from the cache."""

from __future__ import annotations

import json
import sys

import pytest

from senti_edge.errors import SentiEdgeError
from senti_edge.runtime import cpu

CRASH = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


def test_a_crashing_probe_child_is_a_result_not_a_dead_parent():
    result = cpu.probe(CRASH)
    assert not result.ok
    assert "SIGSEGV" in result.detail


def test_a_hanging_probe_child_times_out():
    result = cpu.probe([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert not result.ok and "timed out" in result.detail


def test_a_failing_probe_child_reports_its_last_line():
    result = cpu.probe([sys.executable, "-c", "import sys; sys.exit('llama.cpp said no')"])
    assert not result.ok and result.detail == "exit 1: llama.cpp said no"


@pytest.fixture
def fake_model(tmp_home, tmp_path, monkeypatch):
    monkeypatch.delenv(cpu.ENV, raising=False)
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


class Runner:
    """Plays the probe child: `crash_when` says which --extra-bufts values segfault."""

    def __init__(self, crash_when: set[str]):
        self.crash_when, self.calls = crash_when, []

    def __call__(self, cmd):
        extra = cmd[cmd.index("--extra-bufts") + 1]
        self.calls.append(extra)
        return cpu.probe(CRASH) if extra in self.crash_when else cpu.ProbeResult(True, "ok")


def test_extra_bufts_stay_on_when_the_probe_survives_and_the_answer_is_cached(fake_model, tmp_home):
    runner = Runner(crash_when=set())
    assert cpu.decide(fake_model, runner=runner).extra_bufts is True
    assert cpu.decide(fake_model, runner=runner).extra_bufts is True
    assert runner.calls == ["1"]  # one child, then the cache
    cached = json.loads((tmp_home / "cpu.json").read_text())
    (key, entry), = cached.items()
    assert cpu.llama_version() in key and cpu.cpu().flags_sha in key and entry["extra_bufts"] is True


def test_a_crash_with_extra_bufts_turns_them_off_after_checking_without(fake_model):
    runner = Runner(crash_when={"1"})
    decision = cpu.decide(fake_model, runner=runner)
    assert decision.extra_bufts is False and "SIGSEGV" in decision.reason
    assert runner.calls == ["1", "0"]
    assert cpu.decide(fake_model, runner=runner).extra_bufts is False and runner.calls == ["1", "0"]


def test_a_crash_either_way_is_a_clear_error_and_nothing_is_cached(fake_model, tmp_home):
    with pytest.raises(SentiEdgeError, match="with and without extra buffer types.*senti-edge doctor"):
        cpu.decide(fake_model, runner=Runner(crash_when={"0", "1"}))
    assert not (tmp_home / "cpu.json").exists() or json.loads((tmp_home / "cpu.json").read_text()) == {}


def test_the_environment_overrides_without_a_child(fake_model, monkeypatch):
    monkeypatch.setenv(cpu.ENV, "0")
    runner = Runner(crash_when=set())
    assert cpu.decide(fake_model, runner=runner).extra_bufts is False and runner.calls == []


def test_another_model_file_gets_its_own_probe(fake_model, tmp_path):
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 99)
    runner = Runner(crash_when=set())
    cpu.decide(fake_model, runner=runner)
    cpu.decide(other, runner=runner)
    assert runner.calls == ["1", "1"]


@pytest.mark.model
@pytest.mark.slow
def test_the_real_probe_child_runs_without_extra_bufts_on_any_cpu(smollm2_path):
    """Without extra buffer types llama.cpp must work on every supported CPU; with them the answer
    is this machine's (it is what `decide` finds out), so only its shape is checked."""
    assert cpu.probe(cpu.probe_command(smollm2_path, None, False)).ok
    with_extra = cpu.probe(cpu.probe_command(smollm2_path, None, True))
    assert with_extra.ok or "signal" in with_extra.detail


@pytest.mark.model
def test_the_engine_loads_with_the_decision(smollm2_path, tmp_home, monkeypatch):
    from senti_edge.runtime.engine import Engine

    monkeypatch.delenv(cpu.ENV, raising=False)
    seen = []
    monkeypatch.setattr(cpu, "decide", lambda path, adapter=None: seen.append(path) or cpu.Decision(False, "test"))
    with Engine(str(smollm2_path), n_ctx=256, n_threads=1) as eng:
        assert eng.extra_bufts is False
    assert seen == [smollm2_path]
