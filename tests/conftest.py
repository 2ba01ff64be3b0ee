"""Shared fixtures: the real SmolLM2 GGUF (skips if absent), SentiBench (skips if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SENTIBENCH = Path(os.environ.get("SENTIBENCH_DIR", SHARED / "sentibench"))


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The materialised default model; run `senti-edge models pull smollm2-135m` to get it."""
    from senti_edge.errors import SentiEdgeError
    from senti_edge.runtime.registry import get_entry, materialise

    try:
        return materialise(get_entry("smollm2-135m"))
    except SentiEdgeError as exc:
        pytest.skip(f"SmolLM2 not available: {exc}")


@pytest.fixture(scope="session")
def engine(smollm2_path):
    """One loaded SmolLM2 engine for the session (loading costs ~0.1 s, but keeps RSS flat)."""
    from senti_edge.runtime.engine import Engine

    eng = Engine(str(smollm2_path), n_threads=2, n_ctx=2048)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def sentibench_dir() -> Path:
    if not (SENTIBENCH / "sc" / "sst2" / "train.json").exists():
        pytest.skip(f"SentiBench not found at {SENTIBENCH} (set SENTIBENCH_DIR); CI has it beside the repo")
    return SENTIBENCH


@pytest.fixture
def tmp_home(tmp_path, monkeypatch) -> Path:
    """An empty SENTI_EDGE_HOME, for tests of the model cache itself."""
    home = tmp_path / "home"
    monkeypatch.setenv("SENTI_EDGE_HOME", str(home))
    return home
